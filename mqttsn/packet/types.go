package packet

import (
	"strconv"
	"time"
)

// MsgType is the MsgType field of the message header (MQTT-SN 1.2 §5.2.2).
type MsgType byte

// Message types, MQTT-SN 1.2 §5.2.2 Table 3. The values not listed are
// reserved.
const (
	TypeAdvertise     MsgType = 0x00
	TypeSearchGW      MsgType = 0x01
	TypeGWInfo        MsgType = 0x02
	TypeConnect       MsgType = 0x04
	TypeConnack       MsgType = 0x05
	TypeWillTopicReq  MsgType = 0x06
	TypeWillTopic     MsgType = 0x07
	TypeWillMsgReq    MsgType = 0x08
	TypeWillMsg       MsgType = 0x09
	TypeRegister      MsgType = 0x0A
	TypeRegack        MsgType = 0x0B
	TypePublish       MsgType = 0x0C
	TypePuback        MsgType = 0x0D
	TypePubcomp       MsgType = 0x0E
	TypePubrec        MsgType = 0x0F
	TypePubrel        MsgType = 0x10
	TypeSubscribe     MsgType = 0x12
	TypeSuback        MsgType = 0x13
	TypeUnsubscribe   MsgType = 0x14
	TypeUnsuback      MsgType = 0x15
	TypePingreq       MsgType = 0x16
	TypePingresp      MsgType = 0x17
	TypeDisconnect    MsgType = 0x18
	TypeWillTopicUpd  MsgType = 0x1A
	TypeWillTopicResp MsgType = 0x1B
	TypeWillMsgUpd    MsgType = 0x1C
	TypeWillMsgResp   MsgType = 0x1D
	TypeEncapsulated  MsgType = 0xFE
)

var typeNames = [...]string{
	TypeAdvertise:     "ADVERTISE",
	TypeSearchGW:      "SEARCHGW",
	TypeGWInfo:        "GWINFO",
	TypeConnect:       "CONNECT",
	TypeConnack:       "CONNACK",
	TypeWillTopicReq:  "WILLTOPICREQ",
	TypeWillTopic:     "WILLTOPIC",
	TypeWillMsgReq:    "WILLMSGREQ",
	TypeWillMsg:       "WILLMSG",
	TypeRegister:      "REGISTER",
	TypeRegack:        "REGACK",
	TypePublish:       "PUBLISH",
	TypePuback:        "PUBACK",
	TypePubcomp:       "PUBCOMP",
	TypePubrec:        "PUBREC",
	TypePubrel:        "PUBREL",
	TypeSubscribe:     "SUBSCRIBE",
	TypeSuback:        "SUBACK",
	TypeUnsubscribe:   "UNSUBSCRIBE",
	TypeUnsuback:      "UNSUBACK",
	TypePingreq:       "PINGREQ",
	TypePingresp:      "PINGRESP",
	TypeDisconnect:    "DISCONNECT",
	TypeWillTopicUpd:  "WILLTOPICUPD",
	TypeWillTopicResp: "WILLTOPICRESP",
	TypeWillMsgUpd:    "WILLMSGUPD",
	TypeWillMsgResp:   "WILLMSGRESP",
}

// Known reports whether t is a message type of Table 3 (not reserved).
func (t MsgType) Known() bool {
	return t == TypeEncapsulated || int(t) < len(typeNames) && typeNames[t] != ""
}

// String returns the specification's name of t, such as "PUBLISH", or
// "MsgType(0x1E)" for a reserved value.
func (t MsgType) String() string {
	if t == TypeEncapsulated {
		return "ENCAPSULATED"
	}
	if t.Known() {
		return typeNames[t]
	}
	const hex = "0123456789ABCDEF"
	return "MsgType(0x" + string([]byte{hex[t>>4], hex[t&0xF]}) + ")"
}

// Flags is the Flags octet (MQTT-SN 1.2 §5.3.4 Table 4). Messages carry their
// flags as separate fields; Flags is the wire form, for code that reads or
// builds the octet itself.
type Flags byte

// Bits and fields of Flags.
const (
	FlagDUP          Flags = 0x80 // bit 7
	FlagQoSMask      Flags = 0x60 // bits 6,5
	FlagRetain       Flags = 0x10 // bit 4
	FlagWill         Flags = 0x08 // bit 3
	FlagCleanSession Flags = 0x04 // bit 2
	FlagTopicIDMask  Flags = 0x03 // bits 1,0: TopicIdType

	flagQoSShift = 5
)

// DUP reports the DUP bit.
func (f Flags) DUP() bool { return f&FlagDUP != 0 }

// QoS returns the QoS field; 0b11 is QoSMinus1.
func (f Flags) QoS() QoS {
	q := QoS(f&FlagQoSMask) >> flagQoSShift
	if q == 3 {
		return QoSMinus1
	}
	return q
}

// Retain reports the Retain bit.
func (f Flags) Retain() bool { return f&FlagRetain != 0 }

// Will reports the Will bit.
func (f Flags) Will() bool { return f&FlagWill != 0 }

// CleanSession reports the CleanSession bit.
func (f Flags) CleanSession() bool { return f&FlagCleanSession != 0 }

// TopicIDType returns the TopicIdType field (0b11 is reserved).
func (f Flags) TopicIDType() TopicIDType { return TopicIDType(f & FlagTopicIDMask) }

// WithQoS returns f with its QoS field set to q (QoSMinus1 is 0b11). q must be
// valid.
func (f Flags) WithQoS(q QoS) Flags { return f&^FlagQoSMask | Flags(q.bits())<<flagQoSShift }

// WithTopicIDType returns f with its TopicIdType field set to t.
func (f Flags) WithTopicIDType(t TopicIDType) Flags {
	return f&^FlagTopicIDMask | Flags(t)&FlagTopicIDMask
}

// with returns f with bit set when on is true.
func (f Flags) with(bit Flags, on bool) Flags {
	if on {
		return f | bit
	}
	return f
}

// QoS is a quality of service level: 0, 1, 2, or -1 (MQTT-SN 1.2 §5.3.4,
// §6.8), which the Flags octet codes as 0b11.
type QoS int8

// QoS levels.
const (
	QoS0      QoS = 0
	QoS1      QoS = 1
	QoS2      QoS = 2
	QoSMinus1 QoS = -1 // publish without a connection (§6.8), PUBLISH only
)

// Valid reports whether q is one of the four levels.
func (q QoS) Valid() bool { return q >= QoSMinus1 && q <= QoS2 }

// bits returns the 2-bit wire value of q.
func (q QoS) bits() byte { return byte(q) & 3 }

func (q QoS) String() string { return strconv.Itoa(int(q)) }

// TopicIDType is the TopicIdType field of Flags (MQTT-SN 1.2 §5.3.4): what
// the TopicId or TopicName field of a message holds.
type TopicIDType byte

// Topic id types. The value 3 is reserved.
const (
	TopicIDNormal     TopicIDType = 0 // a registered topic id, or a topic name
	TopicIDPredefined TopicIDType = 1 // a pre-defined topic id (§6.7)
	TopicIDShort      TopicIDType = 2 // a two-octet short topic name (§6.7)
)

// Valid reports whether t is not the reserved value.
func (t TopicIDType) Valid() bool { return t <= TopicIDShort }

func (t TopicIDType) String() string {
	switch t {
	case TopicIDNormal:
		return "normal"
	case TopicIDPredefined:
		return "predefined"
	case TopicIDShort:
		return "short"
	}
	return "TopicIDType(" + strconv.Itoa(int(t)) + ")"
}

// ShortTopicID returns the TopicId field value that carries the short topic
// name name (§6.7): its first octet is the high octet.
func ShortTopicID(name [2]byte) uint16 { return uint16(name[0])<<8 | uint16(name[1]) }

// ShortTopicName returns the short topic name that the TopicId field value id
// carries.
func ShortTopicName(id uint16) [2]byte { return [2]byte{byte(id >> 8), byte(id)} }

// ReturnCode is the ReturnCode field (MQTT-SN 1.2 §5.3.10 Table 5). It is an
// error, so that a session can return a rejection and callers test it with
// errors.Is; Accepted is not meant to be returned as one.
type ReturnCode byte

// Return codes. The values 0x04 to 0xFF are reserved.
const (
	Accepted               ReturnCode = 0x00
	RejectedCongestion     ReturnCode = 0x01
	RejectedInvalidTopicID ReturnCode = 0x02
	RejectedNotSupported   ReturnCode = 0x03
)

// Valid reports whether r is not a reserved value.
func (r ReturnCode) Valid() bool { return r <= RejectedNotSupported }

func (r ReturnCode) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case RejectedCongestion:
		return "rejected: congestion"
	case RejectedInvalidTopicID:
		return "rejected: invalid topic ID"
	case RejectedNotSupported:
		return "rejected: not supported"
	}
	return "ReturnCode(" + strconv.Itoa(int(r)) + ")"
}

func (r ReturnCode) Error() string { return "mqttsn: " + r.String() }

// Seconds is a Duration field (MQTT-SN 1.2 §5.3.3): a time in seconds, at most
// 65535 (about 18 hours).
type Seconds uint16

// Duration returns s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) * time.Second }
