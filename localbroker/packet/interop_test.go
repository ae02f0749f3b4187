package packet

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Interoperability with a real peer: Debian's mosquitto broker and its
// mosquitto_pub client. Our encoder talks to their decoder and the other way
// round, under 3.1.1 and 5.0.

func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed (CI=true; the Debian package mosquitto provides it)", name)
		}
		t.Skipf("%s is not installed (the Debian package mosquitto provides it)", name)
	}
	return path
}

type peer struct {
	t *testing.T
	c net.Conn
	r *Reader
	v Version
}

func (p *peer) send(pk Packet) {
	p.t.Helper()
	if err := Validate(pk, p.v); err != nil {
		p.t.Fatalf("sending invalid %v: %v", pk.Type(), err)
	}
	if _, err := p.c.Write(Append(nil, pk, p.v)); err != nil {
		p.t.Fatalf("write %v: %v", pk.Type(), err)
	}
}

func (p *peer) recv() Packet {
	p.t.Helper()
	if err := p.c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		p.t.Fatal(err)
	}
	h, body, err := p.r.ReadPacket(0)
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	var pk Packet
	if h.Type == TypeConnect {
		var c *Connect
		c, err = DecodeConnect(h.Flags, body)
		pk = c
	} else {
		pk, err = Decode(h, body, p.v)
	}
	if err != nil {
		p.t.Fatalf("decode %v (% x): %v", h.Type, body, err)
	}
	if err := Validate(pk, p.v); err != nil {
		p.t.Fatalf("received %v fails Validate: %v", h.Type, err)
	}
	return pk
}

// expect receives packets until one of type ty arrives, handing the others
// to other (which may be nil).
func (p *peer) expect(ty Type, other func(Packet)) Packet {
	p.t.Helper()
	for range 10 {
		pk := p.recv()
		if pk.Type() == ty {
			return pk
		}
		if other == nil {
			p.t.Fatalf("got %s, want %v", format(pk), ty)
		}
		other(pk)
	}
	p.t.Fatalf("no %v in 10 packets", ty)
	return nil
}

// startMosquitto runs a broker on a free loopback port with a configuration
// in a temporary directory and returns its address.
func startMosquitto(t *testing.T) string {
	bin := lookTool(t, "mosquitto")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not start listening on %s: %v\n%s", addr, err, log.String())
		}
		<-tick.C
	}
}

// TestInteropMosquittoBroker runs a subscriber/publisher session against
// mosquitto: QoS 1 and 2 flows in both directions, properties, unsubscribe,
// ping and disconnect.
func TestInteropMosquittoBroker(t *testing.T) {
	addr := startMosquitto(t)
	for _, v := range []Version{V311, V5} {
		t.Run(v.String(), func(t *testing.T) {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := &peer{t: t, c: c, r: NewReader(c, 4096), v: v}
			v5 := v == V5

			conn := &Connect{ClientID: "outpost-interop-" + v.String(), CleanStart: true, KeepAlive: 30,
				WillFlag: true, WillQoS: 1, WillTopic: "interop/will", WillPayload: []byte("gone")}
			if v5 {
				conn.Properties = props(func(p *Properties) {
					p.ReceiveMaximum, p.TopicAliasMaximum = 10, 5
					p.User = []UserProperty{{"client", "outpost"}}
				}, PropReceiveMaximum, PropTopicAliasMaximum)
				conn.WillProperties = props(func(p *Properties) { p.WillDelay = 1 }, PropWillDelay)
			}
			p.send(conn)
			ack := p.expect(TypeConnack, nil).(*Connack)
			if ack.ReasonCode != 0 || ack.SessionPresent {
				t.Fatalf("CONNACK %s", format(ack))
			}

			sub := &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "interop/#", QoS: 2}}}
			if v5 {
				sub.Properties = props(func(p *Properties) { p.SubscriptionIDs = []uint32{7} })
			}
			p.send(sub)
			sa := p.expect(TypeSuback, nil).(*Suback)
			if sa.PacketID != 1 || len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != GrantedQoS2 {
				t.Fatalf("SUBACK %s", format(sa))
			}

			pubProps := props(func(p *Properties) {
				p.MessageExpiry, p.ContentType, p.ResponseTopic = 60, "text/plain", "interop/reply"
				p.CorrelationData = []byte{1, 2, 3}
				p.User = []UserProperty{{"k", "v"}, {"k", "w"}}
			}, PropMessageExpiry)
			for _, qos := range []byte{1, 2} {
				id := uint16(10 + qos)
				pub := &Publish{QoS: qos, PacketID: id, Topic: fmt.Sprintf("interop/q%d", qos), Payload: []byte("hello")}
				if v5 {
					pub.Properties = pubProps
				}
				p.send(pub)
				// Our PUBLISH is acknowledged and comes back through the
				// subscription; answer the delivery's QoS flow as we go.
				var delivered *Publish
				acked, completed := false, false
				for !acked || delivered == nil || (qos == 2 && !completed) {
					switch pk := p.recv().(type) {
					case *Ack:
						switch pk.Kind {
						case TypePuback:
							acked = pk.PacketID == id
						case TypePubrec:
							if pk.PacketID != id || pk.ReasonCode.IsError() {
								t.Fatalf("PUBREC %s", format(pk))
							}
							p.send(&Ack{Kind: TypePubrel, PacketID: id})
						case TypePubcomp:
							acked = pk.PacketID == id
						case TypePubrel:
							p.send(&Ack{Kind: TypePubcomp, PacketID: pk.PacketID})
							completed = true
						}
					case *Publish:
						delivered = pk
						switch pk.QoS {
						case 1:
							p.send(&Ack{Kind: TypePuback, PacketID: pk.PacketID})
						case 2:
							p.send(&Ack{Kind: TypePubrec, PacketID: pk.PacketID})
						}
					default:
						t.Fatalf("unexpected %s", format(pk))
					}
				}
				if delivered.Topic != pub.Topic || string(delivered.Payload) != "hello" || delivered.QoS != qos {
					t.Fatalf("delivered %s", format(delivered))
				}
				if v5 {
					dp := &delivered.Properties
					if dp.ContentType != "text/plain" || dp.ResponseTopic != "interop/reply" ||
						!bytes.Equal(dp.CorrelationData, []byte{1, 2, 3}) || len(dp.User) != 2 || dp.User[1].Value != "w" ||
						len(dp.SubscriptionIDs) != 1 || dp.SubscriptionIDs[0] != 7 || !dp.Has(PropMessageExpiry) {
						t.Fatalf("delivered properties %s", format(delivered))
					}
				}
			}

			p.send(&Unsubscribe{PacketID: 20, Filters: []string{"interop/#"}})
			ua := p.expect(TypeUnsuback, nil).(*Unsuback)
			if ua.PacketID != 20 || (v5 && (len(ua.ReasonCodes) != 1 || ua.ReasonCodes[0] != Success)) {
				t.Fatalf("UNSUBACK %s", format(ua))
			}
			p.send(&Pingreq{})
			p.expect(TypePingresp, nil)
			p.send(&Disconnect{})
		})
	}
}

// TestInteropMosquittoPub decodes what mosquitto_pub sends, answering it
// with our CONNACK and PUBACK.
func TestInteropMosquittoPub(t *testing.T) {
	bin := lookTool(t, "mosquitto_pub")
	for _, v := range []Version{V311, V5} {
		t.Run(v.String(), func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			args := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(l.Addr().(*net.TCPAddr).Port),
				"-i", "pub-1", "-k", "45", "-q", "1", "-t", "a/b", "-m", "hi there", "-r",
				"-u", "alice", "-P", "secret",
				"--will-topic", "w/t", "--will-payload", "bye", "--will-qos", "2"}
			if v == V5 {
				args = append(args, "-V", "mqttv5",
					"-D", "connect", "session-expiry-interval", "120",
					"-D", "connect", "user-property", "ck", "cv",
					"-D", "publish", "content-type", "text/plain",
					"-D", "publish", "message-expiry-interval", "30",
					"-D", "publish", "user-property", "pk", "pv",
					"-D", "will", "will-delay-interval", "9")
			} else {
				args = append(args, "-V", "mqttv311")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			if err := l.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			c, err := l.Accept()
			if err != nil {
				t.Fatalf("mosquitto_pub did not connect: %v\n%s", err, out.String())
			}
			defer c.Close()
			p := &peer{t: t, c: c, r: NewReader(c, 4096), v: v}

			conn := p.expect(TypeConnect, nil).(*Connect)
			wantConn := "CONNECT proto=\"MQTT\" v=4 clean=1 keepalive=45 client=\"pub-1\" will{qos=2 retain=0 topic=\"w/t\" payload=\"bye\"} user=\"alice\" pass=\"secret\""
			if v == V5 {
				// mosquitto_pub adds Receive Maximum 20 of its own.
				wantConn = "CONNECT proto=\"MQTT\" v=5 clean=1 keepalive=45 props{session_expiry=120 receive_max=20 user=[\"ck\"=\"cv\"]} client=\"pub-1\"" +
					" will{qos=2 retain=0 props{will_delay=9} topic=\"w/t\" payload=\"bye\"} user=\"alice\" pass=\"secret\""
			}
			if got := format(conn); got != wantConn {
				t.Fatalf("CONNECT\n got: %s\nwant: %s", got, wantConn)
			}
			ack := &Connack{}
			if v == V5 {
				ack.Properties = props(func(p *Properties) {
					p.ReceiveMaximum, p.MaximumQoS, p.ReasonString = 5, 1, "welcome"
				}, PropReceiveMaximum, PropMaximumQoS)
			}
			p.send(ack)

			pub := p.expect(TypePublish, nil).(*Publish)
			wantPub := "PUBLISH dup=0 qos=1 retain=1 topic=\"a/b\" id=" + fmt.Sprint(pub.PacketID) + " payload=\"hi there\""
			if v == V5 {
				wantPub = "PUBLISH dup=0 qos=1 retain=1 topic=\"a/b\" id=" + fmt.Sprint(pub.PacketID) +
					" props{message_expiry=30 content_type=\"text/plain\" user=[\"pk\"=\"pv\"]} payload=\"hi there\""
			}
			if got := format(pub); got != wantPub {
				t.Fatalf("PUBLISH\n got: %s\nwant: %s", got, wantPub)
			}
			puback := &Ack{Kind: TypePuback, PacketID: pub.PacketID}
			if v == V5 {
				puback.ReasonCode = NoMatchingSubscribers // the long form, for their decoder
			}
			p.send(puback)
			disc := p.expect(TypeDisconnect, nil).(*Disconnect)
			if disc.ReasonCode != 0 {
				t.Fatalf("DISCONNECT %s", format(disc))
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("mosquitto_pub: %v\n%s", err, out.String())
			}
		})
	}
}
