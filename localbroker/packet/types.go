// Package packet encodes and decodes MQTT 3.1.1 and 5.0 control packets.
//
// Encoders append to a caller's buffer (AppendX style) and never fail for a
// packet that Validate accepts. Decoders take the packet body (everything after
// the fixed header) as a byte slice and return values that ALIAS that slice:
// strings and byte slices in a decoded packet point into the body, so the
// caller must not modify or reuse the body while the packet is in use. The
// connection reader allocates one body per packet, which then becomes the
// message's storage; the decoder itself does not allocate for PUBLISH.
//
// The package does no I/O beyond io.Reader/io.Writer (see Reader).
package packet

// Type is the MQTT control packet type (fixed header bits 7-4).
type Type byte

// Control packet types, MQTT 3.1.1 §2.2.1 and MQTT 5.0 §2.1.2.
const (
	TypeReserved    Type = 0
	TypeConnect     Type = 1
	TypeConnack     Type = 2
	TypePublish     Type = 3
	TypePuback      Type = 4
	TypePubrec      Type = 5
	TypePubrel      Type = 6
	TypePubcomp     Type = 7
	TypeSubscribe   Type = 8
	TypeSuback      Type = 9
	TypeUnsubscribe Type = 10
	TypeUnsuback    Type = 11
	TypePingreq     Type = 12
	TypePingresp    Type = 13
	TypeDisconnect  Type = 14
	TypeAuth        Type = 15 // MQTT 5.0 only
)

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "INVALID"
}

// Version is the CONNECT protocol level.
type Version byte

// Protocol levels.
const (
	V31  Version = 3 // MQTT 3.1 ("MQIsdp"); decoded so that it can be refused properly
	V311 Version = 4
	V5   Version = 5
)

func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return "unknown"
}

// MaxRemainingLength is the largest value a 4-byte variable byte integer holds.
const MaxRemainingLength = 268_435_455

// UserProperty is one MQTT 5.0 user property (a UTF-8 string pair).
type UserProperty struct {
	Key, Value string
}

// PropID is an MQTT 5.0 property identifier (§2.2.2.2).
type PropID byte

// Property identifiers.
const (
	PropPayloadFormat        PropID = 0x01
	PropMessageExpiry        PropID = 0x02
	PropContentType          PropID = 0x03
	PropResponseTopic        PropID = 0x08
	PropCorrelationData      PropID = 0x09
	PropSubscriptionID       PropID = 0x0B
	PropSessionExpiry        PropID = 0x11
	PropAssignedClientID     PropID = 0x12
	PropServerKeepAlive      PropID = 0x13
	PropAuthMethod           PropID = 0x15
	PropAuthData             PropID = 0x16
	PropRequestProblemInfo   PropID = 0x17
	PropWillDelay            PropID = 0x18
	PropRequestResponseInfo  PropID = 0x19
	PropResponseInfo         PropID = 0x1A
	PropServerReference      PropID = 0x1C
	PropReasonString         PropID = 0x1F
	PropReceiveMaximum       PropID = 0x21
	PropTopicAliasMaximum    PropID = 0x22
	PropTopicAlias           PropID = 0x23
	PropMaximumQoS           PropID = 0x24
	PropRetainAvailable      PropID = 0x25
	PropUser                 PropID = 0x26
	PropMaximumPacketSize    PropID = 0x27
	PropWildcardSubAvailable PropID = 0x28
	PropSubIDAvailable       PropID = 0x29
	PropSharedSubAvailable   PropID = 0x2A
)

// Properties holds the MQTT 5.0 properties of a packet (or of a will).
// A scalar property is present when its bit is set in Present (use Has/Set);
// string, binary and list properties are present when non-empty, except that
// Has reports the presence bit for them too when the decoder saw them.
// The zero value means "no properties". Under 3.1.1 properties are ignored
// by encoders and never produced by decoders.
type Properties struct {
	Present uint64 // bit i set: property with id i was given

	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          string
	ResponseTopic        string
	CorrelationData      []byte
	SubscriptionIDs      []uint32 // PUBLISH may carry several; SUBSCRIBE at most one
	SessionExpiry        uint32
	AssignedClientID     string
	ServerKeepAlive      uint16
	AuthMethod           string
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         string
	ServerReference      string
	ReasonString         string
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	User                 []UserProperty
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte
}

// Has reports whether property id is present.
func (p *Properties) Has(id PropID) bool { return p.Present&(1<<id) != 0 }

// Set marks property id as present (set its field too).
func (p *Properties) Set(id PropID) { p.Present |= 1 << id }

// Clear marks property id as absent.
func (p *Properties) Clear(id PropID) { p.Present &^= 1 << id }

// Connect is the CONNECT packet.
type Connect struct {
	ProtocolName    string // "MQTT", or "MQIsdp" for 3.1
	ProtocolVersion Version
	CleanStart      bool // "clean session" in 3.1.1
	KeepAlive       uint16
	Properties      Properties
	ClientID        string

	WillFlag       bool
	WillQoS        byte
	WillRetain     bool
	WillProperties Properties
	WillTopic      string
	WillPayload    []byte

	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte
}

// Connack is the CONNACK packet. ReasonCode carries the 3.1.1 return code
// (0-5) under 3.1.1 and the 5.0 reason code under 5.0.
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Properties     Properties
}

// Publish is the PUBLISH packet.
type Publish struct {
	Dup        bool
	QoS        byte
	Retain     bool
	Topic      string
	PacketID   uint16 // only when QoS > 0
	Properties Properties
	Payload    []byte
}

// Ack is PUBACK, PUBREC, PUBREL or PUBCOMP (Kind says which).
// Under 5.0 the reason code and properties are omitted on the wire when the
// code is 0 and there are no properties [MQTT-3.4.2.1].
type Ack struct {
	Kind       Type
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Subscription is one topic filter with its options in a SUBSCRIBE.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool // 5.0
	RetainAsPublished bool // 5.0
	RetainHandling    byte // 5.0: 0 send at subscribe, 1 only if new, 2 never
}

// Subscribe is the SUBSCRIBE packet.
type Subscribe struct {
	PacketID      uint16
	Properties    Properties
	Subscriptions []Subscription
}

// Suback is the SUBACK packet. Under 3.1.1 the codes are 0,1,2 or 0x80.
type Suback struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode
}

// Unsubscribe is the UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID   uint16
	Properties Properties
	Filters    []string
}

// Unsuback is the UNSUBACK packet. Under 3.1.1 it carries only the packet id.
type Unsuback struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode
}

// Pingreq is the PINGREQ packet.
type Pingreq struct{}

// Pingresp is the PINGRESP packet.
type Pingresp struct{}

// Disconnect is the DISCONNECT packet (reason and properties are 5.0 only).
type Disconnect struct {
	ReasonCode ReasonCode
	Properties Properties
}

// Auth is the 5.0 AUTH packet.
type Auth struct {
	ReasonCode ReasonCode
	Properties Properties
}

// Packet is any control packet.
type Packet interface {
	Type() Type
}

func (*Connect) Type() Type     { return TypeConnect }
func (*Connack) Type() Type     { return TypeConnack }
func (*Publish) Type() Type     { return TypePublish }
func (a *Ack) Type() Type       { return a.Kind }
func (*Subscribe) Type() Type   { return TypeSubscribe }
func (*Suback) Type() Type      { return TypeSuback }
func (*Unsubscribe) Type() Type { return TypeUnsubscribe }
func (*Unsuback) Type() Type    { return TypeUnsuback }
func (*Pingreq) Type() Type     { return TypePingreq }
func (*Pingresp) Type() Type    { return TypePingresp }
func (*Disconnect) Type() Type  { return TypeDisconnect }
func (*Auth) Type() Type        { return TypeAuth }
