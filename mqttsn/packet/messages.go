package packet

import (
	"bytes"
	"unicode/utf8"
)

// Message is one MQTT-SN message: a pointer to one of the message types of
// this package (*Publish, *Connect, ...). The set is closed.
type Message interface {
	// Type returns the MsgType the message is encoded with.
	Type() MsgType

	// bodyLen is the number of octets after the header.
	bodyLen() int
	// appendBody appends the octets after the header.
	appendBody(dst []byte) []byte
	// decodeBody sets every field from the octets after the header, which
	// the Length field has already matched to the datagram.
	decodeBody(b []byte) error
	// check enforces the rules on field values that the decoder and
	// Validate share.
	check() error
}

// Limits of the fields.
const (
	// MaxClientIDLen is the longest ClientId, in octets (§5.3.1).
	MaxClientIDLen = 23
	// MaxLen is the longest message the 3-octet Length field encodes.
	MaxLen = 0xFFFF
	// MaxNodeIDLen is the longest Wireless Node Id of an encapsulation: its
	// 1-octet Length covers Length, MsgType, Ctrl and the node id (§5.5).
	MaxNodeIDLen = 0xFF - 3
	// ProtocolID is the only ProtocolId of MQTT-SN 1.2 (§5.3.8).
	ProtocolID = 0x01
)

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func append16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

// tail returns b[i:] with its capacity cut to its length, or nil when it is
// empty: decoded optional fields are nil when absent.
func tail(b []byte, i int) []byte {
	if i >= len(b) {
		return nil
	}
	return b[i:len(b):len(b)]
}

// exact checks that a fixed-size body of type t has n octets.
func exact(t MsgType, b []byte, n int) error {
	switch {
	case len(b) < n:
		return newError(t, ErrTruncated, "fewer octets than the fields of the message")
	case len(b) > n:
		return newError(t, ErrTrailing, "")
	}
	return nil
}

// atLeast checks that a body of type t has at least n octets.
func atLeast(t MsgType, b []byte, n int) error {
	if len(b) < n {
		return newError(t, ErrTruncated, "fewer octets than the fields of the message")
	}
	return nil
}

// flagsOnly checks that f has no bit outside allowed: the flags the message
// table of §5.4 does not mark "not used".
func flagsOnly(t MsgType, f, allowed Flags) error {
	if f&^allowed != 0 {
		return newError(t, ErrFlags, "a flag this message does not use is set")
	}
	return nil
}

// validString reports whether b is UTF-8 without U+0000, the form of the
// ClientId and topic name strings (MQTT-SN 1.2 §5.3.1, §5.3.12, which take
// their strings from MQTT).
func validString(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// checkClientID enforces MQTT-SN 1.2 §5.3.1 (and §5.4.4): 1 to 23 octets.
func checkClientID(t MsgType, id []byte) error {
	if len(id) < 1 || len(id) > MaxClientIDLen {
		return newError(t, ErrClientID, "length outside 1 to 23 octets")
	}
	if !validString(id) {
		return newError(t, ErrClientID, "not UTF-8, or holds U+0000")
	}
	return nil
}

// checkTopicName enforces MQTT-SN 1.2 §5.3.12 on a topic name.
func checkTopicName(t MsgType, name []byte) error {
	if len(name) == 0 {
		return newError(t, ErrTopicName, "empty")
	}
	if !validString(name) {
		return newError(t, ErrTopicName, "not UTF-8, or holds U+0000")
	}
	return nil
}

func checkReturnCode(t MsgType, r ReturnCode) error {
	if !r.Valid() { // MQTT-SN 1.2 §5.3.10 Table 5
		return newError(t, ErrReturnCode, "")
	}
	return nil
}

// checkQoS012 allows QoS 0, 1 and 2: QoS -1 exists for PUBLISH only
// (MQTT-SN 1.2 §5.3.4, §6.8).
func checkQoS012(t MsgType, q QoS) error {
	if q < QoS0 || q > QoS2 {
		return newError(t, ErrQoS, "only 0, 1 and 2 are allowed")
	}
	return nil
}

// ADVERTISE (MQTT-SN 1.2 §5.4.1), broadcast by a gateway.
type Advertise struct {
	GwID     uint8
	Duration Seconds // until the next ADVERTISE
}

func (*Advertise) Type() MsgType { return TypeAdvertise }
func (*Advertise) bodyLen() int  { return 3 }
func (m *Advertise) appendBody(dst []byte) []byte {
	return append16(append(dst, m.GwID), uint16(m.Duration))
}
func (m *Advertise) decodeBody(b []byte) error {
	if err := exact(TypeAdvertise, b, 3); err != nil {
		return err
	}
	*m = Advertise{GwID: b[0], Duration: Seconds(be16(b[1:]))}
	return nil
}
func (*Advertise) check() error { return nil }

// SEARCHGW (MQTT-SN 1.2 §5.4.2), broadcast by a client.
type SearchGW struct {
	Radius uint8 // broadcast radius; 0 is all nodes (§5.3.9)
}

func (*SearchGW) Type() MsgType                  { return TypeSearchGW }
func (*SearchGW) bodyLen() int                   { return 1 }
func (m *SearchGW) appendBody(dst []byte) []byte { return append(dst, m.Radius) }
func (m *SearchGW) decodeBody(b []byte) error {
	if err := exact(TypeSearchGW, b, 1); err != nil {
		return err
	}
	*m = SearchGW{Radius: b[0]}
	return nil
}
func (*SearchGW) check() error { return nil }

// GWINFO (MQTT-SN 1.2 §5.4.3), the answer to SEARCHGW.
type GWInfo struct {
	GwID uint8
	// GwAdd is the gateway's address in the network's own form (§5.3.5);
	// only a client answering for a gateway includes it, nil otherwise.
	GwAdd []byte
}

func (*GWInfo) Type() MsgType  { return TypeGWInfo }
func (m *GWInfo) bodyLen() int { return 1 + len(m.GwAdd) }
func (m *GWInfo) appendBody(dst []byte) []byte {
	return append(append(dst, m.GwID), m.GwAdd...)
}
func (m *GWInfo) decodeBody(b []byte) error {
	if err := atLeast(TypeGWInfo, b, 1); err != nil {
		return err
	}
	*m = GWInfo{GwID: b[0], GwAdd: tail(b, 1)}
	return nil
}
func (*GWInfo) check() error { return nil }

// CONNECT (MQTT-SN 1.2 §5.4.4). Of the Flags only Will and CleanSession are
// used; ProtocolId is always 0x01.
type Connect struct {
	Will         bool // the client will send WILLTOPIC and WILLMSG when asked
	CleanSession bool
	KeepAlive    Seconds // the Duration field
	ClientID     []byte  // 1 to 23 octets
}

func (*Connect) Type() MsgType  { return TypeConnect }
func (m *Connect) bodyLen() int { return 4 + len(m.ClientID) }
func (m *Connect) flags() Flags {
	return Flags(0).with(FlagWill, m.Will).with(FlagCleanSession, m.CleanSession)
}
func (m *Connect) appendBody(dst []byte) []byte {
	dst = append(dst, byte(m.flags()), ProtocolID)
	dst = append16(dst, uint16(m.KeepAlive))
	return append(dst, m.ClientID...)
}
func (m *Connect) decodeBody(b []byte) error {
	if err := atLeast(TypeConnect, b, 4); err != nil {
		return err
	}
	f := Flags(b[0])
	// MQTT-SN 1.2 §5.4.4: DUP, QoS, Retain and TopicIdType are not used.
	if err := flagsOnly(TypeConnect, f, FlagWill|FlagCleanSession); err != nil {
		return err
	}
	if b[1] != ProtocolID { // MQTT-SN 1.2 §5.3.8
		return newError(TypeConnect, ErrProtocolID, "")
	}
	*m = Connect{Will: f.Will(), CleanSession: f.CleanSession(), KeepAlive: Seconds(be16(b[2:])), ClientID: tail(b, 4)}
	return m.check()
}
func (m *Connect) check() error { return checkClientID(TypeConnect, m.ClientID) }

// CONNACK (MQTT-SN 1.2 §5.4.5).
type Connack struct {
	ReturnCode ReturnCode
}

func (*Connack) Type() MsgType                  { return TypeConnack }
func (*Connack) bodyLen() int                   { return 1 }
func (m *Connack) appendBody(dst []byte) []byte { return append(dst, byte(m.ReturnCode)) }
func (m *Connack) decodeBody(b []byte) error {
	if err := exact(TypeConnack, b, 1); err != nil {
		return err
	}
	*m = Connack{ReturnCode: ReturnCode(b[0])}
	return m.check()
}
func (m *Connack) check() error { return checkReturnCode(TypeConnack, m.ReturnCode) }

// WILLTOPICREQ (MQTT-SN 1.2 §5.4.6): a header only.
type WillTopicReq struct{}

func (*WillTopicReq) Type() MsgType                { return TypeWillTopicReq }
func (*WillTopicReq) bodyLen() int                 { return 0 }
func (*WillTopicReq) appendBody(dst []byte) []byte { return dst }
func (*WillTopicReq) decodeBody(b []byte) error    { return exact(TypeWillTopicReq, b, 0) }
func (*WillTopicReq) check() error                 { return nil }

// WILLMSGREQ (MQTT-SN 1.2 §5.4.8): a header only.
type WillMsgReq struct{}

func (*WillMsgReq) Type() MsgType                { return TypeWillMsgReq }
func (*WillMsgReq) bodyLen() int                 { return 0 }
func (*WillMsgReq) appendBody(dst []byte) []byte { return dst }
func (*WillMsgReq) decodeBody(b []byte) error    { return exact(TypeWillMsgReq, b, 0) }
func (*WillMsgReq) check() error                 { return nil }

// WILLMSG (MQTT-SN 1.2 §5.4.9).
type WillMsg struct {
	WillMsg []byte // opaque; nil when empty
}

func (*WillMsg) Type() MsgType                  { return TypeWillMsg }
func (m *WillMsg) bodyLen() int                 { return len(m.WillMsg) }
func (m *WillMsg) appendBody(dst []byte) []byte { return append(dst, m.WillMsg...) }
func (m *WillMsg) decodeBody(b []byte) error    { *m = WillMsg{WillMsg: tail(b, 0)}; return nil }
func (*WillMsg) check() error                   { return nil }

// WILLMSGUPD (MQTT-SN 1.2 §5.4.23).
type WillMsgUpd struct {
	WillMsg []byte // opaque; nil when empty
}

func (*WillMsgUpd) Type() MsgType                  { return TypeWillMsgUpd }
func (m *WillMsgUpd) bodyLen() int                 { return len(m.WillMsg) }
func (m *WillMsgUpd) appendBody(dst []byte) []byte { return append(dst, m.WillMsg...) }
func (m *WillMsgUpd) decodeBody(b []byte) error    { *m = WillMsgUpd{WillMsg: tail(b, 0)}; return nil }
func (*WillMsgUpd) check() error                   { return nil }

// WILLTOPICRESP (MQTT-SN 1.2 §5.4.24).
type WillTopicResp struct {
	ReturnCode ReturnCode
}

func (*WillTopicResp) Type() MsgType                  { return TypeWillTopicResp }
func (*WillTopicResp) bodyLen() int                   { return 1 }
func (m *WillTopicResp) appendBody(dst []byte) []byte { return append(dst, byte(m.ReturnCode)) }
func (m *WillTopicResp) decodeBody(b []byte) error {
	if err := exact(TypeWillTopicResp, b, 1); err != nil {
		return err
	}
	*m = WillTopicResp{ReturnCode: ReturnCode(b[0])}
	return m.check()
}
func (m *WillTopicResp) check() error { return checkReturnCode(TypeWillTopicResp, m.ReturnCode) }

// WILLMSGRESP (MQTT-SN 1.2 §5.4.25).
type WillMsgResp struct {
	ReturnCode ReturnCode
}

func (*WillMsgResp) Type() MsgType                  { return TypeWillMsgResp }
func (*WillMsgResp) bodyLen() int                   { return 1 }
func (m *WillMsgResp) appendBody(dst []byte) []byte { return append(dst, byte(m.ReturnCode)) }
func (m *WillMsgResp) decodeBody(b []byte) error {
	if err := exact(TypeWillMsgResp, b, 1); err != nil {
		return err
	}
	*m = WillMsgResp{ReturnCode: ReturnCode(b[0])}
	return m.check()
}
func (m *WillMsgResp) check() error { return checkReturnCode(TypeWillMsgResp, m.ReturnCode) }

// PINGRESP (MQTT-SN 1.2 §5.4.20): a header only.
type Pingresp struct{}

func (*Pingresp) Type() MsgType                { return TypePingresp }
func (*Pingresp) bodyLen() int                 { return 0 }
func (*Pingresp) appendBody(dst []byte) []byte { return dst }
func (*Pingresp) decodeBody(b []byte) error    { return exact(TypePingresp, b, 0) }
func (*Pingresp) check() error                 { return nil }

// WILLTOPIC (MQTT-SN 1.2 §5.4.7). Of the Flags only QoS and Retain are used.
// A WillTopic with an empty (nil) WillTopic is the empty WILLTOPIC, exactly 2
// octets without Flags, which deletes the will (§6.4); QoS and Retain are
// then 0.
type WillTopic struct {
	QoS       QoS // 0, 1 or 2
	Retain    bool
	WillTopic []byte
}

// WILLTOPICUPD (MQTT-SN 1.2 §5.4.22), with the same fields and rules as
// WILLTOPIC: an empty WillTopic deletes the will topic and will message.
type WillTopicUpd struct {
	QoS       QoS // 0, 1 or 2
	Retain    bool
	WillTopic []byte
}

func willTopicLen(topic []byte) int {
	if len(topic) == 0 {
		return 0
	}
	return 1 + len(topic)
}

func appendWillTopic(dst []byte, q QoS, retain bool, topic []byte) []byte {
	if len(topic) == 0 {
		return dst // the empty form (§5.4.7)
	}
	return append(append(dst, byte(Flags(0).WithQoS(q).with(FlagRetain, retain))), topic...)
}

func decodeWillTopic(t MsgType, b []byte) (QoS, bool, []byte, error) {
	if len(b) == 0 {
		return QoS0, false, nil, nil // the empty form deletes the will (§5.4.7, §5.4.22)
	}
	f := Flags(b[0])
	// MQTT-SN 1.2 §5.4.7, §5.4.22: DUP, Will, CleanSession and TopicIdType
	// are not used.
	if err := flagsOnly(t, f, FlagQoSMask|FlagRetain); err != nil {
		return 0, false, nil, err
	}
	if len(b) == 1 {
		return 0, false, nil, newError(t, ErrTopicName, "Flags without a will topic (the empty form has no Flags)")
	}
	return f.QoS(), f.Retain(), tail(b, 1), nil
}

func checkWillTopic(t MsgType, q QoS, retain bool, topic []byte) error {
	if len(topic) == 0 {
		if q != QoS0 || retain {
			return newError(t, ErrFlags, "the empty form has no QoS or Retain")
		}
		return nil
	}
	if err := checkQoS012(t, q); err != nil {
		return err
	}
	return checkTopicName(t, topic)
}

func (*WillTopic) Type() MsgType  { return TypeWillTopic }
func (m *WillTopic) bodyLen() int { return willTopicLen(m.WillTopic) }
func (m *WillTopic) appendBody(dst []byte) []byte {
	return appendWillTopic(dst, m.QoS, m.Retain, m.WillTopic)
}
func (m *WillTopic) decodeBody(b []byte) error {
	q, r, topic, err := decodeWillTopic(TypeWillTopic, b)
	if err != nil {
		return err
	}
	*m = WillTopic{QoS: q, Retain: r, WillTopic: topic}
	return m.check()
}
func (m *WillTopic) check() error {
	return checkWillTopic(TypeWillTopic, m.QoS, m.Retain, m.WillTopic)
}

func (*WillTopicUpd) Type() MsgType  { return TypeWillTopicUpd }
func (m *WillTopicUpd) bodyLen() int { return willTopicLen(m.WillTopic) }
func (m *WillTopicUpd) appendBody(dst []byte) []byte {
	return appendWillTopic(dst, m.QoS, m.Retain, m.WillTopic)
}
func (m *WillTopicUpd) decodeBody(b []byte) error {
	q, r, topic, err := decodeWillTopic(TypeWillTopicUpd, b)
	if err != nil {
		return err
	}
	*m = WillTopicUpd{QoS: q, Retain: r, WillTopic: topic}
	return m.check()
}
func (m *WillTopicUpd) check() error {
	return checkWillTopic(TypeWillTopicUpd, m.QoS, m.Retain, m.WillTopic)
}

// REGISTER (MQTT-SN 1.2 §5.4.10).
type Register struct {
	TopicID   uint16 // 0x0000 from a client; the assigned id from a gateway
	MsgID     uint16
	TopicName []byte
}

func (*Register) Type() MsgType  { return TypeRegister }
func (m *Register) bodyLen() int { return 4 + len(m.TopicName) }
func (m *Register) appendBody(dst []byte) []byte {
	return append(append16(append16(dst, m.TopicID), m.MsgID), m.TopicName...)
}
func (m *Register) decodeBody(b []byte) error {
	if err := atLeast(TypeRegister, b, 4); err != nil {
		return err
	}
	*m = Register{TopicID: be16(b), MsgID: be16(b[2:]), TopicName: tail(b, 4)}
	return m.check()
}
func (m *Register) check() error { return checkTopicName(TypeRegister, m.TopicName) }

// REGACK (MQTT-SN 1.2 §5.4.11).
type Regack struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

func (*Regack) Type() MsgType { return TypeRegack }
func (*Regack) bodyLen() int  { return 5 }
func (m *Regack) appendBody(dst []byte) []byte {
	return append(append16(append16(dst, m.TopicID), m.MsgID), byte(m.ReturnCode))
}
func (m *Regack) decodeBody(b []byte) error {
	if err := exact(TypeRegack, b, 5); err != nil {
		return err
	}
	*m = Regack{TopicID: be16(b), MsgID: be16(b[2:]), ReturnCode: ReturnCode(b[4])}
	return m.check()
}
func (m *Regack) check() error { return checkReturnCode(TypeRegack, m.ReturnCode) }

// PUBLISH (MQTT-SN 1.2 §5.4.12). Of the Flags DUP, QoS, Retain and
// TopicIdType are used. TopicID holds a registered topic id, a pre-defined
// topic id, or the two octets of a short topic name (see ShortTopicName), as
// TopicIDType says.
type Publish struct {
	DUP         bool
	QoS         QoS // QoSMinus1 only with TopicIDPredefined or TopicIDShort (§6.8)
	Retain      bool
	TopicIDType TopicIDType
	TopicID     uint16
	MsgID       uint16 // 0x0000 for QoS 0 and -1 by convention; not enforced
	Data        []byte // nil when empty
}

func (*Publish) Type() MsgType  { return TypePublish }
func (m *Publish) bodyLen() int { return 5 + len(m.Data) }
func (m *Publish) flags() Flags {
	return Flags(0).with(FlagDUP, m.DUP).WithQoS(m.QoS).with(FlagRetain, m.Retain).WithTopicIDType(m.TopicIDType)
}
func (m *Publish) appendBody(dst []byte) []byte {
	dst = append(dst, byte(m.flags()), byte(m.TopicID>>8), byte(m.TopicID), byte(m.MsgID>>8), byte(m.MsgID))
	return append(dst, m.Data...)
}
func (m *Publish) decodeBody(b []byte) error {
	if len(b) < 5 {
		return newError(TypePublish, ErrTruncated, "fewer octets than the fields of the message")
	}
	f := Flags(b[0])
	// MQTT-SN 1.2 §5.4.12: Will and CleanSession are not used.
	if f&(FlagWill|FlagCleanSession) != 0 {
		return newError(TypePublish, ErrFlags, "a flag this message does not use is set")
	}
	*m = Publish{
		DUP:         f.DUP(),
		QoS:         f.QoS(),
		Retain:      f.Retain(),
		TopicIDType: f.TopicIDType(),
		TopicID:     be16(b[1:]),
		MsgID:       be16(b[3:]),
		Data:        tail(b, 5),
	}
	return m.check()
}
func (m *Publish) check() error {
	if !m.TopicIDType.Valid() { // MQTT-SN 1.2 §5.3.4: 0b11 is reserved
		return newError(TypePublish, ErrTopicIDType, "0b11 is reserved")
	}
	if !m.QoS.Valid() {
		return newError(TypePublish, ErrQoS, "not one of 0, 1, 2, -1")
	}
	// MQTT-SN 1.2 §6.8: QoS -1 only with a pre-defined id or a short name.
	if m.QoS == QoSMinus1 && m.TopicIDType == TopicIDNormal {
		return newError(TypePublish, ErrTopicIDType, "QoS -1 with a normal topic id")
	}
	return nil
}

// PUBACK (MQTT-SN 1.2 §5.4.13).
type Puback struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

func (*Puback) Type() MsgType { return TypePuback }
func (*Puback) bodyLen() int  { return 5 }
func (m *Puback) appendBody(dst []byte) []byte {
	return append(append16(append16(dst, m.TopicID), m.MsgID), byte(m.ReturnCode))
}
func (m *Puback) decodeBody(b []byte) error {
	if err := exact(TypePuback, b, 5); err != nil {
		return err
	}
	*m = Puback{TopicID: be16(b), MsgID: be16(b[2:]), ReturnCode: ReturnCode(b[4])}
	return m.check()
}
func (m *Puback) check() error { return checkReturnCode(TypePuback, m.ReturnCode) }

func decodeMsgID(t MsgType, b []byte) (uint16, error) {
	if err := exact(t, b, 2); err != nil {
		return 0, err
	}
	return be16(b), nil
}

// PUBREC (MQTT-SN 1.2 §5.4.14).
type Pubrec struct{ MsgID uint16 }

func (*Pubrec) Type() MsgType                  { return TypePubrec }
func (*Pubrec) bodyLen() int                   { return 2 }
func (m *Pubrec) appendBody(dst []byte) []byte { return append16(dst, m.MsgID) }
func (m *Pubrec) decodeBody(b []byte) (err error) {
	m.MsgID, err = decodeMsgID(TypePubrec, b)
	return err
}
func (*Pubrec) check() error { return nil }

// PUBREL (MQTT-SN 1.2 §5.4.14).
type Pubrel struct{ MsgID uint16 }

func (*Pubrel) Type() MsgType                  { return TypePubrel }
func (*Pubrel) bodyLen() int                   { return 2 }
func (m *Pubrel) appendBody(dst []byte) []byte { return append16(dst, m.MsgID) }
func (m *Pubrel) decodeBody(b []byte) (err error) {
	m.MsgID, err = decodeMsgID(TypePubrel, b)
	return err
}
func (*Pubrel) check() error { return nil }

// PUBCOMP (MQTT-SN 1.2 §5.4.14).
type Pubcomp struct{ MsgID uint16 }

func (*Pubcomp) Type() MsgType                  { return TypePubcomp }
func (*Pubcomp) bodyLen() int                   { return 2 }
func (m *Pubcomp) appendBody(dst []byte) []byte { return append16(dst, m.MsgID) }
func (m *Pubcomp) decodeBody(b []byte) (err error) {
	m.MsgID, err = decodeMsgID(TypePubcomp, b)
	return err
}
func (*Pubcomp) check() error { return nil }

// UNSUBACK (MQTT-SN 1.2 §5.4.18).
type Unsuback struct{ MsgID uint16 }

func (*Unsuback) Type() MsgType                  { return TypeUnsuback }
func (*Unsuback) bodyLen() int                   { return 2 }
func (m *Unsuback) appendBody(dst []byte) []byte { return append16(dst, m.MsgID) }
func (m *Unsuback) decodeBody(b []byte) (err error) {
	m.MsgID, err = decodeMsgID(TypeUnsuback, b)
	return err
}
func (*Unsuback) check() error { return nil }

// topicField is the last field of SUBSCRIBE and UNSUBSCRIBE (§5.4.15,
// §5.4.17): a topic name for TopicIDNormal, two octets otherwise.
func topicFieldLen(tt TopicIDType, name []byte) int {
	if tt == TopicIDNormal {
		return len(name)
	}
	return 2
}

func appendTopicField(dst []byte, tt TopicIDType, id uint16, name []byte) []byte {
	if tt == TopicIDNormal {
		return append(dst, name...)
	}
	return append16(dst, id)
}

// decodeTopicField reads the topic field b of a SUBSCRIBE or UNSUBSCRIBE
// whose TopicIdType is tt.
func decodeTopicField(t MsgType, tt TopicIDType, b []byte) (uint16, []byte, error) {
	switch tt {
	case TopicIDNormal:
		return 0, tail(b, 0), nil // checked by checkTopicField
	case TopicIDPredefined:
		if err := exact(t, b, 2); err != nil {
			return 0, nil, err
		}
		return be16(b), nil, nil
	case TopicIDShort:
		if len(b) != 2 { // MQTT-SN 1.2 §6.7: a short topic name has two octets
			return 0, nil, newError(t, ErrShortTopic, "")
		}
		return be16(b), nil, nil
	}
	return 0, nil, newError(t, ErrTopicIDType, "0b11 is reserved") // MQTT-SN 1.2 §5.3.4
}

func checkTopicField(t MsgType, tt TopicIDType, id uint16, name []byte) error {
	switch tt {
	case TopicIDNormal:
		if id != 0 {
			return newError(t, ErrTopicName, "TopicID with a normal topic name")
		}
		return checkTopicName(t, name)
	case TopicIDPredefined, TopicIDShort:
		if len(name) != 0 {
			return newError(t, ErrTopicName, "TopicName with a two-octet topic id type; the id goes in TopicID")
		}
		return nil
	}
	return newError(t, ErrTopicIDType, "0b11 is reserved")
}

// SUBSCRIBE (MQTT-SN 1.2 §5.4.15). Of the Flags DUP, QoS and TopicIdType are
// used. With TopicIDNormal the topic (which may hold wildcards) is in
// TopicName and TopicID is 0; with TopicIDPredefined and TopicIDShort the id
// or the two octets of the short name are in TopicID and TopicName is nil.
type Subscribe struct {
	DUP         bool
	QoS         QoS // requested: 0, 1 or 2
	TopicIDType TopicIDType
	MsgID       uint16
	TopicID     uint16
	TopicName   []byte
}

func (*Subscribe) Type() MsgType  { return TypeSubscribe }
func (m *Subscribe) bodyLen() int { return 3 + topicFieldLen(m.TopicIDType, m.TopicName) }
func (m *Subscribe) appendBody(dst []byte) []byte {
	f := Flags(0).with(FlagDUP, m.DUP).WithQoS(m.QoS).WithTopicIDType(m.TopicIDType)
	dst = append16(append(dst, byte(f)), m.MsgID)
	return appendTopicField(dst, m.TopicIDType, m.TopicID, m.TopicName)
}
func (m *Subscribe) decodeBody(b []byte) error {
	if err := atLeast(TypeSubscribe, b, 3); err != nil {
		return err
	}
	f := Flags(b[0])
	// MQTT-SN 1.2 §5.4.15: Retain, Will and CleanSession are not used.
	if err := flagsOnly(TypeSubscribe, f, FlagDUP|FlagQoSMask|FlagTopicIDMask); err != nil {
		return err
	}
	id, name, err := decodeTopicField(TypeSubscribe, f.TopicIDType(), b[3:])
	if err != nil {
		return err
	}
	*m = Subscribe{DUP: f.DUP(), QoS: f.QoS(), TopicIDType: f.TopicIDType(), MsgID: be16(b[1:]), TopicID: id, TopicName: name}
	return m.check()
}
func (m *Subscribe) check() error {
	if err := checkQoS012(TypeSubscribe, m.QoS); err != nil {
		return err
	}
	return checkTopicField(TypeSubscribe, m.TopicIDType, m.TopicID, m.TopicName)
}

// SUBACK (MQTT-SN 1.2 §5.4.16). Of the Flags only QoS is used.
type Suback struct {
	QoS        QoS    // granted: 0, 1 or 2
	TopicID    uint16 // 0x0000 when not relevant (wildcards, short names)
	MsgID      uint16
	ReturnCode ReturnCode
}

func (*Suback) Type() MsgType { return TypeSuback }
func (*Suback) bodyLen() int  { return 6 }
func (m *Suback) appendBody(dst []byte) []byte {
	dst = append16(append16(append(dst, byte(Flags(0).WithQoS(m.QoS))), m.TopicID), m.MsgID)
	return append(dst, byte(m.ReturnCode))
}
func (m *Suback) decodeBody(b []byte) error {
	if err := exact(TypeSuback, b, 6); err != nil {
		return err
	}
	f := Flags(b[0])
	// MQTT-SN 1.2 §5.4.16: all flags but QoS are not used.
	if err := flagsOnly(TypeSuback, f, FlagQoSMask); err != nil {
		return err
	}
	*m = Suback{QoS: f.QoS(), TopicID: be16(b[1:]), MsgID: be16(b[3:]), ReturnCode: ReturnCode(b[5])}
	return m.check()
}
func (m *Suback) check() error {
	if err := checkQoS012(TypeSuback, m.QoS); err != nil {
		return err
	}
	return checkReturnCode(TypeSuback, m.ReturnCode)
}

// UNSUBSCRIBE (MQTT-SN 1.2 §5.4.17). Of the Flags only TopicIdType is used.
// The topic is in TopicName or TopicID as for Subscribe.
type Unsubscribe struct {
	TopicIDType TopicIDType
	MsgID       uint16
	TopicID     uint16
	TopicName   []byte
}

func (*Unsubscribe) Type() MsgType  { return TypeUnsubscribe }
func (m *Unsubscribe) bodyLen() int { return 3 + topicFieldLen(m.TopicIDType, m.TopicName) }
func (m *Unsubscribe) appendBody(dst []byte) []byte {
	dst = append16(append(dst, byte(Flags(0).WithTopicIDType(m.TopicIDType))), m.MsgID)
	return appendTopicField(dst, m.TopicIDType, m.TopicID, m.TopicName)
}
func (m *Unsubscribe) decodeBody(b []byte) error {
	if err := atLeast(TypeUnsubscribe, b, 3); err != nil {
		return err
	}
	f := Flags(b[0])
	// MQTT-SN 1.2 §5.4.17: all flags but TopicIdType are not used.
	if err := flagsOnly(TypeUnsubscribe, f, FlagTopicIDMask); err != nil {
		return err
	}
	id, name, err := decodeTopicField(TypeUnsubscribe, f.TopicIDType(), b[3:])
	if err != nil {
		return err
	}
	*m = Unsubscribe{TopicIDType: f.TopicIDType(), MsgID: be16(b[1:]), TopicID: id, TopicName: name}
	return m.check()
}
func (m *Unsubscribe) check() error {
	return checkTopicField(TypeUnsubscribe, m.TopicIDType, m.TopicID, m.TopicName)
}

// PINGREQ (MQTT-SN 1.2 §5.4.19). A sleeping client that wakes up includes its
// ClientID (§6.14); nil otherwise.
type Pingreq struct {
	ClientID []byte // nil, or 1 to 23 octets
}

func (*Pingreq) Type() MsgType                  { return TypePingreq }
func (m *Pingreq) bodyLen() int                 { return len(m.ClientID) }
func (m *Pingreq) appendBody(dst []byte) []byte { return append(dst, m.ClientID...) }
func (m *Pingreq) decodeBody(b []byte) error {
	*m = Pingreq{ClientID: tail(b, 0)}
	return m.check()
}
func (m *Pingreq) check() error {
	if len(m.ClientID) == 0 {
		return nil
	}
	return checkClientID(TypePingreq, m.ClientID)
}

// DISCONNECT (MQTT-SN 1.2 §5.4.21). A client that goes to sleep includes the
// sleep Duration (§6.14): HasDuration says whether the field is present.
type Disconnect struct {
	HasDuration bool
	Duration    Seconds // 0 unless HasDuration
}

func (*Disconnect) Type() MsgType { return TypeDisconnect }
func (m *Disconnect) bodyLen() int {
	if m.HasDuration {
		return 2
	}
	return 0
}
func (m *Disconnect) appendBody(dst []byte) []byte {
	if m.HasDuration {
		return append16(dst, uint16(m.Duration))
	}
	return dst
}
func (m *Disconnect) decodeBody(b []byte) error {
	switch len(b) {
	case 0:
		*m = Disconnect{}
		return nil
	case 2:
		*m = Disconnect{HasDuration: true, Duration: Seconds(be16(b))}
		return nil
	case 1:
		return newError(TypeDisconnect, ErrTruncated, "one octet of Duration")
	}
	return newError(TypeDisconnect, ErrTrailing, "")
}
func (m *Disconnect) check() error {
	if !m.HasDuration && m.Duration != 0 {
		return newError(TypeDisconnect, ErrTrailing, "Duration without HasDuration")
	}
	return nil
}

// Encapsulated is a message with its forwarder encapsulation (MQTT-SN 1.2
// §5.5): the Ctrl octet, the Wireless Node Id, and the encapsulated message.
type Encapsulated struct {
	// Radius is the broadcast radius, bits 1-0 of Ctrl (0 to 3); only
	// relevant from the gateway to the forwarder.
	Radius uint8
	// NodeID is the Wireless Node Id, 0 to MaxNodeIDLen octets; nil when
	// empty.
	NodeID []byte
	// Message is the encapsulated message; not itself an *Encapsulated.
	Message Message
}

func (*Encapsulated) Type() MsgType { return TypeEncapsulated }

// bodyLen is what follows the encapsulation's MsgType octet: Ctrl, the node
// id and the encapsulated message.
func (m *Encapsulated) bodyLen() int { return 1 + len(m.NodeID) + Size(m.Message) }
func (m *Encapsulated) appendBody(dst []byte) []byte {
	return Append(append(append(dst, m.Radius), m.NodeID...), m.Message)
}

// decodeBody takes the whole datagram, because the encapsulation's Length
// covers its own header only (§5.5).
func (m *Encapsulated) decodeBody(b []byte) error {
	radius, node, inner, err := SplitEncapsulated(b)
	if err != nil {
		return err
	}
	msg, err := Decode(inner)
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.Encapsulated = true
		}
		return err
	}
	*m = Encapsulated{Radius: radius, NodeID: node, Message: msg}
	return nil
}
func (m *Encapsulated) check() error {
	switch {
	case m.Radius > 3:
		return newError(TypeEncapsulated, ErrEncapsulation, "radius above 3")
	case len(m.NodeID) > MaxNodeIDLen:
		return newError(TypeEncapsulated, ErrEncapsulation, "node id above 252 octets")
	case m.Message == nil:
		return newError(TypeEncapsulated, ErrEncapsulation, "no encapsulated message")
	}
	if _, ok := m.Message.(*Encapsulated); ok {
		return newError(TypeEncapsulated, ErrEncapsulation, "encapsulated encapsulation")
	}
	if err := Validate(m.Message); err != nil {
		if e, ok := err.(*Error); ok {
			e.Encapsulated = true
		}
		return err
	}
	return nil
}
