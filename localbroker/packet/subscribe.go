package packet

import "strings"

// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (§3.8-§3.11).

// Reason codes each packet may carry under 5.0.
var (
	subackCodes = newCodeSet(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2) // Table 3-8
	// 3.1.1: "SUBACK return codes other than 0x00, 0x01, 0x02 and 0x80 are
	// reserved and MUST NOT be used" [MQTT-3.9.3-2].
	subackCodes311 = newCodeSet(0x00, 0x01, 0x02, 0x80)
	unsubackCodes  = newCodeSet(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91) // Table 3-9
)

// subscribeFlags are the fixed header flags of SUBSCRIBE and UNSUBSCRIBE
// [MQTT-3.8.1-1] [MQTT-3.10.1-1].
const subscribeFlags = 0x02

// Subscription option bits (5.0 §3.8.3.1).
const (
	optQoS            = 0x03
	optNoLocal        = 0x04
	optRetainAsPub    = 0x08
	optRetainHandling = 0x30
	optReserved5      = 0xC0
	optReserved311    = 0xFC
)

// decodeSubscribe checks the packet's form; the topic filters themselves
// are only checked to be UTF-8 [MQTT-3.8.3-1], since their syntax
// (§4.7.1, §4.8.2) is answered per filter in the SUBACK.
func decodeSubscribe(h FixedHeader, body []byte, v Version) (*Subscribe, error) {
	if h.Flags != subscribeFlags {
		return nil, malformed("SUBSCRIBE: reserved fixed header flags are not 0010 [MQTT-3.8.1-1]")
	}
	d := decoder{b: body, v: v}
	s := &Subscribe{}
	var err error
	if s.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := d.props(&s.Properties, subscribeProps); err != nil {
			return nil, err
		}
	}
	if d.rest() == 0 { // 3.1.1 [MQTT-3.8.3-3]; 5.0 [MQTT-3.8.3-2]: a Protocol Error
		return nil, newError(v, ProtocolError, "SUBSCRIBE: no topic filters [MQTT-3.8.3-3] [MQTT-3.8.3-2]")
	}
	for d.rest() > 0 {
		var sub Subscription
		if sub.Filter, err = d.string("topic filter"); err != nil {
			return nil, err
		}
		o, err := d.byte1("subscription options")
		if err != nil {
			return nil, err
		}
		sub.QoS = o & optQoS
		if v != V5 {
			if o&optReserved311 != 0 || sub.QoS == 3 {
				return nil, malformed("SUBSCRIBE: reserved option bits set or QoS 3 [MQTT-3-8.3-4]")
			}
		} else {
			if o&optReserved5 != 0 {
				return nil, malformed("SUBSCRIBE: reserved option bits set [MQTT-3.8.3-5]")
			}
			sub.NoLocal = o&optNoLocal != 0
			sub.RetainAsPublished = o&optRetainAsPub != 0
			sub.RetainHandling = (o & optRetainHandling) >> 4
			switch {
			case sub.QoS == 3: // §3.8.3.1
				return nil, newError(v, ProtocolError, "SUBSCRIBE: maximum QoS 3")
			case sub.RetainHandling == 3: // §3.8.3.1
				return nil, newError(v, ProtocolError, "SUBSCRIBE: retain handling 3")
			case sub.NoLocal && strings.HasPrefix(sub.Filter, "$share/"):
				return nil, newError(v, ProtocolError, "SUBSCRIBE: No Local on a shared subscription [MQTT-3.8.3-4]")
			}
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	return s, nil
}

func (s *Subscription) options(v Version) byte {
	o := s.QoS & optQoS
	if v == V5 {
		if s.NoLocal {
			o |= optNoLocal
		}
		if s.RetainAsPublished {
			o |= optRetainAsPub
		}
		o |= (s.RetainHandling & 3) << 4
	}
	return o
}

func (s *Subscribe) bodyLen(v Version) (n, props int) {
	n = 2
	if v == V5 {
		props = propsLen(&s.Properties, subscribeProps)
		n += varintLen(props) + props
	}
	for i := range s.Subscriptions {
		n += 3 + len(s.Subscriptions[i].Filter)
	}
	return n, props
}

func (s *Subscribe) appendTo(dst []byte, v Version) []byte {
	n, props := s.bodyLen(v)
	dst = appendHeader(dst, TypeSubscribe, subscribeFlags, n)
	dst = append(dst, byte(s.PacketID>>8), byte(s.PacketID))
	if v == V5 {
		dst = appendProps(dst, &s.Properties, subscribeProps, props)
	}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		dst = append(appendString(dst, sub.Filter), sub.options(v))
	}
	return dst
}

func (s *Subscribe) checkEncodable(v Version) error {
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		if sub.QoS > 2 || sub.RetainHandling > 2 {
			return malformed("SUBSCRIBE: QoS or retain handling above 2")
		}
		if len(sub.Filter) > 65535 {
			return malformed("SUBSCRIBE: topic filter longer than 65535 bytes")
		}
	}
	if v == V5 {
		if len(s.Properties.SubscriptionIDs) > 1 {
			return malformed("SUBSCRIBE: more than one Subscription Identifier")
		}
		return checkPropsEncodable(&s.Properties, subscribeProps)
	}
	return nil
}

// decodeCodes reads the reason code list that ends a SUBACK or UNSUBACK:
// one code per filter of the request, so at least one (§3.9.3, §3.11.3).
func decodeCodes(d *decoder, name string, codes *codeSet) ([]ReasonCode, error) {
	b := d.b[d.i:]
	if len(b) == 0 {
		return nil, newError(d.v, ProtocolError, name+": no reason codes")
	}
	for _, c := range b {
		if !codes.has(c) { // [MQTT-3.9.3-2] [MQTT-3.11.3-2]
			return nil, newError(d.v, ProtocolError, name+": reason code not allowed [MQTT-3.9.3-2] [MQTT-3.11.3-2]")
		}
	}
	d.i = len(d.b)
	return aliasCodes(b), nil
}

func decodeSuback(h FixedHeader, body []byte, v Version) (*Suback, error) {
	if h.Flags != 0 {
		return nil, malformed("SUBACK: reserved fixed header flags are not 0 [MQTT-2.2.2-1] [MQTT-2.1.3-1]")
	}
	d := decoder{b: body, v: v}
	s := &Suback{}
	var err error
	if s.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	codes := &subackCodes311
	if v == V5 {
		codes = &subackCodes
		if err := d.props(&s.Properties, subackProps); err != nil {
			return nil, err
		}
	}
	if s.ReasonCodes, err = decodeCodes(&d, "SUBACK", codes); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Suback) bodyLen(v Version) (n, props int) {
	n = 2 + len(s.ReasonCodes)
	if v == V5 {
		props = propsLen(&s.Properties, subackProps)
		n += varintLen(props) + props
	}
	return n, props
}

func (s *Suback) appendTo(dst []byte, v Version) []byte {
	n, props := s.bodyLen(v)
	dst = appendHeader(dst, TypeSuback, 0, n)
	dst = append(dst, byte(s.PacketID>>8), byte(s.PacketID))
	if v == V5 {
		dst = appendProps(dst, &s.Properties, subackProps, props)
	}
	for _, c := range s.ReasonCodes {
		dst = append(dst, byte(c))
	}
	return dst
}

// decodeUnsubscribe checks the packet's form; filters are only checked to be
// UTF-8 [MQTT-3.10.3-1].
func decodeUnsubscribe(h FixedHeader, body []byte, v Version) (*Unsubscribe, error) {
	if h.Flags != subscribeFlags {
		return nil, malformed("UNSUBSCRIBE: reserved fixed header flags are not 0010 [MQTT-3.10.1-1]")
	}
	d := decoder{b: body, v: v}
	u := &Unsubscribe{}
	var err error
	if u.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := d.props(&u.Properties, unsubscribeProps); err != nil {
			return nil, err
		}
	}
	if d.rest() == 0 {
		return nil, newError(v, ProtocolError, "UNSUBSCRIBE: no topic filters [MQTT-3.10.3-2]")
	}
	for d.rest() > 0 {
		f, err := d.string("topic filter")
		if err != nil {
			return nil, err
		}
		u.Filters = append(u.Filters, f)
	}
	return u, nil
}

func (u *Unsubscribe) bodyLen(v Version) (n, props int) {
	n = 2
	if v == V5 {
		props = propsLen(&u.Properties, unsubscribeProps)
		n += varintLen(props) + props
	}
	for _, f := range u.Filters {
		n += 2 + len(f)
	}
	return n, props
}

func (u *Unsubscribe) appendTo(dst []byte, v Version) []byte {
	n, props := u.bodyLen(v)
	dst = appendHeader(dst, TypeUnsubscribe, subscribeFlags, n)
	dst = append(dst, byte(u.PacketID>>8), byte(u.PacketID))
	if v == V5 {
		dst = appendProps(dst, &u.Properties, unsubscribeProps, props)
	}
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst
}

func decodeUnsuback(h FixedHeader, body []byte, v Version) (*Unsuback, error) {
	if h.Flags != 0 {
		return nil, malformed("UNSUBACK: reserved fixed header flags are not 0 [MQTT-2.2.2-1] [MQTT-2.1.3-1]")
	}
	d := decoder{b: body, v: v}
	u := &Unsuback{}
	var err error
	if u.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	if v != V5 { // 3.1.1: the packet identifier only
		return u, d.end("UNSUBACK")
	}
	if err := d.props(&u.Properties, unsubackProps); err != nil {
		return nil, err
	}
	if u.ReasonCodes, err = decodeCodes(&d, "UNSUBACK", &unsubackCodes); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *Unsuback) bodyLen(v Version) (n, props int) {
	if v != V5 {
		return 2, 0
	}
	props = propsLen(&u.Properties, unsubackProps)
	return 2 + varintLen(props) + props + len(u.ReasonCodes), props
}

func (u *Unsuback) appendTo(dst []byte, v Version) []byte {
	n, props := u.bodyLen(v)
	dst = appendHeader(dst, TypeUnsuback, 0, n)
	dst = append(dst, byte(u.PacketID>>8), byte(u.PacketID))
	if v == V5 {
		dst = appendProps(dst, &u.Properties, unsubackProps, props)
		for _, c := range u.ReasonCodes {
			dst = append(dst, byte(c))
		}
	}
	return dst
}
