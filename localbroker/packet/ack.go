package packet

// PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-§3.7), PINGREQ, PINGRESP (§3.12,
// §3.13), DISCONNECT (§3.14) and AUTH (MQTT 5.0 §3.15).

// Reason codes each packet may carry under 5.0.
var (
	pubackCodes     = newCodeSet(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99) // Table 3-4, 3-5 (PUBREC)
	pubrelCodes     = newCodeSet(0x00, 0x92)                                           // Table 3-6, 3-7 (PUBCOMP)
	disconnectCodes = newCodeSet(0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E,
		0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F,
		0xA0, 0xA1, 0xA2) // Table 3-10
	authCodes = newCodeSet(0x00, 0x18, 0x19) // Table 3-11
)

// ackFlags returns the fixed header flags of an acknowledgement: PUBREL
// has 0b0010 [MQTT-3.6.1-1], the others 0 [MQTT-2.2.2-1].
func ackFlags(t Type) byte {
	if t == TypePubrel {
		return 0x02
	}
	return 0
}

func decodeAck(h FixedHeader, body []byte, v Version) (*Ack, error) {
	name := h.Type.String()
	if h.Flags != ackFlags(h.Type) {
		return nil, malformed(name + ": reserved fixed header flags are wrong [MQTT-2.2.2-1] [MQTT-2.1.3-1] [MQTT-3.6.1-1]")
	}
	d := decoder{b: body, v: v}
	a := &Ack{Kind: h.Type}
	var err error
	if a.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	if v != V5 || d.rest() == 0 {
		// 5.0: a Remaining Length of 2 means Success, no properties (§3.4.2.1).
		return a, d.end(name)
	}
	rc, _ := d.byte1("reason code")
	codes := &pubackCodes
	if h.Type == TypePubrel || h.Type == TypePubcomp {
		codes = &pubrelCodes
	}
	if !codes.has(rc) { // [MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1]
		return nil, newError(v, ProtocolError, name+": reason code not allowed [MQTT-3.4.2-1]")
	}
	a.ReasonCode = ReasonCode(rc)
	if d.rest() == 0 {
		// Remaining Length 3: no Property Length, 0 is used (§3.4.2.2.1).
		return a, nil
	}
	if err := d.props(&a.Properties, ackProps); err != nil {
		return nil, err
	}
	return a, d.end(name)
}

func (a *Ack) bodyLen(v Version) (n, props int) {
	if v != V5 {
		return 2, 0
	}
	props = propsLen(&a.Properties, ackProps)
	switch {
	case props > 0:
		return 3 + varintLen(props) + props, props
	case a.ReasonCode != 0:
		return 3, 0
	}
	return 2, 0 // short form [MQTT-3.4.2.1]
}

func (a *Ack) appendTo(dst []byte, v Version) []byte {
	n, props := a.bodyLen(v)
	dst = appendHeader(dst, a.Kind, ackFlags(a.Kind), n)
	dst = append(dst, byte(a.PacketID>>8), byte(a.PacketID))
	if n > 2 {
		dst = append(dst, byte(a.ReasonCode))
	}
	if n > 3 {
		dst = appendProps(dst, &a.Properties, ackProps, props)
	}
	return dst
}

func decodeEmpty(h FixedHeader, body []byte) error {
	if h.Flags != 0 {
		return malformed(h.Type.String() + ": reserved fixed header flags are not 0 [MQTT-2.2.2-1] [MQTT-2.1.3-1]")
	}
	if len(body) != 0 {
		return malformed(h.Type.String() + ": remaining length is not 0")
	}
	return nil
}

func decodeDisconnect(h FixedHeader, body []byte, v Version) (*Disconnect, error) {
	if h.Flags != 0 || v != V5 {
		if err := decodeEmpty(h, body); err != nil { // 3.1.1 [MQTT-3.14.1-1]
			return nil, err
		}
		return &Disconnect{}, nil
	}
	x := &Disconnect{}
	if len(body) == 0 { // §3.14.2.1: Normal disconnection
		return x, nil
	}
	d := decoder{b: body, v: v}
	rc, _ := d.byte1("reason code")
	if !disconnectCodes.has(rc) {
		return nil, newError(v, ProtocolError, "DISCONNECT: reason code not allowed [MQTT-3.14.2-1]")
	}
	x.ReasonCode = ReasonCode(rc)
	if d.rest() == 0 { // Remaining Length 1: Property Length 0 (§3.14.2.2.1)
		return x, nil
	}
	if err := d.props(&x.Properties, disconnectProps); err != nil {
		return nil, err
	}
	return x, d.end("DISCONNECT")
}

func (x *Disconnect) bodyLen(v Version) (n, props int) {
	if v != V5 {
		return 0, 0
	}
	props = propsLen(&x.Properties, disconnectProps)
	switch {
	case props > 0:
		return 1 + varintLen(props) + props, props
	case x.ReasonCode != 0:
		return 1, 0
	}
	return 0, 0 // short form (§3.14.2.1)
}

func (x *Disconnect) appendTo(dst []byte, v Version) []byte {
	n, props := x.bodyLen(v)
	dst = appendHeader(dst, TypeDisconnect, 0, n)
	if n > 0 {
		dst = append(dst, byte(x.ReasonCode))
	}
	if n > 1 {
		dst = appendProps(dst, &x.Properties, disconnectProps, props)
	}
	return dst
}

// decodeAuth decodes an AUTH body (5.0 only). The presence and value of the
// Authentication Method (§3.15.2.2.2, [MQTT-4.12.0-5]) are the session's to
// check against the CONNECT.
func decodeAuth(h FixedHeader, body []byte, v Version) (*Auth, error) {
	if v != V5 {
		return nil, malformed("AUTH is not an MQTT 3.1.1 packet (type 15 is reserved)")
	}
	if h.Flags != 0 {
		return nil, malformed("AUTH: reserved fixed header flags are not 0 [MQTT-3.15.1-1]")
	}
	x := &Auth{}
	if len(body) == 0 { // §3.15.2.1: Success, no properties
		return x, nil
	}
	d := decoder{b: body, v: v}
	rc, _ := d.byte1("reason code")
	if !authCodes.has(rc) {
		return nil, newError(v, ProtocolError, "AUTH: reason code not allowed [MQTT-3.15.2-1]")
	}
	x.ReasonCode = ReasonCode(rc)
	// Only the two forms of §3.15.2.1 exist: empty, or reason code and
	// properties. A lone reason code is a truncated packet.
	if err := d.props(&x.Properties, authProps); err != nil {
		return nil, err
	}
	return x, d.end("AUTH")
}

func (x *Auth) bodyLen() (n, props int) {
	props = propsLen(&x.Properties, authProps)
	if props == 0 && x.ReasonCode == 0 {
		return 0, 0 // short form (§3.15.2.1)
	}
	return 1 + varintLen(props) + props, props
}

func (x *Auth) appendTo(dst []byte, v Version) []byte {
	if v != V5 {
		return dst // AUTH does not exist in 3.1.1; Validate reports it
	}
	n, props := x.bodyLen()
	dst = appendHeader(dst, TypeAuth, 0, n)
	if n > 0 {
		dst = append(dst, byte(x.ReasonCode))
		dst = appendProps(dst, &x.Properties, authProps, props)
	}
	return dst
}
