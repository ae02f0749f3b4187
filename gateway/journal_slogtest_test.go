package gateway

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"

	"github.com/coreos/go-systemd/v22/journal"
)

// The journald handler keeps the slog.Handler contract (testing/slogtest):
// WithAttrs, WithGroup, empty and inline groups, Resolve. An entry's fields
// are flat: an attribute "a" in group "G" is the field G_A, which the
// result below turns back into nested maps (slogtest names groups in upper
// case and attributes in lower case). journald stamps every entry with its
// own time, so the entry carries no time field: the "time" the checks
// look for is journald's, and the zero-time case cannot apply.
func TestJournalHandlerSlogtest(t *testing.T) {
	var rec *journalRecorder
	newHandler := func(t *testing.T) slog.Handler {
		if strings.HasSuffix(t.Name(), "/zero-time") {
			t.Skip("journald stamps each entry with its time of arrival")
		}
		rec = &journalRecorder{}
		return newJournalHandler(slog.LevelDebug, rec.send, slog.NewTextHandler(io.Discard, nil))
	}
	result := func(t *testing.T) map[string]any {
		if len(rec.entries) != 1 {
			t.Fatalf("%d entries, want 1", len(rec.entries))
		}
		e := rec.entries[0]
		m := map[string]any{slog.TimeKey: "journald", slog.MessageKey: e.msg, slog.LevelKey: e.prio}
		for k, v := range e.vars {
			if k == "SYSLOG_IDENTIFIER" {
				continue
			}
			parts := strings.Split(k, "_")
			cur := m
			for _, g := range parts[:len(parts)-1] {
				sub, ok := cur[g].(map[string]any)
				if !ok {
					sub = map[string]any{}
					cur[g] = sub
				}
				cur = sub
			}
			cur[strings.ToLower(parts[len(parts)-1])] = v
		}
		return m
	}
	slogtest.Run(t, newHandler, result)
	if p := journalPriority(slog.LevelDebug); p != journal.PriDebug {
		t.Errorf("debug priority %d", p)
	}
}
