package topic

import (
	"errors"
	"strings"
	"testing"
)

type validCase struct {
	spec      string // normative statement the case exercises
	in        string
	maxLen    int
	maxLevels int
	want      error
}

func runValid(t *testing.T, f func(string, int, int) error, cases []validCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.spec+"/"+c.in, func(t *testing.T) {
			err := f(c.in, c.maxLen, c.maxLevels)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("(%q, %d, %d) = %v, want %v", c.in, c.maxLen, c.maxLevels, err, c.want)
			}
		})
	}
}

var long65536 = strings.Repeat("a", MaxLen+1)

func TestValidFilter(t *testing.T) {
	runValid(t, ValidFilter, []validCase{
		// [MQTT-4.7.1-1] (3.1.1 [MQTT-4.7.1-2]): '#' alone, in the last level.
		{"MQTT-4.7.1-1", "#", 0, 0, nil},
		{"MQTT-4.7.1-1", "sport/#", 0, 0, nil},
		{"MQTT-4.7.1-1", "sport/tennis/#", 0, 0, nil},
		{"MQTT-4.7.1-1", "/#", 0, 0, nil},
		{"MQTT-4.7.1-1", "+/#", 0, 0, nil},
		{"MQTT-4.7.1-1", "sport/tennis#", 0, 0, ErrMultiLevelWildcard},
		{"MQTT-4.7.1-1", "sport/tennis/#/ranking", 0, 0, ErrMultiLevelWildcard},
		{"MQTT-4.7.1-1", "#/", 0, 0, ErrMultiLevelWildcard},
		{"MQTT-4.7.1-1", "##", 0, 0, ErrMultiLevelWildcard},
		{"MQTT-4.7.1-1", "a/#b", 0, 0, ErrMultiLevelWildcard},
		// [MQTT-4.7.1-2] (3.1.1 [MQTT-4.7.1-3]): '+' alone in its level.
		{"MQTT-4.7.1-2", "+", 0, 0, nil},
		{"MQTT-4.7.1-2", "+/tennis/#", 0, 0, nil},
		{"MQTT-4.7.1-2", "sport/+/player1", 0, 0, nil},
		{"MQTT-4.7.1-2", "/+", 0, 0, nil},
		{"MQTT-4.7.1-2", "+/+", 0, 0, nil},
		{"MQTT-4.7.1-2", "+//+", 0, 0, nil},
		{"MQTT-4.7.1-2", "sport+", 0, 0, ErrSingleLevelWildcard},
		{"MQTT-4.7.1-2", "+sport", 0, 0, ErrSingleLevelWildcard},
		{"MQTT-4.7.1-2", "sport/+tennis", 0, 0, ErrSingleLevelWildcard},
		{"MQTT-4.7.1-2", "++", 0, 0, ErrSingleLevelWildcard},
		{"MQTT-4.7.1-2", "a/+#", 0, 0, ErrSingleLevelWildcard},
		// [MQTT-4.7.3-1]: at least one character.
		{"MQTT-4.7.3-1", "", 0, 0, ErrEmpty},
		{"MQTT-4.7.3-1", "/", 0, 0, nil},
		{"MQTT-4.7.3-1", "a//b", 0, 0, nil},
		{"MQTT-4.7.3-1", " ", 0, 0, nil},
		// [MQTT-1.5.4-1] (3.1.1 [MQTT-1.5.3-1]): well-formed UTF-8.
		{"MQTT-1.5.4-1", "caf\u00e9/+", 0, 0, nil},
		{"MQTT-1.5.4-1", "\U0001F600/#", 0, 0, nil},
		{"MQTT-1.5.4-1", "a/\xff", 0, 0, ErrInvalidUTF8},
		{"MQTT-1.5.4-1", "a/\xc3", 0, 0, ErrInvalidUTF8},         // truncated sequence
		{"MQTT-1.5.4-1", "\xc0\xaf", 0, 0, ErrInvalidUTF8},       // overlong '/'
		{"MQTT-1.5.4-1", "a/\xed\xa0\x80", 0, 0, ErrInvalidUTF8}, // surrogate U+D800
		{"MQTT-1.5.4-1", "\xef\xbf\xbd", 0, 0, nil},              // U+FFFD itself is fine
		// [MQTT-1.5.4-3]: U+FEFF is kept, not stripped.
		{"MQTT-1.5.4-3", "\ufeff/#", 0, 0, nil},
		// [MQTT-1.5.4-2] [MQTT-4.7.3-2] (3.1.1 [MQTT-1.5.3-2]): no U+0000.
		{"MQTT-1.5.4-2", "a\x00b", 0, 0, ErrNullChar},
		{"MQTT-1.5.4-2", "\x00", 0, 0, ErrNullChar},
		// [MQTT-4.7.3-3] and the configured length limit.
		{"MQTT-4.7.3-3", long65536, 0, 0, ErrTooLong},
		{"MQTT-4.7.3-3", long65536, 1 << 20, 0, ErrTooLong},
		{"MQTT-4.7.3-3", long65536[:MaxLen], 0, 0, nil},
		{"limit-length", "abcd", 4, 0, nil},
		{"limit-length", "abcde", 4, 0, ErrTooLong},
		// Configured level limit: levels are separators + 1.
		{"limit-levels", "a/b/c", 0, 3, nil},
		{"limit-levels", "a/b/c/d", 0, 3, ErrTooManyLevels},
		{"limit-levels", "///", 0, 4, nil},
		{"limit-levels", "///", 0, 3, ErrTooManyLevels},
		{"limit-levels", "#", 0, 1, nil},
	})
}

func TestValidName(t *testing.T) {
	runValid(t, ValidName, []validCase{
		// [MQTT-4.7.0-1] (3.1.1 [MQTT-4.7.1-1]): no wildcards in a name.
		{"MQTT-4.7.0-1", "sport/tennis/player1", 0, 0, nil},
		{"MQTT-4.7.0-1", "#", 0, 0, ErrWildcardInName},
		{"MQTT-4.7.0-1", "sport/#", 0, 0, ErrWildcardInName},
		{"MQTT-4.7.0-1", "+", 0, 0, ErrWildcardInName},
		{"MQTT-4.7.0-1", "sport/+/x", 0, 0, ErrWildcardInName},
		{"MQTT-4.7.0-1", "a+b", 0, 0, ErrWildcardInName},
		{"MQTT-4.7.0-1", "a#b", 0, 0, ErrWildcardInName},
		{"MQTT-4.7.0-1", "$SYS/broker/uptime", 0, 0, nil},
		// [MQTT-4.7.3-1]
		{"MQTT-4.7.3-1", "", 0, 0, ErrEmpty},
		{"MQTT-4.7.3-1", "/", 0, 0, nil},
		{"MQTT-4.7.3-1", "/finance", 0, 0, nil},
		{"MQTT-4.7.3-1", "a//b", 0, 0, nil},
		{"MQTT-4.7.3-1", "a/", 0, 0, nil},
		// [MQTT-1.5.4-1], [MQTT-1.5.4-2]
		{"MQTT-1.5.4-1", "\xed\xbf\xbf", 0, 0, ErrInvalidUTF8},
		{"MQTT-1.5.4-1", "\xf4\x90\x80\x80", 0, 0, ErrInvalidUTF8}, // above U+10FFFF
		{"MQTT-1.5.4-2", "a/\x00", 0, 0, ErrNullChar},
		// [MQTT-4.7.3-3] and limits.
		{"MQTT-4.7.3-3", long65536, 0, 0, ErrTooLong},
		{"limit-length", "\u00e9\u00e9", 3, 0, ErrTooLong}, // length is in bytes
		{"limit-levels", "a/b", 0, 1, ErrTooManyLevels},
	})
}

// A valid topic name is always a valid topic filter.
func TestValidNameImpliesValidFilter(t *testing.T) {
	for _, s := range []string{"a", "/", "a//b", "$SYS/x", "caf\u00e9"} {
		if ValidName(s, 0, 0) == nil && ValidFilter(s, 0, 0) != nil {
			t.Errorf("%q: valid name but not a valid filter", s)
		}
	}
}

func TestParseShared(t *testing.T) {
	cases := []struct {
		spec          string
		in            string
		group, inner  string
		shared        bool
		want, wantToo error
	}{
		// Not shared: returned untouched, unchecked.
		{"MQTT-4.8.2-1", "sport/#", "", "sport/#", false, nil, nil},
		{"MQTT-4.8.2-1", "$share", "", "$share", false, nil, nil},
		{"MQTT-4.8.2-1", "$sharex/g/a", "", "$sharex/g/a", false, nil, nil},
		{"MQTT-4.8.2-1", "$SHARE/g/a", "", "$SHARE/g/a", false, nil, nil},
		// [MQTT-4.8.2-1]: "$share/" then a non-empty ShareName.
		{"MQTT-4.8.2-1", "$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", true, nil, nil},
		{"MQTT-4.8.2-1", "$share/g/#", "g", "#", true, nil, nil},
		{"MQTT-4.8.2-1", "$share/g//", "g", "/", true, nil, nil},
		{"MQTT-4.8.2-1", "$share/g/$SYS/#", "g", "$SYS/#", true, nil, nil},
		{"MQTT-4.8.2-1", "$share//a", "", "", true, ErrShareName, nil},
		{"MQTT-4.8.2-1", "$share/", "", "", true, ErrShareName, nil},
		// [MQTT-4.8.2-2]: ShareName without / + #, followed by / and a filter.
		{"MQTT-4.8.2-2", "$share/g+/a", "", "", true, ErrShareName, nil},
		{"MQTT-4.8.2-2", "$share/+/a", "", "", true, ErrShareName, nil},
		{"MQTT-4.8.2-2", "$share/#/a", "", "", true, ErrShareName, nil},
		{"MQTT-4.8.2-2", "$share/g#", "", "", true, ErrShareName, nil},
		{"MQTT-4.8.2-2", "$share/grp", "", "", true, ErrSharedFilter, nil},
		{"MQTT-4.8.2-2", "$share/grp/", "", "", true, ErrSharedFilter, nil},
		{"MQTT-4.8.2-2", "$share/g/a/#/b", "", "", true, ErrSharedFilter, ErrMultiLevelWildcard},
		{"MQTT-4.8.2-2", "$share/g/a+", "", "", true, ErrSharedFilter, ErrSingleLevelWildcard},
		{"MQTT-4.8.2-2", "$share/g/a\x00", "", "", true, ErrSharedFilter, ErrNullChar},
		{"MQTT-1.5.4-1", "$share/\xff/a", "", "", true, ErrShareName, nil},
		{"MQTT-1.5.4-2", "$share/\x00/a", "", "", true, ErrShareName, nil},
	}
	for _, c := range cases {
		t.Run(c.spec+"/"+c.in, func(t *testing.T) {
			g, f, sh, err := ParseShared(c.in)
			if g != c.group || f != c.inner || sh != c.shared {
				t.Errorf("ParseShared(%q) = %q, %q, %v; want %q, %q, %v", c.in, g, f, sh, c.group, c.inner, c.shared)
			}
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("ParseShared(%q) err = %v, want %v", c.in, err, c.want)
			}
			if c.wantToo != nil && !errors.Is(err, c.wantToo) {
				t.Errorf("ParseShared(%q) err = %v, want it to wrap %v", c.in, err, c.wantToo)
			}
		})
	}
}

func TestValidationDoesNotAllocate(t *testing.T) {
	filter := "building/b12/floor/+/room/r7/#"
	name := "building/b12/floor/f3/room/r7/temp"
	shared := "$share/g/" + filter
	allocs := testing.AllocsPerRun(100, func() {
		_ = ValidFilter(filter, 0, 0)
		_ = ValidName(name, 0, 0)
		_ = ValidFilter("a/#/b", 0, 0) // error path: a sentinel, no allocation
		_, _, _, _ = ParseShared(shared)
	})
	if allocs != 0 {
		t.Errorf("allocs = %v, want 0", allocs)
	}
}
