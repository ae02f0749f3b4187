package packet

import (
	"encoding/binary"
	"fmt"
)

// MQTT 5.0 properties (§2.2.2).

type propKind uint8

const (
	kindNone propKind = iota
	kindByte
	kindUint16
	kindUint32
	kindVarint
	kindString
	kindBinary
	kindPair
)

var propKinds = [...]propKind{
	PropPayloadFormat:        kindByte,
	PropMessageExpiry:        kindUint32,
	PropContentType:          kindString,
	PropResponseTopic:        kindString,
	PropCorrelationData:      kindBinary,
	PropSubscriptionID:       kindVarint,
	PropSessionExpiry:        kindUint32,
	PropAssignedClientID:     kindString,
	PropServerKeepAlive:      kindUint16,
	PropAuthMethod:           kindString,
	PropAuthData:             kindBinary,
	PropRequestProblemInfo:   kindByte,
	PropWillDelay:            kindUint32,
	PropRequestResponseInfo:  kindByte,
	PropResponseInfo:         kindString,
	PropServerReference:      kindString,
	PropReasonString:         kindString,
	PropReceiveMaximum:       kindUint16,
	PropTopicAliasMaximum:    kindUint16,
	PropTopicAlias:           kindUint16,
	PropMaximumQoS:           kindByte,
	PropRetainAvailable:      kindByte,
	PropUser:                 kindPair,
	PropMaximumPacketSize:    kindUint32,
	PropWildcardSubAvailable: kindByte,
	PropSubIDAvailable:       kindByte,
	PropSharedSubAvailable:   kindByte,
}

var propNames = [...]string{
	PropPayloadFormat:        "Payload Format Indicator",
	PropMessageExpiry:        "Message Expiry Interval",
	PropContentType:          "Content Type",
	PropResponseTopic:        "Response Topic",
	PropCorrelationData:      "Correlation Data",
	PropSubscriptionID:       "Subscription Identifier",
	PropSessionExpiry:        "Session Expiry Interval",
	PropAssignedClientID:     "Assigned Client Identifier",
	PropServerKeepAlive:      "Server Keep Alive",
	PropAuthMethod:           "Authentication Method",
	PropAuthData:             "Authentication Data",
	PropRequestProblemInfo:   "Request Problem Information",
	PropWillDelay:            "Will Delay Interval",
	PropRequestResponseInfo:  "Request Response Information",
	PropResponseInfo:         "Response Information",
	PropServerReference:      "Server Reference",
	PropReasonString:         "Reason String",
	PropReceiveMaximum:       "Receive Maximum",
	PropTopicAliasMaximum:    "Topic Alias Maximum",
	PropTopicAlias:           "Topic Alias",
	PropMaximumQoS:           "Maximum QoS",
	PropRetainAvailable:      "Retain Available",
	PropUser:                 "User Property",
	PropMaximumPacketSize:    "Maximum Packet Size",
	PropWildcardSubAvailable: "Wildcard Subscription Available",
	PropSubIDAvailable:       "Subscription Identifier Available",
	PropSharedSubAvailable:   "Shared Subscription Available",
}

func (id PropID) String() string {
	if int(id) < len(propNames) && propNames[id] != "" {
		return propNames[id]
	}
	return fmt.Sprintf("property 0x%02X", byte(id))
}

// propSet lists the properties a packet may carry, in ascending id order
// (the order the encoder writes them in), with their bit mask.
type propSet struct {
	name  string   // packet name for error messages
	ids   []PropID // ascending
	mask  uint64
	multi uint64 // properties that may appear more than once
}

func newPropSet(name string, ids ...PropID) *propSet {
	s := &propSet{name: name, ids: ids, multi: 1 << PropUser}
	for _, id := range ids {
		s.mask |= 1 << id
	}
	return s
}

// The properties each packet may carry (MQTT 5.0 Table 2-4).
var (
	connectProps = newPropSet("CONNECT", PropSessionExpiry, PropAuthMethod, PropAuthData,
		PropRequestProblemInfo, PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum,
		PropUser, PropMaximumPacketSize)
	willProps = newPropSet("will", PropPayloadFormat, PropMessageExpiry, PropContentType,
		PropResponseTopic, PropCorrelationData, PropWillDelay, PropUser)
	connackProps = newPropSet("CONNACK", PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive,
		PropAuthMethod, PropAuthData, PropResponseInfo, PropServerReference, PropReasonString,
		PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable, PropUser,
		PropMaximumPacketSize, PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable)
	publishProps = func() *propSet {
		s := newPropSet("PUBLISH", PropPayloadFormat, PropMessageExpiry, PropContentType,
			PropResponseTopic, PropCorrelationData, PropSubscriptionID, PropTopicAlias, PropUser)
		s.multi |= 1 << PropSubscriptionID // one per matching subscription (§3.3.4)
		return s
	}()
	ackProps         = newPropSet("acknowledgement", PropReasonString, PropUser)
	subscribeProps   = newPropSet("SUBSCRIBE", PropSubscriptionID, PropUser)
	subackProps      = newPropSet("SUBACK", PropReasonString, PropUser)
	unsubscribeProps = newPropSet("UNSUBSCRIBE", PropUser)
	unsubackProps    = newPropSet("UNSUBACK", PropReasonString, PropUser)
	disconnectProps  = newPropSet("DISCONNECT", PropSessionExpiry, PropServerReference, PropReasonString, PropUser)
	authProps        = newPropSet("AUTH", PropAuthMethod, PropAuthData, PropReasonString, PropUser)
)

// props reads a Property Length and the properties that follow into p.
func (d *decoder) props(p *Properties, set *propSet) error {
	n, k := parseVarint(d.b[d.i:])
	if k < 0 {
		return varintError(k, set.name+" property length")
	}
	d.i += k
	if n > d.rest() {
		return malformed(set.name + " property length exceeds the packet")
	}
	end := d.i + n
	pd := decoder{b: d.b[:end], i: d.i, v: d.v}
	for pd.i < end {
		idb := pd.b[pd.i]
		pd.i++
		// Identifiers are variable byte integers, but all defined ones
		// are one byte; anything else is unknown. An identifier unknown
		// or not valid for the packet is a Malformed Packet (§2.2.2.2).
		if int(idb) >= len(propKinds) || propKinds[idb] == kindNone {
			return malformed(fmt.Sprintf("%s: unknown property identifier 0x%02X (MQTT 5.0 §2.2.2.2)", set.name, idb))
		}
		id := PropID(idb)
		if set.mask&(1<<id) == 0 {
			return malformed(fmt.Sprintf("%s: %v is not allowed in this packet (MQTT 5.0 §2.2.2.2)", set.name, id))
		}
		if p.Has(id) && set.multi&(1<<id) == 0 {
			return newError(d.v, ProtocolError, fmt.Sprintf("%s: %v included more than once", set.name, id))
		}
		p.Set(id)
		if err := pd.prop(p, id); err != nil {
			return err
		}
	}
	d.i = end
	return nil
}

// prop reads the value of property id and checks its range.
func (d *decoder) prop(p *Properties, id PropID) error {
	name := propNames[id]
	var err error
	switch propKinds[id] {
	case kindByte:
		var c byte
		if c, err = d.byte1(name); err != nil {
			return err
		}
		// Every byte property is a 0/1 flag, except Maximum QoS which is
		// 0 or 1 too ("It is a Protocol Error ... to have a value other
		// than 0 or 1", §3.1.2.11.6, §3.1.2.11.7, §3.2.2.3.4, ...).
		if c > 1 {
			return newError(d.v, ProtocolError, fmt.Sprintf("%s has value %d, not 0 or 1", name, c))
		}
		switch id {
		case PropPayloadFormat:
			p.PayloadFormat = c
		case PropRequestProblemInfo:
			p.RequestProblemInfo = c
		case PropRequestResponseInfo:
			p.RequestResponseInfo = c
		case PropMaximumQoS:
			p.MaximumQoS = c
		case PropRetainAvailable:
			p.RetainAvailable = c
		case PropWildcardSubAvailable:
			p.WildcardSubAvailable = c
		case PropSubIDAvailable:
			p.SubIDAvailable = c
		case PropSharedSubAvailable:
			p.SharedSubAvailable = c
		}
	case kindUint16:
		var x uint16
		if x, err = d.uint16(name); err != nil {
			return err
		}
		switch id {
		case PropServerKeepAlive:
			p.ServerKeepAlive = x
		case PropReceiveMaximum:
			if x == 0 { // §3.1.2.11.3, §3.2.2.3.3
				return newError(d.v, ProtocolError, "Receive Maximum is 0")
			}
			p.ReceiveMaximum = x
		case PropTopicAliasMaximum:
			p.TopicAliasMaximum = x
		case PropTopicAlias:
			if x == 0 { // [MQTT-3.3.2-8], §3.3.4: DISCONNECT with 0x94
				return newError(d.v, TopicAliasInvalid, "Topic Alias is 0 [MQTT-3.3.2-8]")
			}
			p.TopicAlias = x
		}
	case kindUint32:
		var x uint32
		if x, err = d.uint32(name); err != nil {
			return err
		}
		switch id {
		case PropMessageExpiry:
			p.MessageExpiry = x
		case PropSessionExpiry:
			p.SessionExpiry = x
		case PropWillDelay:
			p.WillDelay = x
		case PropMaximumPacketSize:
			if x == 0 { // §3.1.2.11.4, §3.2.2.3.6
				return newError(d.v, ProtocolError, "Maximum Packet Size is 0")
			}
			p.MaximumPacketSize = x
		}
	case kindVarint: // Subscription Identifier
		var x int
		if x, err = d.varint(name); err != nil {
			return err
		}
		if x == 0 { // §3.3.2.3.8, §3.8.2.1.2
			return newError(d.v, ProtocolError, "Subscription Identifier is 0")
		}
		p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(x))
	case kindString:
		var s string
		if s, err = d.string(name); err != nil {
			return err
		}
		switch id {
		case PropContentType:
			p.ContentType = s
		case PropResponseTopic:
			if s == "" || checkTopicName(aliasBytes(s)) != topicOK {
				return newError(d.v, ProtocolError, "Response Topic is not a valid topic name [MQTT-3.3.2-14]")
			}
			p.ResponseTopic = s
		case PropAssignedClientID:
			p.AssignedClientID = s
		case PropAuthMethod:
			p.AuthMethod = s
		case PropResponseInfo:
			p.ResponseInfo = s
		case PropServerReference:
			p.ServerReference = s
		case PropReasonString:
			p.ReasonString = s
		}
	case kindBinary:
		var b []byte
		if b, err = d.binary(name); err != nil {
			return err
		}
		switch id {
		case PropCorrelationData:
			p.CorrelationData = b
		case PropAuthData:
			p.AuthData = b
		}
	case kindPair: // User Property [MQTT-1.5.7-1]
		var k, v string
		if k, err = d.string("User Property name"); err != nil {
			return err
		}
		if v, err = d.string("User Property value"); err != nil {
			return err
		}
		p.User = append(p.User, UserProperty{Key: k, Value: v})
	}
	return nil
}

// Encoding. A scalar property is written when its Present bit is set; a
// string or binary one when its bit is set or it is non-empty; list ones
// once per element. Only the properties the packet may carry are written.

func (p *Properties) emitsString(id PropID, s string) bool { return len(s) > 0 || p.Has(id) }
func (p *Properties) emitsBytes(id PropID, b []byte) bool  { return len(b) > 0 || p.Has(id) }

// propsLen returns the length of the properties of p that set allows,
// without the Property Length field.
func propsLen(p *Properties, set *propSet) int {
	if p.Present == 0 && propsEmpty(p) {
		return 0
	}
	n := 0
	for _, id := range set.ids {
		switch propKinds[id] {
		case kindByte:
			if p.Has(id) {
				n += 2
			}
		case kindUint16:
			if p.Has(id) {
				n += 3
			}
		case kindUint32:
			if p.Has(id) {
				n += 5
			}
		case kindVarint:
			for _, x := range p.SubscriptionIDs {
				n += 1 + varintLen(int(x))
			}
		case kindString:
			if s := p.stringProp(id); p.emitsString(id, s) {
				n += 3 + len(s)
			}
		case kindBinary:
			if b := p.bytesProp(id); p.emitsBytes(id, b) {
				n += 3 + len(b)
			}
		case kindPair:
			for _, u := range p.User {
				n += 5 + len(u.Key) + len(u.Value)
			}
		}
	}
	return n
}

// propsEmpty reports whether p has no non-empty string, binary or list.
func propsEmpty(p *Properties) bool {
	return len(p.User) == 0 && len(p.SubscriptionIDs) == 0 && p.ContentType == "" &&
		p.ResponseTopic == "" && len(p.CorrelationData) == 0 && p.AssignedClientID == "" &&
		p.AuthMethod == "" && len(p.AuthData) == 0 && p.ResponseInfo == "" &&
		p.ServerReference == "" && p.ReasonString == ""
}

// appendProps appends Property Length (n, from propsLen) and the properties.
func appendProps(dst []byte, p *Properties, set *propSet, n int) []byte {
	dst = appendVarint(dst, n)
	if n == 0 {
		return dst
	}
	for _, id := range set.ids {
		switch propKinds[id] {
		case kindByte:
			if p.Has(id) {
				dst = append(dst, byte(id), p.byteProp(id))
			}
		case kindUint16:
			if p.Has(id) {
				dst = binary.BigEndian.AppendUint16(append(dst, byte(id)), p.uint16Prop(id))
			}
		case kindUint32:
			if p.Has(id) {
				dst = binary.BigEndian.AppendUint32(append(dst, byte(id)), p.uint32Prop(id))
			}
		case kindVarint:
			for _, x := range p.SubscriptionIDs {
				dst = appendVarint(append(dst, byte(id)), int(x))
			}
		case kindString:
			if s := p.stringProp(id); p.emitsString(id, s) {
				dst = appendString(append(dst, byte(id)), s)
			}
		case kindBinary:
			if b := p.bytesProp(id); p.emitsBytes(id, b) {
				dst = appendBinary(append(dst, byte(id)), b)
			}
		case kindPair:
			for _, u := range p.User {
				dst = appendString(appendString(append(dst, byte(id)), u.Key), u.Value)
			}
		}
	}
	return dst
}

func (p *Properties) byteProp(id PropID) byte {
	switch id {
	case PropPayloadFormat:
		return p.PayloadFormat
	case PropRequestProblemInfo:
		return p.RequestProblemInfo
	case PropRequestResponseInfo:
		return p.RequestResponseInfo
	case PropMaximumQoS:
		return p.MaximumQoS
	case PropRetainAvailable:
		return p.RetainAvailable
	case PropWildcardSubAvailable:
		return p.WildcardSubAvailable
	case PropSubIDAvailable:
		return p.SubIDAvailable
	case PropSharedSubAvailable:
		return p.SharedSubAvailable
	}
	return 0
}

func (p *Properties) uint16Prop(id PropID) uint16 {
	switch id {
	case PropServerKeepAlive:
		return p.ServerKeepAlive
	case PropReceiveMaximum:
		return p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return p.TopicAliasMaximum
	case PropTopicAlias:
		return p.TopicAlias
	}
	return 0
}

func (p *Properties) uint32Prop(id PropID) uint32 {
	switch id {
	case PropMessageExpiry:
		return p.MessageExpiry
	case PropSessionExpiry:
		return p.SessionExpiry
	case PropWillDelay:
		return p.WillDelay
	case PropMaximumPacketSize:
		return p.MaximumPacketSize
	}
	return 0
}

func (p *Properties) stringProp(id PropID) string {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return ""
}

func (p *Properties) bytesProp(id PropID) []byte {
	switch id {
	case PropCorrelationData:
		return p.CorrelationData
	case PropAuthData:
		return p.AuthData
	}
	return nil
}

// checkPropsEncodable reports property values the wire format cannot carry.
func checkPropsEncodable(p *Properties, set *propSet) error {
	for _, id := range set.ids {
		switch propKinds[id] {
		case kindString:
			if len(p.stringProp(id)) > 65535 {
				return malformed(set.name + ": " + propNames[id] + " longer than 65535 bytes")
			}
		case kindBinary:
			if len(p.bytesProp(id)) > 65535 {
				return malformed(set.name + ": " + propNames[id] + " longer than 65535 bytes")
			}
		case kindVarint:
			for _, x := range p.SubscriptionIDs {
				if x > MaxRemainingLength {
					return malformed(set.name + ": Subscription Identifier above 268435455")
				}
			}
		case kindPair:
			for _, u := range p.User {
				if len(u.Key) > 65535 || len(u.Value) > 65535 {
					return malformed(set.name + ": User Property longer than 65535 bytes")
				}
			}
		}
	}
	return nil
}
