package serialbus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakePort is a port in memory, for tests in a synctest bubble, where the
// clock moves only when every goroutine waits.
type fakePort struct {
	rx     chan []byte    // what the device sends to the link
	writes chan fakeWrite // what the link wrote, and when
	closed chan struct{}
	once   sync.Once
}

type fakeWrite struct {
	at time.Time
	b  []byte
}

var errFakeClosed = errors.New("fake port closed")

func newFakePort() *fakePort {
	return &fakePort{rx: make(chan []byte), writes: make(chan fakeWrite, 64), closed: make(chan struct{})}
}

func (f *fakePort) Read(p []byte) (int, error) {
	select {
	case b := <-f.rx:
		return copy(p, b), nil
	case <-f.closed:
		return 0, errFakeClosed
	}
}

func (f *fakePort) Write(p []byte) (int, error) {
	select {
	case f.writes <- fakeWrite{at: time.Now(), b: append([]byte(nil), p...)}:
		return len(p), nil
	case <-f.closed:
		return 0, errFakeClosed
	}
}

func (f *fakePort) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// runFake runs l on fp inside a bubble and returns a function that stops it
// and checks that Run returned nil.
func runFake(t *testing.T, l *Link, fp *fakePort) (stop func()) {
	l.open = func(context.Context) (port, string, error) { return fp, "fake", nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestMinGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFakePort()
		l := newLink(t, Options{Device: "fake", Baud: 9600, MinGap: 100 * time.Millisecond})
		stop := runFake(t, l, fp)
		defer stop()
		pkt := []byte{10, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0}
		for range 3 {
			if _, err := l.WriteTo(pkt, l.Broadcast()); err != nil {
				t.Fatal(err)
			}
		}
		var ws []fakeWrite
		for range 3 {
			ws = append(ws, <-fp.writes)
		}
		// Ten bytes take 10.42ms on a 9600 baud line; then the gap.
		want := l.pace.wireTime(10) + 100*time.Millisecond
		for i := 1; i < 3; i++ {
			if got := ws[i].at.Sub(ws[i-1].at); got != want {
				t.Errorf("frame %d started %v after the one before, want %v", i, got, want)
			}
		}
	})
}

func TestDutyCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFakePort()
		// 0.1% of an hour is 3.6s on air; at 100 bit/s a 10-byte frame
		// takes 0.8s, so four fit in the budget and the fifth waits.
		l := newLink(t, Options{Device: "fake", Baud: 115200, BitRate: 100, DutyCycle: 0.001, QueueLen: 8})
		t0 := time.Now()
		stop := runFake(t, l, fp)
		defer stop()
		long := make([]byte, 50)
		long[0] = 50
		if _, err := l.WriteTo(long, l.Broadcast()); !errors.Is(err, ErrDutyCycle) {
			t.Fatalf("a frame longer than the whole budget: %v", err)
		}
		pkt := []byte{10, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0}
		for range 6 {
			if _, err := l.WriteTo(pkt, l.Broadcast()); err != nil {
				t.Fatal(err)
			}
		}
		var at []time.Duration
		for range 6 {
			at = append(at, (<-fp.writes).at.Sub(t0))
		}
		// Each frame starts when the one before has ended on air. The fifth
		// waits until the minute of the first ones has left the rolling
		// hour: one hour after the end of that minute (t0 is on a minute).
		want := []time.Duration{0, 800 * time.Millisecond, 1600 * time.Millisecond, 2400 * time.Millisecond, time.Hour + time.Minute, time.Hour + time.Minute + 800*time.Millisecond}
		for i := range want {
			if at[i] != want[i] {
				t.Errorf("frame %d at %v, want %v (all: %v)", i, at[i], want[i], at)
			}
		}
		if t0.Truncate(time.Minute) != t0 {
			t.Fatalf("the bubble's clock starts at %v, not on a minute", t0)
		}
	})
}

func TestPacerNeverExceedsRollingHour(t *testing.T) {
	// Frames of random sizes at random times: in every window of an hour
	// the time on air stays within the budget.
	p := pacer{budget: 36 * time.Second, baud: 115200, bitRate: 1000}
	t0 := time.Date(2025, 1, 1, 0, 0, 17, 0, time.UTC)
	now := t0
	type tx struct {
		at time.Time
		d  time.Duration
	}
	var sent []tx
	seed := uint32(1)
	rnd := func(n uint32) uint32 { seed = seed*1664525 + 1013904223; return seed >> 8 % n }
	for range 2000 {
		now = now.Add(time.Duration(rnd(90)) * time.Second)
		n := int(rnd(200)) + 1
		at := p.earliest(now, n)
		if at.Before(now) {
			t.Fatalf("earliest %v before now %v", at, now)
		}
		p.sent(at, n)
		sent = append(sent, tx{at, p.airTime(n)})
		now = at
		if len(p.buckets) > dutyBuckets+1 {
			t.Fatalf("%d buckets", len(p.buckets))
		}
	}
	for i, s := range sent {
		var used time.Duration
		for _, o := range sent[i:] {
			if o.at.Sub(s.at) < time.Hour {
				used += o.d
			}
		}
		if used > p.budget {
			t.Fatalf("%v on air in the hour from %v, budget %v", used, s.at.Sub(t0), p.budget)
		}
	}
}

func TestRawIdleGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFakePort()
		l := newLink(t, Options{Name: "uart", Device: "fake", Baud: 115200, IdleGap: 20 * time.Millisecond})
		stop := runFake(t, l, fp)
		defer stop()
		publish := []byte{0x0b, 0x0c, 0x61, 0x00, 0x01, 0x00, 0x00, 0x32, 0x31, 0x2e, 0x35}
		// A pause shorter than the idle gap inside a packet is fine.
		fp.rx <- publish[:3]
		time.Sleep(5 * time.Millisecond)
		fp.rx <- publish[3:]
		if got, _ := readFrom(t, l); string(got) != string(publish) {
			t.Fatalf("got %x", got)
		}
		// A packet cut short, a longer pause, and the next packet: the
		// decoder starts again at the Length field of the new one.
		fp.rx <- publish[:5]
		time.Sleep(21 * time.Millisecond)
		fp.rx <- []byte{0x02, 0x16}
		if got, _ := readFrom(t, l); string(got) != "\x02\x16" {
			t.Fatalf("after the gap got %x", got)
		}
	})
}

func TestReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Options{Device: "fake", ReconnectMin: 100 * time.Millisecond, ReconnectMax: 400 * time.Millisecond})
		t0 := time.Now()
		var tries []time.Duration
		fp := newFakePort()
		l.open = func(context.Context) (port, string, error) {
			tries = append(tries, time.Since(t0))
			if len(tries) < 5 {
				return nil, "", errors.New("no such device")
			}
			return fp, "fake", nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		synctest.Wait()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if l.State() != StateUp {
			t.Fatal("not up after the fifth try")
		}
		ms := time.Millisecond
		want := []time.Duration{0, 100 * ms, 300 * ms, 700 * ms, 1100 * ms}
		if len(tries) != len(want) {
			t.Fatalf("tries at %v, want %v", tries, want)
		}
		for i := range want {
			if tries[i] != want[i] {
				t.Fatalf("tries at %v, want %v", tries, want)
			}
		}
		// The port fails: down, then the next try after the backoff.
		fp.Close()
		synctest.Wait()
		if l.State() != StateDown {
			t.Fatal("still up after the port failed")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
