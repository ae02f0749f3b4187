package gateway

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The systemd notify protocol against a real unixgram socket standing in
// for systemd: READY=1 once everything runs, WATCHDOG=1 pings while the
// probe through broker and spool succeeds, STOPPING=1 at the end.
func TestSystemdNotify(t *testing.T) {
	read := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "300000") // ping every 100ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	g, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	stopped := false
	defer func() {
		cancel()
		if !stopped {
			<-done
		}
	}()

	first := read(10 * time.Second)
	if !strings.Contains(first, "READY=1") || !strings.Contains(first, "STATUS=0 clients, uplinks 0/0 online, spool depth 0") {
		t.Fatalf("first notification %q, want READY=1 with a STATUS line", first)
	}
	select {
	case <-g.Ready():
	default:
		t.Fatal("READY=1 sent before the gateway was ready")
	}
	pings := 0
	for deadline := time.Now().Add(10 * time.Second); pings < 3 && time.Now().Before(deadline); {
		if strings.Contains(read(time.Second), "WATCHDOG=1") {
			pings++
		}
	}
	if pings < 3 {
		t.Fatalf("%d watchdog pings, want 3", pings)
	}
	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	for {
		msg := read(5 * time.Second)
		if msg == "" {
			t.Fatal("no STOPPING=1 at the end")
		}
		if strings.Contains(msg, "STOPPING=1") {
			break
		}
	}
}

// fakeSystemd listens on a unixgram socket in place of systemd's notify
// socket and points NOTIFY_SOCKET at it. read returns the next
// notification, or "" when none comes within d.
func fakeSystemd(t *testing.T) (read func(d time.Duration) string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	return func(d time.Duration) string {
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(d))
		n, err := conn.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
}
