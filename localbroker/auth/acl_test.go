package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// aclCase is one question to an ACL and mosquitto's answer to it.
type aclCase struct {
	clientID, username, topic string
	access                    Access
	want                      bool
}

func (c aclCase) String() string {
	u := c.username
	if u == "" {
		u = "(anonymous)"
	}
	return fmt.Sprintf("%s/%s %s %q", c.clientID, u, c.access, c.topic)
}

func runACLCases(t *testing.T, a *ACL, cases []aclCase) {
	t.Helper()
	for _, c := range cases {
		if got := a.Check(c.clientID, c.username, c.topic, c.access); got != c.want {
			t.Errorf("Check(%v) = %v, want %v", c, got, c.want)
		}
	}
}

func mustParseACL(t *testing.T, text string) *ACL {
	t.Helper()
	a, err := ParseACL(strings.NewReader(text), "test.acl")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func loadExampleACL(t testing.TB) *ACL {
	t.Helper()
	a, err := LoadACLFile(filepath.Join("testdata", "example.acl"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// exampleCases are checked against testdata/example.acl here and against
// mosquitto itself in TestACLAgreesWithMosquitto.
var exampleCases = []aclCase{
	// Anonymous block.
	{"anon1", "", "public/in", Write, true},
	{"anon1", "", "public/other", Write, false},
	{"anon1", "", "public/news", Read, true},
	{"anon1", "", "public", Read, true}, // '#' includes the parent level
	{"anon1", "", "public/private/x", Read, false},
	{"anon1", "", "public/private", Read, false},
	{"anon1", "", "alice/x", Read, false},
	{"anon1", "", "dev/anon1/temp", Write, true},   // pattern %c
	{"anon1", "", "dev/anon1/locked", Read, false}, // deny pattern
	{"anon1", "", "dev/other/temp", Write, false},
	{"anon1", "", "users/anon1/inbox", Read, false}, // %u needs a username

	// User block.
	{"a1", "alice", "alice/x", Write, true},
	{"a1", "alice", "alice/x/y", Read, true},
	{"a1", "alice", "alice", Read, true},
	{"a1", "alice", "alice/secret", Write, false},
	{"a1", "alice", "alice/secret", Read, false},
	{"a1", "alice", "alice/secret/more", Read, true},
	{"a1", "alice", "shared/bob/status", Read, true},
	{"a1", "alice", "shared/bob/status", Write, false},
	{"a1", "alice", "shared/bob/status/x", Read, false},
	{"a1", "alice", "public/in", Write, false}, // not anonymous
	{"a1", "alice", "public/news", Read, false},
	{"a1", "alice", "dev/a1/x", Write, true},
	{"a1", "alice", "dev/a1", Read, true},
	{"a1", "alice", "dev/a1/locked", Read, false},
	{"a1", "alice", "users/alice/inbox", Read, true},
	{"a1", "alice", "users/alice/inbox", Write, false},
	{"a1", "alice", "users/bob/inbox", Read, false},
	{"a1", "alice", "$app/alice/x", Read, true},
	{"a1", "alice", "$app/other", Read, false},
	{"a1", "alice", "$app/a1/up", Write, true},
	{"a1", "alice", "$app/a1/up", Read, false},
	{"b1", "bob", "bob/out", Write, true},
	{"b1", "bob", "bob/out", Read, false},
	{"b1", "bob", "shared/bob/status", Write, true},
	{"b1", "bob", "alice/x", Read, false},

	// A user with an empty block, and one with no block: patterns only.
	{"c1", "carol", "users/carol/inbox", Read, true},
	{"c1", "carol", "dev/c1/x", Write, true},
	{"c1", "carol", "alice/x", Read, false},
	{"d1", "dave", "users/dave/inbox", Read, true},
	{"d1", "dave", "public/news", Read, false},

	// '$' topics.
	{"adm", "admin", "anything/at/all", Read, true},
	{"adm", "admin", "$app/x", Write, true},
	{"h1", "hash", "a/b", Read, true},
	{"h1", "hash", "$app/x", Read, false},
	{"h1", "hash", "$app/x", Write, false},

	// Wildcards in a username or client id disable the patterns.
	{"e1", "ev+il", "evil/ok", Write, true}, // own block first
	{"e1", "ev+il", "dev/e1/x", Write, false},
	{"e1", "ev+il", "dev/e1/y", Read, false},
	{"x+y", "", "public/in", Write, true},
	{"x+y", "", "dev/q/a", Write, false},
	{"c#1", "carol", "users/carol/inbox", Read, false},
}

func TestACLExampleFile(t *testing.T) {
	runACLCases(t, loadExampleACL(t), exampleCases)
}

func TestACLAnonymousBlockAppliesOnlyWithoutUsername(t *testing.T) {
	a := mustParseACL(t, "topic read news/#\nuser alice\ntopic read alice/#\n")
	runACLCases(t, a, []aclCase{
		{"c", "", "news/today", Read, true},
		{"c", "", "alice/x", Read, false},
		{"c", "alice", "news/today", Read, false},
		{"c", "alice", "alice/x", Read, true},
		{"c", "bob", "news/today", Read, false},
	})
}

func TestACLUserBlocksWithTheSameNameAddUp(t *testing.T) {
	a := mustParseACL(t, "user alice\ntopic read a\nuser bob\ntopic read b\nuser alice\ntopic write c\n")
	runACLCases(t, a, []aclCase{
		{"c", "alice", "a", Read, true},
		{"c", "alice", "c", Write, true},
		{"c", "alice", "b", Read, false},
		{"c", "bob", "b", Read, true},
		{"c", "bob", "c", Write, false},
	})
}

func TestACLUsernameIsTheRestOfTheLine(t *testing.T) {
	a := mustParseACL(t, "user  alice smith  \ntopic read x\n")
	runACLCases(t, a, []aclCase{
		{"c", "alice smith", "x", Read, true},
		{"c", "alice", "x", Read, false},
	})
}

func TestACLPatternSubstitutesClientID(t *testing.T) {
	a := mustParseACL(t, "pattern readwrite devices/%c/#\npattern read %c\n")
	runACLCases(t, a, []aclCase{
		{"dev1", "", "devices/dev1/temp", Write, true},
		{"dev1", "", "devices/dev1", Read, true},
		{"dev1", "", "devices/dev2/temp", Write, false},
		{"dev1", "", "devices/dev10/temp", Write, false},
		{"dev10", "", "devices/dev1/temp", Write, false},
		{"dev1", "u", "devices/dev1/temp", Write, true}, // patterns apply to users too
		{"dev1", "", "dev1", Read, true},
		{"dev1", "", "dev1", Write, false},
		{"", "", "devices//x", Read, false},        // an empty client id matches nothing
		{"a/b", "", "devices/a/b/x", Write, false}, // a '/' in the id never equals one level
		{"a/b", "", "a/b", Read, false},
		{"%c", "", "devices/%c/x", Write, true}, // the id is compared, not expanded
	})
}

func TestACLPatternSubstitutesUsername(t *testing.T) {
	a := mustParseACL(t, "topic read anon/#\npattern write users/%u/out\npattern read users/%u/%c/in\n")
	runACLCases(t, a, []aclCase{
		{"c1", "alice", "users/alice/out", Write, true},
		{"c1", "alice", "users/bob/out", Write, false},
		{"c1", "", "users//out", Write, false}, // no username: %u patterns skipped
		{"c1", "", "anon/x", Read, true},
		{"c1", "alice", "users/alice/c1/in", Read, true},
		{"c1", "alice", "users/alice/c2/in", Read, false},
		{"c1", "a/b", "users/a/b/out", Write, false},
	})
}

func TestACLPatternDeniesWildcardNames(t *testing.T) {
	// mosquitto: once the client's own block has not decided, a client
	// whose username or client id contains '+' or '#' gets nothing from the
	// patterns, not even from patterns without %c or %u.
	a := mustParseACL(t, "user u+1\ntopic read own\npattern read %u/#\npattern read everyone\n")
	runACLCases(t, a, []aclCase{
		{"c", "u+1", "own", Read, true},
		{"c", "u+1", "u+1/x", Read, false},
		{"c", "u+1", "everyone", Read, false},
		{"c#", "bob", "everyone", Read, false},
		{"c+", "", "everyone", Read, false},
		{"c", "bob", "everyone", Read, true},
		{"c", "bob", "bob/x", Read, true},
	})
	// Without patterns, wildcard names are not special.
	b := mustParseACL(t, "user u#\ntopic read x\n")
	runACLCases(t, b, []aclCase{{"c+", "u#", "x", Read, true}})
}

func TestACLDenyTakesPrecedenceWithinABlock(t *testing.T) {
	// The deny line comes after the grant: order in the file does not matter.
	a := mustParseACL(t, "topic readwrite home/#\ntopic deny home/+/secret\n"+
		"pattern readwrite dev/%c/#\npattern deny dev/%c/fw/#\n")
	runACLCases(t, a, []aclCase{
		{"c", "", "home/a/secret", Read, false},
		{"c", "", "home/a/secret", Write, false},
		{"c", "", "home/a/public", Write, true},
		{"c", "", "home/secret", Read, true},
		{"c", "", "dev/c/fw", Write, false},
		{"c", "", "dev/c/fw/v2", Read, false},
		{"c", "", "dev/c/x", Write, true},
	})
}

func TestACLUserGrantBeatsDenyPattern(t *testing.T) {
	// mosquitto tries the user's block before the patterns and stops at the
	// first decision, so a deny pattern does not undo a user grant; a deny
	// in the block does beat a grant pattern.
	a := mustParseACL(t, "user alice\ntopic readwrite x/#\ntopic deny y/#\n"+
		"pattern deny x/%u\npattern readwrite y/%u\n")
	runACLCases(t, a, []aclCase{
		{"c", "alice", "x/alice", Write, true},
		{"c", "alice", "y/alice", Write, false},
		{"c", "bob", "x/bob", Write, false},
		{"c", "bob", "y/bob", Write, true},
	})
}

func TestACLReadWriteAndSubscribeAreSeparate(t *testing.T) {
	a := mustParseACL(t, "topic read r\ntopic write w\ntopic readwrite rw\ntopic rw-default\n")
	runACLCases(t, a, []aclCase{
		{"c", "", "r", Read, true},
		{"c", "", "r", Write, false},
		{"c", "", "w", Read, false},
		{"c", "", "w", Write, true},
		{"c", "", "rw", Read, true},
		{"c", "", "rw", Write, true},
		{"c", "", "rw-default", Read, true},
		{"c", "", "rw-default", Write, true},
		{"c", "", "r", Access(0), false},
		{"c", "", "r", Access(99), false},
	})
}

func TestACLSubscribeIsGrantedLikeMosquitto(t *testing.T) {
	// mosquitto's acl_file check grants every SUBSCRIBE and filters at
	// delivery with Read (TestACLAgreesWithMosquitto shows it with a real
	// broker). Even a filter that only denied topics match is granted.
	a := loadExampleACL(t)
	for _, c := range []aclCase{
		{"anon1", "", "#", Subscribe, true},
		{"anon1", "", "public/private/#", Subscribe, true},
		{"a1", "alice", "alice/secret", Subscribe, true},
		{"x", "nobody", "+/+", Subscribe, true},
		{"x", "", "$SYS/#", Subscribe, true},
	} {
		if got := a.Check(c.clientID, c.username, c.topic, c.access); got != c.want {
			t.Errorf("Check(%v) = %v, want %v", c, got, c.want)
		}
	}
	// What the subscriber of "#" then receives is decided per message.
	runACLCases(t, a, []aclCase{
		{"anon1", "", "public/news", Read, true},
		{"anon1", "", "public/private/x", Read, false},
	})
}

func TestACLDollarTopicsNeedDollarFilters(t *testing.T) {
	a := mustParseACL(t, "topic read #\ntopic read +/x\ntopic read $SYS/broker/#\ntopic write $app/+/cmd\n")
	runACLCases(t, a, []aclCase{
		{"c", "", "a/b", Read, true},
		{"c", "", "$SYS/broker/uptime", Read, true},
		{"c", "", "$SYS/other", Read, false}, // '#' and '+/x' do not reach '$' topics [MQTT-4.7.2-1]
		{"c", "", "$x", Read, false},
		{"c", "", "$app/1/cmd", Write, true},
		{"c", "", "$app/1/cmd", Read, false},
	})
}

func TestACLWildcardMatching(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b", "a", false},
		{"a/b", "A/b", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"+/+", "/", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a//c", true},
		{"a/+/c", "a/b/d", false},
		{"#", "a", true},
		{"#", "/", true},
		{"#", "a/b/c", true},
		{"a/#", "a", true},
		{"a/#", "a/", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"+/#", "a", true},
		{"a/+/#", "a/b", true},
		{"a/+/#", "a", false},
		{"/#", "/a", true},
		{"/#", "a", false},
		{"a b/c d", "a b/c d", true},
		{"ünï/+", "ünï/cöde", true},
		{"$SYS/#", "$SYS", true},
		{"$SYS/+", "$SYS/x", true},
		{"+/x", "$SYS/x", false},
		{"#", "$SYS", false},
	}
	for _, tc := range tests {
		a := mustParseACL(t, "topic read "+tc.filter+"\n")
		if got := a.Check("c", "", tc.topic, Read); got != tc.want {
			t.Errorf("filter %q, topic %q: Check = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestACLDeniesInvalidTopicNames(t *testing.T) {
	a := mustParseACL(t, "topic readwrite #\n")
	for _, topic := range []string{"", "a/+", "a/#", "+", "#"} {
		for _, acc := range []Access{Read, Write} {
			if a.Check("c", "", topic, acc) {
				t.Errorf("Check(%q, %v) = true for an invalid topic name", topic, acc)
			}
		}
	}
}

func TestACLEmptyAndNil(t *testing.T) {
	empty := mustParseACL(t, "# nothing\n\n")
	var nilACL *ACL
	for _, a := range []*ACL{empty, nilACL} {
		if a.Check("c", "", "a", Read) || a.Check("c", "u", "a", Write) {
			t.Errorf("%v: an ACL without rules must deny", a)
		}
	}
	if nilACL.Check("c", "", "#", Subscribe) {
		t.Error("nil ACL must deny subscriptions too")
	}
	// A user line without topic lines gives that user nothing.
	runACLCases(t, mustParseACL(t, "user alice\n"), []aclCase{{"c", "alice", "a", Read, false}})
}

func TestParseACLLayout(t *testing.T) {
	tests := []struct {
		name  string
		input string
		cases []aclCase
	}{
		{"comments, blank and indented lines", "# c\n\n  # indented comment\n   topic read a\n\t\n", []aclCase{{"c", "", "a", Read, true}}},
		{"CRLF", "topic read a\r\nuser u\r\ntopic write b\r\n", []aclCase{{"c", "", "a", Read, true}, {"c", "u", "b", Write, true}}},
		{"tabs and runs of spaces", "topic\tread\t\ta\nuser \t u\ntopic   write    b  \n", []aclCase{{"c", "", "a", Read, true}, {"c", "u", "b", Write, true}}},
		{"topic with spaces after an access word", "topic read my topic/with  spaces\n", []aclCase{{"c", "", "my topic/with  spaces", Read, true}}},
		{"byte order mark", "\ufefftopic read a\n", []aclCase{{"c", "", "a", Read, true}}},
		{"no final newline", "topic write a", []aclCase{{"c", "", "a", Write, true}}},
		{"percent outside patterns is literal", "topic read %c/x\n", []aclCase{{"%c", "", "%c/x", Read, true}, {"id", "", "id/x", Read, false}}},
		{"percent not followed by c or u", "pattern read 100%/%c\n", []aclCase{{"id", "", "100%/id", Read, true}}},
		{"pattern without substitution", "pattern read everyone\n", []aclCase{{"id", "", "everyone", Read, true}, {"id", "u", "everyone", Read, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runACLCases(t, mustParseACL(t, tc.input), tc.cases)
		})
	}
}

func TestParseACLErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		line  int
		msg   string
	}{
		{"unknown keyword", "# ok\ntopik read a\n", 2, `unknown keyword "topik"`},
		{"keywords are case-sensitive", "Topic read a\n", 1, `unknown keyword "Topic"`},
		{"bare word", "read\n", 1, `unknown keyword "read"`},
		{"topic without topic", "topic\n", 1, `missing topic after "topic"`},
		{"topic with blanks only", "topic   \t\n", 1, `missing topic after "topic"`},
		{"pattern without topic", "pattern\n", 1, `missing topic after "pattern"`},
		{"access word without topic", "topic read\n", 1, `missing topic after "topic read"`},
		{"deny without topic", "pattern deny\n", 1, `missing topic after "pattern deny"`},
		{"bad access word", "topic reed a\n", 1, `invalid access "reed"`},
		{"access words are case-sensitive", "topic READ a\n", 1, `invalid access "READ"`},
		{"topic with spaces needs an access word", "topic my topic\n", 1, `invalid access "my"`},
		{"user without name", "topic read a\nuser\n", 2, "missing username"},
		{"user with blanks only", "user  \t \n", 1, "missing username"},
		{"user with invalid UTF-8", "user \xff\n", 1, "not valid UTF-8"},
		{"hash not last", "topic read a/#/b\n", 1, "'#' must be the last level"},
		{"hash inside a level", "topic read a/b#\n", 1, "must be a whole level"},
		{"plus inside a level", "topic read a/+b/c\n", 1, "must be a whole level"},
		{"plus at the end of a level", "topic read a+\n", 1, "must be a whole level"},
		{"trailing comment", "topic read a/b # comment\n", 1, "must be a whole level"},
		{"percent-c inside a level", "pattern read dev/x%c\n", 1, "%c and %u must be a whole level"},
		{"percent-u inside a level", "pattern read %u-data/x\n", 1, "%c and %u must be a whole level"},
		{"invalid UTF-8 topic", "topic read a/\xc3\n", 1, "not valid UTF-8"},
		{"NUL in topic", "topic read a\x00b\n", 1, "U+0000"},
		{"topic too long", "topic read " + strings.Repeat("a", 65536) + "\n", 1, "longer than 65535 bytes"},
		{"line too long", "topic read " + strings.Repeat("a", maxLineBytes) + "\n", 1, "line longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseACL(strings.NewReader(tc.input), "rules.acl")
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %T %v, want *ParseError", err, err)
			}
			if pe.File != "rules.acl" || pe.Line != tc.line {
				t.Errorf("error at %s:%d, want rules.acl:%d (%v)", pe.File, pe.Line, tc.line, err)
			}
			prefix := fmt.Sprintf("rules.acl:%d: ", tc.line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want prefix %q and %q", err, prefix, tc.msg)
			}
		})
	}
}

func TestLoadACLFileMissing(t *testing.T) {
	_, err := LoadACLFile(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[Access]string{Read: "read", Write: "write", Subscribe: "subscribe", 0: "Access(0)"} {
		if got := a.String(); got != want {
			t.Errorf("Access(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}

// BenchmarkACLCheck asks a 100-rule ACL about a topic that only the last
// pattern grants, the slowest path through Check.
func BenchmarkACLCheck(b *testing.B) {
	var sb strings.Builder
	rules := 0
	for i := 0; i < 30; i++ { // anonymous block
		fmt.Fprintf(&sb, "topic read public/%d/#\n", i)
		rules++
	}
	for u := 0; u < 5; u++ { // five users with ten rules each
		fmt.Fprintf(&sb, "user user%d\n", u)
		for i := 0; i < 9; i++ {
			fmt.Fprintf(&sb, "topic readwrite user%d/+/%d/#\n", u, i)
			rules++
		}
		fmt.Fprintf(&sb, "topic deny user%d/secret/#\n", u)
		rules++
	}
	for i := 0; i < 19; i++ {
		fmt.Fprintf(&sb, "pattern write devices/%%c/%d/+\n", i)
		rules++
	}
	sb.WriteString("pattern readwrite devices/%c/sensors/%u/#\n")
	rules++
	if rules != 100 {
		b.Fatalf("built %d rules, want 100", rules)
	}
	a, err := ParseACL(strings.NewReader(sb.String()), "bench.acl")
	if err != nil {
		b.Fatal(err)
	}
	const topic = "devices/gw-17/sensors/user3/temperature/celsius"
	if !a.Check("gw-17", "user3", topic, Write) {
		b.Fatal("benchmark topic is not granted")
	}
	b.ReportAllocs()
	for b.Loop() {
		if !a.Check("gw-17", "user3", topic, Write) {
			b.Fatal("denied")
		}
	}
}
