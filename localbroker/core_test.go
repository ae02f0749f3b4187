package localbroker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// Core flows for both protocol versions. Conformance tests named after
// the normative statements live in conformance311_test.go and
// conformance5_test.go.

func TestPublishSubscribeQoS(t *testing.T) {
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		for pq := byte(0); pq <= 2; pq++ {
			for sq := byte(0); sq <= 2; sq++ {
				t.Run(fmt.Sprintf("%s/pub%d/sub%d", vname(v), pq, sq), func(t *testing.T) {
					id := fmt.Sprintf("%d-%d-%d", v, pq, sq)
					sub := mustConnect(t, addr, v, "sub"+id)
					sa := sub.subscribe(1, "qos/"+id, sq)
					if sa.ReasonCodes[0] != packet.ReasonCode(sq) {
						t.Fatalf("granted %v, want %d", sa.ReasonCodes, sq)
					}
					pub := mustConnect(t, addr, v, "pub"+id)
					pub.publish(7, "qos/"+id, "hello", pq, false)
					p := sub.expectPublish("qos/"+id, "hello")
					// [MQTT-3.8.4-8] delivered at min(publish QoS, granted QoS).
					if want := min(pq, sq); p.QoS != want {
						t.Fatalf("delivered at QoS %d, want %d", p.QoS, want)
					}
					if p.Retain {
						t.Fatal("retain set on a live delivery")
					}
				})
			}
		}
	}
}

func TestRetainedSetReplaceClear(t *testing.T) {
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			tp := "ret/" + vname(v)
			pub := mustConnect(t, addr, v, "rp"+vname(v))
			pub.publish(1, tp, "one", 1, true)
			pub.publish(2, tp, "two", 1, true) // replaces [MQTT-3.3.1-5]
			s1 := mustConnect(t, addr, v, "rs1"+vname(v))
			s1.subscribe(1, "ret/#", 1)
			p := s1.expectPublish(tp, "two")
			if !p.Retain {
				t.Fatal("retained delivery without retain flag [MQTT-3.3.1-8]")
			}
			s1.expectNothing(100 * time.Millisecond)
			pub.publish(3, tp, "", 1, true) // clears [MQTT-3.3.1-10]
			// The live subscriber receives the empty retained publish.
			s1.expectPublish(tp, "")
			s2 := mustConnect(t, addr, v, "rs2"+vname(v))
			s2.subscribe(1, "ret/#", 1)
			s2.expectNothing(150 * time.Millisecond)
		})
	}
}

func TestWillPublishedWhenClientVanishes(t *testing.T) {
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			obs := mustConnect(t, addr, v, "obs"+vname(v))
			obs.subscribe(1, "will/"+vname(v), 1)
			dead := mustConnect(t, addr, v, "dead"+vname(v), withWill("will/"+vname(v), "gone", 1, false))
			dead.nc.Close() // no DISCONNECT [MQTT-3.1.2-8]
			obs.expectPublish("will/"+vname(v), "gone")

			polite := mustConnect(t, addr, v, "polite"+vname(v), withWill("will/"+vname(v), "nope", 1, false))
			polite.disconnect() // [MQTT-3.1.2-10] normal DISCONNECT discards the will
			obs.expectNothing(200 * time.Millisecond)
		})
	}
}

func TestSessionTakeover(t *testing.T) {
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			obs := mustConnect(t, addr, v, "tobs"+vname(v))
			obs.subscribe(1, "tw/"+vname(v), 0)
			first := mustConnect(t, addr, v, "same"+vname(v), withWill("tw/"+vname(v), "taken", 0, false))
			second := mustConnect(t, addr, v, "same"+vname(v))
			code, saw := first.expectClosed(3 * time.Second) // [MQTT-3.1.4-3]
			if v == packet.V5 && (!saw || code != packet.SessionTakenOver) {
				t.Fatalf("5.0 takeover: DISCONNECT %v %s, want 0x8E", saw, code)
			}
			obs.expectPublish("tw/"+vname(v), "taken")
			second.send(&packet.Pingreq{})
			expect[*packet.Pingresp](second)
		})
	}
}

func TestPersistentSessionResumeRedeliversWithDup(t *testing.T) {
	b, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			id := "persist" + vname(v)
			opts := []connectOpt{withClean(false)}
			if v == packet.V5 {
				opts = append(opts, withExpiry(300))
			}
			s, ca := connect(t, addr, v, id, opts...)
			if ca.ReasonCode != 0 || ca.SessionPresent {
				t.Fatalf("first CONNACK %s present=%v", ca.ReasonCode, ca.SessionPresent)
			}
			s.subscribe(1, "p/"+vname(v), 1)
			pub := mustConnect(t, addr, v, "pp"+vname(v))
			pub.publish(1, "p/"+vname(v), "m1", 1, false)
			p := expect[*packet.Publish](s) // not acknowledged
			if p.Dup {
				t.Fatal("first delivery has DUP")
			}
			s.nc.Close()
			waitOffline(t, b, id)
			pub.publish(2, "p/"+vname(v), "m2", 1, false) // queued while offline
			s, ca = connect(t, addr, v, id, opts...)
			if !ca.SessionPresent {
				t.Fatal("session present = 0 on resume [MQTT-3.2.2-2]")
			}
			p1 := expect[*packet.Publish](s)
			if string(p1.Payload) != "m1" || !p1.Dup {
				t.Fatalf("redelivery %q dup=%v, want m1 with DUP [MQTT-4.4.0-1]", p1.Payload, p1.Dup)
			}
			s.ack(p1)
			p2 := expect[*packet.Publish](s)
			if string(p2.Payload) != "m2" || p2.Dup {
				t.Fatalf("queued delivery %q dup=%v, want m2 without DUP", p2.Payload, p2.Dup)
			}
			s.ack(p2)
		})
	}
}

func TestInprocClient(t *testing.T) {
	b, addr := startBroker(t, Options{})
	ctx := context.Background()
	c, present, err := b.Attach(ClientOptions{ClientID: "dev1", SessionExpiry: time.Hour})
	if err != nil || present {
		t.Fatalf("Attach: %v present=%v", err, present)
	}
	codes, err := c.Subscribe(ctx, []packet.Subscription{{Filter: "cmd/#", QoS: 2}}, 5)
	if err != nil || codes[0] != packet.GrantedQoS2 {
		t.Fatalf("Subscribe: %v %v", codes, err)
	}
	net := mustConnect(t, addr, packet.V5, "netsub")
	net.subscribe(1, "up/#", 1)
	if code, err := c.Publish(ctx, &Message{Topic: "up/x", Payload: []byte("v"), QoS: 1}); err != nil || code != packet.Success {
		t.Fatalf("Publish: %s %v", code, err)
	}
	net.expectPublish("up/x", "v")
	net.publish(3, "cmd/a", "go", 2, false)
	d, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Message.Topic != "cmd/a" || d.QoS != 2 || len(d.SubscriptionIDs) != 1 || d.SubscriptionIDs[0] != 5 {
		t.Fatalf("delivery %+v", d)
	}
	// Unacknowledged delivery comes back with Dup after a re-attach.
	c.Close(false)
	c, present, err = b.Attach(ClientOptions{ClientID: "dev1", SessionExpiry: time.Hour})
	if err != nil || !present {
		t.Fatalf("re-Attach: %v present=%v", err, present)
	}
	d, err = c.Next(ctx)
	if err != nil || !d.Dup || d.Message.Topic != "cmd/a" {
		t.Fatalf("redelivery %+v %v", d, err)
	}
	d.Ack()
	c.Close(false)
}

// waitOffline waits until the broker has noticed that id's connection ended.
func waitOffline(t testing.TB, b *Broker, id string) {
	t.Helper()
	eventually(t, 5*time.Second, id+" offline", func() bool {
		b.mu.Lock()
		s := b.sessions[id]
		b.mu.Unlock()
		return s == nil || !s.online.Load()
	})
}

// A subscriber must never see an older retained value after a newer one:
// retained delivery at subscribe time is ordered against concurrent
// retained publishes.
func TestRetainedNotStaleUnderConcurrentPublish(t *testing.T) {
	b, _ := startBroker(t, Options{})
	ctx := context.Background()
	pub, _, err := b.Attach(ClientOptions{ClientID: "rpub"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(false)
	const n = 3000
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			if _, err := pub.Publish(ctx, &Message{Topic: "state/x", Payload: []byte(fmt.Sprint(i)), Retain: true}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var subs []*Client
	for k := 0; k < 40; k++ {
		c, _, err := b.Attach(ClientOptions{ClientID: fmt.Sprintf("rsub%d", k), MaxBuffered: n + 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Subscribe(ctx, []packet.Subscription{{Filter: "state/x"}}, 0); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, c)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for k, c := range subs {
		c.Close(false)
		last := 0
		for {
			d, err := c.Next(ctx)
			if err != nil {
				break // closed and drained
			}
			var v int
			fmt.Sscan(string(d.Message.Payload), &v)
			if v < last {
				t.Fatalf("subscriber %d saw %d after %d", k, v, last)
			}
			last = v
		}
		if last != n {
			t.Fatalf("subscriber %d ended at %d, want %d", k, last, n)
		}
	}
}

// A 5.0 client learns why it was refused or disconnected: the CONNACK and
// the DISCONNECT carry a reason string [MQTT-3.2.2-19] [MQTT-3.14.2-3].
func TestReasonStrings(t *testing.T) {
	_, addr := startBroker(t, Options{Listeners: []ListenerOptions{{Name: "tcp", Address: "127.0.0.1:0"}}})
	_, ca := connect(t, addr, packet.V5, "anon")
	if ca.ReasonCode != packet.NotAuthorized || ca.Properties.ReasonString == "" {
		t.Fatalf("CONNACK %s reason %q, want 0x87 with a reason string", ca.ReasonCode, ca.Properties.ReasonString)
	}
	_, addr = startBroker(t, Options{})
	c := mustConnect(t, addr, packet.V5, "bad")
	c.sendRaw([]byte{0x30, 0x05, 0x00, 0x01, '#', 'x', 'y'}) // wildcard in a topic name
	pk, err := c.read(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := pk.(*packet.Disconnect)
	if !ok || d.ReasonCode != packet.TopicNameInvalid || d.Properties.ReasonString == "" {
		t.Fatalf("got %T %+v, want DISCONNECT 0x90 with a reason string", pk, pk)
	}
}
