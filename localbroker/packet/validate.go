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

// Byte classes for the one-pass string checks: the classes of all bytes are
// OR-ed together, so the common all-ASCII case costs one table load per byte.
const (
	classNull = 1 << iota // 0x00 [MQTT-1.5.3-2]
	classWild             // '+' or '#'
	classHigh             // >= 0x80: the string needs a full UTF-8 check
)

var byteClass = func() (t [256]uint8) {
	t[0] = classNull
	t['+'], t['#'] = classWild, classWild
	for c := 0x80; c < 0x100; c++ {
		t[c] = classHigh
	}
	return t
}()

func classes(b []byte) uint8 {
	var acc uint8
	for _, c := range b {
		acc |= byteClass[c]
	}
	return acc
}

// validUTF8 is ValidUTF8 for a byte slice.
func validUTF8(b []byte) bool {
	acc := classes(b)
	return acc&classNull == 0 && (acc&classHigh == 0 || utf8.Valid(b))
}

// Results of checkTopicName.
const (
	topicOK = iota
	topicBadUTF8
	topicWildcard
)

// checkTopicName classifies a topic name in one pass: invalid UTF-8 (or
// U+0000) first, then wildcard characters.
func checkTopicName(b []byte) int {
	acc := classes(b)
	switch {
	case acc == 0:
		return topicOK
	case acc&classNull != 0, acc&classHigh != 0 && !utf8.Valid(b):
		return topicBadUTF8
	case acc&classWild != 0:
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
