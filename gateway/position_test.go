package gateway

import (
	"maps"
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
