package packet

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Golden fixtures live in testdata/*.hex. A file holds cases:
//
//	# a comment line
//	=== name [MQTT-x.y.z-n]
//	desc: what the case shows
//	version: 3.1.1            (3.1, 3.1.1 or 5.0: the version decoded and encoded under)
//	expect: PUBLISH qos=1 ... (the decoded packet as format renders it; may repeat, joined by a space)
//	error: MalformedPacket    (instead of expect: the *Error code, or UnexpectedEOF)
//	max: 100                  (optional maxPacket for ReadPacket)
//	reencode: 40 02 00 01     (optional: the canonical encoding when it differs from the input)
//	30 05 00 03 61 2f 62      # hex bytes of the whole packet, '#' starts a comment
//
// Hex lines are the input stream: one whole packet (fixed header included).

type fixture struct {
	file, name, desc string
	line             int
	version          Version
	expect           string
	err              string
	max              int
	data             []byte
	reencode         []byte
}

func parseVersion(s string) (Version, error) {
	switch s {
	case "3.1":
		return V31, nil
	case "3.1.1":
		return V311, nil
	case "5.0":
		return V5, nil
	}
	return 0, fmt.Errorf("unknown version %q", s)
}

func parseHex(s string) ([]byte, error) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	return hex.DecodeString(strings.Join(strings.Fields(s), ""))
}

func loadFixtures(t testing.TB) []*fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var all []*fixture
	names := map[string]bool{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		var cur *fixture
		sc := bufio.NewScanner(f)
		ln := 0
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s", file, ln, fmt.Sprintf(format, args...))
		}
		for sc.Scan() {
			ln++
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
				continue
			case strings.HasPrefix(line, "=== "):
				cur = &fixture{file: filepath.Base(file), name: strings.TrimSpace(line[4:]), line: ln}
				key := cur.file + "/" + cur.name
				if names[key] {
					fail("duplicate case name %q", cur.name)
				}
				names[key] = true
				all = append(all, cur)
				continue
			}
			if cur == nil {
				fail("content before the first === line")
			}
			key, val, ok := strings.Cut(line, ":")
			if ok && !strings.ContainsAny(key, " #") {
				val = strings.TrimSpace(val)
				switch key {
				case "desc":
					cur.desc = val
				case "version":
					if cur.version, err = parseVersion(val); err != nil {
						fail("%v", err)
					}
				case "expect":
					if cur.expect != "" {
						cur.expect += " "
					}
					cur.expect += val
				case "error":
					cur.err = val
				case "max":
					if cur.max, err = strconv.Atoi(val); err != nil {
						fail("%v", err)
					}
				case "reencode":
					if cur.reencode, err = parseHex(val); err != nil {
						fail("%v", err)
					}
				default:
					fail("unknown key %q", key)
				}
				continue
			}
			b, err := parseHex(line)
			if err != nil {
				fail("bad hex: %v", err)
			}
			cur.data = append(cur.data, b...)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, fx := range all {
		switch {
		case fx.version == 0:
			t.Fatalf("%s:%d: %s: no version", fx.file, fx.line, fx.name)
		case (fx.expect == "") == (fx.err == ""):
			t.Fatalf("%s:%d: %s: need exactly one of expect and error", fx.file, fx.line, fx.name)
		case fx.desc == "":
			t.Fatalf("%s:%d: %s: no desc", fx.file, fx.line, fx.name)
		case len(fx.data) == 0:
			t.Fatalf("%s:%d: %s: no bytes", fx.file, fx.line, fx.name)
		}
	}
	return all
}

// errorCodes names the codes fixtures may expect.
var errorCodes = map[string]ReasonCode{
	"MalformedPacket":            MalformedPacket,
	"ProtocolError":              ProtocolError,
	"TopicNameInvalid":           TopicNameInvalid,
	"TopicAliasInvalid":          TopicAliasInvalid,
	"PacketTooLarge":             PacketTooLarge,
	"UnsupportedProtocolVersion": UnsupportedProtocolVersion,
}

// format renders a packet as one line of text: the form fixtures expect.
func format(pk Packet) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	switch p := pk.(type) {
	case *Connect:
		w("CONNECT proto=%q v=%d clean=%d keepalive=%d", p.ProtocolName, p.ProtocolVersion, b2i(p.CleanStart), p.KeepAlive)
		formatProps(&b, &p.Properties)
		w(" client=%q", p.ClientID)
		if p.WillFlag {
			w(" will{qos=%d retain=%d", p.WillQoS, b2i(p.WillRetain))
			formatProps(&b, &p.WillProperties)
			w(" topic=%q payload=%q}", p.WillTopic, p.WillPayload)
		}
		if p.UsernameFlag {
			w(" user=%q", p.Username)
		}
		if p.PasswordFlag {
			w(" pass=%q", p.Password)
		}
	case *Connack:
		w("CONNACK sp=%d rc=0x%02X", b2i(p.SessionPresent), byte(p.ReasonCode))
		formatProps(&b, &p.Properties)
	case *Publish:
		w("PUBLISH dup=%d qos=%d retain=%d topic=%q id=%d", b2i(p.Dup), p.QoS, b2i(p.Retain), p.Topic, p.PacketID)
		formatProps(&b, &p.Properties)
		w(" payload=%q", p.Payload)
	case *Ack:
		w("%v id=%d rc=0x%02X", p.Kind, p.PacketID, byte(p.ReasonCode))
		formatProps(&b, &p.Properties)
	case *Subscribe:
		w("SUBSCRIBE id=%d", p.PacketID)
		formatProps(&b, &p.Properties)
		for _, s := range p.Subscriptions {
			w(" sub(%q qos=%d nl=%d rap=%d rh=%d)", s.Filter, s.QoS, b2i(s.NoLocal), b2i(s.RetainAsPublished), s.RetainHandling)
		}
	case *Suback:
		w("SUBACK id=%d", p.PacketID)
		formatProps(&b, &p.Properties)
		w(" codes=%s", formatCodes(p.ReasonCodes))
	case *Unsubscribe:
		w("UNSUBSCRIBE id=%d", p.PacketID)
		formatProps(&b, &p.Properties)
		w(" filters=%q", p.Filters)
	case *Unsuback:
		w("UNSUBACK id=%d", p.PacketID)
		formatProps(&b, &p.Properties)
		w(" codes=%s", formatCodes(p.ReasonCodes))
	case *Pingreq:
		w("PINGREQ")
	case *Pingresp:
		w("PINGRESP")
	case *Disconnect:
		w("DISCONNECT rc=0x%02X", byte(p.ReasonCode))
		formatProps(&b, &p.Properties)
	case *Auth:
		w("AUTH rc=0x%02X", byte(p.ReasonCode))
		formatProps(&b, &p.Properties)
	default:
		w("%T", pk)
	}
	return b.String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func formatCodes(cs []ReasonCode) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = fmt.Sprintf("0x%02X", byte(c))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// propKeys are the short names format uses, in identifier order.
var propKeys = [...]string{
	PropPayloadFormat: "payload_format", PropMessageExpiry: "message_expiry", PropContentType: "content_type",
	PropResponseTopic: "response_topic", PropCorrelationData: "correlation", PropSubscriptionID: "sub_ids",
	PropSessionExpiry: "session_expiry", PropAssignedClientID: "assigned_client_id", PropServerKeepAlive: "server_keepalive",
	PropAuthMethod: "auth_method", PropAuthData: "auth_data", PropRequestProblemInfo: "request_problem_info",
	PropWillDelay: "will_delay", PropRequestResponseInfo: "request_response_info", PropResponseInfo: "response_info",
	PropServerReference: "server_reference", PropReasonString: "reason", PropReceiveMaximum: "receive_max",
	PropTopicAliasMaximum: "topic_alias_max", PropTopicAlias: "topic_alias", PropMaximumQoS: "max_qos",
	PropRetainAvailable: "retain_available", PropUser: "user", PropMaximumPacketSize: "max_packet_size",
	PropWildcardSubAvailable: "wildcard_sub_available", PropSubIDAvailable: "sub_id_available",
	PropSharedSubAvailable: "shared_sub_available",
}

func formatProps(b *strings.Builder, p *Properties) {
	if p.Present == 0 {
		return
	}
	var parts []string
	for id := range propKeys {
		pid := PropID(id)
		if propKeys[id] == "" || !p.Has(pid) {
			continue
		}
		var v string
		switch propKinds[pid] {
		case kindByte:
			v = strconv.Itoa(int(p.byteProp(pid)))
		case kindUint16:
			v = strconv.Itoa(int(p.uint16Prop(pid)))
		case kindUint32:
			v = strconv.FormatUint(uint64(p.uint32Prop(pid)), 10)
		case kindVarint:
			v = fmt.Sprint(p.SubscriptionIDs)
		case kindString:
			v = strconv.Quote(p.stringProp(pid))
		case kindBinary:
			v = fmt.Sprintf("%q", p.bytesProp(pid))
		case kindPair:
			u := make([]string, len(p.User))
			for i, kv := range p.User {
				u[i] = fmt.Sprintf("%q=%q", kv.Key, kv.Value)
			}
			v = "[" + strings.Join(u, " ") + "]"
		}
		parts = append(parts, propKeys[id]+"="+v)
	}
	b.WriteString(" props{" + strings.Join(parts, " ") + "}")
}
