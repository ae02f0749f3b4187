package auth

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Access is the kind of operation an [ACL] is asked about.
type Access int

const (
	// Read is receiving a PUBLISH on a topic name: checked for every
	// message, retained ones included, before it is delivered to a client.
	Read Access = iota + 1
	// Write is sending a PUBLISH to a topic name (also a will message).
	Write
	// Subscribe is a SUBSCRIBE to a topic filter. See [ACL.Check]: like
	// mosquitto, an ACL file grants every subscription and filters what is
	// delivered with Read.
	Subscribe
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case Subscribe:
		return "subscribe"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// perm is what a rule grants: a set of permRead and permWrite, or none for
// a "deny" rule.
type perm uint8

const (
	permRead perm = 1 << iota
	permWrite
	permDeny perm = 0
)

type levelKind uint8

const (
	levelLiteral levelKind = iota
	levelPlus              // "+"
	levelHash              // "#", always the last level
	levelClient            // "%c" in a pattern line
	levelUser              // "%u" in a pattern line
)

type level struct {
	kind levelKind
	text string // levelLiteral only
}

// rule is one "topic" or "pattern" line.
type rule struct {
	filter string // as written, for messages
	dollar bool   // filter begins with '$'
	levels []level
	user   bool // has a %u level: never applies to a client without username
	line   int
}

// match reports whether topic name t (non-empty, no wildcards) matches the
// rule's filter, with %c and %u levels standing for clientID and username.
// It does not allocate.
func (r *rule) match(t, clientID, username string) bool {
	// mosquitto keeps '$' topics and other topics apart entirely: a filter
	// beginning with a wildcard never matches a '$' topic [MQTT-4.7.2-1],
	// and a filter beginning with '$' only matches '$' topics.
	if r.dollar != (t[0] == '$') {
		return false
	}
	pos := 0 // start of the next level of t; -1 once t is used up
	for _, lv := range r.levels {
		if lv.kind == levelHash {
			return true // '#' also matches the parent level [MQTT-4.7.1-1]
		}
		if pos < 0 {
			return false
		}
		var cur string
		if i := strings.IndexByte(t[pos:], '/'); i >= 0 {
			cur, pos = t[pos:pos+i], pos+i+1
		} else {
			cur, pos = t[pos:], -1
		}
		switch lv.kind {
		case levelPlus:
		case levelClient:
			// A client id holding '/' spans levels and so never equals
			// one: such a client gets nothing from %c.
			if clientID == "" || cur != clientID {
				return false
			}
		case levelUser:
			if username == "" || cur != username {
				return false
			}
		default:
			if cur != lv.text {
				return false
			}
		}
	}
	return pos < 0
}

// ruleSet is the rules of one ACL block, deny rules apart so that they are
// tried first, as mosquitto does by putting them at the front of its lists.
type ruleSet struct {
	deny  []rule
	read  []rule // rules granting read (including readwrite)
	write []rule // rules granting write (including readwrite)
}

func (s *ruleSet) add(r rule, p perm) {
	if p == permDeny {
		s.deny = append(s.deny, r)
		return
	}
	if p&permRead != 0 {
		s.read = append(s.read, r)
	}
	if p&permWrite != 0 {
		s.write = append(s.write, r)
	}
}

// decide runs the set for one request. It reports decided=false when no
// rule matched (or only rules granting the other access), leaving the
// answer to the next set.
func (s *ruleSet) decide(t, clientID, username string, want perm) (allow, decided bool) {
	for i := range s.deny {
		r := &s.deny[i]
		if r.user && username == "" {
			continue
		}
		if r.match(t, clientID, username) {
			return false, true
		}
	}
	grants := s.read
	if want == permWrite {
		grants = s.write
	}
	for i := range grants {
		r := &grants[i]
		if r.user && username == "" {
			continue
		}
		if r.match(t, clientID, username) {
			return true, true
		}
	}
	return false, false
}

func (s *ruleSet) empty() bool {
	return len(s.deny) == 0 && len(s.read) == 0 && len(s.write) == 0
}

// ACL is a parsed mosquitto ACL file. It is read-only and safe for
// concurrent use.
type ACL struct {
	name     string
	anon     ruleSet             // "topic" lines before the first "user" line
	users    map[string]*ruleSet // "topic" lines after "user <name>"
	patterns ruleSet             // "pattern" lines, wherever they are
}

// LoadACLFile reads and parses the mosquitto ACL file at path.
func LoadACLFile(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseACL(f, path)
}

// ParseACL parses an ACL file in mosquitto's acl_file syntax from r; name is
// used in error messages (usually the path). The lines are
//
//	topic [read|write|readwrite|deny] <topic filter>
//	user <username>
//	pattern [read|write|readwrite|deny] <topic filter with %c and %u>
//
// "topic" lines before any "user" line form the anonymous block; "user"
// starts the block of that username (blocks with the same name add up), and
// the "topic" lines after it belong to it. "pattern" lines apply to every
// client wherever they appear. The access word is optional and defaults to
// readwrite; when it is given, the rest of the line is the filter, which
// may then contain spaces. Blank lines and lines whose first non-blank
// character is '#' are comments. Keywords and access words are
// case-sensitive. Blanks are spaces or tabs (mosquitto only accepts spaces).
//
// A filter must be a valid MQTT topic filter: non-empty, at most 65535
// bytes of UTF-8 without U+0000, '#' only as a whole last level and '+'
// only as a whole level [MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.7.3-1]
// [MQTT-4.7.3-2] [MQTT-4.7.3-3]. In a pattern, %c and %u must each be a
// whole level, as mosquitto documents ("the substitution pattern must be
// the only text for that level of hierarchy"); "a/x%c" is an error, since
// current mosquitto would silently never match it.
//
// Where mosquitto would read "topic read" as readwrite access to a topic
// named "read", ParseACL reports a missing topic; write "topic readwrite
// read" for a topic with that name.
//
// Every error is a [*ParseError] naming the line: unknown keyword, missing
// topic or username, bad access word, invalid filter.
func ParseACL(r io.Reader, name string) (*ACL, error) {
	a := &ACL{name: name, users: make(map[string]*ruleSet)}
	block := &a.anon
	err := scanLines(r, name, func(n int, line string) error {
		t := trimBlanks(line)
		if t == "" || t[0] == '#' {
			return nil
		}
		fail := func(format string, args ...any) error {
			return &ParseError{File: name, Line: n, Msg: fmt.Sprintf(format, args...)}
		}
		kw, rest := cutField(t)
		switch kw {
		case "user":
			if rest == "" {
				return fail("missing username after \"user\"")
			}
			if err := checkUsername(rest); err != nil {
				return fail("%v", err)
			}
			s := a.users[rest]
			if s == nil {
				s = &ruleSet{}
				a.users[rest] = s
			}
			block = s
			return nil
		case "topic", "pattern":
			if rest == "" {
				return fail("missing topic after %q", kw)
			}
			p := permRead | permWrite
			filter := rest
			if word, tail := cutField(rest); tail != "" {
				var ok bool
				if p, ok = parseAccess(word); !ok {
					return fail("invalid access %q (want read, write, readwrite or deny)", word)
				}
				filter = tail
			} else if _, ok := parseAccess(word); ok {
				return fail("missing topic after %q (for a topic named %q write \"%s readwrite %s\")", kw+" "+word, word, kw, word)
			}
			rl, err := parseFilter(filter, kw == "pattern")
			if err != nil {
				return fail("topic %q: %v", filter, err)
			}
			rl.line = n
			if kw == "pattern" {
				a.patterns.add(rl, p)
			} else {
				block.add(rl, p)
			}
			return nil
		default:
			return fail("unknown keyword %q (want topic, user or pattern)", kw)
		}
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// cutField splits s (trimmed) at its first run of blanks.
func cutField(s string) (field, rest string) {
	i := 0
	for i < len(s) && !isBlank(s[i]) {
		i++
	}
	field = s[:i]
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return field, s[i:]
}

func parseAccess(w string) (perm, bool) {
	switch w {
	case "read":
		return permRead, true
	case "write":
		return permWrite, true
	case "readwrite":
		return permRead | permWrite, true
	case "deny":
		return permDeny, true
	}
	return 0, false
}

// parseFilter validates a topic filter of an ACL line and splits it into
// levels. In a pattern, a level that is exactly %c or %u is a substitution.
func parseFilter(f string, pattern bool) (rule, error) {
	r := rule{filter: f}
	switch {
	case f == "":
		return r, fmt.Errorf("empty topic") // [MQTT-4.7.3-1]
	case len(f) > 65535:
		return r, fmt.Errorf("longer than 65535 bytes") // [MQTT-4.7.3-3]
	case !utf8.ValidString(f):
		return r, fmt.Errorf("not valid UTF-8") // [MQTT-1.5.4-1]
	case strings.IndexByte(f, 0) >= 0:
		return r, fmt.Errorf("contains U+0000") // [MQTT-4.7.3-2]
	}
	r.dollar = f[0] == '$'
	n := strings.Count(f, "/") + 1
	r.levels = make([]level, 0, n)
	rest := f
	for i := 0; i < n; i++ {
		var lv string
		lv, rest, _ = strings.Cut(rest, "/")
		switch {
		case lv == "#":
			if i != n-1 {
				return r, fmt.Errorf("'#' must be the last level") // [MQTT-4.7.1-1]
			}
			r.levels = append(r.levels, level{kind: levelHash})
		case lv == "+":
			r.levels = append(r.levels, level{kind: levelPlus})
		case strings.ContainsAny(lv, "+#"):
			return r, fmt.Errorf("wildcard %q must be a whole level", lv) // [MQTT-4.7.1-1] [MQTT-4.7.1-2]
		case pattern && lv == "%c":
			r.levels = append(r.levels, level{kind: levelClient})
		case pattern && lv == "%u":
			r.levels = append(r.levels, level{kind: levelUser})
			r.user = true
		case pattern && (strings.Contains(lv, "%c") || strings.Contains(lv, "%u")):
			return r, fmt.Errorf("level %q: %%c and %%u must be a whole level", lv)
		default:
			r.levels = append(r.levels, level{text: lv})
		}
	}
	return r, nil
}

// Check reports whether the client with clientID and username (""
// for a client that gave no username) may have access to topic. A nil *ACL
// denies everything. Since "" means anonymous, a broker should treat a
// CONNECT with a zero-length User Name as one without (or refuse it).
//
// For Read and Write, topic is a topic name and the decision is mosquitto's
// (2.x, acl_file):
//
//  1. The client's own block is tried: the block of its username, or the
//     anonymous block when it has none. A matching deny rule denies; a
//     matching rule granting the access allows.
//  2. Otherwise, if the file has pattern lines, a client whose username or
//     client id contains '+' or '#' is denied outright (it could otherwise
//     widen a %u or %c rule into a wildcard).
//  3. The patterns are tried the same way, deny rules first, with %c and %u
//     standing for a whole level equal to the client id and the username.
//     A %u pattern never applies to a client without username, and a %c or
//     %u level never matches an empty value or one containing '/'.
//  4. Anything not granted is denied.
//
// So "deny takes precedence" within each of the two steps, not across
// them: a rule in the user's block granting a topic wins over a deny
// pattern for the same topic, exactly as in mosquitto. Matching follows MQTT
// wildcards ('+' one level, '#' any number including none); a filter
// beginning with '$' matches only topics beginning with '$', and a filter
// beginning with anything else, '#' and '+' included, matches none of them
// [MQTT-4.7.2-1]. A topic name that is empty or contains a wildcard is
// denied.
//
// For Subscribe, topic is a topic filter and Check always returns true,
// because that is what mosquitto does with an acl_file (its check returns
// success for every SUBSCRIBE, marked "FIXME - implement ACL subscription
// strings" in mosquitto 2.0 and 2.1): a client may subscribe to "#" and
// then receives only the messages that pass the Read check at delivery. A
// broker using an ACL must therefore check Read for every message it
// delivers, retained messages included; denying subscriptions here would
// turn subscriptions that work with mosquitto into SUBACK failures.
func (a *ACL) Check(clientID, username, topic string, access Access) bool {
	if a == nil {
		return false
	}
	var want perm
	switch access {
	case Read:
		want = permRead
	case Write:
		want = permWrite
	case Subscribe:
		return true
	default:
		return false
	}
	if topic == "" || strings.ContainsAny(topic, "+#") {
		return false
	}

	block := &a.anon
	if username != "" {
		block = a.users[username]
	}
	if block != nil {
		if allow, decided := block.decide(topic, clientID, username, want); decided {
			return allow
		}
	}

	if a.patterns.empty() {
		return false
	}
	if strings.ContainsAny(username, "+#") || strings.ContainsAny(clientID, "+#") {
		return false
	}
	allow, _ := a.patterns.decide(topic, clientID, username, want)
	return allow
}
