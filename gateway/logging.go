package gateway

import (
	"io"
	"log/slog"
	"os"
)

// NewLogger returns a root logger writing to w in the format and at the
// level of cfg ("text" and "info" when a field is empty or unknown; Load
// refuses unknown values). Components get children of it.
func NewLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	lv := new(slog.LevelVar)
	lv.Set(logLevel(cfg.Level))
	return slog.New(newLogHandler(cfg, lv, w, false))
}

// Logging is the root logger of a process and the level it logs at, which
// a reload changes (Gateway.SetReload).
type Logging struct {
	Logger  *slog.Logger
	Level   *slog.LevelVar
	Journal bool // entries go to journald
}

// NewLogging sets up the logging of `outpost run`: to journald, as
// structured entries, when the process runs under systemd (see
// underSystemd) and journald is reachable; else to stderr, in cfg's
// format. stderr is the process's standard error (os.Stderr) or any
// writer; only an *os.File can be the journal's stream.
func NewLogging(cfg LogConfig, stderr io.Writer) *Logging {
	lv := new(slog.LevelVar)
	lv.Set(logLevel(cfg.Level))
	f, _ := stderr.(*os.File)
	h := newLogHandler(cfg, lv, stderr, underSystemd(os.Getenv, f))
	_, journald := h.(*journalHandler)
	return &Logging{Logger: slog.New(h), Level: lv, Journal: journald}
}

func logLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
