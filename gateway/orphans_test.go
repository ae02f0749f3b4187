package gateway

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/spool"
)

// fillSpool appends n messages to each queue in the spool of cfg.
func fillSpool(t *testing.T, cfg *Config, n int, queues ...string) {
	t.Helper()
	opts := cfg.SpoolOptions()
	store, err := spool.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- store.Run(ctx) }()
	<-store.Ready()
	for _, name := range queues {
		q, err := store.Queue(name, spool.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := q.Append(ctx, []byte("m")); err != nil {
				t.Fatal(err)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// orphanGateway runs a gateway on cfg until it is ready and returns its
// status and logs, then stops it.
func orphanGateway(t *testing.T, cfg *Config) (Status, string) {
	t.Helper()
	var logs bytes.Buffer
	g, err := New(cfg, NewLogger(cfg.Log, &syncWriter{w: &logs}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	waitFor(t, g.Ready(), "the gateway to be ready")
	st := g.Status()
	cancel()
	if err := waitFor(t, done, "Run to return"); err != nil {
		t.Fatalf("Run = %v", err)
	}
	return st, logs.String()
}

// Queues of an uplink that is no longer configured are reported at start,
// marked in the status and kept; once their newest message is older than
// orphan_keep they are dropped at start. The queues of a configured
// uplink stay whatever their age, also one of a priority class that no
// out-rule has any more: the uplink drains it (a leftover class).
func TestOrphanQueuesReportedKeptThenDropped(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	c, err := Load(writeConfig(t, `
[[uplink]]
name = "site"
url = "mqtt://127.0.0.1:1"
[[uplink.rule]]
direction = "out"
local = "a/#"
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Uplinks = c.Uplinks
	fillSpool(t, cfg, 3, "uplink.gone.p0", "uplink.site.p5", "uplink.site.p0", "uplink.gone.quarantine")

	st, logs := orphanGateway(t, cfg)
	orphans := map[string]bool{}
	for _, q := range st.Spool.Queues {
		if q.Orphan {
			orphans[q.Name] = true
			if q.Depth != 3 {
				t.Errorf("orphan %s has %d messages; want 3 kept", q.Name, q.Depth)
			}
		}
	}
	want := []string{"uplink.gone.p0", "uplink.gone.quarantine"}
	for _, name := range want {
		if !orphans[name] {
			t.Errorf("%s not marked as an orphan: %v", name, orphans)
		}
		if !strings.Contains(logs, "queue="+name) {
			t.Errorf("no log line about %s:\n%s", name, logs)
		}
	}
	if len(orphans) != len(want) {
		t.Errorf("orphans %v; want %v", orphans, want)
	}
	if strings.Contains(logs, "dropped the spool queue") {
		t.Fatalf("dropped a queue within orphan_keep:\n%s", logs)
	}

	cfg.Spool.OrphanKeep = Duration(time.Nanosecond)
	st, logs = orphanGateway(t, cfg)
	var names []string
	for _, q := range st.Spool.Queues {
		names = append(names, q.Name)
	}
	if !slices.Equal(names, []string{"uplink.site.p0", "uplink.site.p5", "uplink.site.quarantine"}) {
		t.Errorf("queues after orphan_keep: %v; want the configured uplink's only", names)
	}
	if n := strings.Count(logs, "dropped the spool queue"); n != 2 {
		t.Errorf("%d drops logged; want 2:\n%s", n, logs)
	}
}

// outpost spool drop: DropSpoolQueues drops named queues of a stopped
// gateway's spool, refuses an unknown one, and is refused while a
// gateway holds the spool.
func TestDropSpoolQueues(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	fillSpool(t, cfg, 4, "uplink.gone.p0", "uplink.gone.p1")
	ctx := context.Background()
	counts, err := DropSpoolQueues(ctx, cfg, []string{"uplink.gone.p1"}, nil)
	if err != nil || !slices.Equal(counts, []int64{4}) {
		t.Fatalf("DropSpoolQueues = %v, %v; want [4]", counts, err)
	}
	if _, err := DropSpoolQueues(ctx, cfg, []string{"uplink.none.p0"}, nil); err == nil {
		t.Fatal("dropping a queue that does not exist succeeded")
	}
	rep, err := InspectSpool(ctx, cfg, InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range rep.Status.Spool.Queues {
		names = append(names, q.Name)
	}
	if !slices.Equal(names, []string{"uplink.gone.p0"}) {
		t.Fatalf("queues after the drop: %v", names)
	}

	g, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := runGateway(rctx, g)
	waitFor(t, g.Ready(), "the gateway to be ready")
	if _, err := DropSpoolQueues(ctx, cfg, []string{"uplink.gone.p0"}, nil); err == nil {
		t.Error("dropping from a running gateway's spool succeeded")
	}
	cancel()
	if err := waitFor(t, done, "Run to return"); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
