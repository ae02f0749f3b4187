package gateway

import (
	"fmt"
	"strconv"
	"strings"
)

// positions maps each key of a TOML document to the line (1-based) where it
// is defined. Keys are written the way error messages name them: dotted, with
// a 0-based index for each element of an array of tables or of an inline
// array, e.g. "broker.max_connections", "listener[1].tls.cert_file".
//
// The TOML library keeps one position per dotted name, so every [[listener]]
// shares the position of the last one; error messages must point at the
// listener that is wrong, hence this small scanner of our own. It runs only on
// documents the library has already parsed without error, so it may assume
// well-formed input.
type positions map[string]int

// line returns the line of key, or of its nearest enclosing table or array
// element defined in the document (a missing key is reported where it
// should have been written); 0 when none is known.
func (p positions) line(key string) int {
	for key != "" {
		if l, ok := p[key]; ok {
			return l
		}
		key = parentKey(key)
	}
	return 0
}

// parentKey strips the last ".name" or "[i]" from key.
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func indexKey(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// scanPositions returns the line of every table header, key and inline-table
// element of a well-formed TOML document (TOML 1.0, and the 1.1 extensions the
// library accepts: newlines and comments inside inline tables).
func scanPositions(doc string) positions {
	sc := &posScanner{s: strings.TrimPrefix(doc, "\ufeff"), line: 1, pos: positions{}, arrays: map[string]int{}}
	sc.document()
	return sc.pos
}

type posScanner struct {
	s      string
	i      int
	line   int
	pos    positions
	arrays map[string]int // array of tables (resolved key) -> elements so far
}

func (sc *posScanner) eof() bool { return sc.i >= len(sc.s) }

func (sc *posScanner) peek(off int) byte {
	if sc.i+off < len(sc.s) {
		return sc.s[sc.i+off]
	}
	return 0
}

func (sc *posScanner) record(key string, line int) {
	if _, ok := sc.pos[key]; !ok {
		sc.pos[key] = line
	}
}

// skipSpace skips blanks on the current line.
func (sc *posScanner) skipSpace() {
	for !sc.eof() && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t') {
		sc.i++
	}
}

// skipAll skips blanks, newlines and comments.
func (sc *posScanner) skipAll() {
	for !sc.eof() {
		switch sc.s[sc.i] {
		case ' ', '\t', '\r':
			sc.i++
		case '\n':
			sc.i++
			sc.line++
		case '#':
			for !sc.eof() && sc.s[sc.i] != '\n' {
				sc.i++
			}
		default:
			return
		}
	}
}

func (sc *posScanner) document() {
	table := ""
	for {
		sc.skipAll()
		if sc.eof() {
			return
		}
		if sc.s[sc.i] != '[' {
			sc.progress(func() { sc.keyValue(table) })
			continue
		}
		line := sc.line
		if sc.peek(1) == '[' { // [[array.of.tables]]
			sc.i += 2
			parts := sc.key()
			sc.skipUntil(']')
			sc.i += 2
			base := joinKey(sc.resolve(parts[:len(parts)-1]), parts[len(parts)-1])
			n := sc.arrays[base]
			sc.arrays[base] = n + 1
			sc.record(base, line)
			table = indexKey(base, n)
			sc.record(table, line)
			continue
		}
		sc.i++ // [table]
		parts := sc.key()
		sc.skipUntil(']')
		sc.i++
		table = sc.resolve(parts)
		sc.record(table, line)
	}
}

// progress runs scan and makes sure it moved on, so that input the TOML
// library would refuse cannot make the scanner loop forever.
func (sc *posScanner) progress(scan func()) {
	start := sc.i
	scan()
	if sc.i == start {
		sc.i++
	}
}

// resolve turns the dotted parts of a table header into a key, where a part
// that names an array of tables refers to its last element (as in TOML).
func (sc *posScanner) resolve(parts []string) string {
	k := ""
	for _, p := range parts {
		k = joinKey(k, p)
		if n, ok := sc.arrays[k]; ok {
			k = indexKey(k, n-1)
		}
	}
	return k
}

func (sc *posScanner) skipUntil(c byte) {
	for !sc.eof() && sc.s[sc.i] != c {
		sc.i++
	}
}

// keyValue scans `dotted.key = value` inside table.
func (sc *posScanner) keyValue(table string) {
	line := sc.line
	parts := sc.key()
	k := table
	for _, p := range parts {
		k = joinKey(k, p)
		sc.record(k, line)
	}
	sc.skipSpace()
	if sc.peek(0) == '=' {
		sc.i++
	}
	sc.skipSpace()
	sc.value(k)
}

// key scans a dotted key made of bare, "basic" and 'literal' parts.
func (sc *posScanner) key() []string {
	var parts []string
	for {
		sc.skipSpace()
		switch sc.peek(0) {
		case '"':
			parts = append(parts, sc.basicString())
		case '\'':
			parts = append(parts, sc.literalString())
		default:
			start := sc.i
			for !sc.eof() && !strings.ContainsRune(" \t.=]\r\n#", rune(sc.s[sc.i])) {
				sc.i++
			}
			parts = append(parts, sc.s[start:sc.i])
		}
		sc.skipSpace()
		if sc.peek(0) != '.' {
			return parts
		}
		sc.i++
	}
}

// value scans one value; key is the key it is assigned to.
func (sc *posScanner) value(key string) {
	switch sc.peek(0) {
	case '"':
		if strings.HasPrefix(sc.s[sc.i:], `"""`) {
			sc.multiline(`"""`, true)
		} else {
			sc.basicString()
		}
	case '\'':
		if strings.HasPrefix(sc.s[sc.i:], "'''") {
			sc.multiline("'''", false)
		} else {
			sc.literalString()
		}
	case '[':
		sc.i++
		for n := 0; ; {
			sc.skipAll()
			switch sc.peek(0) {
			case 0:
				return
			case ']':
				sc.i++
				return
			case ',':
				sc.i++
			default:
				elem := indexKey(key, n)
				if sc.peek(0) == '{' {
					sc.record(elem, sc.line)
				}
				sc.progress(func() { sc.value(elem) })
				n++
			}
		}
	case '{':
		sc.i++
		for {
			sc.skipAll()
			switch sc.peek(0) {
			case 0:
				return
			case '}':
				sc.i++
				return
			case ',':
				sc.i++
			default:
				sc.progress(func() { sc.keyValue(key) })
			}
		}
	default: // number, boolean, date-time: up to a delimiter
		for !sc.eof() && !strings.ContainsRune(",]}#\r\n", rune(sc.s[sc.i])) {
			sc.i++
		}
	}
}

// basicString scans a one-line "string" and returns its value.
func (sc *posScanner) basicString() string {
	sc.i++
	start := sc.i
	for !sc.eof() && sc.s[sc.i] != '"' && sc.s[sc.i] != '\n' {
		if sc.s[sc.i] == '\\' {
			sc.i++
		}
		sc.i++
	}
	raw := sc.s[start:min(sc.i, len(sc.s))]
	sc.i++
	if v, err := strconv.Unquote(`"` + raw + `"`); err == nil {
		return v
	}
	return raw
}

// literalString scans a one-line 'string' and returns its value.
func (sc *posScanner) literalString() string {
	sc.i++
	start := sc.i
	for !sc.eof() && sc.s[sc.i] != '\'' && sc.s[sc.i] != '\n' {
		sc.i++
	}
	v := sc.s[start:sc.i]
	sc.i++
	return v
}

// multiline scans a triple-quoted string (basic or literal), counting the
// lines it spans. Up to two quotes right before the closing delimiter belong
// to the string.
func (sc *posScanner) multiline(delim string, escapes bool) {
	sc.i += 3
	for !sc.eof() {
		switch {
		case escapes && sc.s[sc.i] == '\\':
			sc.i++
			if sc.peek(0) == '\n' {
				sc.line++
			}
			sc.i++
		case sc.s[sc.i] == '\n':
			sc.line++
			sc.i++
		case strings.HasPrefix(sc.s[sc.i:], delim):
			sc.i += 3
			for extra := 0; extra < 2 && sc.peek(0) == delim[0]; extra++ {
				sc.i++
			}
			return
		default:
			sc.i++
		}
	}
}

// String lists the positions, sorted by line then key (for tests and debugging).
func (p positions) String() string {
	var b strings.Builder
	for _, k := range sortedKeys(p) {
		fmt.Fprintf(&b, "%d %s\n", p[k], k)
	}
	return b.String()
}
