package mqttsn

import (
	"fmt"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// §6.14: a sleeping client gets, when it wakes with PINGREQ, what was
// published while it slept (from mosquitto_pub, at every QoS, REGISTERed
// first), then PINGRESP; with no message buffered, PINGRESP at once.
func TestSleepingClientGetsWhatWasPublished(t *testing.T) {
	e := newEnv(t, Options{})
	c := newSNClient(t, e.gwAddr)
	c.connect("sleeper", true, 60)
	if sa := c.subscribe(packet.TopicIDNormal, "sleep/+", 0, packet.QoS2); sa.ReturnCode != packet.Accepted {
		t.Fatalf("SUBACK %+v", sa)
	}
	c.send(&packet.Disconnect{HasDuration: true, Duration: 30})
	expect[*packet.Disconnect](c)
	eventually(t, 5*time.Second, "asleep", func() bool { return e.g.Stats().Asleep == 1 })

	for q := range 3 {
		mosqPub(t, e.tcp, "mqttv311", "-t", fmt.Sprintf("sleep/q%d", q), "-q", fmt.Sprint(q), "-m", fmt.Sprintf("while asleep %d", q))
	}
	c.expectNothing(300 * time.Millisecond) // buffered, not sent

	c.send(&packet.Pingreq{ClientID: []byte("sleeper")})
	for q := range 3 {
		r := c.acceptRegister()
		if want := fmt.Sprintf("sleep/q%d", q); string(r.TopicName) != want {
			t.Fatalf("REGISTER %q, want %q", r.TopicName, want)
		}
		p := c.expectPublish()
		if p.TopicID != r.TopicID || p.QoS != packet.QoS(q) || string(p.Data) != fmt.Sprintf("while asleep %d", q) {
			t.Fatalf("PUBLISH %+v", p)
		}
	}
	expect[*packet.Pingresp](c) // back to sleep

	// Nothing buffered: PINGRESP at once.
	c.send(&packet.Pingreq{ClientID: []byte("sleeper")})
	expect[*packet.Pingresp](c)

	// Woken from another address (a new socket): the messages follow it.
	mosqPub(t, e.tcp, "mqttv5", "-t", "sleep/q1", "-q", "1", "-m", "to the new address")
	c2 := newSNClient(t, e.gwAddr)
	c2.send(&packet.Pingreq{ClientID: []byte("sleeper")})
	// The same connection: the topic id is known, no REGISTER.
	p := c2.expectPublish()
	if string(p.Data) != "to the new address" || p.TopicIDType != packet.TopicIDNormal {
		t.Fatalf("PUBLISH %+v", p)
	}
	expect[*packet.Pingresp](c2)
	c.expectNothing(100 * time.Millisecond)

	// Back to active with CONNECT (CleanSession=false keeps the session).
	c2.connect("sleeper", false, 60)
	mosqPub(t, e.tcp, "mqttv5", "-t", "sleep/q0", "-q", "0", "-m", "active again")
	c2.acceptRegister() // a new connection: ids are told again (§6.10)
	if p := c2.expectPublish(); string(p.Data) != "active again" {
		t.Fatalf("PUBLISH %+v", p)
	}
	if st := e.g.Stats(); st.Asleep != 0 {
		t.Fatalf("Stats.Asleep = %d after CONNECT", st.Asleep)
	}
}

// A sleeper silent past 1.5 × its sleep duration is lost: its will goes
// out. Real time: a 1 s sleep.
func TestSleeperLost(t *testing.T) {
	e := newEnv(t, Options{})
	w := watch(t, e.b, "sl/#")
	c := newSNClient(t, e.gwAddr)
	c.connectWithWill("sl", true, 60, "sl/will", packet.QoS1, false, "no wake-up")
	c.send(&packet.Disconnect{HasDuration: true, Duration: 1})
	expect[*packet.Disconnect](c)
	start := time.Now()
	w.expect("sl/will", "no wake-up")
	if el := time.Since(start); el < time.Second {
		t.Fatalf("lost after %v, before the sleep duration", el)
	}
	// The will goes out before the client is removed.
	eventually(t, 5*time.Second, "client removed", func() bool {
		st := e.g.Stats()
		return st.Lost == 1 && st.Asleep == 0 && st.Clients == 0
	})
}

// The sleep buffer holds MaxBuffered messages, QoS 0 included; beyond it
// QoS 0 messages are dropped (counted) and QoS 1/2 ones wait in the broker.
func TestSleepBufferBound(t *testing.T) {
	e := newEnv(t, Options{MaxBuffered: 3})
	c := newSNClient(t, e.gwAddr)
	c.connect("buf", true, 60)
	c.subscribe(packet.TopicIDShort, "", packet.ShortTopicID([2]byte{'b', '0'}), packet.QoS0)
	c.subscribe(packet.TopicIDShort, "", packet.ShortTopicID([2]byte{'b', '1'}), packet.QoS1)
	c.send(&packet.Disconnect{HasDuration: true, Duration: 60})
	expect[*packet.Disconnect](c)
	w := watch(t, e.b, "b0")
	for i := range 5 {
		mosqPub(t, e.tcp, "mqttv5", "-t", "b0", "-m", fmt.Sprintf("q0 %d", i))
		w.expect("b0", fmt.Sprintf("q0 %d", i)) // routed before the next one
	}
	for i := range 5 {
		mosqPub(t, e.tcp, "mqttv5", "-t", "b1", "-q", "1", "-m", fmt.Sprintf("q1 %d", i))
	}
	eventually(t, 5*time.Second, "the 2 QoS 0 messages beyond the buffer dropped", func() bool { return e.g.Stats().Dropped >= 2 })
	// Wake: the QoS 1 messages push the QoS 0 ones out of the buffer; all
	// five come, three on this wake-up and the rest on the next ones.
	var got []string
	for len(got) < 5 {
		c.send(&packet.Pingreq{ClientID: []byte("buf")})
		for {
			m, err := c.recv(recvTimeout)
			if err != nil {
				t.Fatalf("after %q: %v", got, err)
			}
			if _, ok := m.(*packet.Pingresp); ok {
				break
			}
			p, ok := m.(*packet.Publish)
			if !ok {
				t.Fatalf("got %T", m)
			}
			c.ack(p)
			if p.QoS == packet.QoS1 {
				got = append(got, string(p.Data))
			}
		}
	}
	for i, g := range got {
		if want := fmt.Sprintf("q1 %d", i); g != want {
			t.Fatalf("QoS 1 messages %q out of order", got)
		}
	}
}
