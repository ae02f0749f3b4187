package mqttsn

import (
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
	"github.com/outpost-gw/outpost/spool"
)

// fullStoreEnv is a gateway whose session store is a real spool that
// refuses every write with ErrNoSpace, as on a nearly full disk (its
// MinFreeBytes is more than any file system has free); deletes still work.
func fullStoreEnv(t *testing.T) *env {
	t.Helper()
	st, err := spool.New(spool.Options{Dir: t.TempDir(), Logger: testLogger(), MinFreeBytes: math.MaxInt64})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "spool", st.Run, st.Ready())
	kv, err := st.KV("mqttsn")
	if err != nil {
		t.Fatal(err)
	}
	b, tcp := startBroker(t)
	g, err := New(Options{Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0"}}, Logger: testLogger()},
		Deps{Broker: b, Store: kv})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "gateway", g.Run, g.Ready())
	return &env{b: b, tcp: tcp, g: g, gwAddr: g.Addrs()["udp"].(*net.UDPAddr)}
}

// With the store full, what a CleanSession=false client asks to keep and
// the gateway cannot write is refused with "rejected: congestion" (MQTT-SN
// 1.2 §5.3.10), never acknowledged as kept: REGISTER and SUBSCRIBE by name,
// WILLTOPICUPD and WILLMSGUPD (the will before them stays in force, at the
// broker too), and a CONNECT that brings a new will. A client with nothing
// new to keep still connects, and publishes by short name.
func TestStoreFullRefusesWithCongestion(t *testing.T) {
	e := fullStoreEnv(t)
	w := watch(t, e.b, "sf/#")

	c := newSNClient(t, e.gwAddr)
	c.connect("keeper", false, 1)
	c.send(&packet.Register{MsgID: 1, TopicName: []byte("sf/t")})
	if ra := expect[*packet.Regack](c); ra.ReturnCode != packet.RejectedCongestion {
		t.Fatalf("REGACK %v with the store full, want rejected: congestion", ra.ReturnCode)
	}
	c.send(&packet.Subscribe{MsgID: 2, TopicIDType: packet.TopicIDNormal, TopicName: []byte("sf/cmd")})
	if sa := expect[*packet.Suback](c); sa.ReturnCode != packet.RejectedCongestion {
		t.Fatalf("SUBACK %v with the store full, want rejected: congestion", sa.ReturnCode)
	}
	c.send(&packet.WillTopicUpd{QoS: packet.QoS0, WillTopic: []byte("sf/will")})
	if r := expect[*packet.WillTopicResp](c); r.ReturnCode != packet.RejectedCongestion {
		t.Fatalf("WILLTOPICRESP %v with the store full, want rejected: congestion", r.ReturnCode)
	}
	c.send(&packet.WillMsgUpd{WillMsg: []byte("gone")})
	if r := expect[*packet.WillMsgResp](c); r.ReturnCode != packet.RejectedCongestion {
		t.Fatalf("WILLMSGRESP %v with the store full, want rejected: congestion", r.ReturnCode)
	}
	c.publish(packet.TopicIDShort, packet.ShortTopicID([2]byte{'s', 'f'}), packet.QoS1, false, "by short name")
	w.expect("sf", "by short name")
	if st := e.g.Stats(); st.StoreErrors < 4 {
		t.Fatalf("StoreErrors %d, want at least 4", st.StoreErrors)
	}

	// The refused will updates left no will: lost (keep-alive 1 s), the
	// client publishes nothing.
	eventually(t, 10*time.Second, "the client lost", func() bool { return e.g.Stats().Clients == 0 })
	w.expectNothing(100 * time.Millisecond)

	// A CONNECT with a will that cannot be kept is refused.
	d := newSNClient(t, e.gwAddr)
	d.send(&packet.Connect{Will: true, CleanSession: false, KeepAlive: 60, ClientID: []byte("willer")})
	expect[*packet.WillTopicReq](d)
	d.send(&packet.WillTopic{WillTopic: []byte("sf/willer")})
	expect[*packet.WillMsgReq](d)
	d.send(&packet.WillMsg{WillMsg: []byte("bye")})
	if ca := expect[*packet.Connack](d); ca.ReturnCode != packet.RejectedCongestion {
		t.Fatalf("CONNACK %v for a will the store cannot keep, want rejected: congestion", ca.ReturnCode)
	}
	// The client is removed right after its CONNACK.
	eventually(t, 5*time.Second, "the refused client removed", func() bool { return e.g.Stats().Clients == 0 })
	// The same client without a will connects.
	d.connect("willer", false, 60)
}

// A WILLTOPICUPD the ACL refuses (0x03) leaves the will before it in force:
// the client, connecting again with CleanSession=false and no Will flag,
// keeps that will and is not refused for the will topic it was refused.
func TestRefusedWillUpdateKeepsTheWill(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(acl, []byte("topic readwrite ok/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{ACLFile: acl})
	w := watch(t, e.b, "#")
	c := newSNClient(t, e.gwAddr)
	c.connectWithWill("upd", false, 60, "ok/will", packet.QoS0, false, "first")
	c.send(&packet.WillTopicUpd{WillTopic: []byte("secret/will")})
	if r := expect[*packet.WillTopicResp](c); r.ReturnCode != packet.RejectedNotSupported {
		t.Fatalf("WILLTOPICRESP %v for a will topic not allowed, want rejected: not supported", r.ReturnCode)
	}
	c.send(&packet.Disconnect{})
	expect[*packet.Disconnect](c)
	c.connect("upd", false, 1)
	// Lost (keep-alive 1 s): the will before the refused update.
	w.expect("ok/will", "first")
}
