package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

// journalEntry is what the handler handed to journald.
type journalEntry struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

type journalRecorder struct {
	mu      sync.Mutex
	entries []journalEntry
	err     error // returned by send, as journald's absence would
}

func (r *journalRecorder) send(msg string, prio journal.Priority, vars map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.entries = append(r.entries, journalEntry{msg, prio, vars})
	return nil
}

// Each record becomes one entry with MESSAGE, PRIORITY from the level and
// every attribute as an uppercase field, the logger's own attributes and
// groups included.
func TestJournalHandlerFields(t *testing.T) {
	rec := &journalRecorder{}
	lv := new(slog.LevelVar)
	var fallback bytes.Buffer
	log := slog.New(newJournalHandler(lv, rec.send, slog.NewTextHandler(&fallback, &slog.HandlerOptions{Level: lv})))

	conn := log.With("component", "broker", "remote", "10.0.0.7:5000").WithGroup("conn")
	conn.Info("client connected", "client_id", "sensor-1", slog.Int("keepalive", 60), "err", errors.New("none"),
		slog.Group("will", "topic", "a/b"), "message", "not the entry's", "_odd-key.x", true)
	conn.Debug("hidden at info")
	log.Warn("spool full", "depth", int64(5000))
	lv.Set(slog.LevelDebug)
	log.Debug("now shown")
	log.Error("failed", "err", fmt.Errorf("disk: %w", os.ErrPermission))
	lv.Set(slog.LevelError)
	log.Warn("hidden at error")

	if len(rec.entries) != 4 {
		t.Fatalf("%d entries, want 4: %+v", len(rec.entries), rec.entries)
	}
	e := rec.entries[0]
	want := map[string]string{
		"SYSLOG_IDENTIFIER": "outpost",
		"COMPONENT":         "broker",
		"REMOTE":            "10.0.0.7:5000",
		"CONN_CLIENT_ID":    "sensor-1",
		"CONN_KEEPALIVE":    "60",
		"CONN_ERR":          "none",
		"CONN_WILL_TOPIC":   "a/b",
		"CONN_MESSAGE":      "not the entry's",
		"CONN_ODD_KEY_X":    "true",
	}
	if e.msg != "client connected" || e.prio != journal.PriInfo {
		t.Errorf("entry %q priority %d, want \"client connected\" %d", e.msg, e.prio, journal.PriInfo)
	}
	for k, v := range want {
		if e.vars[k] != v {
			t.Errorf("field %s = %q, want %q", k, e.vars[k], v)
		}
	}
	if len(e.vars) != len(want) {
		t.Errorf("fields %v, want exactly %v", e.vars, want)
	}
	for i, w := range []struct {
		msg  string
		prio journal.Priority
		k, v string
	}{
		{"spool full", journal.PriWarning, "DEPTH", "5000"},
		{"now shown", journal.PriDebug, "SYSLOG_IDENTIFIER", "outpost"},
		{"failed", journal.PriErr, "ERR", "disk: permission denied"},
	} {
		e := rec.entries[i+1]
		if e.msg != w.msg || e.prio != w.prio || e.vars[w.k] != w.v {
			t.Errorf("entry %d: %q priority %d %s=%q; want %q %d %q", i+1, e.msg, e.prio, w.k, e.vars[w.k], w.msg, w.prio, w.v)
		}
	}
	if fallback.Len() != 0 {
		t.Errorf("the fallback got %q while journald took everything", fallback.String())
	}
	if p := journalPriority(slog.LevelInfo + 2); p != journal.PriNotice {
		t.Errorf("priority between info and warn = %d, want notice", p)
	}
}

// When journald does not take an entry, the record goes to the standard
// error handler with its attributes, after one line that says why.
func TestJournalHandlerFallback(t *testing.T) {
	rec := &journalRecorder{err: errors.New("could not initialize socket to journald")}
	lv := new(slog.LevelVar)
	var stderr bytes.Buffer
	log := slog.New(newJournalHandler(lv, rec.send, slog.NewTextHandler(&stderr, &slog.HandlerOptions{Level: lv})))
	log.With("component", "uplink").Info("connected", "bridge", "cloud")
	log.Info("second")
	out := stderr.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("stderr has %d lines, want the warning once and both records:\n%s", len(lines), out)
	}
	if !strings.Contains(lines[0], "journald does not take log entries") || !strings.Contains(lines[0], "could not initialize socket") {
		t.Errorf("first line %q, want the warning with the error", lines[0])
	}
	if !strings.Contains(lines[1], "msg=connected") || !strings.Contains(lines[1], "component=uplink") || !strings.Contains(lines[1], "bridge=cloud") {
		t.Errorf("second line %q, want the record with its attributes", lines[1])
	}
	if !strings.Contains(lines[2], "msg=second") {
		t.Errorf("third line %q", lines[2])
	}
}

func TestJournalName(t *testing.T) {
	for in, want := range map[string]string{
		"client_id": "CLIENT_ID", "took.ms": "TOOK_MS", "_x": "X", "9lives": "ATTR_9LIVES", "": "ATTR", "Ünï": "N_",
	} {
		if got := journalName(in); got != want {
			t.Errorf("journalName(%q) = %q, want %q", in, got, want)
		}
	}
}

// underSystemd: JOURNAL_STREAM must name the standard error's device and
// inode; INVOCATION_ID alone counts only when the standard error is not a
// pipe or a file that someone reads.
func TestUnderSystemd(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	match := fmt.Sprintf("%d:%d", sys.Dev, sys.Ino)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		name   string
		getenv func(string) string
		stderr *os.File
		want   bool
	}{
		{"journal stream", env("JOURNAL_STREAM", match), f, true},
		{"another stream", env("JOURNAL_STREAM", "1:2", "INVOCATION_ID", "abc"), f, false},
		{"malformed stream", env("JOURNAL_STREAM", "x"), f, false},
		{"unit, pipe", env("INVOCATION_ID", "abc"), w, false},
		{"unit, file", env("INVOCATION_ID", "abc"), f, false},
		{"unit, null", env("INVOCATION_ID", "abc"), devNull, true},
		{"shell", env(), devNull, false},
		{"no file", env("JOURNAL_STREAM", match), nil, false},
	} {
		if got := underSystemd(c.getenv, c.stderr); got != c.want {
			t.Errorf("%s: underSystemd = %v, want %v", c.name, got, c.want)
		}
	}
}

// Off systemd, NewLogging writes text to the standard error at the
// configured level, which the returned LevelVar changes.
func TestNewLoggingStderr(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	t.Setenv("INVOCATION_ID", "")
	var buf bytes.Buffer
	l := NewLogging(LogConfig{Level: "warn", Format: "text"}, &buf)
	if l.Journal {
		t.Fatal("journald chosen off systemd")
	}
	l.Logger.Info("quiet")
	l.Level.Set(slog.LevelInfo)
	l.Logger.Info("loud", "client_id", "c")
	if out := buf.String(); strings.Contains(out, "quiet") || !strings.Contains(out, "msg=loud client_id=c") {
		t.Fatalf("stderr %q", out)
	}
}
