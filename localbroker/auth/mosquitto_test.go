package auth

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// This file runs Debian's mosquitto as the reference: the same ACL file and
// a password file written by HashPassword are given to a real broker, and
// every question of exampleCases is asked of it over MQTT 5.

// TestACLAgreesWithMosquitto checks that mosquitto decides every example
// case as ACL.Check does, that it grants every subscription, and that it
// accepts the passwords HashPassword wrote.
func TestACLAgreesWithMosquitto(t *testing.T) {
	aclPath, err := filepath.Abs(filepath.Join("testdata", "example.acl"))
	if err != nil {
		t.Fatal(err)
	}
	acl := loadExampleACL(t)

	// One password per user of the cases, hashed by HashPassword with
	// assorted iteration counts.
	passwords := map[string]string{}
	var pw strings.Builder
	iterations := []int{1, 101, 0, 2000}
	for i, c := range exampleCases {
		if c.username == "" || passwords[c.username] != "" {
			continue
		}
		passwords[c.username] = "pw-" + c.username + "-" + fmt.Sprint(i)
		h, err := HashPassword([]byte(passwords[c.username]), iterations[len(passwords)%len(iterations)])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pw, "%s:%s\n", c.username, h)
	}
	if passwords["admin"] == "" { // the prober's user
		passwords["admin"] = "pw-admin-probe"
		h, err := HashPassword([]byte(passwords["admin"]), 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pw, "admin:%s\n", h)
	}
	pwPath := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(pwPath, []byte(pw.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startMosquitto(t, aclPath, pwPath)

	t.Run("HashPasswordIsAccepted", func(t *testing.T) {
		for user, pass := range passwords {
			c, rc, err := dialMQTT(addr, "login-"+user, user, pass)
			if err != nil {
				t.Fatalf("%s: %v", user, err)
			}
			c.close()
			if rc != 0 {
				t.Errorf("%s: CONNACK reason %#x with the right password", user, rc)
			}
			c, rc, err = dialMQTT(addr, "login-"+user, user, pass+"x")
			if err == nil {
				c.close()
				if rc == 0 {
					t.Errorf("%s: CONNACK accepts a wrong password", user)
				}
			}
		}
	})

	t.Run("Cases", func(t *testing.T) {
		// The prober publishes the messages that subjects may or may not read.
		prober, rc, err := dialMQTT(addr, "outpost-test-prober", "admin", passwords["admin"])
		if err != nil || rc != 0 {
			t.Fatalf("prober: rc %#x, %v", rc, err)
		}
		defer prober.close()

		subjects := map[[2]string]*mqttClient{}
		defer func() {
			for _, c := range subjects {
				c.close()
			}
		}()
		subject := func(c aclCase) *mqttClient {
			key := [2]string{c.clientID, c.username}
			if s := subjects[key]; s != nil {
				return s
			}
			s, rc, err := dialMQTT(addr, c.clientID, c.username, passwords[c.username])
			if err != nil || rc != 0 {
				t.Fatalf("%v: connect: rc %#x, %v", c, rc, err)
			}
			// mosquitto grants both subscriptions whatever the ACL says;
			// Read decides what arrives.
			reasons, err := s.subscribe("#", "$app/#")
			if err != nil {
				t.Fatalf("%v: subscribe: %v", c, err)
			}
			for i, r := range reasons {
				if r != 0 {
					t.Errorf("%v: mosquitto refused subscription %d with %#x", c, i, r)
				}
				if !acl.Check(c.clientID, c.username, []string{"#", "$app/#"}[i], Subscribe) {
					t.Errorf("%v: Check(Subscribe) = false, mosquitto grants it", c)
				}
			}
			subjects[key] = s
			return s
		}

		for i, c := range exampleCases {
			s := subject(c)
			payload := fmt.Sprintf("case-%d", i)
			var got bool
			switch c.access {
			case Write:
				rc, err := s.publish1(c.topic, payload)
				if err != nil {
					t.Fatalf("%v: %v", c, err)
				}
				got = rc != reasonNotAuthorized
			case Read:
				rc, err := prober.publish1(c.topic, payload)
				if err != nil || rc == reasonNotAuthorized {
					t.Fatalf("%v: prober publish: rc %#x, %v", c, rc, err)
				}
				// The broker queued the message for s before it sent the
				// prober its PUBACK; a PINGRESP to s therefore comes after it.
				msgs, err := s.ping()
				if err != nil {
					t.Fatalf("%v: %v", c, err)
				}
				for _, m := range msgs {
					got = got || (m.topic == c.topic && m.payload == payload)
				}
			default:
				t.Fatalf("%v: no mosquitto probe for this access", c)
			}
			if got != c.want {
				t.Errorf("mosquitto: %v = %v, the case says %v", c, got, c.want)
			}
			if ours := acl.Check(c.clientID, c.username, c.topic, c.access); ours != got {
				t.Errorf("%v: Check = %v, mosquitto = %v", c, ours, got)
			}
		}
	})
}

// startMosquitto runs mosquitto on a free loopback port with the given ACL
// and password files and returns its address. It stops the broker when the
// test ends.
func startMosquitto(t *testing.T, aclPath, pwPath string) string {
	t.Helper()
	// Debian installs the broker in /usr/sbin, outside many users' PATH.
	bin := requireTool(t, "mosquitto", "/usr/sbin/mosquitto")
	dir := t.TempDir()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)

	var conf strings.Builder
	if os.Geteuid() == 0 {
		// Run as root, mosquitto would switch to the "mosquitto" user,
		// who cannot read the test's files.
		conf.WriteString("user root\n")
	}
	fmt.Fprintf(&conf, "listener %s 127.0.0.1\nallow_anonymous true\nacl_file %s\npassword_file %s\n", port, aclPath, pwPath)
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "mosquitto.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-c", confPath, "-v")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("mosquitto log:\n%s", b)
		}
	})

	// Poll until the listener accepts connections.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v", addr, err)
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			b, _ := os.ReadFile(logPath)
			t.Fatalf("mosquitto exited: %v\n%s", err, b)
		case <-tick.C:
		}
	}
}

// A minimal MQTT 5 client, just enough to ask a broker about access:
// CONNECT, SUBSCRIBE at QoS 0, PUBLISH at QoS 1, PINGREQ.

const (
	reasonNotAuthorized = 0x87 // MQTT 5.0 §2.4 reason code
	ioTimeout           = 10 * time.Second
)

type mqttClient struct {
	conn   net.Conn
	r      *bufio.Reader
	nextID uint16
}

type mqttMessage struct {
	topic, payload string
}

func appendVarint(b []byte, n int) []byte { // MQTT 5.0 §1.5.5
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte { // MQTT 5.0 §1.5.4
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// dialMQTT connects and returns the CONNACK reason code. An empty username
// connects anonymously.
func dialMQTT(addr, clientID, username, password string) (*mqttClient, byte, error) {
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, 0, err
	}
	c := &mqttClient{conn: conn, r: bufio.NewReader(conn)}
	flags := byte(0x02) // clean start
	if username != "" {
		flags |= 0x80 | 0x40
	}
	body := appendString(nil, "MQTT")
	body = append(body, 5, flags, 0, 60, 0) // version 5, flags, keep alive 60 s, no properties
	body = appendString(body, clientID)
	if username != "" {
		body = appendString(body, username)
		body = appendString(body, password)
	}
	if err := c.send(0x10, body); err != nil {
		conn.Close()
		return nil, 0, err
	}
	typ, b, err := c.read()
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	if typ != 0x20 || len(b) < 2 {
		conn.Close()
		return nil, 0, fmt.Errorf("want CONNACK, got packet %#x % x", typ, b)
	}
	if b[1] != 0 {
		conn.Close()
	}
	return c, b[1], nil
}

func (c *mqttClient) close() {
	_ = c.send(0xE0, []byte{0}) // DISCONNECT, normal
	c.conn.Close()
}

func (c *mqttClient) send(header byte, body []byte) error {
	pkt := appendVarint([]byte{header}, len(body))
	pkt = append(pkt, body...)
	if err := c.conn.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	_, err := c.conn.Write(pkt)
	return err
}

// read returns the next packet's first byte and body.
func (c *mqttClient) read() (byte, []byte, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		return 0, nil, err
	}
	typ, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		d, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mult
		mult *= 128
		if d&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("bad remaining length")
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(c.r, body)
	return typ, body, err
}

func (c *mqttClient) id() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// subscribe subscribes at QoS 0 and returns the SUBACK reason codes.
func (c *mqttClient) subscribe(filters ...string) ([]byte, error) {
	id := c.id()
	body := binary.BigEndian.AppendUint16(nil, id)
	body = append(body, 0) // no properties
	for _, f := range filters {
		body = appendString(body, f)
		body = append(body, 0) // QoS 0
	}
	if err := c.send(0x82, body); err != nil {
		return nil, err
	}
	for {
		typ, b, err := c.read()
		if err != nil {
			return nil, err
		}
		if typ != 0x90 || len(b) < 3 || binary.BigEndian.Uint16(b) != id {
			continue
		}
		plen, n := binary.Uvarint(b[2:]) // properties length: a 1..4 byte varint, same encoding
		if n <= 0 || 2+n+int(plen) > len(b) {
			return nil, fmt.Errorf("bad SUBACK % x", b)
		}
		return b[2+n+int(plen):], nil
	}
}

// publish1 publishes at QoS 1 and returns the PUBACK reason code. Messages
// that arrive meanwhile are dropped.
func (c *mqttClient) publish1(topic, payload string) (byte, error) {
	id := c.id()
	body := appendString(nil, topic)
	body = binary.BigEndian.AppendUint16(body, id)
	body = append(body, 0) // no properties
	body = append(body, payload...)
	if err := c.send(0x32, body); err != nil {
		return 0, err
	}
	for {
		typ, b, err := c.read()
		if err != nil {
			return 0, err
		}
		if typ != 0x40 || len(b) < 2 || binary.BigEndian.Uint16(b) != id {
			continue
		}
		if len(b) == 2 {
			return 0, nil // reason code omitted: success [MQTT-3.4.2.1]
		}
		return b[2], nil
	}
}

// ping sends PINGREQ and returns the messages received before PINGRESP.
func (c *mqttClient) ping() ([]mqttMessage, error) {
	if err := c.send(0xC0, nil); err != nil {
		return nil, err
	}
	var msgs []mqttMessage
	for {
		typ, b, err := c.read()
		if err != nil {
			return nil, err
		}
		switch typ & 0xF0 {
		case 0xD0:
			return msgs, nil
		case 0x30:
			if len(b) < 2 {
				return nil, fmt.Errorf("short PUBLISH % x", b)
			}
			tl := int(binary.BigEndian.Uint16(b))
			p := 2 + tl
			if typ&0x06 != 0 {
				p += 2 // packet identifier
			}
			if p > len(b) {
				return nil, fmt.Errorf("bad PUBLISH % x", b)
			}
			plen, n := binary.Uvarint(b[p:])
			if n <= 0 || p+n+int(plen) > len(b) {
				return nil, fmt.Errorf("bad PUBLISH properties % x", b)
			}
			msgs = append(msgs, mqttMessage{topic: string(b[2 : 2+tl]), payload: string(b[p+n+int(plen):])})
		}
	}
}
