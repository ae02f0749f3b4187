package packet

import (
	"strings"
	"unicode/utf8"
)

// ValidUTF8 checks an MQTT UTF-8 string [MQTT-1.5.3-1] [MQTT-1.5.3-2]
// (MQTT 5.0 [MQTT-1.5.4-1] [MQTT-1.5.4-2]): well-formed UTF-8, no encoded
// surrogates, no U+0000. A byte order mark is an ordinary character
// [MQTT-1.5.4-3]. The disallowed control and non-character code points,
// which receivers MAY refuse, are accepted.
func ValidUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:]) && strings.IndexByte(s[i:], 0) < 0
		}
	}
	return true
}

// validUTF8 is ValidUTF8 for a byte slice.
func validUTF8(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			rest := b[i:]
			if !utf8.Valid(rest) {
				return false
			}
			for _, c := range rest {
				if c == 0 {
					return false
				}
			}
			return true
		}
	}
	return true
}

// Results of checkTopicName.
const (
	topicOK = iota
	topicBadUTF8
	topicWildcard
)

// checkTopicName classifies a non-empty topic name in one pass: invalid
// UTF-8 (or U+0000) first, then wildcard characters.
func checkTopicName(b []byte) int {
	wild := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case 0:
			return topicBadUTF8
		case '+', '#':
			wild = true
		default:
			if c >= utf8.RuneSelf {
				if !validUTF8(b[i:]) {
					return topicBadUTF8
				}
				for _, c := range b[i:] {
					if c == '+' || c == '#' {
						wild = true
					}
				}
				i = len(b)
			}
		}
	}
	if wild {
		return topicWildcard
	}
	return topicOK
}

// ValidTopicName checks a PUBLISH topic name: non-empty, valid UTF-8 without
// U+0000, no wildcard characters [MQTT-4.7.3-1] [MQTT-3.3.2-2], at most 65535 bytes.
// The error is an *Error with code TopicNameInvalid, or MalformedPacket for
// bad UTF-8.
func ValidTopicName(s string) error {
	switch {
	case s == "":
		return &Error{Code: TopicNameInvalid, Msg: "empty topic name [MQTT-4.7.3-1]"}
	case len(s) > 65535:
		return &Error{Code: TopicNameInvalid, Msg: "topic name longer than 65535 bytes [MQTT-4.7.3-3]"}
	}
	switch checkTopicName(aliasBytes(s)) {
	case topicBadUTF8:
		return malformed("topic name is not valid UTF-8 [MQTT-1.5.3-1] [MQTT-1.5.3-2]")
	case topicWildcard:
		return &Error{Code: TopicNameInvalid, Msg: "wildcard in topic name [MQTT-3.3.2-2]"}
	}
	return nil
}
