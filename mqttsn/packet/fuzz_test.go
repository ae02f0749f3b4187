package packet

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// canonicalForm returns the datagram b, which decoded without error, with
// every header in the shortest Length form: the bytes Append must write for
// its message.
func canonicalForm(b []byte) []byte {
	if b[0] != 0x01 && MsgType(b[1]) == TypeEncapsulated {
		n := int(b[0])
		return append(slices.Clone(b[:n]), canonicalForm(b[n:])...)
	}
	if b[0] == 0x01 && len(b)-4+2 <= 0xFF {
		return append([]byte{byte(len(b) - 2), b[3]}, b[4:]...)
	}
	return b
}

// checkRoundTrip is the round-trip property for one datagram: what fails to
// decode fails with an *Error of a known kind, in every decoder alike; what
// decodes passes Validate, encodes to Size octets, which are b itself but for
// the Length form, and decode to an equal value. Decoding does not modify b.
func checkRoundTrip(t *testing.T, b []byte) {
	t.Helper()
	orig := slices.Clone(b)
	defer func() {
		if !bytes.Equal(b, orig) {
			t.Fatalf("decoding modified the input")
		}
	}()
	m, err := Decode(b)
	_, typ, _, herr := DecodeHeader(b)
	if err != nil {
		e, ok := errors.AsType[*Error](err)
		if !ok {
			t.Fatalf("error %v is a %T, not an *Error", err, err)
		}
		if !slices.ContainsFunc(kindList, func(k error) bool { return e.Kind == k }) {
			t.Fatalf("error %v has the unknown kind %v", err, e.Kind)
		}
		if m != nil {
			t.Fatalf("Decode returned %#v with %v", m, err)
		}
		if herr == nil {
			// The decoders that take a target fail alike.
			if err2 := DecodeInto(newMessage(typ), b); !errors.Is(err2, e.Kind) {
				t.Fatalf("Decode: %v; DecodeInto: %v", err, err2)
			}
			if typ == TypePublish {
				var p Publish
				if err2 := DecodePublish(&p, b); !errors.Is(err2, e.Kind) {
					t.Fatalf("Decode: %v; DecodePublish: %v", err, err2)
				}
			}
		} else if !errors.Is(err, herr.(*Error).Kind) {
			t.Fatalf("Decode: %v; DecodeHeader: %v", err, herr)
		}
		return
	}
	if herr != nil || typ != m.Type() {
		t.Fatalf("Decode gave %v, DecodeHeader %v, %v", m.Type(), typ, herr)
	}
	if err := Validate(m); err != nil {
		t.Fatalf("decoded %#v fails Validate: %v", m, err)
	}
	enc := Append(nil, m)
	if n := Size(m); n != len(enc) {
		t.Fatalf("Size = %d, encoding has %d octets", n, len(enc))
	}
	if want := canonicalForm(b); !bytes.Equal(enc, want) {
		t.Fatalf("re-encoded\n % x\nwant\n % x", enc, want)
	}
	m2, err := Decode(enc)
	if err != nil {
		t.Fatalf("re-encoding % x does not decode: %v", enc, err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip changed the value\n %#v\n %#v", m, m2)
	}
	into := newMessage(typ)
	if err := DecodeInto(into, b); err != nil || !reflect.DeepEqual(into, m) {
		t.Fatalf("DecodeInto = %#v, %v; Decode = %#v", into, err, m)
	}
	if p, ok := m.(*Publish); ok {
		var q Publish
		if err := DecodePublish(&q, b); err != nil || !reflect.DeepEqual(&q, p) {
			t.Fatalf("DecodePublish = %#v, %v", q, err)
		}
		if enc := AppendPublish(nil, p); !bytes.Equal(enc, canonicalForm(b)) {
			t.Fatalf("AppendPublish = % x", enc)
		}
	}
}

var kindList = []error{ErrTruncated, ErrLength, ErrTrailing, ErrUnknownType, ErrWrongType, ErrFlags, ErrQoS,
	ErrTopicIDType, ErrProtocolID, ErrClientID, ErrShortTopic, ErrTopicName, ErrReturnCode, ErrEncapsulation, ErrTooLarge}

// FuzzDecode checks the round-trip property on datagrams, seeded with every
// fixture.
func FuzzDecode(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add(fx.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkRoundTrip(t, b)
	})
}

// FuzzValidate builds messages from arbitrary field values, in range or not,
// and checks the encoder side: what Validate accepts encodes to Size octets
// that decode to an equal value; what it refuses, it refuses with an *Error.
func FuzzValidate(f *testing.F) {
	f.Add(byte(0), int8(1), byte(0), uint16(5), uint16(7), []byte("hi"), []byte("a/b"), byte(0))
	f.Add(byte(1), int8(2), byte(2), uint16(0x6162), uint16(1), []byte(nil), []byte(nil), byte(1))
	f.Add(byte(4), int8(0), byte(0), uint16(60), uint16(0), []byte("dev"), []byte(nil), byte(2))
	f.Add(byte(8), int8(-1), byte(1), uint16(1), uint16(0), []byte{0}, []byte{1, 2}, byte(3))
	f.Fuzz(func(t *testing.T, sel byte, qos int8, tt byte, id, msgID uint16, data, name []byte, bits byte) {
		b1, b2 := bits&1 != 0, bits&2 != 0
		var m Message
		switch sel % 10 {
		case 0:
			m = &Publish{DUP: b1, QoS: QoS(qos), Retain: b2, TopicIDType: TopicIDType(tt), TopicID: id, MsgID: msgID, Data: data}
		case 1:
			m = &Subscribe{DUP: b1, QoS: QoS(qos), TopicIDType: TopicIDType(tt), MsgID: msgID, TopicID: id, TopicName: name}
		case 2:
			m = &Unsubscribe{TopicIDType: TopicIDType(tt), MsgID: msgID, TopicID: id, TopicName: name}
		case 3:
			m = &Suback{QoS: QoS(qos), TopicID: id, MsgID: msgID, ReturnCode: ReturnCode(tt)}
		case 4:
			m = &Connect{Will: b1, CleanSession: b2, KeepAlive: Seconds(id), ClientID: data}
		case 5:
			m = &WillTopic{QoS: QoS(qos), Retain: b1, WillTopic: name}
		case 6:
			m = &Pingreq{ClientID: data}
		case 7:
			m = &Disconnect{HasDuration: b1, Duration: Seconds(id)}
		case 8:
			m = &Encapsulated{Radius: tt, NodeID: name, Message: &Publish{QoS: QoS(qos), TopicIDType: TopicIDPredefined, TopicID: id, Data: data}}
		case 9:
			m = &Register{TopicID: id, MsgID: msgID, TopicName: name}
		}
		if err := Validate(m); err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("Validate error %v is a %T", err, err)
			}
			return
		}
		enc := Append(nil, m)
		if Size(m) != len(enc) {
			t.Fatalf("Size = %d, encoding has %d octets", Size(m), len(enc))
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("Validate accepted %#v, but its encoding % x does not decode: %v", m, enc, err)
		}
		if !reflect.DeepEqual(normalize(m), got) {
			t.Fatalf("encoded %#v, decoded %#v", m, got)
		}
	})
}

// normalize returns m with its empty optional fields nil, as the decoder
// returns them.
func normalize(m Message) Message {
	nilIfEmpty := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	switch m := m.(type) {
	case *Publish:
		c := *m
		c.Data = nilIfEmpty(c.Data)
		return &c
	case *Subscribe:
		c := *m
		c.TopicName = nilIfEmpty(c.TopicName)
		return &c
	case *Unsubscribe:
		c := *m
		c.TopicName = nilIfEmpty(c.TopicName)
		return &c
	case *WillTopic:
		c := *m
		c.WillTopic = nilIfEmpty(c.WillTopic)
		return &c
	case *Pingreq:
		c := *m
		c.ClientID = nilIfEmpty(c.ClientID)
		return &c
	case *Encapsulated:
		c := *m
		c.NodeID = nilIfEmpty(c.NodeID)
		c.Message = normalize(c.Message)
		return &c
	}
	return m
}
