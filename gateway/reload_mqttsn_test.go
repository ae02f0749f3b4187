package gateway

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// snDevice is an MQTT-SN device of a test, speaking through the codec.
type snDevice struct {
	t *testing.T
	u *snUDP
}

func dialSN(t *testing.T, gw net.Addr) *snDevice {
	t.Helper()
	return &snDevice{t: t, u: newSNUDP(t, gw)}
}

func (c *snDevice) send(m packet.Message) { c.t.Helper(); c.u.send(packet.Append(nil, m)) }

// next returns the next message from the gateway.
func (c *snDevice) next() packet.Message {
	c.t.Helper()
	b := c.u.read()
	m, err := packet.Decode(b)
	if err != nil {
		c.t.Fatalf("decode % x: %v", b, err)
	}
	return m
}

func snExpect[T packet.Message](c *snDevice) T {
	c.t.Helper()
	m := c.next()
	v, ok := m.(T)
	if !ok {
		c.t.Fatalf("got %T %+v; want %T", m, m, *new(T))
	}
	return v
}

func (c *snDevice) connect(id string) {
	c.t.Helper()
	c.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte(id)})
	if ca := snExpect[*packet.Connack](c); ca.ReturnCode != packet.Accepted {
		c.t.Fatalf("CONNACK %v", ca.ReturnCode)
	}
}

func (c *snDevice) register(msgID uint16, name string) uint16 {
	c.t.Helper()
	c.send(&packet.Register{MsgID: msgID, TopicName: []byte(name)})
	ra := snExpect[*packet.Regack](c)
	if ra.ReturnCode != packet.Accepted || ra.MsgID != msgID {
		c.t.Fatalf("REGACK %+v for %s", ra, name)
	}
	return ra.TopicID
}

// publish sends a QoS 1 PUBLISH and returns PUBACK's return code.
func (c *snDevice) publish(msgID, topicID uint16, data string) packet.ReturnCode {
	c.t.Helper()
	c.send(&packet.Publish{QoS: packet.QoS1, TopicID: topicID, MsgID: msgID, Data: []byte(data)})
	pa := snExpect[*packet.Puback](c)
	if pa.MsgID != msgID {
		c.t.Fatalf("PUBACK %+v; want msg id %d", pa, msgID)
	}
	return pa.ReturnCode
}

func (c *snDevice) subscribe(msgID uint16, filter string) packet.ReturnCode {
	c.t.Helper()
	c.send(&packet.Subscribe{QoS: packet.QoS1, MsgID: msgID, TopicName: []byte(filter)})
	sa := snExpect[*packet.Suback](c)
	if sa.MsgID != msgID {
		c.t.Fatalf("SUBACK %+v; want msg id %d", sa, msgID)
	}
	return sa.ReturnCode
}

// delivery reads a REGISTER and the PUBLISH after it, acknowledges both,
// and returns "topic=payload".
func (c *snDevice) delivery() string {
	c.t.Helper()
	r := snExpect[*packet.Register](c)
	c.send(&packet.Regack{TopicID: r.TopicID, MsgID: r.MsgID, ReturnCode: packet.Accepted})
	p := snExpect[*packet.Publish](c)
	if p.QoS == packet.QoS1 {
		c.send(&packet.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.Accepted})
	}
	return string(r.TopicName) + "=" + string(p.Data)
}

// SIGHUP's Reload reads [mqttsn] acl_file again: a device connected over UDP
// stays connected, its next PUBLISH of a topic the new file refuses gets
// PUBACK 0x03, and a message it may no longer read is not delivered
// through the subscription it made before. A file that does not parse is
// reported with its file and line, and the ACL in force stays. A new
// usernames mapping disconnects the device whose username it changes.
func TestReloadMQTTSNACL(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "outpost.toml")
	aclPath := filepath.Join(dir, "sn.acl")
	writeFile := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := func(user string) string {
		return "data_dir = \"data\"\n[broker]\nsys_interval = \"0s\"\n" +
			"[[listener]]\nname = \"lan\"\naddress = \"127.0.0.1:0\"\nallow_anonymous = true\n" +
			"[mqttsn]\nacl_file = \"sn.acl\"\n[mqttsn.usernames]\n\"sensor-*\" = \"" + user + "\"\n" +
			"[[mqttsn.udp]]\nname = \"udp\"\naddress = \"127.0.0.1:0\"\n"
	}
	writeFile(file, conf("sensors"))
	writeFile(aclPath, "user sensors\ntopic readwrite sensors/#\ntopic read cmd/#\n")
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := startGateway(t, cfg)
	g.SetReload(file, nil)
	lan := dialMQTT(t, g.Addrs()["lan"], "lan", true, 0)
	defer lan.close()
	lan.subscribe("#", 1)

	c := dialSN(t, g.MQTTSNAddrs()["udp"])
	c.connect("sensor-1")
	sensors := c.register(1, "sensors/t")
	if rc := c.publish(2, sensors, "before"); rc != packet.Accepted {
		t.Fatalf("PUBACK %v before the reload", rc)
	}
	lan.expect("sensors/t=before")
	if rc := c.subscribe(3, "cmd/#"); rc != packet.Accepted {
		t.Fatalf("SUBACK %v for cmd/#", rc)
	}
	lan.publish("cmd/a", "go", false)
	lan.expect("cmd/a=go")
	if got := c.delivery(); got != "cmd/a=go" {
		t.Fatalf("delivered %s; want cmd/a=go", got)
	}

	// The new file: sensors may read sensors/ and write alerts/ only.
	writeFile(aclPath, "user sensors\ntopic read sensors/#\ntopic write alerts/#\n")
	r := g.Reload()
	if r.Err != nil || !slices.Contains(r.Applied, "auth files") || len(r.Restart) != 0 || r.Disconnected != 0 {
		t.Fatalf("Reload = %+v; want the auth files applied, nothing else", r)
	}
	if rc := c.publish(4, sensors, "refused"); rc != packet.RejectedNotSupported {
		t.Fatalf("PUBACK %v for sensors/t after the reload; want rejected: not supported (0x03)", rc)
	}
	alerts := c.register(5, "alerts/x")
	if rc := c.publish(6, alerts, "allowed"); rc != packet.Accepted {
		t.Fatalf("PUBACK %v for alerts/x after the reload", rc)
	}
	lan.expect("alerts/x=allowed") // and not the refused one
	if rc := c.subscribe(7, "sensors/#"); rc != packet.Accepted {
		t.Fatalf("SUBACK %v for sensors/#", rc)
	}
	// cmd/ is no longer readable through the subscription made before the
	// reload: the device's next delivery is the marker published after it.
	lan.publish("cmd/a", "not any more", false)
	lan.publish("sensors/x", "marker", false)
	lan.expect("cmd/a=not any more", "sensors/x=marker") // its own, through "#"
	if got := c.delivery(); got != "sensors/x=marker" {
		t.Fatalf("delivered %s; want sensors/x=marker (cmd/a is no longer readable)", got)
	}
	c.send(&packet.Pingreq{})
	snExpect[*packet.Pingresp](c)
	if st := g.mqttsn.Stats(); st.Clients != 1 || st.Lost != 0 {
		t.Fatalf("Clients %d, Lost %d after the reload; want the device still connected", st.Clients, st.Lost)
	}

	// A file that does not parse: the error names it and its line; the
	// ACL in force stays (alerts/ writable, sensors/ not).
	writeFile(aclPath, "user sensors\ntopic sometimes sensors/#\n")
	if r := g.Reload(); r.Err == nil || !strings.Contains(r.Err.Error(), aclPath+":2") {
		t.Fatalf("Reload of a bad ACL file = %+v; want an error naming %s:2", r, aclPath)
	}
	if rc := c.publish(8, alerts, "still allowed"); rc != packet.Accepted {
		t.Fatalf("PUBACK %v for alerts/x after a failed reload; want accepted (the ACL in force)", rc)
	}
	if rc := c.publish(9, sensors, "still refused"); rc != packet.RejectedNotSupported {
		t.Fatalf("PUBACK %v for sensors/t after a failed reload; want rejected: not supported", rc)
	}
	lan.expect("alerts/x=still allowed")

	// A new username for sensor-*: the device is disconnected, and connects
	// again under the new username (no block in the file: nothing allowed).
	writeFile(aclPath, "user sensors\ntopic read sensors/#\ntopic write alerts/#\n")
	writeFile(file, conf("strangers"))
	r = g.Reload()
	if r.Err != nil || !slices.Contains(r.Applied, "mqttsn.usernames") || r.Disconnected != 1 {
		t.Fatalf("Reload of new usernames = %+v; want mqttsn.usernames applied and 1 device disconnected", r)
	}
	snExpect[*packet.Disconnect](c)
	c.connect("sensor-1")
	alerts = c.register(10, "alerts/x")
	if rc := c.publish(11, alerts, "as a stranger"); rc != packet.RejectedNotSupported {
		t.Fatalf("PUBACK %v for alerts/x under the new username; want rejected: not supported", rc)
	}
	lan.expectNothing(200 * time.Millisecond)
}
