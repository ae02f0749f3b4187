package uplink

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// The byte bucket holds one second's worth: smaller messages wait for
// their own size, and what waits takes nothing.
func TestByteBucket(t *testing.T) {
	k := newLimiter(0, 0, 1000)
	t0 := time.Unix(1000, 0)
	if w := k.take(t0, 600); w != 0 {
		t.Fatalf("first 600 bytes wait %v; the bucket starts full", w)
	}
	if w := k.take(t0, 600); w != 200*time.Millisecond {
		t.Fatalf("600 more bytes with 400 left wait %v; want 200ms at 1000 B/s", w)
	}
	// The refused take took nothing: 200ms later exactly 600 are there.
	if w := k.take(t0.Add(200*time.Millisecond), 600); w != 0 {
		t.Fatalf("600 bytes after 200ms wait %v", w)
	}
	if w := k.take(t0.Add(200*time.Millisecond), 1); w != time.Millisecond {
		t.Fatalf("an empty bucket gives 1 byte after %v; want 1ms", w)
	}
}

// A message larger than the bucket waits for a full bucket, then goes; the
// debt it leaves holds the next message back until it is paid off.
func TestByteBucketLargeMessagePasses(t *testing.T) {
	k := newLimiter(0, 0, 1000)
	t0 := time.Unix(1000, 0)
	if w := k.take(t0, 300); w != 0 {
		t.Fatal(w)
	}
	// 700 left: a 5000-byte message waits for the bucket to fill (300ms).
	if w := k.take(t0, 5000); w != 300*time.Millisecond {
		t.Fatalf("5000 bytes wait %v; want 300ms, until the bucket is full", w)
	}
	t1 := t0.Add(300 * time.Millisecond)
	if w := k.take(t1, 5000); w != 0 {
		t.Fatalf("5000 bytes with a full bucket wait %v", w)
	}
	// The bucket is at -4000: 10 bytes wait 4.01s.
	if w := k.take(t1, 10); w != 4010*time.Millisecond {
		t.Fatalf("10 bytes after the large message wait %v; want 4.01s", w)
	}
	if w := k.take(t1.Add(4010*time.Millisecond), 10); w != 0 {
		t.Fatalf("10 bytes after the debt was paid wait %v", w)
	}
}

// Whatever the sizes, every message passes after a finite wait, and the
// long-run rate is the limit: over the whole run no more than the bucket
// plus the rate times the time went out (the largest message aside), and
// the limiter never held back more than that allows.
func TestByteBucketRateHoldsForAnySizes(t *testing.T) {
	const rate, n = 1000, 2000
	k := newLimiter(0, 0, rate)
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1000, 0)
	start := now
	var sent, largest int
	for i := range n {
		size := 1 + rng.IntN(400)
		if i%97 == 0 {
			size = 1000 + rng.IntN(9000) // larger than the bucket
		}
		waits := 0
		for {
			w := k.take(now, size)
			if w == 0 {
				break
			}
			// At most the debt of the largest message so far, plus
			// this one.
			if w < 0 || w > time.Duration(max(largest, size)+size)*time.Second/rate+time.Millisecond {
				t.Fatalf("message %d of %d bytes: wait %v, beyond what the bucket can owe", i, size, w)
			}
			if waits++; waits > 2 {
				t.Fatalf("message %d of %d bytes waited %d times", i, size, waits)
			}
			now = now.Add(w)
		}
		sent += size
		largest = max(largest, size)
		elapsed := now.Sub(start).Seconds()
		if float64(sent) > rate+rate*elapsed+float64(largest) {
			t.Fatalf("after %d messages: %d bytes in %.3fs at %d B/s", i+1, sent, elapsed, rate)
		}
	}
	// Taking as fast as allowed, the run is no slower than the limit
	// demands (the ceiling of each wait adds at most 1ms a message).
	elapsed := now.Sub(start).Seconds()
	if want := float64(sent-rate) / rate; elapsed > want+float64(n)/1000 {
		t.Fatalf("%d bytes took %.3fs at %d B/s; want about %.3fs", sent, elapsed, rate, want)
	}
}

// With both limits a message waits for both buckets, and a refused take
// leaves the other bucket as it was.
func TestLimiterTakesFromBothOrNeither(t *testing.T) {
	k := newLimiter(2, 1, 1000)
	t0 := time.Unix(1000, 0)
	if w := k.take(t0, 1000); w != 0 {
		t.Fatal(w)
	}
	// The message bucket refills in 500ms, the byte bucket in 1s: the
	// byte bucket decides.
	if w := k.take(t0, 1000); w != time.Second {
		t.Fatalf("wait %v; want 1s for the bytes", w)
	}
	// The message token earned at 500ms was not taken by that refusal.
	if w := k.take(t0.Add(time.Second), 1000); w != 0 {
		t.Fatalf("wait %v after 1s", w)
	}
	// Small messages: now the message bucket decides (2/s).
	if w := k.take(t0.Add(time.Second), 1); w != 500*time.Millisecond {
		t.Fatalf("wait %v; want 500ms for a message token", w)
	}
}

func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(5000, 0)
	if r := m.rate(t0); r != 0 {
		t.Fatalf("rate %v before any event", r)
	}
	// 20 events a second for 15 seconds.
	now := t0
	for range 15 * 20 {
		now = now.Add(50 * time.Millisecond)
		m.add(now, 1)
	}
	if r := m.rate(now); r < 19 || r > 21 {
		t.Fatalf("rate %v after 15s at 20/s", r)
	}
	// Early on the rate is over the time since the start, not 10s.
	var early rateMeter
	early.rate(t0)
	early.add(t0.Add(1500*time.Millisecond), 30)
	if r := early.rate(t0.Add(2 * time.Second)); r != 15 {
		t.Fatalf("rate %v for 30 events in the first 2s; want 15", r)
	}
	// Half the window idle: half the rate; a whole window idle: 0.
	if r := m.rate(now.Add(5 * time.Second)); r < 8 || r > 12 {
		t.Fatalf("rate %v 5s after the last event", r)
	}
	if r := m.rate(now.Add(11 * time.Second)); r != 0 {
		t.Fatalf("rate %v 11s after the last event", r)
	}
	// A slot is reused for a new second; the current second counts as
	// far as it went.
	later := now.Add(20*time.Second + 500*time.Millisecond)
	m.add(later, 19)
	if r := m.rate(later); r != 2 {
		t.Fatalf("rate %v; want 19 events over 9.5s", r)
	}
}

func TestETA(t *testing.T) {
	for _, tc := range []struct {
		depth int64
		rate  float64
		want  time.Duration
	}{
		{0, 0, 0},
		{0, 5, 0},
		{10, 0, UnknownETA},
		{100, 4, 25 * time.Second},
		{1, 3, time.Second},         // rounded up to the second
		{1 << 62, 1e-9, UnknownETA}, // beyond a Duration
	} {
		if got := eta(tc.depth, tc.rate); got != tc.want {
			t.Errorf("eta(%d, %v) = %v; want %v", tc.depth, tc.rate, got, tc.want)
		}
	}
}

// A byte rate limit paces the publishes to the cloud, and a message larger
// than the bucket still goes, in order.
func TestRateBytesPacesPublishes(t *testing.T) {
	c := newCloud(t, "")
	c.start()
	sub := subscribeCloud(t, tcpDialer(c.addr()), "", "", "site/#")
	opts := baseOptions(c.url(), Rule{Direction: Out, Local: "d/#", Remote: "site/d/#"})
	const rate = 4000
	opts.RateBytes = rate
	e := newEnv(t, opts)
	e.waitOnline()
	const n = 20
	start := time.Now()
	total, largest := 0, 0
	for i := range n {
		size := 300
		if i == n/2 {
			size = 3 * rate // larger than the bucket
		}
		payload := fmt.Sprintf("m%02d", i) + strings.Repeat("x", size-3)
		e.publish("d/x", payload, 1)
		total += len("site/d/x") + size
		largest = max(largest, len("site/d/x")+size)
	}
	got := sub.waitN(t, n, 30*time.Second)
	elapsed := time.Since(start)
	// Whatever went out beyond the full bucket at the start (or beyond the
	// largest message, which passes a full bucket) took its time at the
	// rate; a machine can be slower, never faster.
	if minimum := time.Duration(total-max(rate, largest)) * time.Second / rate; elapsed < minimum {
		t.Fatalf("%d bytes in %v with a limit of %d B/s: faster than %v", total, elapsed, rate, minimum)
	}
	var order []string
	for _, p := range firstOccurrences(got) {
		order = append(order, p[:3])
	}
	if !slices.Equal(order, payloadsN("m", n)) {
		t.Fatalf("order %v", order)
	}
}

// Stats show the backlog while the cloud is away (not connected, depth,
// oldest, an unknown time to drain), and after the drain what was sent,
// acknowledged and expired, the drain rate and an empty spool.
func TestStatsShowBacklogAndDrain(t *testing.T) {
	fc := newFakeCloud(t)
	fc.refuse = 0x88 // server unavailable: the bridge stays offline
	e := newEnv(t, baseOptions(fc.url(),
		Rule{Direction: Out, Local: "old/#", MaxAge: time.Millisecond, Priority: 1},
		Rule{Direction: Out, Local: "d/#"},
	))
	waitFor(t, 5*time.Second, "a refused attempt", func() bool {
		return strings.Contains(e.bridge.Stats().LastError, "server unavailable")
	})
	before := time.Now()
	const n = 12
	for i := range n {
		e.publish("d/x", fmt.Sprintf("m%02d", i), 1)
	}
	e.publish("old/x", "too old", 1)
	after := time.Now()

	st := e.bridge.Stats()
	if st.Connected || st.State == StateOnline || st.Since.After(after) {
		t.Errorf("offline stats say connected %v, state %s since %v", st.Connected, st.State, st.Since)
	}
	if st.Depth != n+1 || st.Bytes <= 0 || len(st.Classes) != 2 {
		t.Fatalf("offline stats %+v: want a backlog of %d in 2 classes", st, n+1)
	}
	if st.ETA != UnknownETA || st.DrainRate != 0 {
		t.Errorf("offline: drain rate %v, ETA %v; want 0 and unknown", st.DrainRate, st.ETA)
	}
	for _, c := range st.Classes {
		if c.Oldest.Before(before.Add(-time.Millisecond)) || c.Oldest.After(after.Add(time.Millisecond)) {
			t.Errorf("class %d: oldest %v, not between %v and %v", c.Priority, c.Oldest, before, after)
		}
	}

	waitFor(t, time.Second, "the rule's MaxAge to pass", func() bool { return time.Since(after) > 5*time.Millisecond })
	fc.mu.Lock()
	fc.refuse = 0
	fc.mu.Unlock()
	waitFor(t, 10*time.Second, "the spool emptied", func() bool { return e.bridge.Stats().Depth == 0 })
	e.waitOnline()
	at := time.Now()
	st = e.bridge.Stats()
	if !st.Connected || st.Since.Before(after) {
		t.Errorf("online stats say connected %v since %v", st.Connected, st.Since)
	}
	if st.Out != n || st.Sent < n || st.Expired != 1 || st.Dropped != 1 {
		t.Errorf("stats %+v: want %d acknowledged, at least as many sent, 1 expired and dropped", st, n)
	}
	if st.DrainRate <= 0 || st.ETA != 0 || st.Classes[0].Oldest != (time.Time{}) {
		t.Errorf("drained: rate %v, ETA %v, oldest %v; want a rate, 0 and none", st.DrainRate, st.ETA, st.Classes[0].Oldest)
	}
	// The rate counts what the cloud acknowledged, over at most 10s.
	if limit := float64(n) / at.Sub(before).Seconds(); st.DrainRate > limit && at.Sub(before) < DrainRateWindow {
		t.Errorf("drain rate %v for %d messages in %v", st.DrainRate, n, at.Sub(before))
	}
}
