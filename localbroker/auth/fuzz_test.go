package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addFileSeeds adds every testdata file ending in ext to the corpus.
func addFileSeeds(f *testing.F, ext string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*"+ext))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no testdata/*%s seeds (%v)", ext, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

// checkParseError asserts that err is a *ParseError pointing at a line of
// input (or one past its end, for a line that never ended).
func checkParseError(t *testing.T, err error, name, input string) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %T %v, want *ParseError", err, err)
	}
	lines := strings.Count(input, "\n") + 1
	if pe.File != name || pe.Line < 1 || pe.Line > lines {
		t.Fatalf("error at %s:%d, input has %d lines: %v", pe.File, pe.Line, lines, err)
	}
	if !strings.HasPrefix(err.Error(), name+":") {
		t.Fatalf("error %q does not start with the file name", err)
	}
}

func FuzzParsePasswordFile(f *testing.F) {
	addFileSeeds(f, ".passwd")
	for _, s := range []string{
		"", "\n", "#\n", "a:b", ":", "a:$", "a:$7$", "a:$7$1$$", "a:$6$$$",
		"a:" + validHash7 + "\na:" + validHash6,
		"a:$7$101$" + salt12 + "$" + hash64 + "$",
		"\ufeffa:" + validHash6 + "\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		pf, err := ParsePasswordFile(strings.NewReader(input), "fuzz.pw")
		if err != nil {
			if pf != nil {
				t.Fatal("non-nil file with an error")
			}
			checkParseError(t, err, "fuzz.pw", input)
			return
		}
		// Every line that is not blank or a comment is one user.
		users := 0
		for i, line := range strings.Split(input, "\n") {
			if i == 0 {
				line = strings.TrimPrefix(line, "\ufeff")
			}
			line = trimBlanks(line)
			if line == "" || line[0] == '#' {
				continue
			}
			users++
			user, _, _ := strings.Cut(line, ":")
			if !pf.Has(trimBlanks(user)) {
				t.Fatalf("user %q of line %d is missing", trimBlanks(user), i+1)
			}
		}
		if pf.Len() != users {
			t.Fatalf("Len() = %d, want %d", pf.Len(), users)
		}
		// Check is not called: a fuzzed iteration count could make one
		// PBKDF2 run for minutes.
	})
}

func FuzzParseACL(f *testing.F) {
	addFileSeeds(f, ".acl")
	for _, s := range []string{
		"", "topic", "topic read", "topic a/#/b", "user", "user x\ntopic deny #",
		"pattern readwrite %c/%u/+/#", "pattern read a%c", "topic read $SYS/#",
		"topic read a b c", "\ttopic\twrite\t+\r\n", "\ufeffuser \xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		a, err := ParseACL(strings.NewReader(input), "fuzz.acl")
		if err != nil {
			if a != nil {
				t.Fatal("non-nil ACL with an error")
			}
			checkParseError(t, err, "fuzz.acl", input)
			return
		}
		// Ask about topics and names taken from the input itself, so the
		// matcher meets the levels, wildcards and substitutions it parsed.
		words := strings.FieldsFunc(input, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
		if len(words) > 20 {
			words = words[:20]
		}
		words = append(words, "a", "$SYS/x", "")
		for _, w := range words {
			for _, who := range [][2]string{{"c", ""}, {w, ""}, {"c", w}, {w, w}} {
				r := a.Check(who[0], who[1], w, Read)
				wr := a.Check(who[0], who[1], w, Write)
				if (r || wr) && (w == "" || strings.ContainsAny(w, "+#")) {
					t.Fatalf("access granted to invalid topic name %q", w)
				}
				if !a.Check(who[0], who[1], w, Subscribe) {
					t.Fatal("Subscribe denied; mosquitto grants every subscription")
				}
			}
		}
	})
}

// FuzzTopicMatch compares the ACL matcher with a plain reading of the MQTT
// matching rules on split levels.
func FuzzTopicMatch(f *testing.F) {
	for _, tc := range [][2]string{
		{"a/b", "a/b"}, {"+/+", "/"}, {"a/#", "a"}, {"#", "$SYS/x"}, {"$SYS/#", "$SYS"},
		{"+/#", "a"}, {"a/+/#", "a"}, {"a//b", "a//b"}, {"/#", "a"},
	} {
		f.Add(tc[0], tc[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		r, err := parseFilter(filter, false)
		if err != nil || topic == "" || strings.ContainsAny(topic, "+#") {
			return
		}
		got := r.match(topic, "", "")
		if want := refMatch(filter, topic); got != want {
			t.Fatalf("filter %q topic %q: match = %v, want %v", filter, topic, got, want)
		}
	})
}

// refMatch is the MQTT rule written the obvious way.
func refMatch(filter, topic string) bool {
	if (filter[0] == '$') != (topic[0] == '$') {
		return false // [MQTT-4.7.2-1], and mosquitto's converse
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) {
			return false
		}
		if f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}
