package packet

// PUBLISH (MQTT 3.1.1 §3.3, MQTT 5.0 §3.3).

// DecodePublish decodes a PUBLISH body into p without allocating
// (properties lists excepted). p aliases body.
//
// Checked: QoS 3 [MQTT-3.3.1-4], DUP with QoS 0 [MQTT-3.3.1-2], packet
// identifier 0 [MQTT-2.3.1-1], topic UTF-8 [MQTT-3.3.2-1], wildcards in the
// topic [MQTT-3.3.2-2] (TopicNameInvalid under 5.0), an empty topic (allowed
// under 5.0 only with a Topic Alias, §3.3.2.1), and the 5.0 properties.
// The Topic Alias range against Topic Alias Maximum, Subscription
// Identifiers sent by a client [MQTT-3.3.4-6] and the payload format are the
// session's to check.
func DecodePublish(p *Publish, flags byte, body []byte, v Version) error {
	*p = Publish{}
	p.QoS = flags >> 1 & 3
	if p.QoS == 3 {
		return malformed("PUBLISH: QoS 3 [MQTT-3.3.1-4]")
	}
	p.Dup = flags&0x08 != 0
	if p.Dup && p.QoS == 0 {
		return malformed("PUBLISH: DUP set with QoS 0 [MQTT-3.3.1-2]")
	}
	p.Retain = flags&0x01 != 0
	d := decoder{b: body, v: v}
	topic, err := d.binary("topic name")
	if err != nil {
		return err
	}
	switch checkTopicName(topic) {
	case topicBadUTF8:
		return malformed("PUBLISH: topic name is not valid UTF-8 [MQTT-3.3.2-1] [MQTT-1.5.3-1] [MQTT-1.5.3-2]")
	case topicWildcard:
		return newError(v, TopicNameInvalid, "PUBLISH: wildcard in topic name [MQTT-3.3.2-2]")
	}
	if p.QoS > 0 {
		if p.PacketID, err = d.packetID(); err != nil {
			return err
		}
	}
	if v == V5 {
		if d.rest() > 0 && d.b[d.i] == 0 {
			d.i++ // no properties: the common case, kept short
		} else if err := d.props(&p.Properties, publishProps); err != nil {
			return err
		}
	}
	if len(topic) == 0 {
		if v != V5 {
			return malformed("PUBLISH: empty topic name [MQTT-4.7.3-1]")
		}
		if !p.Properties.Has(PropTopicAlias) { // §3.3.2.1
			return newError(v, ProtocolError, "PUBLISH: empty topic name without a Topic Alias")
		}
	}
	p.Topic = aliasString(topic)
	p.Payload = body[d.i:]
	return nil
}

func (p *Publish) flags() byte {
	f := (p.QoS & 3) << 1
	if p.Dup {
		f |= 0x08
	}
	if p.Retain {
		f |= 0x01
	}
	return f
}

// bodyLen returns the remaining length and the Property Length.
func (p *Publish) bodyLen(v Version) (n, props int) {
	n = 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if v == V5 {
		props = propsLen(&p.Properties, publishProps)
		n += varintLen(props) + props
	}
	return n, props
}

func (p *Publish) appendTo(dst []byte, v Version) []byte {
	n, props := p.bodyLen(v)
	dst = appendHeader(dst, TypePublish, p.flags(), n)
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = append(dst, byte(p.PacketID>>8), byte(p.PacketID))
	}
	if v == V5 {
		dst = appendProps(dst, &p.Properties, publishProps, props)
	}
	return append(dst, p.Payload...)
}

func (p *Publish) checkEncodable(v Version) error {
	switch {
	case p.QoS > 2:
		return malformed("PUBLISH: QoS above 2")
	case len(p.Topic) > 65535:
		return malformed("PUBLISH: topic longer than 65535 bytes")
	}
	if v == V5 {
		return checkPropsEncodable(&p.Properties, publishProps)
	}
	return nil
}
