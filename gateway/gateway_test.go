package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is the shared event log of the fake components.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// fake is a component whose behaviour the test chooses.
type fake struct {
	name    string
	rec     *recorder
	ready   chan struct{}
	failRun error         // returned at once, before ready
	never   bool          // never becomes ready
	exit    chan struct{} // closing it makes Run return nil on its own
	stopErr error         // returned after ctx is done
}

func newFake(name string, rec *recorder) *fake {
	return &fake{name: name, rec: rec, ready: make(chan struct{}), exit: make(chan struct{})}
}

func (f *fake) Name() string           { return f.name }
func (f *fake) Ready() <-chan struct{} { return f.ready }

func (f *fake) Run(ctx context.Context) error {
	f.rec.add("start " + f.name)
	if f.failRun != nil {
		return f.failRun
	}
	if !f.never {
		f.rec.add("ready " + f.name)
		close(f.ready)
	}
	select {
	case <-ctx.Done():
	case <-f.exit:
		f.rec.add("exit " + f.name)
		return nil
	}
	f.rec.add("stop " + f.name)
	return f.stopErr
}

// plain is a component without a Ready method.
type plain struct{ *fake }

func (p plain) Ready() {} // hides fake.Ready: not a readier

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runGateway runs g in a goroutine and returns a channel with Run's result.
func runGateway(ctx context.Context, g *Gateway) <-chan error {
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	return done
}

// waitFor waits for ch with a deadline.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func TestRunStartsInOrderAndStopsInReverse(t *testing.T) {
	rec := &recorder{}
	a, b, c := newFake("a", rec), newFake("b", rec), newFake("c", rec)
	g := newGateway(testLogger(t), []component{a, b, c})
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	waitFor(t, g.Ready(), "the gateway to be ready")
	want := []string{"start a", "ready a", "start b", "ready b", "start c", "ready c"}
	if got := rec.get(); !slices.Equal(got, want) {
		t.Errorf("start events %q; want %q", got, want)
	}
	cancel()
	if err := waitFor(t, done, "Run to return"); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if got := rec.get()[len(want):]; !slices.Equal(got, []string{"stop c", "stop b", "stop a"}) {
		t.Errorf("stop events %q; want c, b, a", got)
	}
}

// A component without a Ready method, or whose Ready returns nil, counts as
// ready once it runs.
func TestRunWithoutReadySignals(t *testing.T) {
	rec := &recorder{}
	a, b := newFake("a", rec), newFake("b", rec)
	a.ready = nil
	a.never = true
	g := newGateway(testLogger(t), []component{a, plain{b}})
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	waitFor(t, g.Ready(), "the gateway to be ready")
	cancel()
	if err := waitFor(t, done, "Run to return"); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	// a counts as ready when its goroutine is started, before its Run has
	// recorded anything, so "start a" may come late; but b is stopped, and
	// has returned, before a is stopped.
	got := rec.get()
	sb, sa := slices.Index(got, "stop b"), slices.Index(got, "stop a")
	if sb < 0 || sa < 0 || sb > sa || got[len(got)-1] != "stop a" {
		t.Errorf("events %q; want stop b, then stop a last", got)
	}
}

func TestRunRollsBackWhenAComponentFailsToStart(t *testing.T) {
	rec := &recorder{}
	boom := errors.New("bind: address already in use")
	a, b, c := newFake("a", rec), newFake("b", rec), newFake("c", rec)
	a2 := newFake("a2", rec)
	b.failRun = boom
	g := newGateway(testLogger(t), []component{a, a2, b, c})
	err := waitFor(t, runGateway(context.Background(), g), "Run to return")
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "b stopped before it was ready") {
		t.Errorf("Run = %v; want the failure of b", err)
	}
	want := []string{"start a", "ready a", "start a2", "ready a2", "start b", "stop a2", "stop a"}
	if got := rec.get(); !slices.Equal(got, want) {
		t.Errorf("events %q; want %q", got, want)
	}
	select {
	case <-g.Ready():
		t.Error("Ready is closed although the start failed")
	default:
	}
}

func TestRunFailsWhenAnEarlierComponentExitsDuringStart(t *testing.T) {
	rec := &recorder{}
	a, b := newFake("a", rec), newFake("b", rec)
	b.never = true
	g := newGateway(testLogger(t), []component{a, b})
	done := runGateway(context.Background(), g)
	// Wait until b runs, then make a exit.
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(rec.get(), "start b") {
		if time.Now().After(deadline) {
			t.Fatal("b never started")
		}
		time.Sleep(time.Millisecond)
	}
	close(a.exit)
	err := waitFor(t, done, "Run to return")
	if err == nil || !strings.Contains(err.Error(), "a stopped while b was starting") {
		t.Errorf("Run = %v; want a's exit reported", err)
	}
	if got := rec.get(); !slices.Equal(got, []string{"start a", "ready a", "start b", "exit a", "stop b"}) {
		t.Errorf("events %q", got)
	}
}

func TestRunStopsWhenCancelledDuringStart(t *testing.T) {
	rec := &recorder{}
	a, b, c := newFake("a", rec), newFake("b", rec), newFake("c", rec)
	b.never = true
	g := newGateway(testLogger(t), []component{a, b, c})
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(rec.get(), "start b") {
		if time.Now().After(deadline) {
			t.Fatal("b never started")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := waitFor(t, done, "Run to return"); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if got := rec.get(); !slices.Equal(got, []string{"start a", "ready a", "start b", "stop b", "stop a"}) {
		t.Errorf("events %q", got)
	}
}

func TestRunStopsAllWhenOneExits(t *testing.T) {
	rec := &recorder{}
	a, b, c := newFake("a", rec), newFake("b", rec), newFake("c", rec)
	g := newGateway(testLogger(t), []component{a, b, c})
	done := runGateway(context.Background(), g)
	waitFor(t, g.Ready(), "the gateway to be ready")
	close(b.exit)
	err := waitFor(t, done, "Run to return")
	if err == nil || err.Error() != "b stopped unexpectedly" {
		t.Errorf("Run = %v; want \"b stopped unexpectedly\"", err)
	}
	if got := rec.get()[6:]; !slices.Equal(got, []string{"exit b", "stop c", "stop a"}) {
		t.Errorf("events after ready %q", got)
	}
}

func TestRunReportsStopErrors(t *testing.T) {
	rec := &recorder{}
	flush := errors.New("flush failed")
	a, b := newFake("a", rec), newFake("b", rec)
	a.stopErr = flush
	b.stopErr = context.Canceled // counts as a clean stop
	g := newGateway(testLogger(t), []component{a, b})
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	waitFor(t, g.Ready(), "the gateway to be ready")
	cancel()
	err := waitFor(t, done, "Run to return")
	if !errors.Is(err, flush) || err.Error() != "a: flush failed" {
		t.Errorf("Run = %v; want \"a: flush failed\"", err)
	}
}

func TestRunOnce(t *testing.T) {
	g := newGateway(testLogger(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Run(ctx); err != nil {
		t.Fatalf("first Run = %v", err)
	}
	if err := g.Run(ctx); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestGatewayRunsTheBroker(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	var logs bytes.Buffer
	g, err := New(cfg, NewLogger(cfg.Log, &syncWriter{w: &logs}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	waitFor(t, g.Ready(), "the gateway to be ready")
	cancel()
	if err := waitFor(t, done, "Run to return"); err != nil {
		t.Fatalf("Run = %v", err)
	}
	for _, want := range []string{
		`msg=starting component=gateway name=spool`, `msg="spool open" component=spool`,
		`msg=starting component=gateway name=broker`, `msg="gateway ready"`,
		`msg=stopped component=gateway name=broker`, `msg=stopped component=gateway name=spool`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

func TestNewRefusesABadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Broker.MaxInflight = 0
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "broker.max_inflight") {
		t.Errorf("New = %v; want an error about broker.max_inflight", err)
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(LogConfig{Level: "warn", Format: "json"}, &buf)
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("json output %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["level"] != "WARN" || rec["k"] != 1.0 {
		t.Errorf("record %v", rec)
	}

	buf.Reset()
	log = NewLogger(LogConfig{Level: "debug", Format: "text"}, &buf)
	log.Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Errorf("text output %q", buf.String())
	}
	for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo} {
		if got := logLevel(level); got != want {
			t.Errorf("logLevel(%q) = %v; want %v", level, got, want)
		}
	}
}
