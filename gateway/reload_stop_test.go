package gateway

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// reloadConf is the config of the reload tests: one listener on addr,
// no MQTT-SN, at level.
func reloadConf(level, addr string) string {
	return "data_dir = \"data\"\n[log]\nlevel = \"" + level + "\"\n[[listener]]\nname = \"lan\"\naddress = \"" + addr +
		"\"\nallow_anonymous = true\n[mqttsn]\nenabled = false\n"
}

func writeConf(t *testing.T, file, conf string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reloadGateway runs a gateway from a config file holding conf, with a
// fake systemd, until READY=1, and returns it with the file, the level
// variable, the notifications' reader, the cancel of its Run and a wait
// for Run's result (which the test's end checks too).
func reloadGateway(t *testing.T, conf string) (*Gateway, string, *slog.LevelVar, func(time.Duration) string, context.CancelFunc, func() error) {
	t.Helper()
	next := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "")
	file := filepath.Join(t.TempDir(), "outpost.toml")
	writeConf(t, file, conf)
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	lv := new(slog.LevelVar)
	g, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	g.SetReload(file, lv)
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	wait := sync.OnceValue(func() error { return waitFor(t, done, "the gateway to stop") })
	t.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if strings.Contains(next(time.Until(deadline)), "READY=1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no READY=1")
		}
	}
	// systemd may send SIGHUP as soon as it reads READY=1.
	select {
	case <-g.Ready():
	default:
		t.Fatal("READY=1 came before the gateway counted itself ready: a reload now would be refused")
	}
	return g, file, lv, next, cancel, wait
}

// notifications returns what the gateway has sent to the fake systemd
// since the last read (everything is in the socket already).
func notifications(next func(time.Duration) string) []string {
	var out []string
	for {
		s := next(50 * time.Millisecond)
		if s == "" {
			return out
		}
		out = append(out, s)
	}
}

// eventuallyTrue polls cond with a deadline.
func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A reload (SIGHUP) that comes while the gateway starts to stop (SIGTERM)
// changes nothing and tells systemd nothing: the stop waits for a reload in
// progress, and a reload that comes later sees the stop and is refused. No
// READY=1 of a reload follows the notifier's STOPPING=1.
func TestReloadDuringStop(t *testing.T) {
	g, file, lv, next, cancel, wait := reloadGateway(t, reloadConf("info", "127.0.0.1:0"))
	writeConf(t, file, reloadConf("debug", "127.0.0.1:0"))

	g.rl.mu.Lock() // as if a reload were in progress
	res := make(chan ReloadResult, 1)
	go func() { res <- g.Reload() }()
	eventuallyTrue(t, "the second reload to wait", func() bool { return g.rl.waiting.Load() == 1 })
	cancel()
	eventuallyTrue(t, "the stop to begin", g.stopping.Load)
	g.rl.mu.Unlock()

	r := waitFor(t, res, "the reload")
	if err := wait(); err != nil {
		t.Errorf("Run = %v", err)
	}
	if r.Err == nil || !strings.Contains(r.Err.Error(), "not running") {
		t.Errorf("a reload during the stop = %+v; want it refused", r)
	}
	if lv.Level() != slog.LevelInfo {
		t.Errorf("level %v: a reload during the stop applied the new config", lv.Level())
	}
	stopping := false
	for _, n := range notifications(next) {
		stopping = stopping || strings.Contains(n, "STOPPING=1")
		if strings.Contains(n, "RELOADING=1") || (stopping && strings.Contains(n, "READY=1")) {
			t.Errorf("notification %q during the stop", n)
		}
	}
	if !stopping {
		t.Error("no STOPPING=1")
	}
	if r := g.Reload(); r.Err == nil {
		t.Errorf("a reload after the stop = %+v; want it refused", r)
	}
}

// Two SIGHUPs back to back: the reloads run one after the other, each
// framed by its own RELOADING=1 and READY=1, and the level is the file's.
func TestReloadBackToBack(t *testing.T) {
	g, file, lv, next, _, _ := reloadGateway(t, reloadConf("info", "127.0.0.1:0"))
	writeConf(t, file, reloadConf("warn", "127.0.0.1:0"))
	res := make(chan ReloadResult, 2)
	for range 2 {
		go func() { res <- g.Reload() }()
	}
	for range 2 {
		if r := waitFor(t, res, "a reload"); r.Err != nil {
			t.Errorf("Reload = %+v", r)
		}
	}
	if lv.Level() != slog.LevelWarn {
		t.Errorf("level %v, want warn", lv.Level())
	}
	var seq []string
	for _, n := range notifications(next) {
		switch {
		case strings.Contains(n, "RELOADING=1"):
			seq = append(seq, "RELOADING")
		case strings.Contains(n, "READY=1"):
			seq = append(seq, "READY")
		}
	}
	if strings.Join(seq, " ") != "RELOADING READY RELOADING READY" {
		t.Errorf("notifications %v; want each reload framed by RELOADING=1 and READY=1", seq)
	}
}
