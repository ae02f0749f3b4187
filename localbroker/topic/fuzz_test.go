package topic

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzMatch checks Match against the oracle, and Tree.Match and
// Retained.Walk against a scan with Match. filters holds up to 16 filters
// separated by newlines; invalid ones are skipped.
func FuzzMatch(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.filter, c.topic)
	}
	f.Add("a/+\na/#\n#\n+/+\na//b\n$SYS/#", "a/b")
	f.Add("+/#\n$x/+\n/#", "$x/y")
	f.Fuzz(func(t *testing.T, filters, topic string) {
		fs := strings.SplitN(filters, "\n", 17)
		fs = fs[:min(len(fs), 16)]
		var tr Tree[int, string]
		var r Retained[int]
		var valid []string
		for i, flt := range fs {
			if ValidFilter(flt, 0, 0) != nil {
				continue
			}
			valid = append(valid, flt)
			tr.Add(flt, i%3, flt)
			if ValidName(flt, 0, 0) == nil {
				r.Set(flt, i) // filters without wildcards double as stored topics
			}
			if got, want := Match(flt, topic), refMatch(flt, topic); got != want {
				t.Fatalf("Match(%q, %q) = %v, oracle %v", flt, topic, got, want)
			}
		}
		if ValidName(topic, 0, 0) != nil {
			return
		}
		var got, want []string
		tr.Match(topic, func(k int, v string) { got = append(got, v) })
		for i, flt := range fs {
			// The last Add of a (filter, key) pair wins; all values equal
			// the filter, so count each pair once.
			if slices.Contains(valid, flt) && Match(flt, topic) && !pairSeenBefore(fs, i) {
				want = append(want, flt)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("Tree.Match(%q) over %q = %q, scan %q", topic, valid, got, want)
		}
		r.Set(topic, -1)
		for _, flt := range valid {
			var got, want []string
			r.Walk(flt, func(topic string, _ int) bool { got = append(got, topic); return true })
			for _, stored := range storedTopics(&r) {
				if Match(flt, stored) {
					want = append(want, stored)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("Walk(%q) = %q, scan %q", flt, got, want)
			}
		}
	})
}

// pairSeenBefore reports whether fs[i] with key i%3 was added before i.
func pairSeenBefore(fs []string, i int) bool {
	for j := range i {
		if fs[j] == fs[i] && j%3 == i%3 {
			return true
		}
	}
	return false
}

// storedTopics lists every topic in r by walking the trie directly (Walk
// with "#" would skip '$' topics).
func storedTopics[V any](r *Retained[V]) []string {
	var out []string
	var rec func(n *rnode[V])
	rec = func(n *rnode[V]) {
		if n.has {
			out = append(out, n.topic)
		}
		for _, c := range n.children {
			rec(c)
		}
	}
	rec(&r.root)
	return out
}

// FuzzValidFilter checks that validation never panics and agrees with the
// oracle, that limits hold, that ParseShared splits losslessly, and that a
// valid filter adds to and removes from a Tree without leaving nodes.
func FuzzValidFilter(f *testing.F) {
	for _, s := range []string{
		"#", "+", "a/#", "a/+/b", "a#", "a/#/b", "+a", "", "/", "a//b", "\x00",
		"\xff", "\xed\xa0\x80", "$share/g/a/#", "$share/g", "$share//a", "$share/g+/a",
		"caf\u00e9/+",
	} {
		f.Add(s, 0, 0)
		f.Add(s, 3, 2)
	}
	f.Fuzz(func(t *testing.T, s string, maxLen, maxLevels int) {
		errF := ValidFilter(s, maxLen, maxLevels)
		errN := ValidName(s, maxLen, maxLevels)
		if errN == nil && errF != nil {
			t.Fatalf("%q is a valid name but not a valid filter: %v", s, errF)
		}
		if errN == nil && strings.ContainsAny(s, "+#") {
			t.Fatalf("%q with a wildcard accepted as a name", s)
		}
		unlimited := ValidFilter(s, 0, 0)
		if (unlimited == nil) != refValidFilter(s) {
			t.Fatalf("ValidFilter(%q) = %v, oracle says valid=%v", s, unlimited, refValidFilter(s))
		}
		if errF == nil {
			if maxLen > 0 && len(s) > maxLen {
				t.Fatalf("%q accepted beyond maxLen %d", s, maxLen)
			}
			if levels := strings.Count(s, "/") + 1; maxLevels > 0 && levels > maxLevels {
				t.Fatalf("%q accepted with %d levels beyond %d", s, levels, maxLevels)
			}
		}
		if unlimited == nil && errF != nil && !errors.Is(errF, ErrTooLong) && !errors.Is(errF, ErrTooManyLevels) {
			t.Fatalf("limits turned %q invalid with %v", s, errF)
		}

		group, inner, shared, err := ParseShared(s)
		if shared != strings.HasPrefix(s, SharePrefix) {
			t.Fatalf("ParseShared(%q) shared = %v", s, shared)
		}
		if !shared {
			if err != nil || inner != s || group != "" {
				t.Fatalf("ParseShared(%q) = %q, %q, %v on a non-shared filter", s, group, inner, err)
			}
		} else {
			g, in, ok := strings.Cut(s[len(SharePrefix):], "/")
			wellFormed := ok && g != "" && !strings.ContainsAny(g, "+#") &&
				utf8.ValidString(g) && !strings.Contains(g, "\x00") && refValidFilter(in)
			if (err == nil) != wellFormed {
				t.Fatalf("ParseShared(%q) err = %v, oracle says well-formed=%v", s, err, wellFormed)
			}
			if err == nil && (group != g || inner != in) {
				t.Fatalf("ParseShared(%q) = %q, %q; want %q, %q", s, group, inner, g, in)
			}
		}

		if unlimited == nil {
			var tr Tree[int, int]
			tr.Add(s, 1, 1)
			tr.Add(s, 2, 2)
			if v, ok := tr.Get(s, 2); !ok || v != 2 {
				t.Fatalf("Get(%q) = %d, %v", s, v, ok)
			}
			if !tr.Remove(s, 1) || !tr.Remove(s, 2) || tr.Len() != 0 || countNodes(&tr.root) != 1 {
				t.Fatalf("Add/Remove(%q) left Len %d, %d nodes", s, tr.Len(), countNodes(&tr.root))
			}
		}
	})
}
