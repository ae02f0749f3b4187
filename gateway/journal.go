package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// journalHandler is a slog.Handler that sends each record to journald as a
// structured entry: MESSAGE, PRIORITY from the level, SYSLOG_IDENTIFIER,
// and every attribute as an uppercase field ("client_id" becomes
// CLIENT_ID; an attribute in group "g" becomes G_NAME). When journald
// does not take an entry, the record goes to the fallback handler (text on
// the standard error), so that nothing is lost in silence.
type journalHandler struct {
	level    slog.Leveler
	send     journalSender
	fallback slog.Handler
	fields   []journalField // from WithAttrs, with their group prefix
	prefix   string         // open groups, "G_" each
	warn     *sync.Once     // the first failure of journald is said once on the fallback
}

// journalSender is journal.Send; tests put a recorder in its place, since
// go-systemd's socket path cannot be changed.
type journalSender func(message string, priority journal.Priority, vars map[string]string) error

type journalField struct{ name, value string }

// syslogIdentifier names Outpost's entries (journalctl -t outpost).
const syslogIdentifier = "outpost"

func newJournalHandler(level slog.Leveler, send journalSender, fallback slog.Handler) *journalHandler {
	return &journalHandler{level: level, send: send, fallback: fallback, warn: new(sync.Once)}
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	vars := make(map[string]string, len(h.fields)+r.NumAttrs()+1)
	vars["SYSLOG_IDENTIFIER"] = syslogIdentifier
	for _, f := range h.fields {
		vars[f.name] = f.value
	}
	r.Attrs(func(a slog.Attr) bool {
		addJournalAttr(vars, h.prefix, a)
		return true
	})
	err := h.send(r.Message, journalPriority(r.Level), vars)
	if err == nil {
		return nil
	}
	h.warn.Do(func() {
		wr := slog.NewRecord(time.Now(), slog.LevelWarn, "journald does not take log entries; logging to the standard error", 0)
		wr.AddAttrs(slog.String("err", err.Error()))
		_ = h.fallback.Handle(ctx, wr)
	})
	return h.fallback.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	vars := map[string]string{}
	for _, a := range attrs {
		addJournalAttr(vars, h.prefix, a)
	}
	c.fields = append(h.fields[:len(h.fields):len(h.fields)], fieldsOf(vars)...)
	c.fallback = h.fallback.WithAttrs(attrs)
	return &c
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + journalName(name) + "_"
	c.fallback = h.fallback.WithGroup(name)
	return &c
}

// fieldsOf turns vars into fields (in no order: vars has each name once).
func fieldsOf(vars map[string]string) []journalField {
	fs := make([]journalField, 0, len(vars))
	for k, v := range vars {
		fs = append(fs, journalField{k, v})
	}
	return fs
}

// addJournalAttr adds a as a field named prefix+NAME, and a group's
// attributes as prefix+GROUP_NAME. Empty attributes are left out, as slog's
// handlers do.
func addJournalAttr(vars map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += journalName(a.Key) + "_"
		}
		for _, ga := range v.Group() {
			addJournalAttr(vars, p, ga)
		}
		return
	}
	name := prefix + journalName(a.Key)
	switch name {
	case "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER":
		name = "ATTR_" + name // never overwrite the entry's own fields
	}
	vars[name] = journalValue(v)
}

func journalValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
		return fmt.Sprint(v.Any())
	default:
		return v.String()
	}
}

// journalName makes an attribute key a journal field name: upper case,
// letters, digits and '_' only, not starting with '_' or a digit
// ("client_id" → CLIENT_ID, "took.ms" → TOOK_MS, "_x" → X).
func journalName(key string) string {
	var b strings.Builder
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "_")
	if s == "" {
		return "ATTR"
	}
	if s[0] >= '0' && s[0] <= '9' {
		return "ATTR_" + s
	}
	return s
}

// journalPriority maps a slog level to a syslog priority: debug, info,
// warning (and notice for the levels between info and warn), error.
func journalPriority(l slog.Level) journal.Priority {
	switch {
	case l < slog.LevelInfo:
		return journal.PriDebug
	case l == slog.LevelInfo:
		return journal.PriInfo
	case l < slog.LevelWarn:
		return journal.PriNotice
	case l < slog.LevelError:
		return journal.PriWarning
	default:
		return journal.PriErr
	}
}

// underSystemd reports whether logs should go to the journal: the standard
// error is the journal's stream (JOURNAL_STREAM names its device and inode,
// systemd.exec(5)), or the process runs in a unit (INVOCATION_ID) whose
// standard error is neither a pipe nor a file. A program started from a
// unit's shell or test runner inherits INVOCATION_ID but writes to a pipe
// that someone reads: it keeps logging there.
func underSystemd(getenv func(string) string, stderr *os.File) bool {
	if stderr == nil {
		return false
	}
	if getenv("JOURNAL_STREAM") != "" {
		return journalStreamIs(getenv("JOURNAL_STREAM"), stderr)
	}
	if getenv("INVOCATION_ID") == "" {
		return false
	}
	st, err := stderr.Stat()
	if err != nil {
		return true
	}
	m := st.Mode()
	return m&os.ModeNamedPipe == 0 && !m.IsRegular()
}

// journalStreamIs reports whether f is the stream that JOURNAL_STREAM
// ("device:inode") names.
func journalStreamIs(stream string, f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", sys.Dev, sys.Ino)
}

// newLogHandler picks the handler of the root logger: journald when under
// systemd and journald answers, else cfg's format on w.
func newLogHandler(cfg LogConfig, level slog.Leveler, w io.Writer, journald bool) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch cfg.Format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		h = slog.NewTextHandler(w, opts)
	}
	if journald && journal.Enabled() {
		return newJournalHandler(level, journal.Send, h)
	}
	return h
}
