package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUnsupportedHash is wrapped by the [ParseError] of a password file line
// whose hash type Outpost cannot verify (for example mosquitto 2.1's
// argon2id). Such lines are rejected rather than skipped, so that a user is
// never locked out, or let in, without a word.
var ErrUnsupportedHash = errors.New("unsupported password hash type")

// ParseError describes a line of a password or ACL file that could not be
// understood. Line is 1-based; 0 means the error is not tied to one line
// (for example a read error).
type ParseError struct {
	File string // the name given to the parser, usually the path
	Line int
	Msg  string
	Err  error // underlying cause, if any (for errors.Is)
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxLineBytes bounds one line of a password or ACL file. A topic or a
// username is at most 65535 bytes [MQTT-1.5.4-1], so a longer line is
// garbage, not configuration.
const maxLineBytes = 1 << 20

// scanLines calls fn for every line of r with its 1-based number, without
// the line ending ("\n" or "\r\n") and without a leading UTF-8 byte order
// mark on the first line. It stops at the first error fn returns.
func scanLines(r io.Reader, name string, fn func(n int, line string) error) error {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 4096), maxLineBytes)
	n := 0
	for s.Scan() {
		n++
		line := s.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := s.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &ParseError{File: name, Line: n + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLineBytes)}
		}
		return &ParseError{File: name, Msg: "read failed", Err: err}
	}
	return nil
}

// isBlank reports whether c is a space or a tab, the field separators of
// both file formats.
func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// trimBlanks removes leading and trailing spaces, tabs and other ASCII
// white space, like mosquitto's trimming of lines.
func trimBlanks(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\v' || r == '\f'
	})
}
