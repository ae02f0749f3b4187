package gateway

import (
	"io"
	"log/slog"
)

// NewLogger returns the gateway's root logger, writing to w in the format and
// at the level of cfg ("text" and "info" when a field is empty or unknown;
// Load refuses unknown values). Components get children of it.
func NewLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	return slog.New(newHandler(cfg, w))
}

// newHandler picks the slog.Handler for cfg.Format. This is the seam for
// journald: under systemd, a "journal" format will send structured records
// to the journal socket instead of w (see the packaging issue).
func newHandler(cfg LogConfig, w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: logLevel(cfg.Level)}
	switch cfg.Format {
	case "json":
		return slog.NewJSONHandler(w, opts)
	default:
		return slog.NewTextHandler(w, opts)
	}
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
