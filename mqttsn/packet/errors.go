package packet

import "errors"

// The kinds of malformed message. Decode, DecodeInto, DecodePublish,
// DecodeHeader, SplitEncapsulated and Validate return an *Error whose Kind is
// one of these; test with errors.Is(err, ErrTruncated).
var (
	// ErrTruncated: the datagram is shorter than the header, or the message
	// has fewer octets than the fields its type requires.
	ErrTruncated = errors.New("truncated message")
	// ErrLength: the Length field disagrees with the datagram length
	// (§5.2.1), or is smaller than the header.
	ErrLength = errors.New("length field disagrees with the datagram")
	// ErrTrailing: a message with a fixed set of fields has octets after
	// the last one.
	ErrTrailing = errors.New("octets after the last field")
	// ErrUnknownType: the MsgType is reserved (§5.2.2 Table 3).
	ErrUnknownType = errors.New("reserved message type")
	// ErrWrongType: DecodeInto or DecodePublish got a message of another
	// type than its target.
	ErrWrongType = errors.New("message type differs from the target")
	// ErrFlags: a flag that the message does not use is set (§5.3.4 and the
	// message's section of §5.4), or an empty will topic has QoS or Retain.
	ErrFlags = errors.New("flag not used by this message is set")
	// ErrQoS: QoS -1 (0b11) where only 0, 1 and 2 are allowed, or a QoS
	// value outside the four levels (Validate).
	ErrQoS = errors.New("QoS level not allowed")
	// ErrTopicIDType: TopicIdType 0b11 (reserved, §5.3.4), or a normal
	// topic id with QoS -1 (§6.8).
	ErrTopicIDType = errors.New("topic id type not allowed")
	// ErrProtocolID: CONNECT with a ProtocolId other than 0x01 (§5.3.8).
	ErrProtocolID = errors.New("protocol id is not 0x01")
	// ErrClientID: a ClientId outside 1 to 23 octets, not UTF-8, or with
	// U+0000 (§5.3.1).
	ErrClientID = errors.New("client id is not 1 to 23 octets of UTF-8")
	// ErrShortTopic: a short topic name that is not exactly 2 octets (§6.7).
	ErrShortTopic = errors.New("short topic name is not 2 octets")
	// ErrTopicName: an empty topic name, or one that is not UTF-8 or holds
	// U+0000 (§5.3.12); a topic name field where the TopicIdType says there
	// is none, or the reverse (Validate).
	ErrTopicName = errors.New("invalid topic name")
	// ErrReturnCode: a reserved ReturnCode, 0x04 to 0xFF (§5.3.10).
	ErrReturnCode = errors.New("reserved return code")
	// ErrEncapsulation: a malformed encapsulation header (§5.5): the 3-octet
	// Length form, a Length below 3, reserved Ctrl bits, a radius above 3,
	// a Wireless Node Id above 252 octets, no encapsulated message, or an
	// encapsulated encapsulation.
	ErrEncapsulation = errors.New("malformed encapsulation")
	// ErrTooLarge: the message does not fit the 3-octet Length field
	// (65535 octets), reported by Validate.
	ErrTooLarge = errors.New("message longer than 65535 octets")
)

// Error is a rejected message: what kind of fault, in which message type, and
// a short detail.
type Error struct {
	// Type is the message type, when the header could be read.
	Type MsgType
	// Kind is one of the Err values of this package.
	Kind error
	// Detail says which field or rule; it is a constant string.
	Detail string
	// Encapsulated is true when the fault is in the message that an
	// encapsulation (§5.5) carries.
	Encapsulated bool
	// typeKnown is true when Type was read.
	typeKnown bool
}

func (e *Error) Error() string {
	s := "mqttsn: "
	if e.Encapsulated {
		s += "encapsulated "
	}
	if e.typeKnown {
		s += e.Type.String() + ": "
	}
	s += e.Kind.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns Kind.
func (e *Error) Unwrap() error { return e.Kind }

// newError returns an *Error about a message of type t.
func newError(t MsgType, kind error, detail string) *Error {
	return &Error{Type: t, Kind: kind, Detail: detail, typeKnown: true}
}
