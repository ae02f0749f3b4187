package uplink

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// captureLogger logs at Info level to w (and to stderr when
// OUTPOST_TEST_LOG is set).
func captureLogger(w io.Writer) *slog.Logger {
	if os.Getenv("OUTPOST_TEST_LOG") != "" {
		w = io.MultiWriter(w, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// distinctPayloads returns how many different payloads arrived.
func distinctPayloads(msgs []cloudMsg) int { return len(firstOccurrences(msgs)) }

// faultCase is a fault injected into the connection to the cloud while a
// backlog drains.
type faultCase struct {
	name string
	qos  byte
	// inject injects the fault and returns once it has happened.
	inject func(t *testing.T, p *faultProxy, sub *cloudSub)
	// reconnects: the fault ends the connection, and the bridge makes a
	// new one (resuming its session at the cloud).
	reconnects bool
}

// A backlog of a few thousand messages drains through a proxy that cuts,
// black-holes, throttles or resets the connection to mosquitto in the
// middle. Every message arrives, and the first arrivals are in the order
// of publication; QoS 1 may duplicate what was in flight. At QoS 2 nothing
// arrives twice: the bridge resumes its session at the cloud and sends the
// unfinished flights again with their packet identifiers, which mosquitto
// recognises.
func TestDrainThroughFaults(t *testing.T) {
	cut := func(t *testing.T, p *faultProxy, _ *cloudSub) { p.cut() }
	blackHole := func(t *testing.T, p *faultProxy, _ *cloudSub) { p.blackHole() }
	reset := func(t *testing.T, p *faultProxy, _ *cloudSub) {
		select {
		case <-p.resetMidPacket():
		case <-time.After(10 * time.Second):
			t.Fatal("no PUBLISH to reset within 10s")
		}
	}
	slow := func(t *testing.T, p *faultProxy, sub *cloudSub) {
		// 4 KiB/s each way, a few hundred messages a second: well below the
		// drain's pace, and not so slow that the keep alive gives up.
		from := distinctPayloads(sub.got())
		p.slow(4 << 10)
		waitFor(t, 15*time.Second, "messages through the throttled link", func() bool {
			return distinctPayloads(sub.got()) >= from+100
		})
		p.slow(0)
	}
	for _, tc := range []faultCase{
		{name: "cut", qos: 1, inject: cut, reconnects: true},
		{name: "black-hole", qos: 1, inject: blackHole, reconnects: true},
		{name: "slow", qos: 1, inject: slow},
		{name: "reset-mid-packet", qos: 1, inject: reset, reconnects: true},
		{name: "reset-mid-packet-qos2", qos: 2, inject: reset, reconnects: true},
		{name: "black-hole-qos2", qos: 2, inject: blackHole, reconnects: true},
	} {
		t.Run(tc.name, func(t *testing.T) { drainThroughFault(t, tc) })
	}
}

func drainThroughFault(t *testing.T, tc faultCase) {
	const n = 3000
	c := newCloud(t, "max_queued_messages 0")
	c.start()
	p := newFaultProxy(t, c.addr())
	p.refuse(true) // the cloud is unreachable while the backlog builds
	logs := &lockedBuffer{}
	opts := baseOptions(p.url(), Rule{Direction: Out, Local: "data/#", Remote: "site7/data/#"})
	opts.KeepAlive = time.Second // a black hole is noticed within about 2s
	opts.Logger = captureLogger(logs)
	e := newEnv(t, opts)

	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("m%05d", i)
		e.publish("data/x", want[i], tc.qos)
	}
	sub := subscribeCloud(t, tcpDialer(c.addr()), "", "", "site7/#")
	p.refuse(false)

	waitFor(t, 30*time.Second, "a quarter of the backlog at the cloud", func() bool {
		return distinctPayloads(sub.got()) >= n/4
	})
	before := p.connections()
	tc.inject(t, p, sub)
	atFault := distinctPayloads(sub.got())
	if atFault >= n {
		t.Fatalf("the drain was over (%d of %d) when the fault came", atFault, n)
	}
	if tc.reconnects {
		waitFor(t, 15*time.Second, "the bridge to connect again", func() bool { return p.connections() > before })
	}

	waitFor(t, 60*time.Second, fmt.Sprintf("all %d messages at the cloud", n), func() bool {
		return distinctPayloads(sub.got()) == n
	})
	// Once the spool is empty nothing is in flight: every duplicate that
	// could come has come.
	waitFor(t, 15*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	got := sub.got()
	if order := firstOccurrences(got); !slices.Equal(order, want) {
		t.Fatalf("first arrivals at the cloud are not the publication order (%d of %d)", len(order), n)
	}
	for _, m := range got {
		if m.qos != tc.qos || m.topic != "site7/data/x" {
			t.Fatalf("the cloud got %q at QoS %d; want site7/data/x at QoS %d", m.topic, m.qos, tc.qos)
		}
	}
	dups := len(got) - n
	if tc.qos == 2 && dups != 0 {
		t.Errorf("%d duplicates at QoS 2", dups)
	}
	if dups > 2*DefaultWindow {
		t.Errorf("%d duplicates; at most %d can have been in flight", dups, 2*DefaultWindow)
	}
	conns := strings.Count(logs.String(), `msg="connected to the cloud"`)
	if tc.reconnects {
		if conns < 2 {
			t.Fatalf("the bridge connected %d times; want a second connection after the fault", conns)
		}
		resumed := false
		for l := range strings.Lines(logs.String()) {
			resumed = resumed || strings.Contains(l, `msg="connected to the cloud"`) && strings.Contains(l, "session_present=true")
		}
		if tc.qos == 2 && !resumed {
			t.Fatalf("the cloud session was not resumed after the fault:\n%s", logs.String())
		}
	}
	t.Logf("%d of %d at the cloud when the fault came; %d connections; %d duplicates", atFault, n, conns, dups)
}
