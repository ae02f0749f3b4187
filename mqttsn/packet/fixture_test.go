package packet

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// fixture is one case of testdata/*.hex (the format is in testdata/README.md).
type fixture struct {
	file, name, desc, spec string
	line                   int
	data                   []byte
	hasHex                 bool
	canonical              []byte
	ok                     bool
	kind                   string // with !ok: the error kind
}

// errorKinds maps the error kinds of the fixtures to the package's errors.
var errorKinds = map[string]error{
	"truncated":     ErrTruncated,
	"length":        ErrLength,
	"trailing":      ErrTrailing,
	"unknown_type":  ErrUnknownType,
	"flags":         ErrFlags,
	"qos":           ErrQoS,
	"topic_id_type": ErrTopicIDType,
	"protocol_id":   ErrProtocolID,
	"client_id":     ErrClientID,
	"short_topic":   ErrShortTopic,
	"topic_name":    ErrTopicName,
	"return_code":   ErrReturnCode,
	"encapsulation": ErrEncapsulation,
}

var fixtureName = regexp.MustCompile(`^[a-z0-9-]+$`)

// parseOctets reads the value of a hex: or canonical: line.
func parseOctets(s string) ([]byte, error) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	return hex.DecodeString(strings.Join(strings.Fields(s), ""))
}

// loadFixtures parses every testdata/*.hex file.
func loadFixtures(t testing.TB) []*fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata: %v", err)
	}
	var all []*fixture
	seen := map[string]string{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		var cur *fixture
		ln := 0
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s", file, ln, fmt.Sprintf(format, args...))
		}
		for sc.Scan() {
			ln++
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, val, ok := strings.Cut(line, ":")
			if !ok {
				fail("no key in %q", line)
			}
			val = strings.TrimSpace(val)
			if key == "name" {
				if !fixtureName.MatchString(val) {
					fail("bad case name %q", val)
				}
				if prev, dup := seen[val]; dup {
					fail("case %q is also in %s", val, prev)
				}
				seen[val] = file
				cur = &fixture{file: filepath.Base(file), name: val, line: ln}
				all = append(all, cur)
				continue
			}
			if cur == nil {
				fail("%q before the first name: line", key)
			}
			switch key {
			case "desc":
				cur.desc = val
			case "spec":
				cur.spec = val
			case "hex":
				b, err := parseOctets(val)
				if err != nil {
					fail("bad hex: %v", err)
				}
				cur.data = append(cur.data, b...)
				cur.hasHex = true
			case "canonical":
				b, err := parseOctets(val)
				if err != nil {
					fail("bad hex: %v", err)
				}
				cur.canonical = append(cur.canonical, b...)
			case "expect":
				switch kind, isErr := strings.CutPrefix(val, "error "); {
				case val == "ok":
					cur.ok = true
				case isErr && errorKinds[kind] != nil:
					cur.kind = kind
				default:
					fail("bad expect %q", val)
				}
			default:
				fail("unknown key %q", key)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, fx := range all {
		where := fmt.Sprintf("%s:%d: %s", fx.file, fx.line, fx.name)
		switch {
		case fx.desc == "":
			t.Fatalf("%s: no desc", where)
		case !fx.hasHex:
			t.Fatalf("%s: no hex", where)
		case !fx.ok && fx.kind == "":
			t.Fatalf("%s: no expect", where)
		case !fx.ok && fx.canonical != nil:
			t.Fatalf("%s: canonical with an error case", where)
		case fx.canonical != nil && bytes.Equal(fx.canonical, fx.data):
			t.Fatalf("%s: canonical equals hex", where)
		}
	}
	return all
}

// repeat returns n octets 'a'.
func repeat(n int) []byte { return bytes.Repeat([]byte{'a'}, n) }

// expected holds the decoded value of every valid fixture, by name. Written
// from the fixtures' bytes and the specification, not by running the decoder.
var expected = map[string]Message{
	// header.hex
	"header-long-form-small": &Pingresp{},

	// discovery.hex
	"advertise":           &Advertise{GwID: 1, Duration: 900},
	"searchgw":            &SearchGW{Radius: 0},
	"searchgw-radius-3":   &SearchGW{Radius: 3},
	"gwinfo-from-gateway": &GWInfo{GwID: 5},
	"gwinfo-from-client":  &GWInfo{GwID: 5, GwAdd: []byte{0x12, 0x34}},

	// connect.hex
	"connect":                  &Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("sensor1")},
	"connect-will":             &Connect{Will: true, CleanSession: true, KeepAlive: 10, ClientID: []byte("a")},
	"connect-clientid-23":      &Connect{KeepAlive: 65535, ClientID: []byte("abcdefghijklmnopqrstuvw")},
	"connect-clientid-utf8":    &Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("ü")},
	"connack-accepted":         &Connack{ReturnCode: Accepted},
	"connack-congestion":       &Connack{ReturnCode: RejectedCongestion},
	"connack-invalid-topic-id": &Connack{ReturnCode: RejectedInvalidTopicID},
	"connack-not-supported":    &Connack{ReturnCode: RejectedNotSupported},
	"willtopicreq":             &WillTopicReq{},
	"willtopic":                &WillTopic{QoS: QoS1, Retain: true, WillTopic: []byte("will/t")},
	"willtopic-qos2":           &WillTopic{QoS: QoS2, WillTopic: []byte("a/b")},
	"willtopic-empty":          &WillTopic{},
	"willmsgreq":               &WillMsgReq{},
	"willmsg":                  &WillMsg{WillMsg: []byte("bye!")},
	"willmsg-empty":            &WillMsg{},
	"willmsg-binary":           &WillMsg{WillMsg: []byte{0x00, 0xff, 0x01}},

	// register.hex
	"register-from-client":    &Register{TopicID: 0, MsgID: 1, TopicName: []byte("temp/1")},
	"register-from-gateway":   &Register{TopicID: 5, MsgID: 0x0102, TopicName: []byte("a/b")},
	"register-utf8":           &Register{MsgID: 2, TopicName: []byte("ü/€")},
	"regack-accepted":         &Regack{TopicID: 5, MsgID: 1, ReturnCode: Accepted},
	"regack-invalid-topic-id": &Regack{TopicID: 0, MsgID: 1, ReturnCode: RejectedInvalidTopicID},

	// publish.hex
	"publish-qos0":                  &Publish{QoS: QoS0, TopicID: 1, Data: []byte("hi")},
	"publish-qos1-retain":           &Publish{QoS: QoS1, Retain: true, TopicID: 5, MsgID: 0x1234, Data: []byte("22.5")},
	"publish-qos2-dup-predefined":   &Publish{DUP: true, QoS: QoS2, TopicIDType: TopicIDPredefined, TopicID: 0x0010, MsgID: 7, Data: []byte{1, 2}},
	"publish-short-topic":           &Publish{QoS: QoS1, TopicIDType: TopicIDShort, TopicID: ShortTopicID([2]byte{'a', 'b'}), MsgID: 2, Data: []byte("x")},
	"publish-qos-minus1-short":      &Publish{QoS: QoSMinus1, TopicIDType: TopicIDShort, TopicID: 0x6162, Data: []byte("x")},
	"publish-qos-minus1-predefined": &Publish{QoS: QoSMinus1, Retain: true, TopicIDType: TopicIDPredefined, TopicID: 1},
	"publish-empty-data":            &Publish{TopicID: 1},
	"publish-topic-id-0000":         &Publish{QoS: QoS1, TopicID: 0, MsgID: 9},
	"publish-short-form-255":        &Publish{TopicID: 1, Data: repeat(248)},
	"publish-long-form-258":         &Publish{TopicID: 1, Data: repeat(249)},
	"publish-long-form-257":         &Publish{TopicID: 1, Data: repeat(248)},
	"publish-long-form-small":       &Publish{TopicID: 1, Data: []byte("hi")},

	// acks.hex
	"puback-accepted":         &Puback{TopicID: 5, MsgID: 0x1234, ReturnCode: Accepted},
	"puback-invalid-topic-id": &Puback{TopicID: 5, MsgID: 0x1234, ReturnCode: RejectedInvalidTopicID},
	"puback-congestion":       &Puback{TopicID: 5, MsgID: 0x1234, ReturnCode: RejectedCongestion},
	"pubrec":                  &Pubrec{MsgID: 0x1234},
	"pubrel":                  &Pubrel{MsgID: 0x1234},
	"pubcomp":                 &Pubcomp{MsgID: 0xffff},

	// subscribe.hex
	"subscribe-topic-name":   &Subscribe{QoS: QoS1, MsgID: 1, TopicName: []byte("sensors/+/temp")},
	"subscribe-wildcard":     &Subscribe{QoS: QoS2, MsgID: 2, TopicName: []byte("a/#")},
	"subscribe-predefined":   &Subscribe{TopicIDType: TopicIDPredefined, MsgID: 2, TopicID: 0x0010},
	"subscribe-short-dup":    &Subscribe{DUP: true, QoS: QoS2, TopicIDType: TopicIDShort, MsgID: 3, TopicID: 0x6162},
	"suback":                 &Suback{QoS: QoS1, TopicID: 5, MsgID: 1, ReturnCode: Accepted},
	"suback-wildcard":        &Suback{QoS: QoS2, TopicID: 0, MsgID: 2, ReturnCode: Accepted},
	"suback-rejected":        &Suback{QoS: QoS0, MsgID: 1, ReturnCode: RejectedNotSupported},
	"unsubscribe-topic-name": &Unsubscribe{MsgID: 4, TopicName: []byte("a/#")},
	"unsubscribe-predefined": &Unsubscribe{TopicIDType: TopicIDPredefined, MsgID: 4, TopicID: 0x0010},
	"unsubscribe-short":      &Unsubscribe{TopicIDType: TopicIDShort, MsgID: 4, TopicID: 0x6162},
	"unsuback":               &Unsuback{MsgID: 4},

	// ping.hex
	"pingreq":               &Pingreq{},
	"pingreq-clientid":      &Pingreq{ClientID: []byte("dev01")},
	"pingreq-clientid-23":   &Pingreq{ClientID: []byte("abcdefghijklmnopqrstuvw")},
	"pingresp":              &Pingresp{},
	"disconnect":            &Disconnect{},
	"disconnect-sleep":      &Disconnect{HasDuration: true, Duration: 3600},
	"disconnect-sleep-zero": &Disconnect{HasDuration: true},

	// willupd.hex
	"willtopicupd":                &WillTopicUpd{Retain: true, WillTopic: []byte("a/will")},
	"willtopicupd-qos2":           &WillTopicUpd{QoS: QoS2, WillTopic: []byte("w")},
	"willtopicupd-empty":          &WillTopicUpd{},
	"willmsgupd":                  &WillMsgUpd{WillMsg: []byte("off")},
	"willmsgupd-empty":            &WillMsgUpd{},
	"willtopicresp":               &WillTopicResp{ReturnCode: Accepted},
	"willtopicresp-not-supported": &WillTopicResp{ReturnCode: RejectedNotSupported},
	"willmsgresp":                 &WillMsgResp{ReturnCode: Accepted},
	"willmsgresp-congestion":      &WillMsgResp{ReturnCode: RejectedCongestion},

	// encapsulated.hex
	"encap-publish": &Encapsulated{NodeID: []byte{0x12, 0x34},
		Message: &Publish{TopicID: 1, Data: []byte("hi")}},
	"encap-advertise-radius-3": &Encapsulated{Radius: 3, NodeID: []byte{0xaa},
		Message: &Advertise{GwID: 1, Duration: 900}},
	"encap-xbee-node": &Encapsulated{NodeID: []byte{0x00, 0x13, 0xa2, 0x00, 0x41, 0x52, 0x9f, 0x3a},
		Message: &Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("sensor1")}},
	"encap-empty-nodeid":    &Encapsulated{Radius: 1, Message: &Pingreq{}},
	"encap-inner-long-form": &Encapsulated{NodeID: []byte{0x12, 0x34}, Message: &Pingresp{}},
}

func TestFixtures(t *testing.T) {
	fixtures := loadFixtures(t)
	valid := map[string]bool{}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			t.Logf("%s:%d: %s (%s)", fx.file, fx.line, fx.desc, fx.spec)
			m, err := Decode(fx.data)
			if !fx.ok {
				want := errorKinds[fx.kind]
				if err == nil {
					t.Fatalf("decoded %#v, want error %s", m, fx.kind)
				}
				if !errors.Is(err, want) {
					t.Fatalf("error %q, want kind %s (%v)", err, fx.kind, want)
				}
				if m != nil {
					t.Fatalf("message %#v with the error", m)
				}
				if _, ok := errors.AsType[*Error](err); !ok {
					t.Fatalf("error %v is a %T, not an *Error", err, err)
				}
				return
			}
			valid[fx.name] = true
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want, ok := expected[fx.name]
			if !ok {
				t.Fatalf("no expected value for %s; decoded %#v", fx.name, m)
			}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("decoded\n %#v\nwant\n %#v", m, want)
			}
			if err := Validate(m); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			canon := fx.data
			if fx.canonical != nil {
				canon = fx.canonical
			}
			// Encode the expected value, so that the encoder is tested
			// against the fixture and not against the decoder.
			enc := Append(nil, want)
			if !bytes.Equal(enc, canon) {
				t.Fatalf("encoded\n % x\nwant\n % x", enc, canon)
			}
			if n := Size(want); n != len(enc) {
				t.Fatalf("Size = %d, encoding has %d octets", n, len(enc))
			}
			// Append appends.
			prefix := []byte{0xde, 0xad}
			if got := Append(prefix, want); !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], canon) {
				t.Fatalf("Append after a prefix: % x", got)
			}
			checkDecoders(t, fx.data, m)
		})
	}
	for name := range expected {
		if !valid[name] {
			t.Errorf("expected value for %q, which is no valid fixture", name)
		}
	}
}

// checkDecoders checks that the other decoders agree with Decode, which gave
// m for the datagram b.
func checkDecoders(t *testing.T, b []byte, m Message) {
	t.Helper()
	length, typ, hl, err := DecodeHeader(b)
	if err != nil || typ != m.Type() || (typ != TypeEncapsulated && length != len(b)) || (hl != 2 && hl != 4) {
		t.Fatalf("DecodeHeader = %d, %v, %d, %v", length, typ, hl, err)
	}
	into := newMessage(typ)
	if err := DecodeInto(into, b); err != nil || !reflect.DeepEqual(into, m) {
		t.Fatalf("DecodeInto = %#v, %v", into, err)
	}
	// DecodeInto overwrites every field of a value that held another message.
	dirty := newMessage(typ)
	if p, ok := dirty.(*Publish); ok {
		*p = Publish{DUP: true, QoS: QoS2, Retain: true, TopicIDType: TopicIDShort, TopicID: 9, MsgID: 9, Data: []byte("old")}
	}
	if err := DecodeInto(dirty, b); err != nil || !reflect.DeepEqual(dirty, m) {
		t.Fatalf("DecodeInto over an old value = %#v, %v", dirty, err)
	}
	if p, ok := m.(*Publish); ok {
		var q Publish
		if err := DecodePublish(&q, b); err != nil || !reflect.DeepEqual(&q, p) {
			t.Fatalf("DecodePublish = %#v, %v", q, err)
		}
	} else {
		var q Publish
		if err := DecodePublish(&q, b); !errors.Is(err, ErrWrongType) {
			t.Fatalf("DecodePublish of %v: %v, want ErrWrongType", typ, err)
		}
	}
	if e, ok := m.(*Encapsulated); ok {
		radius, node, inner, err := SplitEncapsulated(b)
		if err != nil || radius != e.Radius || !bytes.Equal(node, e.NodeID) {
			t.Fatalf("SplitEncapsulated = %d, % x, % x, %v", radius, node, inner, err)
		}
		im, err := Decode(inner)
		if err != nil || !reflect.DeepEqual(im, e.Message) {
			t.Fatalf("Decode(inner) = %#v, %v", im, err)
		}
	}
}

// TestFixtureCoverage requires a valid case for every message type, both
// Length forms of PUBLISH, and a case for every error kind.
func TestFixtureCoverage(t *testing.T) {
	types := map[MsgType]bool{}
	kinds := map[string]bool{}
	var short, long bool
	for _, fx := range loadFixtures(t) {
		if !fx.ok {
			kinds[fx.kind] = true
			continue
		}
		m := expected[fx.name]
		if m == nil {
			continue // TestFixtures reports it
		}
		types[m.Type()] = true
		if e, ok := m.(*Encapsulated); ok {
			types[e.Message.Type()] = true
		}
		if m.Type() == TypePublish {
			canon := fx.data
			if fx.canonical != nil {
				canon = fx.canonical
			}
			if canon[0] == 0x01 {
				long = true
			} else {
				short = true
			}
		}
	}
	for t0 := 0; t0 < 256; t0++ {
		if typ := MsgType(t0); typ.Known() && !types[typ] {
			t.Errorf("no valid fixture for %v", typ)
		}
	}
	if !short || !long {
		t.Errorf("PUBLISH fixtures: 1-octet Length form %v, 3-octet form %v; want both", short, long)
	}
	for kind := range errorKinds {
		if !kinds[kind] {
			t.Errorf("no fixture expects error %s", kind)
		}
	}
}
