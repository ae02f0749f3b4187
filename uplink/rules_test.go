package uplink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/spool"
)

// Higher priority classes drain first: what waited in the spool for the
// high class reaches the cloud before anything of the low class.
func TestPriorityClassesDrainHighestFirst(t *testing.T) {
	c, g := newGatedCloud(t, "")
	opts := gatedOptions(c.url(),
		Rule{Direction: Out, Local: "bulk/#", Remote: "site/bulk/#", Priority: 1},
		Rule{Direction: Out, Local: "alarm/#", Remote: "site/alarm/#", Priority: 9},
	)
	e := newEnv(t, opts) // the cloud is not running yet: all of it is spooled
	var bulk, alarms []string
	for i := range 30 {
		p := fmt.Sprintf("b%02d", i)
		bulk = append(bulk, p)
		e.publish("bulk/x", p, 1)
	}
	for i := range 30 {
		p := fmt.Sprintf("a%02d", i)
		alarms = append(alarms, p)
		e.publish("alarm/x", p, 1)
	}
	if e.depth(1) != 30 || e.depth(9) != 30 {
		t.Fatalf("depths %d and %d, want 30 and 30", e.depth(1), e.depth(9))
	}
	st := e.bridge.Stats()
	if st.Classes[0].Priority != 9 || st.Classes[0].Queue != "uplink.cloud.p9" {
		t.Errorf("classes %+v: want the highest first", st.Classes)
	}
	c.start()
	sub := watch(t, c, "site/#")
	g.open(c)
	sub.waitN(t, 60, 15*time.Second)
	waitFor(t, 5*time.Second, "the spool emptied", func() bool { return e.depth(1) == 0 && e.depth(9) == 0 })
	if got := firstOccurrences(sub.got()); !slices.Equal(got, append(alarms, bulk...)) {
		t.Fatalf("cloud order %v; want every alarm, then the bulk, each in order", got)
	}
}

// A rate limit paces the publishes to the cloud: they cannot arrive faster
// than the bucket allows.
func TestRateLimitPacesPublishes(t *testing.T) {
	c := newCloud(t, "")
	c.start()
	sub := subscribeCloud(t, tcpDialer(c.addr()), "", "", "site/#")
	opts := baseOptions(c.url(), Rule{Direction: Out, Local: "d/#", Remote: "site/d/#"})
	opts.RateLimit, opts.RateBurst = 40, 1
	e := newEnv(t, opts)
	e.waitOnline()
	const n = 30
	start := time.Now()
	for i := range n {
		e.publish("d/x", fmt.Sprintf("m%02d", i), 1)
	}
	got := sub.waitN(t, n, 15*time.Second)
	elapsed := time.Since(start)
	// n messages with one token at the start and 40 per second take at
	// least (n-1)/40 s; a machine can be slower, never faster.
	if minimum := time.Duration(n-1) * time.Second / 40; elapsed < minimum {
		t.Fatalf("%d messages in %v with a limit of 40/s: faster than %v", len(got), elapsed, minimum)
	}
	if order := firstOccurrences(got); !slices.Equal(order, payloadsN("m", n)) {
		t.Fatalf("order %v", order)
	}
}

// An in-rule brings cloud messages to the local broker under the mapped
// topic, with QoS capped and retain per rule.
func TestInRuleDeliversLocally(t *testing.T) {
	c := newCloud(t, "")
	c.start()
	e := newEnv(t, baseOptions(c.url(),
		Rule{Direction: In, Local: "cmd/#", Remote: "site7/cmd/#", MaxQoS: QoS(1)},
		Rule{Direction: Out, Local: "cmd/#", Remote: "site7/cmd/#"}, // a loop if not prevented
	))
	e.waitOnline()
	local, _, err := e.broker.Attach(localbroker.ClientOptions{ClientID: "lan-device"})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close(false)
	if _, err := local.Subscribe(context.Background(), []packet.Subscription{{Filter: "cmd/#", QoS: 2}}, 0); err != nil {
		t.Fatal(err)
	}
	pub := lookMosquitto(t, "mosquitto_pub")
	out, err := execCommand(pub, "-h", "127.0.0.1", "-p", fmt.Sprint(c.port), "-V", "mqttv5", "-q", "2",
		"-t", "site7/cmd/valve/3", "-m", "close", "-D", "publish", "content-type", "text/plain")
	if err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := local.Next(ctx)
	if err != nil {
		t.Fatalf("no local delivery: %v", err)
	}
	d.Ack()
	m := d.Message
	if m.Topic != "cmd/valve/3" || string(m.Payload) != "close" || m.QoS != 1 || m.Props.ContentType != "text/plain" {
		t.Fatalf("local message %s %q QoS %d content type %q; want cmd/valve/3 \"close\" QoS 1 text/plain", m.Topic, m.Payload, m.QoS, m.Props.ContentType)
	}
	waitFor(t, 5*time.Second, "the in counter", func() bool { return e.bridge.Stats().In == 1 })
	// The local publication matches the out-rule too, but it is the
	// bridge's own: it must not go back to the cloud.
	if d := e.depth(0); d != 0 {
		t.Fatalf("the bridge spooled its own in-rule publication (depth %d)", d)
	}
	if st := e.bridge.Stats(); st.Out != 0 {
		t.Fatalf("the bridge echoed a cloud message back: %+v", st)
	}
}

// QoS 0 is sent while online; while offline it is dropped (counted) unless
// the rule says QueueQoS0, in which case it waits in the spool.
func TestQoS0OfflineDroppedOrQueued(t *testing.T) {
	c, g := newGatedCloud(t, "")
	e := newEnv(t, gatedOptions(c.url(),
		Rule{Direction: Out, Local: "fast/#", Remote: "site/fast/#"},
		Rule{Direction: Out, Local: "keep/#", Remote: "site/keep/#", QueueQoS0: true, Priority: 1},
	))
	// Offline: the cloud has not started.
	e.publish("fast/x", "lost", 0)
	e.publish("keep/x", "kept", 0)
	waitFor(t, 5*time.Second, "the QoS 0 messages handled", func() bool {
		return e.bridge.Stats().Dropped == 1 && e.depth(1) == 1
	})
	if e.depth(0) != 0 {
		t.Fatalf("a QoS 0 message without QueueQoS0 was spooled")
	}
	c.start()
	sub := watch(t, c, "site/#")
	g.open(c)
	e.waitOnline()
	sub.waitN(t, 1, 10*time.Second)
	e.publish("fast/x", "live", 0)
	got := sub.waitN(t, 2, 10*time.Second)
	want := []cloudMsg{{topic: "site/keep/x", payload: "kept"}, {topic: "site/fast/x", payload: "live"}}
	if len(got) != 2 {
		t.Fatalf("cloud got %+v, want %+v", got, want)
	}
	for i, m := range got {
		if m.topic != want[i].topic || m.payload != want[i].payload || m.qos != 0 {
			t.Fatalf("cloud got %+v, want %+v at QoS 0", got, want)
		}
	}
	waitFor(t, 5*time.Second, "the spool emptied", func() bool { return e.depth(1) == 0 })
	if st := e.bridge.Stats(); st.Out != 2 || st.Dropped != 1 {
		t.Fatalf("stats %+v: want 2 out (kept, live), 1 dropped", st)
	}
}

// A cloud that refuses one topic for good (mosquitto's ACL: PUBACK 0x87
// under MQTT 5) gets that message moved to the quarantine; the others flow.
func TestRefusedMessageIsQuarantined(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(acl, []byte("topic readwrite site/ok/#\ntopic read site/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCloud(t, "acl_file "+acl)
	c.start()
	sub := subscribeCloud(t, tcpDialer(c.addr()), "", "", "site/#")
	e := newEnv(t, baseOptions(c.url(), Rule{Direction: Out, Local: "#", Remote: "site/#"}))
	e.waitOnline()
	e.publish("ok/1", "first", 1)
	e.publish("secret/x", "refused", 1)
	e.publish("ok/2", "second", 2)
	got := sub.waitN(t, 2, 10*time.Second)
	waitFor(t, 10*time.Second, "the quarantine", func() bool { return e.bridge.Stats().Quarantined == 1 })
	waitFor(t, 5*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	for _, m := range got {
		if m.payload == "refused" {
			t.Fatalf("the refused message reached a subscriber")
		}
	}
	st := e.bridge.Stats()
	if st.QuarantineDepth != 1 || st.Out != 2 {
		t.Fatalf("stats %+v: want 1 in quarantine, 2 out", st)
	}
	q, err := e.store.Queue(QuarantineName("cloud"), spoolLimits())
	if err != nil {
		t.Fatal(err)
	}
	items, err := q.Read(0, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("quarantine read: %v, %d items", err, len(items))
	}
	rec, err := DecodeRecord(items[0].Data)
	if err != nil || rec.Topic != "site/secret/x" || string(rec.Payload) != "refused" || rec.Reason != 0x87 {
		t.Fatalf("quarantined record %+v, %v; want site/secret/x with reason 0x87", rec, err)
	}
}

// When the spool refuses a message (a full queue with RejectNew), the
// local publisher gets QuotaExceeded instead of a success ack, and the
// refusal is counted.
func TestFullSpoolRefusesPublisher(t *testing.T) {
	c := newCloud(t, "") // never started: everything stays in the spool
	e := newEnvWith(t, baseOptions(c.url(), Rule{Direction: Out, Local: "d/#"}), spool.Limits{MaxMessages: 2}, nil)
	e.publish("d/x", "1", 1)
	e.publish("d/x", "2", 2)
	code, err := e.pub.Publish(context.Background(), &localbroker.Message{Topic: "d/x", Payload: []byte("3"), QoS: 1})
	if err == nil || code != packet.QuotaExceeded {
		t.Fatalf("publish to a full spool = %v, %v; want QuotaExceeded", code, err)
	}
	if st := e.bridge.Stats(); st.Refused != 1 || st.Classes[0].Depth != 2 {
		t.Fatalf("stats %+v: want 1 refused, depth 2", st)
	}
	e.publish("other", "not exported", 1) // unaffected
}

// A cloud message that the local broker refuses for a moment is not
// acknowledged to the cloud: the bridge reconnects, the cloud (which kept
// the session) sends it again, and it is delivered once it is taken.
func TestInRuleRedeliveredAfterLocalRefusal(t *testing.T) {
	c := newCloud(t, "")
	c.start()
	var mu sync.Mutex
	refusals := 0
	hook := func(ci *localbroker.ClientInfo, m *localbroker.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.Topic == "cmd/x" && refusals < 1 {
			refusals++
			return packet.Errorf(packet.QuotaExceeded, "test: not now")
		}
		return nil
	}
	e := newEnvWith(t, baseOptions(c.url(), Rule{Direction: In, Local: "cmd/#", Remote: "site7/cmd/#"}), spoolLimits(), hook)
	e.waitOnline()
	local, _, err := e.broker.Attach(localbroker.ClientOptions{ClientID: "lan-device"})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close(false)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := local.Subscribe(ctx, []packet.Subscription{{Filter: "cmd/#", QoS: 1}}, 0); err != nil {
		t.Fatal(err)
	}
	pub := lookMosquitto(t, "mosquitto_pub")
	if out, err := execCommand(pub, "-h", "127.0.0.1", "-p", fmt.Sprint(c.port), "-V", "mqttv5", "-q", "1", "-t", "site7/cmd/x", "-m", "once"); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	d, err := local.Next(ctx)
	if err != nil {
		t.Fatalf("no local delivery after the refusal: %v", err)
	}
	d.Ack()
	if d.Message.Topic != "cmd/x" || string(d.Message.Payload) != "once" {
		t.Fatalf("local got %s %q", d.Message.Topic, d.Message.Payload)
	}
	mu.Lock()
	n := refusals
	mu.Unlock()
	if n != 1 {
		t.Fatalf("%d refusals, want 1", n)
	}
	if st := e.bridge.Stats(); st.In != 1 || st.Dropped != 0 {
		t.Fatalf("stats %+v: want 1 in, none dropped", st)
	}
}
