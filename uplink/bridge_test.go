package uplink

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

// An out-rule carries QoS 1 and 2 messages to the cloud with the topic
// mapped, the QoS capped, retain per rule and the 5.0 properties, and
// removes them from the spool once acknowledged.
func TestOutRuleRoundTrip(t *testing.T) {
	c := newCloud(t, "")
	c.start()
	sub := subscribeCloud(t, tcpDialer(c.addr()), "", "", "site7/#")
	e := newEnv(t, baseOptions(c.url(),
		Rule{Direction: Out, Local: "sensors/#", Remote: "site7/sensors/#"},
		Rule{Direction: Out, Local: "alarms/+/state", Remote: "site7/alarm/+/state", MaxQoS: QoS(1), Retain: RetainClear},
	))
	e.waitOnline()

	e.publish("sensors/boiler/temp", "q1", 1)
	e.publish("sensors/boiler/temp", "q2", 2)
	e.publish("other/topic", "not exported", 1)
	m := &localbroker.Message{Topic: "alarms/door/state", Payload: []byte("open"), QoS: 2, Retain: true,
		ExpiresAt: time.Now().Add(time.Hour)}
	m.Props.Set(packet.PropContentType)
	m.Props.ContentType = "text/plain"
	m.Props.Set(packet.PropResponseTopic)
	m.Props.ResponseTopic = "site7/replies"
	m.Props.Set(packet.PropCorrelationData)
	m.Props.CorrelationData = []byte{1, 2, 3}
	m.Props.Set(packet.PropPayloadFormat)
	m.Props.PayloadFormat = 1
	m.Props.Set(packet.PropUser)
	m.Props.User = []packet.UserProperty{{Key: "unit", Value: "none"}, {Key: "unit", Value: "twice"}}
	if code, err := e.pub.Publish(context.Background(), m); err != nil || code >= 0x80 {
		t.Fatalf("publish: %v %v", code, err)
	}

	got := sub.waitN(t, 3, 10*time.Second)
	// One publisher's order holds per QoS; mosquitto completes QoS 2 at
	// PUBREL, so messages are looked up by payload.
	byPayload := make(map[string]cloudMsg)
	for _, g := range got {
		byPayload[g.payload] = g
	}
	want := []struct {
		topic, payload string
		qos            byte
	}{{"site7/sensors/boiler/temp", "q1", 1}, {"site7/sensors/boiler/temp", "q2", 2}, {"site7/alarm/door/state", "open", 1}}
	for _, w := range want {
		g, ok := byPayload[w.payload]
		if !ok || g.topic != w.topic || g.qos != w.qos {
			t.Errorf("message %q = %+v; want %s QoS %d", w.payload, g, w.topic, w.qos)
		}
	}
	alarm := byPayload["open"]
	if alarm.retain {
		t.Error("retain was not cleared by the rule")
	}
	p := alarm.props
	if p == nil || p.ContentType != "text/plain" || p.ResponseTopic != "site7/replies" ||
		string(p.CorrelationData) != "\x01\x02\x03" || p.PayloadFormat == nil || *p.PayloadFormat != 1 ||
		p.MessageExpiry == nil || *p.MessageExpiry < 3500 || *p.MessageExpiry > 3600 ||
		len(p.User) != 2 || p.User[0].Key != "unit" || p.User[0].Value != "none" || p.User[1].Value != "twice" {
		t.Errorf("properties not passed through: %+v", p)
	}
	waitFor(t, 5*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	st := e.bridge.Stats()
	if st.Out != 3 || st.Dropped != 0 || st.Quarantined != 0 {
		t.Errorf("stats %+v: want 3 out, nothing dropped or quarantined", st)
	}
}

// The cloud goes away for an outage: 200 QoS 1 messages published locally
// meanwhile are acknowledged (spooled), and when the cloud is back (a new
// mosquitto without persistence, on the same port) every one of them
// arrives, in order.
func TestOutageDeliversEverythingInOrder(t *testing.T) {
	c, g := newGatedCloud(t, "")
	c.start()
	g.open(c)
	e := newEnv(t, gatedOptions(c.url(), Rule{Direction: Out, Local: "data/#", Remote: "site7/data/#"}))
	e.waitOnline()

	c.kill()
	waitFor(t, 10*time.Second, "the bridge offline", func() bool { return e.bridge.Stats().State != StateOnline })
	const n = 200
	var want []string
	for i := range n {
		p := fmt.Sprintf("m%03d", i)
		want = append(want, p)
		e.publish("data/x", p, 1)
	}
	if d := e.depth(0); d != n {
		t.Fatalf("spool depth %d after %d messages offline", d, n)
	}

	// The cloud comes back first without the gateway's account, so that
	// the watcher subscribes before anything is drained.
	g.shut()
	c.start()
	sub := watch(t, c, "site7/#")
	waitFor(t, 10*time.Second, "a refused connection attempt", func() bool {
		st := e.bridge.Stats()
		return strings.Contains(st.LastError, "refused") && st.State != StateOnline
	})
	g.open(c)

	got := sub.waitN(t, n, 30*time.Second)
	if order := firstOccurrences(got); !slices.Equal(order, want) {
		t.Fatalf("first occurrences at the cloud differ from the publication order:\n got %v\nwant %v", order, want)
	}
	waitFor(t, 5*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	if st := e.bridge.Stats(); st.Out < n {
		t.Errorf("Out = %d, want >= %d", st.Out, n)
	}
}

// The cloud is killed in the middle of a drain: the spool still holds
// every message the cloud had not acknowledged (what left the spool is
// exactly what the cloud acknowledged), and a new cloud gets all of those,
// in order.
func TestCloudKilledMidDrain(t *testing.T) {
	c, g := newGatedCloud(t, "")
	opts := gatedOptions(c.url(), Rule{Direction: Out, Local: "data/#", Remote: "site7/data/#"})
	opts.RateLimit = 50 // 100 messages take 2s at least: the kill comes well before
	e := newEnv(t, opts)
	const n = 100
	want := payloadsN("m", n)
	for _, p := range want {
		e.publish("data/x", p, 1)
	}
	c.start()
	first := watch(t, c, "site7/#")
	g.open(c)
	first.waitN(t, 20, 15*time.Second)
	c.kill()
	waitFor(t, 10*time.Second, "the bridge offline", func() bool { return e.bridge.Stats().State != StateOnline })
	depth, out := e.depth(0), e.bridge.Stats().Out
	if depth == 0 || depth+int64(out) != n {
		t.Fatalf("after the kill: depth %d, %d acknowledged by the cloud; want a non-empty spool holding all %d the cloud did not acknowledge", depth, out, n)
	}

	g.shut()
	c.start()
	second := watch(t, c, "site7/#")
	g.open(c)
	got := second.waitN(t, int(depth), 15*time.Second)
	if order := firstOccurrences(got); !slices.Equal(order, want[n-depth:]) {
		t.Fatalf("the new cloud got %v; want the unacknowledged tail %v", order, want[n-depth:])
	}
	// What the first cloud acknowledged is its own to deliver: killed
	// without persistence, it may lose some of that. What it did deliver
	// came in order.
	if order := firstOccurrences(first.got()); !slices.IsSorted(order) {
		t.Fatalf("the first cloud got %v, out of order", order)
	}
	waitFor(t, 5*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
}

// BenchmarkDrainToMosquitto measures the pipeline local QoS 1 publish ->
// spool -> cloud PUBACK -> spool ack, with the default window of 16: each
// iteration publishes a batch and waits until the spool is empty again.
func BenchmarkDrainToMosquitto(b *testing.B) {
	c := newCloud(b, "")
	c.start()
	e := newEnv(b, baseOptions(c.url(), Rule{Direction: Out, Local: "d/#", Remote: "site/d/#"}))
	e.waitOnline()
	const batch = 1000
	payload := string(make([]byte, 64))
	b.SetBytes(batch * int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		for range batch {
			e.publish("d/x", payload, 1)
		}
		waitFor(b, time.Minute, "the spool emptied", func() bool { return e.depth(0) == 0 })
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
}
