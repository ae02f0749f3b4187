package mqttsn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// SetAccess swaps the ACL of connected clients: the next PUBLISH of a topic
// the new ACL refuses gets PUBACK 0x03, a message the client may no longer
// read is not delivered through its old subscription, QoS -1 follows the new
// anonymous block, and the client stays connected. A file that does not
// parse is refused by LoadAccess with its file and line.
func TestSetAccessACL(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(acl, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("topic write minus1/#\n" +
		"user sensors\n" +
		"topic readwrite sensors/#\n" +
		"topic read cmd/#\n")
	users := map[string]string{"sensor-*": "sensors"}
	e := newEnv(t, Options{ACLFile: acl, Usernames: users,
		Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0", AllowQoSMinus1: true}},
		Predefined: map[uint16]string{1: "minus1/t"}})
	ctx := context.Background()
	feeder, _, err := e.b.Attach(localbroker.ClientOptions{ClientID: "feeder", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { feeder.Close(false) })
	feed := func(topic, data string) {
		t.Helper()
		if code, err := feeder.Publish(ctx, &localbroker.Message{Topic: topic, Payload: []byte(data), QoS: 1}); err != nil || code.IsError() {
			t.Fatalf("feeder publishes %s: %v %v", topic, code, err)
		}
	}
	w := watch(t, e.b, "#")

	c := newSNClient(t, e.gwAddr)
	c.connect("sensor-1", true, 60)
	sensors := c.register("sensors/t")
	c.publish(packet.TopicIDNormal, sensors, packet.QoS1, false, "before")
	w.expect("sensors/t", "before")
	if sa := c.subscribe(packet.TopicIDNormal, "cmd/#", 0, packet.QoS1); sa.ReturnCode != packet.Accepted {
		t.Fatalf("SUBACK %+v", sa)
	}
	feed("cmd/a", "go")
	w.expect("cmd/a", "go")
	if r, p := c.acceptRegister(), c.expectPublish(); string(r.TopicName) != "cmd/a" || string(p.Data) != "go" {
		t.Fatalf("got %q on %s, want go on cmd/a", p.Data, r.TopicName)
	}
	mo := newSNClient(t, e.gwAddr)
	mo.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: 1, Data: []byte("m1")})
	w.expect("minus1/t", "m1")

	// The new file: sensors may only read sensors/ and write alerts/; the
	// anonymous block (QoS -1) may write nothing.
	write("user sensors\n" +
		"topic read sensors/#\n" +
		"topic write alerts/#\n")
	a, err := LoadAccess(acl, users)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.g.SetAccess(a); n != 0 {
		t.Fatalf("SetAccess with the same usernames: %d clients renamed, want 0", n)
	}

	c.send(&packet.Publish{QoS: packet.QoS1, TopicID: sensors, MsgID: 900, Data: []byte("refused")})
	if pa := expect[*packet.Puback](c); pa.MsgID != 900 || pa.ReturnCode != packet.RejectedNotSupported {
		t.Fatalf("PUBACK %+v after the reload, want rejected: not supported (0x03)", pa)
	}
	alerts := c.register("alerts/x")
	c.publish(packet.TopicIDNormal, alerts, packet.QoS1, false, "allowed")
	w.expect("alerts/x", "allowed") // not the refused one

	// cmd/ is no longer readable through the subscription made before;
	// sensors/ is, with a subscription made now.
	if sa := c.subscribe(packet.TopicIDNormal, "sensors/#", 0, packet.QoS1); sa.ReturnCode != packet.Accepted {
		t.Fatalf("SUBACK %+v", sa)
	}
	if sa := c.subscribe(packet.TopicIDNormal, "cmd/b", 0, packet.QoS1); sa.ReturnCode != packet.RejectedNotSupported {
		t.Fatalf("SUBACK %+v for cmd/b after the reload, want rejected: not supported", sa)
	}
	feed("cmd/a", "not any more")
	feed("sensors/x", "marker")
	if r, p := c.acceptRegister(), c.expectPublish(); string(r.TopicName) != "sensors/x" || string(p.Data) != "marker" {
		t.Fatalf("got %q on %s, want the marker on sensors/x (cmd/a is no longer readable)", p.Data, r.TopicName)
	}

	// QoS -1 is checked with the new anonymous block.
	before := e.g.Stats().NotAuthorized
	mo.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: 1, Data: []byte("m2")})
	eventually(t, 5*time.Second, "the QoS -1 publish refused", func() bool { return e.g.Stats().NotAuthorized > before })

	// Still connected, same session.
	c.send(&packet.Pingreq{})
	expect[*packet.Pingresp](c)
	if st := e.g.Stats(); st.Clients != 1 || st.Lost != 0 {
		t.Fatalf("Clients %d, Lost %d after the reload; want the client still connected", st.Clients, st.Lost)
	}
}

// A file that does not parse: LoadAccess names it and its line.
func TestLoadAccessErrors(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(acl, []byte("user sensors\ntopic readwrite sensors/#\ntopic sometimes x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAccess(acl, nil)
	var pe *auth.ParseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), acl+":3") {
		t.Fatalf("LoadAccess of a bad file: %v, want a ParseError naming %s:3", err, acl)
	}
	if _, err := LoadAccess("", map[string]string{"x": ""}); err == nil {
		t.Fatal("LoadAccess with an empty username succeeded")
	}
	if _, err := LoadAccess(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Fatal("LoadAccess of a missing file succeeded")
	}
}

// A new usernames mapping: a connected client whose username changes is
// sent DISCONNECT and, connecting again, gets the new username's block; one
// whose username stays is left alone.
func TestSetAccessUsernames(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(acl, []byte("user sensors\ntopic readwrite sensors/#\nuser pumps\ntopic readwrite pumps/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{ACLFile: acl, Usernames: map[string]string{"dev-*": "sensors"}})
	w := watch(t, e.b, "#")
	moved := newSNClient(t, e.gwAddr)
	moved.connect("dev-pump", false, 60)
	stays := newSNClient(t, e.gwAddr)
	stays.connect("dev-sensor", true, 60)
	tid := moved.register("sensors/t")
	moved.publish(packet.TopicIDNormal, tid, packet.QoS1, false, "as sensors")
	w.expect("sensors/t", "as sensors")

	a, err := LoadAccess(acl, map[string]string{"dev-*": "sensors", "dev-pump": "pumps"})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.g.SetAccess(a); n != 1 {
		t.Fatalf("SetAccess: %d clients renamed, want 1", n)
	}
	expect[*packet.Disconnect](moved)
	moved.connect("dev-pump", false, 60)
	tid = moved.register("sensors/t")
	moved.send(&packet.Publish{QoS: packet.QoS1, TopicID: tid, MsgID: 900, Data: []byte("x")})
	if pa := expect[*packet.Puback](moved); pa.ReturnCode != packet.RejectedNotSupported {
		t.Fatalf("PUBACK %+v as pumps on sensors/t, want rejected: not supported", pa)
	}
	pid := moved.register("pumps/t")
	moved.publish(packet.TopicIDNormal, pid, packet.QoS1, false, "as pumps")
	w.expect("pumps/t", "as pumps")

	stays.send(&packet.Pingreq{})
	expect[*packet.Pingresp](stays)
	sid := stays.register("sensors/s")
	stays.publish(packet.TopicIDNormal, sid, packet.QoS1, false, "still sensors")
	w.expect("sensors/s", "still sensors")
}
