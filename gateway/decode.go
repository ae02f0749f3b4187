package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ConfigError is one problem in a config: the key it concerns, and the line
// of the file where that key is (or, for a missing key, the line of the table
// that should hold it).
type ConfigError struct {
	File string // "" for a config built in code
	Line int    // 1-based; 0 when unknown
	Key  string // e.g. "broker.max_connections", "listener[1].tls.cert_file"; "" for a syntax error before any key
	Msg  string
}

// Error formats e as "file:line: key: message", leaving out what is unknown.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// problems collects ConfigErrors for one document.
type problems struct {
	file string
	pos  positions // nil for a config built in code
	errs []*ConfigError
}

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, &ConfigError{File: p.file, Line: p.pos.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// err returns nil, the only error, or all of them joined (one per line),
// ordered by line.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *ConfigError) int { return cmp.Compare(a.Line, b.Line) })
	if len(p.errs) == 1 {
		return p.errs[0]
	}
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// decodeTOML parses doc and stores its values into dst (a pointer to a
// struct whose fields carry `toml:"name"` tags), leaving fields the document
// does not mention as they were. It is strict: an unknown key, a value of the
// wrong TOML type, or a value its field's type refuses (toml.Unmarshaler) is a
// ConfigError naming the key and its line, added to p; p.pos is set to the
// positions of the document's keys, for the checks that follow. A syntax
// error is returned at once, as one ConfigError with the line the parser
// reports.
//
// The document is parsed by the TOML library; the values are then walked here
// rather than by the library's struct decoder, because the library's error
// positions for keys inside [[arrays]] point at the last element, and its type
// errors carry the key only in their text.
func decodeTOML(doc string, p *problems, dst any) error {
	var tree map[string]any
	if _, err := toml.Decode(doc, &tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &ConfigError{File: p.file, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		return &ConfigError{File: p.file, Msg: err.Error()}
	}
	p.pos = scanPositions(doc)
	decodeTable(p, tree, reflect.ValueOf(dst).Elem(), "")
	return nil
}

var tomlUnmarshaler = reflect.TypeFor[toml.Unmarshaler]()

func decodeTable(p *problems, tree map[string]any, dst reflect.Value, prefix string) {
	fields := map[string]int{}
	for i := range dst.NumField() {
		name, _, _ := strings.Cut(dst.Type().Field(i).Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	for _, k := range sortedTreeKeys(p.pos, tree, prefix) {
		key := joinKey(prefix, k)
		i, ok := fields[k]
		if !ok {
			p.add(key, "unknown key")
			continue
		}
		decodeValue(p, tree[k], dst.Field(i), key)
	}
}

func decodeValue(p *problems, v any, dst reflect.Value, key string) {
	if dst.CanAddr() && dst.Addr().Type().Implements(tomlUnmarshaler) {
		if err := dst.Addr().Interface().(toml.Unmarshaler).UnmarshalTOML(v); err != nil {
			p.add(key, "%v", err)
		}
		return
	}
	switch dst.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			p.add(key, "want a string, got %s", tomlTypeName(v))
			return
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			p.add(key, "want a boolean (true or false), got %s", tomlTypeName(v))
			return
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			p.add(key, "want an integer, got %s", tomlTypeName(v))
			return
		}
		if dst.OverflowInt(n) {
			p.add(key, "%d is out of range", n)
			return
		}
		dst.SetInt(n)
	case reflect.Float64:
		switch n := v.(type) {
		case float64:
			if math.IsNaN(n) || math.IsInf(n, 0) {
				p.add(key, "want a finite number, got %v", n)
				return
			}
			dst.SetFloat(n)
		case int64:
			dst.SetFloat(float64(n))
		default:
			p.add(key, "want a number, got %s", tomlTypeName(v))
		}
	case reflect.Struct:
		t, ok := v.(map[string]any)
		if !ok {
			p.add(key, "want a table, got %s", tomlTypeName(v))
			return
		}
		decodeTable(p, t, dst, key)
	case reflect.Slice:
		if dst.Type().Elem().Kind() == reflect.String {
			decodeStrings(p, v, dst, key)
			return
		}
		var elems []map[string]any
		switch a := v.(type) {
		case []map[string]any:
			elems = a
		case []any:
			for i, e := range a {
				t, ok := e.(map[string]any)
				if !ok {
					p.add(indexKey(key, i), "want a table, got %s", tomlTypeName(e))
					return
				}
				elems = append(elems, t)
			}
		default:
			p.add(key, "want an array of tables, got %s", tomlTypeName(v))
			return
		}
		if dst.Type().Elem().Kind() != reflect.Struct {
			panic("gateway: config field " + key + " has an unsupported type " + dst.Type().String())
		}
		s := reflect.MakeSlice(dst.Type(), len(elems), len(elems))
		for i, e := range elems {
			if d, ok := s.Index(i).Addr().Interface().(defaulter); ok {
				d.setDefaults()
			}
			decodeTable(p, e, s.Index(i), indexKey(key, i))
		}
		dst.Set(s)
	case reflect.Map:
		t, ok := v.(map[string]any)
		if !ok {
			p.add(key, "want a table, got %s", tomlTypeName(v))
			return
		}
		if dst.Type().Key().Kind() != reflect.String {
			panic("gateway: config field " + key + " has an unsupported type " + dst.Type().String())
		}
		m := reflect.MakeMapWithSize(dst.Type(), len(t))
		for _, k := range sortedTreeKeys(p.pos, t, key) {
			e := reflect.New(dst.Type().Elem()).Elem()
			decodeValue(p, t[k], e, joinKey(key, k))
			m.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), e)
		}
		dst.Set(m)
	default:
		panic("gateway: config field " + key + " has an unsupported type " + dst.Type().String())
	}
}

// defaulter is implemented by the elements of arrays of tables whose keys
// have defaults: each element gets them before the keys the document sets.
type defaulter interface{ setDefaults() }

// decodeStrings stores a TOML array of strings into dst, a []string.
func decodeStrings(p *problems, v any, dst reflect.Value, key string) {
	a, ok := v.([]any)
	if !ok {
		p.add(key, "want an array of strings, got %s", tomlTypeName(v))
		return
	}
	s := reflect.MakeSlice(dst.Type(), len(a), len(a))
	for i, e := range a {
		str, ok := e.(string)
		if !ok {
			p.add(indexKey(key, i), "want a string, got %s", tomlTypeName(e))
			return
		}
		s.Index(i).SetString(str)
	}
	dst.Set(s)
}

// sortedTreeKeys returns the keys of one table in document order.
func sortedTreeKeys(pos positions, tree map[string]any, prefix string) []string {
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(pos.line(joinKey(prefix, a)), pos.line(joinKey(prefix, b))), cmp.Compare(a, b))
	})
	return keys
}

// sortedKeys returns the keys of p ordered by line, then by key.
func sortedKeys(p positions) []string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(p[a], p[b]), cmp.Compare(a, b)) })
	return keys
}
