package mqttsn

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// Timer behaviour under testing/synctest: the gateway runs on an in-memory
// datagram network (memNet) in front of a broker without listeners, so that
// every goroutine blocks on channels and timers and the fake clock jumps
// from one deadline to the next. Times are exact.

// bubbleEnv is a broker and a gateway inside a synctest bubble.
type bubbleEnv struct {
	b   *localbroker.Broker
	g   *Gateway
	net *memNet
}

func newBubbleEnv(t *testing.T, opts Options) *bubbleEnv {
	t.Helper()
	b, err := localbroker.New(localbroker.Options{SysInterval: -1, Logger: testLogger()}, localbroker.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "broker", b.Run, b.Ready())
	mn := newMemNet()
	opts.Transports = []Transport{{Name: "mem", Conn: mn.listen("gw")}}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	g, err := New(opts, Deps{Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "gateway", g.Run, g.Ready()) // its Cleanup runs before the broker's
	return &bubbleEnv{b: b, g: g, net: mn}
}

func (e *bubbleEnv) client(t *testing.T, name string) *snClient {
	return &snClient{t: t, conn: e.net.listen(name), gw: memAddr("gw"), wait: time.Hour}
}

func (e *bubbleEnv) watch(t *testing.T, filter string) *watcher {
	w := watch(t, e.b, filter)
	w.wait = time.Hour
	return w
}

// publisher is an in-process broker client that publishes.
func (e *bubbleEnv) publish(t *testing.T, topic, payload string, qos byte) {
	t.Helper()
	c, _, err := e.b.Attach(localbroker.ClientOptions{ClientID: "publisher", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(false)
	if _, err := c.Publish(context.Background(), &localbroker.Message{Topic: topic, Payload: []byte(payload), QoS: qos}); err != nil {
		t.Fatal(err)
	}
}

// An unacknowledged PUBLISH is sent again with DUP every Tretry, Nretry
// times; then the client is lost and its will published. A REGISTER is
// retried the same way.
func TestRetransmissionThenLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, Options{Tretry: 10 * time.Second, Nretry: 3})
		w := e.watch(t, "rt/will")
		c := e.client(t, "dev")
		c.connectWithWill("rt", true, 600, "rt/will", packet.QoS0, false, "lost")
		for q := packet.QoS1; q <= packet.QoS2; q++ {
			c.subscribe(packet.TopicIDNormal, fmt.Sprintf("rt/q%d", q), 0, q)
		}
		// A QoS 1 message acknowledged after one retransmission.
		e.publish(t, "rt/q1", "one", 1)
		start := time.Now()
		p := expect[*packet.Publish](c)
		if p.DUP {
			t.Fatalf("first PUBLISH with DUP")
		}
		again := expect[*packet.Publish](c)
		if el := time.Since(start); el != 10*time.Second || !again.DUP || again.MsgID != p.MsgID || string(again.Data) != "one" {
			t.Fatalf("after %v: %+v, want the same PUBLISH with DUP after Tretry", el, again)
		}
		c.ack(again)

		// A QoS 2 message never acknowledged: 3 retransmissions, then lost.
		e.publish(t, "rt/q2", "two", 2)
		start = time.Now()
		p = expect[*packet.Publish](c)
		for i := 1; i <= 3; i++ {
			r := expect[*packet.Publish](c)
			if el := time.Since(start); el != time.Duration(i)*10*time.Second || !r.DUP || r.MsgID != p.MsgID {
				t.Fatalf("retransmission %d after %v: %+v", i, el, r)
			}
		}
		w.expect("rt/will", "lost")
		if el := time.Since(start); el != 40*time.Second {
			t.Fatalf("lost after %v, want 40s (Tretry × (Nretry+1))", el)
		}
		synctest.Wait() // the will goes out before the client is removed
		st := e.g.Stats()
		if st.Lost != 1 || st.Retransmissions != 4 || st.Clients != 0 {
			t.Fatalf("Stats %+v", st)
		}
	})
}

// A REGISTER from the gateway is retried too, and a PUBREL; a PUBREC that
// comes again gets the PUBREL again.
func TestRetransmitRegisterAndPubrel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, Options{Tretry: 5 * time.Second})
		c := e.client(t, "dev")
		c.connect("rr", true, 600)
		c.subscribe(packet.TopicIDNormal, "rr/#", 0, packet.QoS2)
		e.publish(t, "rr/x", "v", 2)
		start := time.Now()
		r := expect[*packet.Register](c)
		r2 := expect[*packet.Register](c)
		if time.Since(start) != 5*time.Second || r2.MsgID != r.MsgID || r2.TopicID != r.TopicID {
			t.Fatalf("REGISTER again %+v after %v", r2, time.Since(start))
		}
		c.send(&packet.Regack{TopicID: r.TopicID, MsgID: r.MsgID})
		p := expect[*packet.Publish](c)
		c.send(&packet.Pubrec{MsgID: p.MsgID})
		expect[*packet.Pubrel](c)
		c.send(&packet.Pubrec{MsgID: p.MsgID}) // our PUBREL "was lost"
		expect[*packet.Pubrel](c)
		start = time.Now()
		rel := expect[*packet.Pubrel](c) // not answered: again after Tretry
		if time.Since(start) != 5*time.Second || rel.MsgID != p.MsgID {
			t.Fatalf("PUBREL %+v after %v", rel, time.Since(start))
		}
		c.send(&packet.Pubcomp{MsgID: p.MsgID})
		c.expectNothing(time.Minute)
	})
}

// Keep-alive: lost 1.5 × Duration after the last message, not before; any
// message restarts the period.
func TestKeepAliveTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, Options{})
		w := e.watch(t, "ka/will")
		c := e.client(t, "dev")
		c.connectWithWill("ka", true, 60, "ka/will", packet.QoS1, false, "timeout")
		time.Sleep(80 * time.Second) // the device's own pace
		c.send(&packet.Pingreq{})
		expect[*packet.Pingresp](c)
		last := time.Now()
		w.expect("ka/will", "timeout")
		if el := time.Since(last); el != 90*time.Second {
			t.Fatalf("lost %v after the last message, want 90s", el)
		}
	})
}

// Sleep: lost 1.5 × the sleep duration after it fell asleep, or after its
// last PINGRESP; a wake-up restarts the period.
func TestSleepTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, Options{})
		w := e.watch(t, "st/will")
		c := e.client(t, "dev")
		c.connectWithWill("st", true, 10, "st/will", packet.QoS1, false, "overslept")
		c.send(&packet.Disconnect{HasDuration: true, Duration: 100})
		expect[*packet.Disconnect](c)
		time.Sleep(140 * time.Second) // asleep past the keep-alive: not lost
		c.send(&packet.Pingreq{ClientID: []byte("st")})
		expect[*packet.Pingresp](c)
		last := time.Now()
		w.expect("st/will", "overslept")
		if el := time.Since(last); el != 150*time.Second {
			t.Fatalf("lost %v after the last PINGRESP, want 150s", el)
		}
	})
}

// The will handshake is retried; a client that never answers is not
// connected (no CONNACK), without a will to publish.
func TestWillHandshakeRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, Options{Tretry: 10 * time.Second, Nretry: 2})
		c := e.client(t, "dev")
		c.send(&packet.Connect{Will: true, CleanSession: true, KeepAlive: 60, ClientID: []byte("hs")})
		start := time.Now()
		for i := 0; i <= 2; i++ {
			expect[*packet.WillTopicReq](c)
			if el := time.Since(start); el != time.Duration(i)*10*time.Second {
				t.Fatalf("WILLTOPICREQ %d after %v", i, el)
			}
		}
		c.send(&packet.WillTopic{WillTopic: []byte("hs/will")}) // answers the last one
		start = time.Now()
		for i := 0; i <= 2; i++ {
			expect[*packet.WillMsgReq](c)
			if el := time.Since(start); el != time.Duration(i)*10*time.Second {
				t.Fatalf("WILLMSGREQ %d after %v", i, el)
			}
		}
		c.expectNothing(time.Minute) // abandoned at 30s: no CONNACK
		if st := e.g.Stats(); st.Clients != 0 {
			t.Fatalf("Stats.Clients = %d after an abandoned handshake", st.Clients)
		}
		c.send(&packet.Pingreq{})
		expect[*packet.Disconnect](c)
	})
}
