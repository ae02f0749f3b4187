package gateway

import (
	"maps"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// A document that uses the awkward corners of TOML: multi-line strings that
// hold brackets, quotes and '#', comments everywhere, quoted and dotted keys,
// nested arrays of tables, inline tables over several lines, arrays of inline
// tables.
const trickyTOML = `# comment [not.a.table]
top = "a # not a comment" # comment
"quoted.key" = 'lit'
multi = """
[not.a.table]
x = "still the string" \
"""
lit = '''
''' # ends here
dotted.inner.leaf = 1
arr = [
  1, # one
  2,
]

[tab]
key = 2020-01-02T03:04:05Z
nested = { a = 1, b = { c = "}" } }

[[srv]]
name = "one"
[srv.tls]
cert = "c"
[[srv.rule]]
topic = "a/#"
[[srv.rule]]
topic = "b/#"

[[srv]]
name = "two"
quads = """x""""
inl = [
  { k = 1 },
  { k = 2,
    j = 3 },
]
after = true
`

func TestScanPositions(t *testing.T) {
	if _, err := toml.Decode(trickyTOML, new(map[string]any)); err != nil {
		t.Fatalf("the test document is not valid TOML: %v", err)
	}
	want := positions{
		"top":                  2,
		"quoted.key":           3,
		"multi":                4,
		"lit":                  8,
		"dotted":               10,
		"dotted.inner":         10,
		"dotted.inner.leaf":    10,
		"arr":                  11,
		"tab":                  16,
		"tab.key":              17,
		"tab.nested":           18,
		"tab.nested.a":         18,
		"tab.nested.b":         18,
		"tab.nested.b.c":       18,
		"srv":                  20,
		"srv[0]":               20,
		"srv[0].name":          21,
		"srv[0].tls":           22,
		"srv[0].tls.cert":      23,
		"srv[0].rule":          24,
		"srv[0].rule[0]":       24,
		"srv[0].rule[0].topic": 25,
		"srv[0].rule[1]":       26,
		"srv[0].rule[1].topic": 27,
		"srv[1]":               29,
		"srv[1].name":          30,
		"srv[1].quads":         31,
		"srv[1].inl":           32,
		"srv[1].inl[0]":        33,
		"srv[1].inl[0].k":      33,
		"srv[1].inl[1]":        34,
		"srv[1].inl[1].k":      34,
		"srv[1].inl[1].j":      35,
		"srv[1].after":         37,
	}
	got := scanPositions(trickyTOML)
	if !maps.Equal(got, want) {
		t.Errorf("scanPositions:\n%s\nwant:\n%s", got, want)
	}
}

func TestScanPositionsSkipsAByteOrderMark(t *testing.T) {
	got := scanPositions("\ufeffdata_dir = \"d\"\r\n[log]\r\nlevel = \"info\"\r\n")
	want := positions{"data_dir": 1, "log": 2, "log.level": 3}
	if !maps.Equal(got, want) {
		t.Errorf("scanPositions:\n%s\nwant:\n%s", got, want)
	}
}

func TestPositionsLineFallsBackToParent(t *testing.T) {
	p := positions{"listener": 3, "listener[1]": 7, "listener[1].tls": 9}
	for key, want := range map[string]int{
		"listener[1].tls.cert_file": 9,
		"listener[1].address":       7,
		"listener[2].address":       3,
		"broker.max_connections":    0,
	} {
		if got := p.line(key); got != want {
			t.Errorf("line(%q) = %d; want %d", key, got, want)
		}
	}
}

// For any document the TOML library accepts, the scanner knows every key
// the library saw, on a line of the document.
func FuzzScanPositions(f *testing.F) {
	f.Add(trickyTOML)
	for _, path := range []string{"../configs/outpost.toml", "../configs/secure-lan.toml"} {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("a = [[1, 2], [3]]\nb = {}\n[[c]]\n[[c.d]]\n[c.e]\nf = 1\n")
	f.Add("a.b = 1\na.c = { d = [ { e = 1 } ] }\n")
	bare := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	f.Fuzz(func(t *testing.T, doc string) {
		var tree map[string]any
		md, err := toml.Decode(doc, &tree)
		got := scanPositions(doc) // must not panic or hang, valid or not
		if err != nil {
			return
		}
		lines := strings.Count(doc, "\n") + 1
		plain := map[string]bool{}
		for k, l := range got {
			if l < 1 || l > lines {
				t.Errorf("key %q on line %d of %d", k, l, lines)
			}
			plain[indexRE.ReplaceAllString(k, "")] = true
		}
	keys:
		for _, k := range md.Keys() {
			for _, part := range k {
				if !bare.MatchString(part) {
					continue keys // quoted keys may hold dots: not comparable
				}
			}
			if !plain[strings.Join(k, ".")] {
				t.Errorf("the scanner missed key %q; it found:\n%s", k, got)
			}
		}
	})
}

var indexRE = regexp.MustCompile(`\[[0-9]+\]`)
