package packet

import (
	"bytes"
	"testing"
)

// props builds Properties the way the decoder reports them: every given
// property has its Present bit set.
func props(set func(p *Properties), ids ...PropID) Properties {
	var p Properties
	set(&p)
	for _, id := range ids {
		p.Set(id)
	}
	return p
}

// roundTripCases hold packets in the form the decoder produces under their
// version, so decode(encode(x)) must render exactly as x.
var roundTripCases = []struct {
	name string
	v    Version
	pk   Packet
}{
	{"connect-v311", V311, &Connect{ProtocolName: "MQTT", ProtocolVersion: V311, CleanStart: true, KeepAlive: 30,
		ClientID: "dev-1", WillFlag: true, WillQoS: 2, WillTopic: "dev/1/status", WillPayload: []byte("gone"),
		UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("s3cret")}},
	{"connect-v31", V31, &Connect{ProtocolName: "MQIsdp", ProtocolVersion: V31, ClientID: "old"}},
	{"connect-v5", V5, &Connect{ProtocolName: "MQTT", ProtocolVersion: V5, KeepAlive: 60, ClientID: "dev-2",
		Properties: props(func(p *Properties) {
			p.SessionExpiry, p.ReceiveMaximum, p.MaximumPacketSize = 3600, 10, 1<<20
			p.User = []UserProperty{{"a", "1"}, {"a", "2"}}
		}, PropSessionExpiry, PropReceiveMaximum, PropMaximumPacketSize, PropUser),
		WillFlag: true, WillRetain: true, WillTopic: "dev/2/status", WillPayload: []byte{},
		WillProperties: props(func(p *Properties) { p.WillDelay, p.ContentType = 5, "text/plain" }, PropWillDelay, PropContentType),
		PasswordFlag:   true, Password: []byte{0, 1, 2}}},
	{"connack-v311", V311, &Connack{SessionPresent: true}},
	{"connack-v5", V5, &Connack{ReasonCode: BadUsernameOrPassword,
		Properties: props(func(p *Properties) { p.ReasonString = "who are you" }, PropReasonString)}},
	{"publish-v311", V311, &Publish{QoS: 1, Retain: true, Topic: "a/b", PacketID: 65535, Payload: []byte("x")}},
	{"publish-v5", V5, &Publish{Dup: true, QoS: 2, Topic: "a/b", PacketID: 1, Payload: []byte{},
		Properties: props(func(p *Properties) {
			p.MessageExpiry, p.TopicAlias, p.CorrelationData = 10, 3, []byte{}
			p.SubscriptionIDs = []uint32{1, MaxRemainingLength}
		}, PropMessageExpiry, PropTopicAlias, PropCorrelationData, PropSubscriptionID)}},
	{"puback-v311", V311, &Ack{Kind: TypePuback, PacketID: 9}},
	{"pubrec-v5", V5, &Ack{Kind: TypePubrec, PacketID: 9, ReasonCode: QuotaExceeded}},
	{"pubrel-v5", V5, &Ack{Kind: TypePubrel, PacketID: 9, Properties: props(func(p *Properties) { p.ReasonString = "r" }, PropReasonString)}},
	{"pubcomp-v5", V5, &Ack{Kind: TypePubcomp, PacketID: 9}},
	{"subscribe-v311", V311, &Subscribe{PacketID: 2, Subscriptions: []Subscription{{Filter: "#", QoS: 2}, {Filter: "+/x"}}}},
	{"subscribe-v5", V5, &Subscribe{PacketID: 2, Properties: props(func(p *Properties) { p.SubscriptionIDs = []uint32{77} }, PropSubscriptionID),
		Subscriptions: []Subscription{{Filter: "a/#", QoS: 1, NoLocal: true, RetainHandling: 1}}}},
	{"suback-v311", V311, &Suback{PacketID: 2, ReasonCodes: []ReasonCode{0, 1, 2, SubackFailure311}}},
	{"suback-v5", V5, &Suback{PacketID: 2, ReasonCodes: []ReasonCode{GrantedQoS1, NotAuthorized}}},
	{"unsubscribe-v311", V311, &Unsubscribe{PacketID: 3, Filters: []string{"a", "b/#"}}},
	{"unsubscribe-v5", V5, &Unsubscribe{PacketID: 3, Filters: []string{"a"}}},
	{"unsuback-v311", V311, &Unsuback{PacketID: 3}},
	{"unsuback-v5", V5, &Unsuback{PacketID: 3, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted}}},
	{"pingreq", V311, &Pingreq{}},
	{"pingresp", V5, &Pingresp{}},
	{"disconnect-v311", V311, &Disconnect{}},
	{"disconnect-v5", V5, &Disconnect{ReasonCode: ServerShuttingDown}},
	{"auth-v5", V5, &Auth{ReasonCode: ContinueAuthentication,
		Properties: props(func(p *Properties) { p.AuthMethod, p.AuthData = "SCRAM-SHA-1", []byte("data") }, PropAuthMethod, PropAuthData)}},
}

// TestRoundTrip checks decode(encode(x)) == x, Size and Validate for
// packets built in code.
func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(tc.pk, tc.v); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			enc := Append(nil, tc.pk, tc.v)
			if Size(tc.pk, tc.v) != len(enc) {
				t.Fatalf("Size = %d, encoding has %d bytes", Size(tc.pk, tc.v), len(enc))
			}
			got, err := decodeAny(enc, tc.v)
			if err != nil {
				t.Fatalf("decode: %v\n% x", err, enc)
			}
			if format(got) != format(tc.pk) {
				t.Fatalf("round trip\n got: %s\nwant: %s", format(got), format(tc.pk))
			}
			if again := Append(nil, got, tc.v); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs\n got: % x\nwant: % x", again, enc)
			}
			// Append appends: existing bytes in dst stay.
			pre := []byte{0xAA, 0xBB}
			if out := Append(pre, tc.pk, tc.v); !bytes.Equal(out[:2], pre) || !bytes.Equal(out[2:], enc) {
				t.Fatalf("Append did not append to dst")
			}
		})
	}
}

// TestV311EncodingIgnores5Fields checks that 3.1.1 encodings leave out
// properties and the 5.0-only fields.
func TestV311EncodingIgnores5Fields(t *testing.T) {
	all := props(func(p *Properties) {
		p.ReasonString, p.ContentType, p.SessionExpiry = "r", "c", 9
		p.User = []UserProperty{{"k", "v"}}
		p.SubscriptionIDs = []uint32{4}
	}, PropReasonString, PropContentType, PropSessionExpiry, PropUser, PropSubscriptionID)
	cases := []struct {
		name       string
		full, bare Packet
	}{
		{"publish", &Publish{Topic: "t", Payload: []byte("p"), Properties: all}, &Publish{Topic: "t", Payload: []byte("p")}},
		{"puback", &Ack{Kind: TypePuback, PacketID: 1, ReasonCode: NotAuthorized, Properties: all}, &Ack{Kind: TypePuback, PacketID: 1}},
		{"pubrel", &Ack{Kind: TypePubrel, PacketID: 1, ReasonCode: PacketIDNotFound}, &Ack{Kind: TypePubrel, PacketID: 1}},
		{"disconnect", &Disconnect{ReasonCode: ServerBusy, Properties: all}, &Disconnect{}},
		{"connack", &Connack{Properties: all}, &Connack{}},
		{"subscribe", &Subscribe{PacketID: 1, Properties: all, Subscriptions: []Subscription{{Filter: "a", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}},
			&Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 1}}}},
		{"unsuback", &Unsuback{PacketID: 1, ReasonCodes: []ReasonCode{0}, Properties: all}, &Unsuback{PacketID: 1}},
		{"connect", &Connect{ClientID: "c", Properties: all, WillFlag: true, WillTopic: "w", WillProperties: all},
			&Connect{ClientID: "c", WillFlag: true, WillTopic: "w"}},
	}
	for _, tc := range cases {
		full, bare := Append(nil, tc.full, V311), Append(nil, tc.bare, V311)
		if !bytes.Equal(full, bare) {
			t.Errorf("%s: 3.1.1 encoding with 5.0 fields\n% x\nwithout\n% x", tc.name, full, bare)
		}
		if Size(tc.full, V311) != len(full) {
			t.Errorf("%s: Size %d, encoding %d bytes", tc.name, Size(tc.full, V311), len(full))
		}
	}
	if b := Append(nil, &Auth{ReasonCode: ContinueAuthentication}, V311); len(b) != 0 || Size(&Auth{}, V311) != 0 {
		t.Errorf("AUTH under 3.1.1 encoded as % x", b)
	}
}

// TestEncoderWritesOnlyAllowedProperties: a Properties value carried over
// from another packet type must not leak properties the packet may not carry.
func TestEncoderWritesOnlyAllowedProperties(t *testing.T) {
	p := props(func(p *Properties) {
		p.SessionExpiry, p.TopicAlias, p.ReasonString, p.AssignedClientID = 1, 2, "r", "id"
	}, PropSessionExpiry, PropTopicAlias, PropReasonString, PropAssignedClientID)
	got := Append(nil, &Ack{Kind: TypePuback, PacketID: 1, Properties: p}, V5)
	want := mustHex("40080001" + "00" + "04" + "1f000172") // only the Reason String
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

// TestValidateRejects lists packets the encoder cannot represent or the
// decoder would refuse.
func TestValidateRejects(t *testing.T) {
	long := string(make([]byte, 65536))
	cases := []struct {
		name string
		pk   Packet
		v    Version
		code ReasonCode
	}{
		{"unknown version", &Pingreq{}, 6, UnsupportedProtocolVersion},
		{"nil packet", nil, V5, MalformedPacket},
		{"typed nil", (*Publish)(nil), V5, MalformedPacket},
		{"publish QoS 4", &Publish{Topic: "t", QoS: 4, PacketID: 1}, V5, MalformedPacket},
		{"publish QoS 1 id 0", &Publish{Topic: "t", QoS: 1}, V5, ProtocolError},
		{"publish wildcard", &Publish{Topic: "a/+"}, V5, TopicNameInvalid},
		{"publish wildcard 3.1.1", &Publish{Topic: "a/+"}, V311, MalformedPacket},
		{"publish long topic", &Publish{Topic: "a" + long}, V5, MalformedPacket},
		{"publish empty topic 3.1.1", &Publish{}, V311, MalformedPacket},
		{"publish topic alias 0", &Publish{Topic: "t", Properties: props(func(*Properties) {}, PropTopicAlias)}, V5, TopicAliasInvalid},
		{"publish sub id too big", &Publish{Topic: "t", Properties: props(func(p *Properties) { p.SubscriptionIDs = []uint32{MaxRemainingLength + 1} })}, V5, MalformedPacket},
		{"publish long content type", &Publish{Topic: "t", Properties: props(func(p *Properties) { p.ContentType = long })}, V5, MalformedPacket},
		{"publish user key too long", &Publish{Topic: "t", Properties: props(func(p *Properties) { p.User = []UserProperty{{long, ""}} })}, V5, MalformedPacket},
		{"too large", &Unsubscribe{PacketID: 1, Filters: tooManyFilters()}, V311, PacketTooLarge},
		{"ack kind", &Ack{Kind: TypeConnect, PacketID: 1}, V5, MalformedPacket},
		{"ack id 0", &Ack{Kind: TypePuback}, V5, ProtocolError},
		{"ack reason", &Ack{Kind: TypePubrel, PacketID: 1, ReasonCode: NotAuthorized}, V5, ProtocolError},
		{"auth 3.1.1", &Auth{}, V311, MalformedPacket},
		{"connect will QoS 3", &Connect{ClientID: "c", WillFlag: true, WillQoS: 3, WillTopic: "w"}, V311, MalformedPacket},
		{"connect name mismatch", &Connect{ProtocolName: "MQIsdp", ClientID: "c"}, V311, MalformedPacket},
		{"connect version mismatch", &Connect{ProtocolVersion: V311, ClientID: "c"}, V5, MalformedPacket},
		{"connect password without user 3.1.1", &Connect{ClientID: "c", PasswordFlag: true}, V311, MalformedPacket},
		{"connect bad client id", &Connect{ClientID: "a\x00"}, V5, MalformedPacket},
		{"connect long password", &Connect{ClientID: "c", PasswordFlag: true, Password: []byte(long)}, V5, MalformedPacket},
		{"connack reserved code 3.1.1", &Connack{ReasonCode: 6}, V311, MalformedPacket},
		{"subscribe empty", &Subscribe{PacketID: 1}, V5, ProtocolError},
		{"subscribe QoS 3", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 3}}}, V5, MalformedPacket},
		{"subscribe retain handling 3", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", RetainHandling: 3}}}, V5, MalformedPacket},
		{"subscribe two ids", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a"}},
			Properties: props(func(p *Properties) { p.SubscriptionIDs = []uint32{1, 2} })}, V5, MalformedPacket},
		{"suback no codes", &Suback{PacketID: 1}, V5, ProtocolError},
		{"suback 5.0 code under 3.1.1", &Suback{PacketID: 1, ReasonCodes: []ReasonCode{NotAuthorized}}, V311, MalformedPacket},
		{"unsubscribe empty", &Unsubscribe{PacketID: 1}, V311, MalformedPacket},
		{"unsubscribe long filter", &Unsubscribe{PacketID: 1, Filters: []string{long}}, V5, MalformedPacket},
		{"disconnect reason", &Disconnect{ReasonCode: 0x05}, V5, ProtocolError},
		{"receive maximum 0", &Connack{Properties: props(func(*Properties) {}, PropReceiveMaximum)}, V5, ProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.pk, tc.v)
			pe, ok := err.(*Error)
			if !ok || pe.Code != tc.code {
				t.Fatalf("Validate = %v, want code %v", err, tc.code)
			}
		})
	}
}

// tooManyFilters returns filters that share one 65535-byte string and
// together exceed MaxRemainingLength.
func tooManyFilters() []string {
	f := string(make([]byte, 65535))
	fs := make([]string, MaxRemainingLength/(2+len(f))+1)
	for i := range fs {
		fs[i] = f
	}
	return fs
}
