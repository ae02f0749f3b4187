package packet

// CONNECT (MQTT 3.1.1 §3.1, MQTT 5.0 §3.1) and CONNACK (§3.2).

// Connect flag bits (§3.1.2.3).
const (
	connReserved   = 0x01
	connCleanStart = 0x02
	connWill       = 0x04
	connWillQoS    = 0x18
	connWillRetain = 0x20
	connPassword   = 0x40
	connUsername   = 0x80
)

// protocolName returns the CONNECT protocol name for level v.
func protocolName(v Version) string {
	if v == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

// DecodeConnect decodes a CONNECT body (the version is read from it). Errors
// carry the reason code the server must answer with: UnsupportedProtocolVersion
// for an unknown level or name, MalformedPacket / ProtocolError otherwise.
//
// Accepted are "MQTT" level 4 (3.1.1) and 5 (5.0), and "MQIsdp" level 3
// (3.1, decoded under the 3.1.1 rules so that the server can refuse it with
// return code 1 [MQTT-3.1.2-2]). When an error occurs after the protocol name
// and level were read, the returned *Connect is non-nil with ProtocolName and
// ProtocolVersion set (other fields unspecified), so that the server can
// answer in the client's protocol version; otherwise it is nil.
func DecodeConnect(flags byte, body []byte) (*Connect, error) {
	if flags != 0 {
		return nil, malformed("CONNECT: reserved fixed header flags are not 0 [MQTT-2.2.2-1] [MQTT-2.1.3-1]")
	}
	d := decoder{b: body, v: V311}
	name, err := d.binary("protocol name")
	if err != nil {
		return nil, err
	}
	level, err := d.byte1("protocol level")
	if err != nil {
		return nil, err
	}
	c := &Connect{ProtocolName: aliasString(name), ProtocolVersion: Version(level)}
	switch {
	case c.ProtocolName == "MQTT" && (level == byte(V311) || level == byte(V5)):
	case c.ProtocolName == "MQIsdp" && level == byte(V31):
	case c.ProtocolName == "MQTT" || c.ProtocolName == "MQIsdp":
		return c, &Error{Code: UnsupportedProtocolVersion, Msg: "unsupported protocol level [MQTT-3.1.2-2]"}
	default:
		if !validUTF8(name) {
			c.ProtocolName = ""
		}
		return c, &Error{Code: UnsupportedProtocolVersion, Msg: "protocol name is not MQTT [MQTT-3.1.2-1]"}
	}
	d.v = c.ProtocolVersion
	if err := c.decodeRest(&d); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Connect) decodeRest(d *decoder) error {
	v := d.v
	f, err := d.byte1("connect flags")
	if err != nil {
		return err
	}
	if f&connReserved != 0 {
		return malformed("CONNECT: reserved connect flag is not 0 [MQTT-3.1.2-3]")
	}
	c.CleanStart = f&connCleanStart != 0
	c.WillFlag = f&connWill != 0
	c.WillQoS = (f & connWillQoS) >> 3
	c.WillRetain = f&connWillRetain != 0
	c.PasswordFlag = f&connPassword != 0
	c.UsernameFlag = f&connUsername != 0
	if !c.WillFlag && (c.WillQoS != 0 || c.WillRetain) {
		// 3.1.1 [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]; 5.0 [MQTT-3.1.2-11] [MQTT-3.1.2-13]
		return malformed("CONNECT: will QoS or will retain set without the will flag [MQTT-3.1.2-11] [MQTT-3.1.2-13]")
	}
	if c.WillQoS == 3 { // 3.1.1 [MQTT-3.1.2-14]; 5.0 [MQTT-3.1.2-12]
		return malformed("CONNECT: will QoS 3 [MQTT-3.1.2-14] [MQTT-3.1.2-12]")
	}
	if v != V5 && c.PasswordFlag && !c.UsernameFlag {
		return malformed("CONNECT: password flag without user name flag [MQTT-3.1.2-22]")
	}
	if c.KeepAlive, err = d.uint16("keep alive"); err != nil {
		return err
	}
	if v == V5 {
		if err := d.props(&c.Properties, connectProps); err != nil {
			return err
		}
		if c.Properties.Has(PropAuthData) && !c.Properties.Has(PropAuthMethod) { // §3.1.2.11.10
			return newError(v, ProtocolError, "CONNECT: Authentication Data without Authentication Method")
		}
	}
	// Payload fields in order [MQTT-3.1.3-1]; the client identifier is
	// always present [MQTT-3.1.3-3] and UTF-8 [MQTT-3.1.3-4].
	if c.ClientID, err = d.string("client identifier"); err != nil {
		return err
	}
	if c.WillFlag {
		if v == V5 {
			if err := d.props(&c.WillProperties, willProps); err != nil {
				return err
			}
		}
		// 3.1.1 [MQTT-3.1.3-10]; 5.0 [MQTT-3.1.3-11]
		if c.WillTopic, err = d.string("will topic"); err != nil {
			return err
		}
		if err := willTopicError(v, c.WillTopic); err != nil {
			return err
		}
		if c.WillPayload, err = d.binary("will payload"); err != nil {
			return err
		}
	}
	if c.UsernameFlag { // 3.1.1 [MQTT-3.1.2-19] [MQTT-3.1.3-11]; 5.0 [MQTT-3.1.2-17] [MQTT-3.1.3-12]
		if c.Username, err = d.string("user name"); err != nil {
			return err
		}
	}
	if c.PasswordFlag { // 3.1.1 [MQTT-3.1.2-21]; 5.0 [MQTT-3.1.2-19]
		if c.Password, err = d.binary("password"); err != nil {
			return err
		}
	}
	return d.end("CONNECT")
}

// willTopicError checks that a will topic is a topic name a PUBLISH could
// carry: CONNACK 0x90 (Topic Name invalid) under 5.0.
func willTopicError(v Version, topic string) error {
	if topic == "" {
		return newError(v, TopicNameInvalid, "CONNECT: empty will topic [MQTT-4.7.3-1]")
	}
	if checkTopicName(aliasBytes(topic)) == topicWildcard {
		return newError(v, TopicNameInvalid, "CONNECT: wildcard in will topic [MQTT-3.3.2-2]")
	}
	return nil
}

func (c *Connect) bodyLen(v Version) int {
	n := 2 + len(protocolName(v)) + 1 + 1 + 2 + 2 + len(c.ClientID)
	if v == V5 {
		s, _ := propsField(&c.Properties, connectProps)
		n += s
	}
	if c.WillFlag {
		if v == V5 {
			s, _ := propsField(&c.WillProperties, willProps)
			n += s
		}
		n += 2 + len(c.WillTopic) + 2 + len(c.WillPayload)
	}
	if c.UsernameFlag {
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		n += 2 + len(c.Password)
	}
	return n
}

func (c *Connect) flags() byte {
	var f byte
	if c.CleanStart {
		f |= connCleanStart
	}
	if c.WillFlag {
		f |= connWill | (c.WillQoS&3)<<3
		if c.WillRetain {
			f |= connWillRetain
		}
	}
	if c.PasswordFlag {
		f |= connPassword
	}
	if c.UsernameFlag {
		f |= connUsername
	}
	return f
}

// appendTo writes the protocol name and level for v (ProtocolName and
// ProtocolVersion are not consulted), then the fields the flags call for.
func (c *Connect) appendTo(dst []byte, v Version) []byte {
	dst = appendHeader(dst, TypeConnect, 0, c.bodyLen(v))
	dst = appendString(dst, protocolName(v))
	dst = append(dst, byte(v), c.flags(), byte(c.KeepAlive>>8), byte(c.KeepAlive))
	if v == V5 {
		_, n := propsField(&c.Properties, connectProps)
		dst = appendProps(dst, &c.Properties, connectProps, n)
	}
	dst = appendString(dst, c.ClientID)
	if c.WillFlag {
		if v == V5 {
			_, n := propsField(&c.WillProperties, willProps)
			dst = appendProps(dst, &c.WillProperties, willProps, n)
		}
		dst = appendString(dst, c.WillTopic)
		dst = appendBinary(dst, c.WillPayload)
	}
	if c.UsernameFlag {
		dst = appendString(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBinary(dst, c.Password)
	}
	return dst
}

func (c *Connect) checkEncodable(v Version) error {
	switch {
	case c.ProtocolName != "" && c.ProtocolName != protocolName(v):
		return malformed("CONNECT: ProtocolName does not match the version")
	case c.ProtocolVersion != 0 && c.ProtocolVersion != v:
		return malformed("CONNECT: ProtocolVersion does not match the version")
	case c.WillQoS > 2:
		return malformed("CONNECT: will QoS above 2")
	case len(c.ClientID) > 65535 || len(c.WillTopic) > 65535 || len(c.WillPayload) > 65535 ||
		len(c.Username) > 65535 || len(c.Password) > 65535:
		return malformed("CONNECT: field longer than 65535 bytes")
	}
	if v == V5 {
		if err := checkPropsEncodable(&c.Properties, connectProps); err != nil {
			return err
		}
		return checkPropsEncodable(&c.WillProperties, willProps)
	}
	return nil
}

// Reason codes a 5.0 CONNACK may carry (Table 3-1).
var connackCodes = newCodeSet(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
	0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)

func decodeConnack(flags byte, body []byte, v Version) (*Connack, error) {
	if flags != 0 {
		return nil, malformed("CONNACK: reserved fixed header flags are not 0 [MQTT-2.2.2-1] [MQTT-2.1.3-1]")
	}
	d := decoder{b: body, v: v}
	f, err := d.byte1("connect acknowledge flags")
	if err != nil {
		return nil, err
	}
	if f&^1 != 0 {
		return nil, malformed("CONNACK: reserved acknowledge flags are not 0 [MQTT-3.2.2-1]")
	}
	c := &Connack{SessionPresent: f&1 != 0}
	rc, err := d.byte1("connect reason code")
	if err != nil {
		return nil, err
	}
	c.ReasonCode = ReasonCode(rc)
	if v == V5 {
		if !connackCodes.has(rc) {
			return nil, newError(v, ProtocolError, "CONNACK: reason code not allowed [MQTT-3.2.2-8]")
		}
	} else if rc > byte(ConnRefusedNotAuthorized) { // 3.1.1 Table 3.1: 6-255 reserved
		return nil, malformed("CONNACK: reserved return code")
	}
	if c.SessionPresent && rc != 0 { // 3.1.1 [MQTT-3.2.2-4]; 5.0 [MQTT-3.2.2-6]
		return nil, newError(v, ProtocolError, "CONNACK: session present with a failure code [MQTT-3.2.2-4] [MQTT-3.2.2-6]")
	}
	if v == V5 {
		if err := d.props(&c.Properties, connackProps); err != nil {
			return nil, err
		}
	}
	return c, d.end("CONNACK")
}

func (c *Connack) bodyLen(v Version) int {
	if v != V5 {
		return 2
	}
	s, _ := propsField(&c.Properties, connackProps)
	return 2 + s
}

func (c *Connack) appendTo(dst []byte, v Version) []byte {
	dst = appendHeader(dst, TypeConnack, 0, c.bodyLen(v))
	var f byte
	if c.SessionPresent {
		f = 1
	}
	dst = append(dst, f, byte(c.ReasonCode))
	if v == V5 {
		_, n := propsField(&c.Properties, connackProps)
		dst = appendProps(dst, &c.Properties, connackProps, n)
	}
	return dst
}
