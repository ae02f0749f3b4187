package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLen is the protocol's limit on the encoded length of a topic name or
// topic filter, in bytes [MQTT-4.7.3-3] (3.1.1: [MQTT-4.7.3-3]).
const MaxLen = 65535

// SharePrefix starts every shared subscription's topic filter [MQTT-4.8.2-1].
const SharePrefix = "$share/"

// Validation errors. ValidFilter, ValidName and ParseShared return one of
// these (ParseShared may wrap one in ErrSharedFilter); compare with errors.Is.
// A broker answers a bad filter with reason code 0x8F (Topic Filter invalid)
// and a bad name with 0x90 (Topic Name invalid).
var (
	// ErrEmpty: a topic name or filter must be at least one character long
	// [MQTT-4.7.3-1].
	ErrEmpty = errors.New("topic: empty")
	// ErrTooLong: longer than the caller's limit or than MaxLen
	// [MQTT-4.7.3-3].
	ErrTooLong = errors.New("topic: too long")
	// ErrTooManyLevels: more levels than the caller's limit.
	ErrTooManyLevels = errors.New("topic: too many levels")
	// ErrInvalidUTF8: ill-formed UTF-8, including encoded surrogates
	// U+D800..U+DFFF [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]).
	ErrInvalidUTF8 = errors.New("topic: ill-formed UTF-8")
	// ErrNullChar: contains U+0000 [MQTT-1.5.4-2] [MQTT-4.7.3-2]
	// (3.1.1: [MQTT-1.5.3-2]).
	ErrNullChar = errors.New("topic: contains U+0000")
	// ErrWildcardInName: '+' or '#' in a topic name [MQTT-4.7.0-1]
	// (3.1.1: [MQTT-4.7.1-1]).
	ErrWildcardInName = errors.New("topic: wildcard in topic name")
	// ErrMultiLevelWildcard: '#' not alone in the last level
	// [MQTT-4.7.1-1] (3.1.1: [MQTT-4.7.1-2]).
	ErrMultiLevelWildcard = errors.New("topic: '#' must be alone in the last level")
	// ErrSingleLevelWildcard: '+' not alone in its level [MQTT-4.7.1-2]
	// (3.1.1: [MQTT-4.7.1-3]).
	ErrSingleLevelWildcard = errors.New("topic: '+' must be alone in its level")
	// ErrShareName: a shared subscription's ShareName is empty or contains
	// '/', '+' or '#' [MQTT-4.8.2-1] [MQTT-4.8.2-2].
	ErrShareName = errors.New("topic: invalid ShareName")
	// ErrSharedFilter: a shared subscription lacks a valid topic filter
	// after its ShareName [MQTT-4.8.2-2].
	ErrSharedFilter = errors.New("topic: invalid shared subscription filter")
)

// ValidFilter reports whether filter is a valid topic filter: non-empty
// [MQTT-4.7.3-1], well-formed UTF-8 [MQTT-1.5.4-1] without U+0000
// [MQTT-1.5.4-2], '#' only alone in the last level [MQTT-4.7.1-1], '+' only
// alone in a level [MQTT-4.7.1-2], at most maxLen bytes and maxLevels levels.
//
// maxLen <= 0 means MaxLen, and a maxLen above MaxLen is capped to it
// [MQTT-4.7.3-3]; maxLevels <= 0 means no limit on levels.
//
// A shared subscription "$share/g/f" passes ValidFilter as an ordinary
// filter; use ParseShared to split and check it. ValidFilter does not
// allocate.
func ValidFilter(filter string, maxLen, maxLevels int) error {
	return check(filter, maxLen, maxLevels, true)
}

// ValidName reports whether topic is a valid topic name: as ValidFilter, but
// without any wildcard character [MQTT-4.7.0-1]. The limits mean what they
// mean for ValidFilter. ValidName does not allocate.
func ValidName(topic string, maxLen, maxLevels int) error {
	return check(topic, maxLen, maxLevels, false)
}

// check is the single pass behind ValidFilter and ValidName.
func check(s string, maxLen, maxLevels int, filter bool) error {
	if len(s) == 0 {
		return ErrEmpty // [MQTT-4.7.3-1]
	}
	if maxLen <= 0 || maxLen > MaxLen {
		maxLen = MaxLen // [MQTT-4.7.3-3]
	}
	if len(s) > maxLen {
		return ErrTooLong
	}
	levels := 1
	levelStart := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return ErrInvalidUTF8 // [MQTT-1.5.4-1]
			}
			i += size
			continue
		}
		switch c {
		case 0:
			return ErrNullChar // [MQTT-1.5.4-2] [MQTT-4.7.3-2]
		case '/':
			levels++
			if maxLevels > 0 && levels > maxLevels {
				return ErrTooManyLevels
			}
			levelStart = i + 1
		case '+':
			if !filter {
				return ErrWildcardInName // [MQTT-4.7.0-1]
			}
			if i != levelStart || (i+1 < len(s) && s[i+1] != '/') {
				return ErrSingleLevelWildcard // [MQTT-4.7.1-2]
			}
		case '#':
			if !filter {
				return ErrWildcardInName // [MQTT-4.7.0-1]
			}
			if i != levelStart || i != len(s)-1 {
				return ErrMultiLevelWildcard // [MQTT-4.7.1-1]
			}
		}
		i++
	}
	return nil
}

// ParseShared splits a shared subscription's topic filter
// "$share/{ShareName}/{filter}" into its ShareName (group) and the filter
// that is matched against topics (inner).
//
// A filter that does not start with "$share/" is not shared: ParseShared
// returns ("", filter, false, nil) without checking it. A filter that does is
// shared, and err reports a ShareName that is empty or contains '/', '+' or
// '#' or is not valid UTF-8 without U+0000 (ErrShareName) [MQTT-4.8.2-1]
// [MQTT-4.8.2-2], or a missing or invalid inner filter (ErrSharedFilter,
// wrapping ValidFilter's error when there is one) [MQTT-4.8.2-2]: "$share/g"
// and "$share/g/" are invalid. The inner filter is checked without length or
// level limits; check the whole filter with ValidFilter for those.
//
// group and inner are substrings of filter. ParseShared allocates only when
// it returns a wrapped error.
func ParseShared(filter string) (group, inner string, shared bool, err error) {
	rest, ok := strings.CutPrefix(filter, SharePrefix)
	if !ok {
		return "", filter, false, nil
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		// "$share/grp" or "$share/": a ShareName must be followed by '/'
		// and a topic filter [MQTT-4.8.2-2].
		if err := checkShareName(rest); err != nil {
			return "", "", true, err
		}
		return "", "", true, ErrSharedFilter
	}
	group, inner = rest[:i], rest[i+1:]
	if err := checkShareName(group); err != nil {
		return "", "", true, err
	}
	if inner == "" {
		return "", "", true, ErrSharedFilter // [MQTT-4.8.2-2]
	}
	if err := check(inner, 0, 0, true); err != nil {
		return "", "", true, fmt.Errorf("%w: %w", ErrSharedFilter, err)
	}
	return group, inner, true, nil
}

// checkShareName checks a ShareName that contains no '/'.
func checkShareName(name string) error {
	if name == "" {
		return ErrShareName // [MQTT-4.8.2-1]
	}
	if strings.ContainsAny(name, "+#") {
		return ErrShareName // [MQTT-4.8.2-2]
	}
	if !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		return ErrShareName // [MQTT-1.5.4-1] [MQTT-1.5.4-2]
	}
	return nil
}
