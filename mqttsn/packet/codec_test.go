package packet

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestLengthForms checks the choice of Length form at its boundary (MQTT-SN
// 1.2 §5.2.1) and at the largest message.
func TestLengthForms(t *testing.T) {
	tests := []struct {
		data   int
		size   int
		header []byte
	}{
		{0, 7, []byte{0x07, 0x0c}},
		{247, 254, []byte{0xfe, 0x0c}},
		{248, 255, []byte{0xff, 0x0c}},             // the longest 1-octet form
		{249, 258, []byte{0x01, 0x01, 0x02, 0x0c}}, // 256 would not fit: 3-octet form
		{250, 259, []byte{0x01, 0x01, 0x03, 0x0c}},
		{MaxLen - 9, MaxLen, []byte{0x01, 0xff, 0xff, 0x0c}},
	}
	for _, tc := range tests {
		p := &Publish{TopicID: 1, Data: repeat(tc.data)}
		enc := Append(nil, p)
		if len(enc) != tc.size || Size(p) != tc.size {
			t.Errorf("data %d: encoded %d octets, Size %d, want %d", tc.data, len(enc), Size(p), tc.size)
		}
		if !bytes.HasPrefix(enc, tc.header) {
			t.Errorf("data %d: header % x, want % x", tc.data, enc[:len(tc.header)], tc.header)
		}
		if err := Validate(p); err != nil {
			t.Errorf("data %d: Validate: %v", tc.data, err)
		}
		got, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(got, normalize(p)) {
			t.Errorf("data %d: Decode = %v", tc.data, err)
		}
	}
	if err := Validate(&Publish{TopicID: 1, Data: repeat(MaxLen - 8)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Validate of a 65536-octet PUBLISH: %v, want ErrTooLarge", err)
	}
}

// TestValidate covers the rules that only an encoder can break: values out
// of their field's range and fields the encoding would drop.
func TestValidate(t *testing.T) {
	long := repeat(MaxNodeIDLen + 1)
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"nil", nil, ErrUnknownType},
		{"publish qos 3", &Publish{QoS: 3, TopicID: 1}, ErrQoS},
		{"publish qos -2", &Publish{QoS: -2, TopicID: 1}, ErrQoS},
		{"publish topic id type 3", &Publish{TopicIDType: 3}, ErrTopicIDType},
		{"publish qos -1 normal", &Publish{QoS: QoSMinus1, TopicID: 1}, ErrTopicIDType},
		{"subscribe qos -1", &Subscribe{QoS: QoSMinus1, TopicName: []byte("a")}, ErrQoS},
		{"subscribe normal with id", &Subscribe{TopicID: 1, TopicName: []byte("a")}, ErrTopicName},
		{"subscribe normal empty", &Subscribe{}, ErrTopicName},
		{"subscribe short with name", &Subscribe{TopicIDType: TopicIDShort, TopicName: []byte("ab")}, ErrTopicName},
		{"subscribe type 3", &Subscribe{TopicIDType: 3, TopicID: 1}, ErrTopicIDType},
		{"unsubscribe predefined with name", &Unsubscribe{TopicIDType: TopicIDPredefined, TopicName: []byte("a")}, ErrTopicName},
		{"suback qos -1", &Suback{QoS: QoSMinus1}, ErrQoS},
		{"suback return code", &Suback{ReturnCode: 4}, ErrReturnCode},
		{"connect empty id", &Connect{}, ErrClientID},
		{"connect 24 octets", &Connect{ClientID: repeat(24)}, ErrClientID},
		{"pingreq 24 octets", &Pingreq{ClientID: repeat(24)}, ErrClientID},
		{"empty willtopic with qos", &WillTopic{QoS: QoS1}, ErrFlags},
		{"empty willtopicupd with retain", &WillTopicUpd{Retain: true}, ErrFlags},
		{"willtopic qos -1", &WillTopic{QoS: QoSMinus1, WillTopic: []byte("w")}, ErrQoS},
		{"register empty", &Register{}, ErrTopicName},
		{"regack return code", &Regack{ReturnCode: 0xff}, ErrReturnCode},
		{"disconnect duration without flag", &Disconnect{Duration: 5}, ErrTrailing},
		{"encapsulation radius 4", &Encapsulated{Radius: 4, Message: &Pingreq{}}, ErrEncapsulation},
		{"encapsulation long node id", &Encapsulated{NodeID: long, Message: &Pingreq{}}, ErrEncapsulation},
		{"encapsulation without message", &Encapsulated{}, ErrEncapsulation},
		{"encapsulation nested", &Encapsulated{Message: &Encapsulated{Message: &Pingreq{}}}, ErrEncapsulation},
		{"encapsulation bad inner", &Encapsulated{Message: &Connect{}}, ErrClientID},
	}
	for _, tc := range tests {
		err := Validate(tc.m)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Validate = %v, want %v", tc.name, err, tc.want)
		}
	}
	var e *Error
	if err := Validate(&Encapsulated{Message: &Connect{}}); !errors.As(err, &e) || !e.Encapsulated || e.Type != TypeConnect {
		t.Errorf("inner error %#v: want Encapsulated and Type CONNECT", e)
	}
	// The largest node id is fine.
	if err := Validate(&Encapsulated{NodeID: long[1:], Message: &Pingreq{}}); err != nil {
		t.Errorf("node id of %d octets: %v", MaxNodeIDLen, err)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		b    []byte
		want string
	}{
		{[]byte{0x07, 0x0c, 0x08, 0, 1, 0, 0}, "mqttsn: PUBLISH: flag not used by this message is set: a flag this message does not use is set"},
		{[]byte{0x02}, "mqttsn: truncated message: fewer octets than a header"},
		{[]byte{0x02, 0x03}, "mqttsn: MsgType(0x03): reserved message type"},
		{[]byte{0x02, 0x17, 0x00}, "mqttsn: PINGRESP: length field disagrees with the datagram"},
		{[]byte{0x03, 0xfe, 0x00, 0x03, 0x05, 0x04}, "mqttsn: encapsulated CONNACK: reserved return code"},
	}
	for _, tc := range tests {
		_, err := Decode(tc.b)
		if err == nil || err.Error() != tc.want {
			t.Errorf("% x: error %q, want %q", tc.b, err, tc.want)
		}
	}
}

func TestDecodeHeader(t *testing.T) {
	tests := []struct {
		b         []byte
		length    int
		typ       MsgType
		headerLen int
		err       error
	}{
		{[]byte{0x09, 0x0c, 0xff}, 9, TypePublish, 2, nil}, // Length is not compared with the datagram
		{[]byte{0x01, 0x01, 0x02, 0x0c}, 258, TypePublish, 4, nil},
		{[]byte{0x05, 0xfe, 0x00, 0x12, 0x34, 0x02, 0x16}, 5, TypeEncapsulated, 2, nil},
		{[]byte{0x02, 0x1e}, 2, 0x1e, 2, ErrUnknownType},
		{[]byte{0x00, 0x16}, 0, TypePingreq, 2, ErrLength},
		{[]byte{0x01, 0x00, 0x02, 0x16}, 2, TypePingreq, 4, ErrLength},
		{[]byte{0x01, 0x00, 0x09, 0xfe}, 9, TypeEncapsulated, 4, ErrEncapsulation},
		{[]byte{0x01, 0x00, 0x04}, 0, 0, 0, ErrTruncated},
		{nil, 0, 0, 0, ErrTruncated},
	}
	for _, tc := range tests {
		length, typ, hl, err := DecodeHeader(tc.b)
		if length != tc.length || typ != tc.typ || hl != tc.headerLen || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("% x: DecodeHeader = %d, %v, %d, %v; want %d, %v, %d, %v",
				tc.b, length, typ, hl, err, tc.length, tc.typ, tc.headerLen, tc.err)
		}
	}
}

// TestDecodeAliases: decoded fields point into the datagram, and appending
// to one does not overwrite what follows it.
func TestDecodeAliases(t *testing.T) {
	b := []byte{0x05, 0xfe, 0x00, 0x12, 0x34, 0x09, 0x0c, 0x00, 0x00, 0x01, 0x00, 0x00, 'h', 'i'}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e := m.(*Encapsulated)
	p := e.Message.(*Publish)
	b[12] = 'H'
	if string(p.Data) != "Hi" {
		t.Errorf("Data = %q after changing the datagram: does not alias it", p.Data)
	}
	_ = append(e.NodeID, 0xee)
	if b[5] != 0x09 {
		t.Errorf("appending to NodeID overwrote the inner message")
	}
}

func TestDecodeIntoWrongType(t *testing.T) {
	b := []byte{0x04, 0x0f, 0x12, 0x34} // PUBREC
	if err := DecodeInto(&Pubrel{}, b); !errors.Is(err, ErrWrongType) {
		t.Errorf("DecodeInto(*Pubrel, PUBREC) = %v, want ErrWrongType", err)
	}
	var rec Pubrec
	if err := DecodeInto(&rec, b); err != nil || rec.MsgID != 0x1234 {
		t.Errorf("DecodeInto(*Pubrec) = %v, %v", rec, err)
	}
	if _, _, _, err := SplitEncapsulated(b); !errors.Is(err, ErrWrongType) {
		t.Errorf("SplitEncapsulated(PUBREC) = %v, want ErrWrongType", err)
	}
}

// TestEncapsulationHeader builds an encapsulation from its header and an
// encoded message, as a gateway forwarding a datagram would.
func TestEncapsulationHeader(t *testing.T) {
	node := []byte{0x00, 0x13, 0xa2, 0x00}
	p := &Publish{QoS: QoS2, TopicID: 3, MsgID: 4, Data: []byte("on")}
	b := AppendPublish(AppendEncapsulationHeader(nil, 2, node), p)
	want := &Encapsulated{Radius: 2, NodeID: node, Message: p}
	if !bytes.Equal(b, Append(nil, want)) {
		t.Fatalf("header + AppendPublish = % x, Append = % x", b, Append(nil, want))
	}
	m, err := Decode(b)
	if err != nil || !reflect.DeepEqual(m, want) {
		t.Fatalf("Decode = %#v, %v", m, err)
	}
	if Size(want) != len(b) {
		t.Errorf("Size = %d, want %d", Size(want), len(b))
	}
}

func TestMsgTypeString(t *testing.T) {
	names := map[MsgType]string{}
	for i := range 256 {
		typ := MsgType(i)
		s := typ.String()
		if !typ.Known() {
			if want := fmt.Sprintf("MsgType(0x%02X)", i); s != want {
				t.Errorf("%d: %q, want %q", i, s, want)
			}
			continue
		}
		if prev, dup := names[typ]; dup || strings.HasPrefix(s, "MsgType(") {
			t.Errorf("%d: name %q (previous %q)", i, s, prev)
		}
		names[typ] = s
		if m := newMessage(typ); m.Type() != typ {
			t.Errorf("newMessage(%v).Type() = %v", typ, m.Type())
		}
	}
	if len(names) != 28 { // 27 messages of §5.4 and the encapsulation
		t.Errorf("%d known types, want 28", len(names))
	}
	if TypePubcomp.String() != "PUBCOMP" || TypeEncapsulated.String() != "ENCAPSULATED" {
		t.Errorf("names: %v %v", TypePubcomp, TypeEncapsulated)
	}
}

func TestFlags(t *testing.T) {
	f := Flags(0xff)
	if !f.DUP() || f.QoS() != QoSMinus1 || !f.Retain() || !f.Will() || !f.CleanSession() || f.TopicIDType() != 3 {
		t.Errorf("0xff: %v %v %v %v %v %v", f.DUP(), f.QoS(), f.Retain(), f.Will(), f.CleanSession(), f.TopicIDType())
	}
	for _, q := range []QoS{QoS0, QoS1, QoS2, QoSMinus1} {
		g := Flags(0x9f).WithQoS(q)
		if g.QoS() != q || g&^FlagQoSMask != 0x9f {
			t.Errorf("WithQoS(%v) = %#x", q, byte(g))
		}
	}
	if Flags(0).WithQoS(QoSMinus1) != 0x60 || Flags(0).WithQoS(QoS2) != 0x40 {
		t.Errorf("QoS -1 is not 0b11 or QoS 2 not 0b10")
	}
	if g := Flags(0xff).WithTopicIDType(TopicIDShort); g != 0xfe || g.TopicIDType() != TopicIDShort {
		t.Errorf("WithTopicIDType = %#x", byte(g))
	}
	if QoSMinus1.String() != "-1" || QoS2.String() != "2" {
		t.Errorf("QoS strings %q %q", QoSMinus1, QoS2)
	}
	if !QoSMinus1.Valid() || QoS(3).Valid() || QoS(-2).Valid() {
		t.Errorf("QoS.Valid")
	}
	if TopicIDShort.String() != "short" || TopicIDType(3).Valid() || TopicIDType(3).String() != "TopicIDType(3)" {
		t.Errorf("TopicIDType strings")
	}
}

func TestReturnCode(t *testing.T) {
	err := fmt.Errorf("register temp/1: %w", RejectedCongestion)
	if !errors.Is(err, RejectedCongestion) || errors.Is(err, RejectedNotSupported) {
		t.Errorf("errors.Is on a wrapped return code")
	}
	if RejectedInvalidTopicID.Error() != "mqttsn: rejected: invalid topic ID" {
		t.Errorf("Error() = %q", RejectedInvalidTopicID.Error())
	}
	if ReturnCode(4).Valid() || !RejectedNotSupported.Valid() || ReturnCode(9).String() != "ReturnCode(9)" {
		t.Errorf("reserved return codes")
	}
}

func TestShortTopic(t *testing.T) {
	if id := ShortTopicID([2]byte{'a', 'b'}); id != 0x6162 {
		t.Errorf("ShortTopicID = %#x", id)
	}
	if name := ShortTopicName(0x6162); name != [2]byte{'a', 'b'} {
		t.Errorf("ShortTopicName = %q", name[:])
	}
}

func TestSeconds(t *testing.T) {
	if d := Seconds(65535).Duration(); d != 65535*time.Second {
		t.Errorf("Duration = %v", d)
	}
}

// TestNoAllocs: the hot path allocates nothing, and a Publish on the caller's
// stack stays there.
func TestNoAllocs(t *testing.T) {
	enc := Append(nil, &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: []byte("21.5")})
	encap := append(AppendEncapsulationHeader(nil, 0, []byte{1, 2}), enc...)
	conn := Append(nil, &Connect{ClientID: []byte("dev")})
	buf := make([]byte, 0, 64)
	var p Publish
	var c Connect
	tests := map[string]func(){
		"DecodePublish": func() { _ = DecodePublish(&p, enc) },
		"AppendPublish": func() {
			q := Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: enc[7:]}
			buf = AppendPublish(buf[:0], &q)
		},
		"DecodeInto": func() { _ = DecodeInto(&c, conn) },
		"SplitEncapsulated": func() {
			_, _, inner, _ := SplitEncapsulated(encap)
			_ = DecodePublish(&p, inner)
		},
		"DecodeHeader": func() { _, _, _, _ = DecodeHeader(enc) },
	}
	for name, f := range tests {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
	if string(p.Data) != "21.5" || string(c.ClientID) != "dev" {
		t.Errorf("decoded %q, %q", p.Data, c.ClientID)
	}
}
