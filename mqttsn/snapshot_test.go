package mqttsn

import (
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// Clients shows each client's transport, address, state and timers, and
// TransportStats counts the transport's datagrams, bytes and PUBLISHes.
func TestClientsAndTransportStats(t *testing.T) {
	e := newEnv(t, Options{})
	before := time.Now()

	a := newSNClient(t, e.gwAddr)
	a.connect("active", true, 45)
	if sa := a.subscribe(packet.TopicIDNormal, "snap/x", 0, packet.QoS1); sa.ReturnCode != packet.Accepted {
		t.Fatalf("SUBACK %+v", sa)
	}
	id := a.register("snap/x")
	a.publish(packet.TopicIDNormal, id, packet.QoS1, false, "hello")
	if p := a.expectPublish(); string(p.Data) != "hello" {
		t.Fatalf("PUBLISH %+v", p)
	}

	s := newSNClient(t, e.gwAddr)
	s.connect("sleeper", true, 60)
	s.send(&packet.Disconnect{HasDuration: true, Duration: 30})
	expect[*packet.Disconnect](s)

	var cl []ClientStatus
	eventually(t, 5*time.Second, "one client active, one asleep", func() bool {
		cl = e.g.Clients()
		return len(cl) == 2 && cl[0].State == StateActive && cl[1].State == StateAsleep
	})
	act, slp := cl[0], cl[1]
	if act.ClientID != "active" || act.Transport != "udp" || act.Remote != a.conn.LocalAddr().String() ||
		act.KeepAlive != 45*time.Second || act.SleepFor != 0 || act.LastHeard.Before(before) {
		t.Errorf("active client: %+v", act)
	}
	if slp.ClientID != "sleeper" || slp.SleepFor != 30*time.Second || slp.Remote != s.conn.LocalAddr().String() {
		t.Errorf("sleeping client: %+v", slp)
	}

	var ts []TransportStats
	eventually(t, 5*time.Second, "the PUBACK counted", func() bool {
		ts = e.g.TransportStats()
		return len(ts) == 1 && ts[0].PublishOut == 1
	})
	st := ts[0]
	if st.Name != "udp" || st.Address != e.gwAddr.String() || st.PublishIn != 1 {
		t.Errorf("transport: %+v; want udp at %s with 1 PUBLISH in", st, e.gwAddr)
	}
	// In: 2 CONNECT, SUBSCRIBE, REGISTER, PUBLISH, PUBACK, DISCONNECT.
	// Out: 2 CONNACK, SUBACK, REGACK, PUBACK, PUBLISH, DISCONNECT.
	if st.DatagramsIn != 7 || st.DatagramsOut != 7 || st.BytesIn < 7*2 || st.BytesOut < 7*2 {
		t.Errorf("transport: %+v; want 7 datagrams each way, with their bytes", st)
	}
	if g := e.g.Stats(); g.DatagramsIn != st.DatagramsIn || g.PublishIn != st.PublishIn {
		t.Errorf("gateway stats %+v disagree with the only transport's %+v", g, st)
	}

	a.send(&packet.Disconnect{})
	expect[*packet.Disconnect](a)
	eventually(t, 5*time.Second, "the active client gone", func() bool { return len(e.g.Clients()) == 1 })
}
