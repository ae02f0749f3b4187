package packet

// DecodeHeader reads the message header at the start of b (MQTT-SN 1.2 §5.2):
// the Length field in its 1- or 3-octet form and the MsgType. It returns the
// Length value, the type, and the header size (2 or 4). It does not compare
// the Length with len(b): Decode does. For an encapsulation (§5.5) the Length
// covers the encapsulation header only (Length, MsgType, Ctrl, Wireless Node
// Id) and headerLen is 2.
//
// The errors, checked in this order: ErrTruncated (fewer octets than a
// header), ErrEncapsulation (an encapsulation with the 3-octet form or a
// Length below 3), ErrLength (a Length smaller than the header),
// ErrUnknownType (a reserved MsgType). With ErrLength and ErrUnknownType the
// other results are set.
func DecodeHeader(b []byte) (length int, t MsgType, headerLen int, err error) {
	if len(b) < 2 {
		return 0, 0, 0, &Error{Kind: ErrTruncated, Detail: "fewer octets than a header"}
	}
	if b[0] != 0x01 {
		length, t, headerLen = int(b[0]), MsgType(b[1]), 2
		if t == TypeEncapsulated {
			if length < 3 { // MQTT-SN 1.2 §5.5: Length, MsgType and Ctrl at least
				return length, t, headerLen, newError(t, ErrEncapsulation, "Length below 3")
			}
			return length, t, headerLen, nil
		}
		if length < 2 {
			return length, t, headerLen, newError(t, ErrLength, "Length 0")
		}
	} else {
		// MQTT-SN 1.2 §5.2.1: 0x01 introduces the 3-octet form, the length
		// in the next two octets, most significant first.
		if len(b) < 4 {
			return 0, 0, 0, &Error{Kind: ErrTruncated, Detail: "fewer octets than a 3-octet-Length header"}
		}
		length, t, headerLen = int(be16(b[1:])), MsgType(b[3]), 4
		if t == TypeEncapsulated { // MQTT-SN 1.2 §5.5: "Length: 1-octet long"
			return length, t, headerLen, newError(t, ErrEncapsulation, "3-octet Length form")
		}
		if length < 4 {
			return length, t, headerLen, newError(t, ErrLength, "3-octet Length below 4")
		}
	}
	if !t.Known() { // MQTT-SN 1.2 §5.2.2 Table 3
		return length, t, headerLen, newError(t, ErrUnknownType, "")
	}
	return length, t, headerLen, nil
}

// Decode decodes the one message that the datagram b holds. The message
// aliases b (see the package documentation). On error the message is nil and
// the error is an *Error.
func Decode(b []byte) (Message, error) {
	length, t, hl, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	m := newMessage(t)
	if t == TypeEncapsulated {
		err = m.decodeBody(b)
	} else if length != len(b) { // MQTT-SN 1.2 §5.2.1
		err = newError(t, ErrLength, "")
	} else {
		err = m.decodeBody(b[hl:])
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeInto decodes the datagram b into m, which must point to a message of
// the type b holds (ErrWrongType otherwise). It allocates nothing, except
// for an encapsulation, whose inner message it allocates. m aliases b; on
// error its fields are unspecified.
func DecodeInto(m Message, b []byte) error {
	length, t, hl, err := DecodeHeader(b)
	if err != nil {
		return err
	}
	if t != m.Type() {
		return newError(t, ErrWrongType, "")
	}
	if t == TypeEncapsulated {
		return m.decodeBody(b)
	}
	if length != len(b) { // MQTT-SN 1.2 §5.2.1
		return newError(t, ErrLength, "")
	}
	return m.decodeBody(b[hl:])
}

// DecodePublish decodes the PUBLISH datagram b into p without allocating.
// p.Data aliases b; on error p's fields are unspecified.
func DecodePublish(p *Publish, b []byte) error {
	length, t, hl, err := DecodeHeader(b)
	if err != nil {
		return err
	}
	if t != TypePublish {
		return newError(t, ErrWrongType, "not a PUBLISH")
	}
	if length != len(b) { // MQTT-SN 1.2 §5.2.1
		return newError(t, ErrLength, "")
	}
	return p.decodeBody(b[hl:])
}

// SplitEncapsulated reads the encapsulation (MQTT-SN 1.2 §5.5) that the
// datagram b holds without decoding the encapsulated message: it returns the
// radius (bits 1-0 of Ctrl), the Wireless Node Id (nil when empty) and the
// encapsulated message, both aliasing b. It checks the encapsulation header,
// that a message follows it and that this message is not itself an
// encapsulation; Decode(inner) checks the rest.
func SplitEncapsulated(b []byte) (radius uint8, nodeID, inner []byte, err error) {
	length, t, _, err := DecodeHeader(b)
	if err != nil {
		return 0, nil, nil, err
	}
	if t != TypeEncapsulated {
		return 0, nil, nil, newError(t, ErrWrongType, "not an encapsulation")
	}
	if length > len(b) {
		return 0, nil, nil, newError(t, ErrLength, "Length beyond the datagram")
	}
	ctrl := b[2]
	if ctrl&^3 != 0 { // MQTT-SN 1.2 §5.5 Table 29: bits 7-2 are reserved
		return 0, nil, nil, newError(t, ErrEncapsulation, "reserved Ctrl bits set")
	}
	if length == len(b) {
		return 0, nil, nil, newError(t, ErrEncapsulation, "no encapsulated message")
	}
	inner = b[length:]
	if _, it, _, _ := DecodeHeader(inner); it == TypeEncapsulated {
		return 0, nil, nil, newError(t, ErrEncapsulation, "encapsulated encapsulation")
	}
	if length > 3 {
		nodeID = b[3:length:length]
	}
	return ctrl, nodeID, inner, nil
}

// newMessage returns a new message of the known type t.
func newMessage(t MsgType) Message {
	switch t {
	case TypeAdvertise:
		return new(Advertise)
	case TypeSearchGW:
		return new(SearchGW)
	case TypeGWInfo:
		return new(GWInfo)
	case TypeConnect:
		return new(Connect)
	case TypeConnack:
		return new(Connack)
	case TypeWillTopicReq:
		return new(WillTopicReq)
	case TypeWillTopic:
		return new(WillTopic)
	case TypeWillMsgReq:
		return new(WillMsgReq)
	case TypeWillMsg:
		return new(WillMsg)
	case TypeRegister:
		return new(Register)
	case TypeRegack:
		return new(Regack)
	case TypePublish:
		return new(Publish)
	case TypePuback:
		return new(Puback)
	case TypePubcomp:
		return new(Pubcomp)
	case TypePubrec:
		return new(Pubrec)
	case TypePubrel:
		return new(Pubrel)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeSuback:
		return new(Suback)
	case TypeUnsubscribe:
		return new(Unsubscribe)
	case TypeUnsuback:
		return new(Unsuback)
	case TypePingreq:
		return new(Pingreq)
	case TypePingresp:
		return new(Pingresp)
	case TypeDisconnect:
		return new(Disconnect)
	case TypeWillTopicUpd:
		return new(WillTopicUpd)
	case TypeWillTopicResp:
		return new(WillTopicResp)
	case TypeWillMsgUpd:
		return new(WillMsgUpd)
	case TypeWillMsgResp:
		return new(WillMsgResp)
	case TypeEncapsulated:
		return new(Encapsulated)
	}
	panic("packet: newMessage of reserved type " + t.String())
}

// headerLen returns the header size of a message with n octets after the
// header: the 1-octet Length form when the whole message fits in 255 octets,
// the 3-octet form otherwise (MQTT-SN 1.2 §5.2.1).
func headerLen(n int) int {
	if n+2 <= 0xFF {
		return 2
	}
	return 4
}

func appendHeader(dst []byte, t MsgType, n int) []byte {
	if n+2 <= 0xFF {
		return append(dst, byte(n+2), byte(t))
	}
	total := n + 4
	return append(dst, 0x01, byte(total>>8), byte(total), byte(t))
}

// Append appends the encoding of m to dst and returns the extended buffer,
// with the shortest Length form (MQTT-SN 1.2 §5.2.1). m must pass Validate;
// otherwise the bytes are unspecified. Append panics when m, or the message
// of an *Encapsulated, is nil.
func Append(dst []byte, m Message) []byte {
	if e, ok := m.(*Encapsulated); ok {
		return Append(AppendEncapsulationHeader(dst, e.Radius, e.NodeID), e.Message)
	}
	return m.appendBody(appendHeader(dst, m.Type(), m.bodyLen()))
}

// AppendPublish is Append for a PUBLISH: it allocates nothing when dst has
// room, and p does not escape.
func AppendPublish(dst []byte, p *Publish) []byte {
	return p.appendBody(appendHeader(dst, TypePublish, p.bodyLen()))
}

// AppendEncapsulationHeader appends the header of an encapsulation (MQTT-SN
// 1.2 §5.5): Length, MsgType 0xFE, Ctrl with the radius, and the Wireless
// Node Id. The encapsulated message must follow. radius must be at most 3 and
// nodeID at most MaxNodeIDLen octets.
func AppendEncapsulationHeader(dst []byte, radius uint8, nodeID []byte) []byte {
	dst = append(dst, byte(3+len(nodeID)), byte(TypeEncapsulated), radius)
	return append(dst, nodeID...)
}

// Size returns the length of m's encoding.
func Size(m Message) int {
	if e, ok := m.(*Encapsulated); ok {
		return 3 + len(e.NodeID) + Size(e.Message)
	}
	n := m.bodyLen()
	return headerLen(n) + n
}

// Validate reports whether m can be encoded and would be decoded to an equal
// value: it checks the rules the decoder enforces (see the package
// documentation) on m's fields, that every value fits its field, and that
// the message fits MaxLen. The error is an *Error. It does not allocate
// unless it fails.
func Validate(m Message) error {
	if m == nil {
		return &Error{Kind: ErrUnknownType, Detail: "nil message"}
	}
	if err := m.check(); err != nil {
		return err
	}
	if _, ok := m.(*Encapsulated); !ok && Size(m) > MaxLen {
		return newError(m.Type(), ErrTooLarge, "")
	}
	return nil
}
