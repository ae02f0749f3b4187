package packet

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"
)

// TestVarintBoundaries encodes and parses the edges of each encoded length
// [MQTT-1.5.5-1] (5.0 Table 1-1).
func TestVarintBoundaries(t *testing.T) {
	cases := []struct {
		x   int
		enc string
	}{
		{0, "00"}, {127, "7f"}, {128, "8001"}, {16383, "ff7f"}, {16384, "808001"},
		{2097151, "ffff7f"}, {2097152, "80808001"}, {MaxRemainingLength, "ffffff7f"},
	}
	for _, tc := range cases {
		enc := appendVarint(nil, tc.x)
		if !bytes.Equal(enc, mustHex(tc.enc)) || varintLen(tc.x) != len(enc) {
			t.Errorf("appendVarint(%d) = % x (len %d), want %s", tc.x, enc, varintLen(tc.x), tc.enc)
		}
		x, n := parseVarint(mustHex(tc.enc))
		if x != tc.x || n != len(enc) {
			t.Errorf("parseVarint(%s) = %d, %d", tc.enc, x, n)
		}
		h, n, err := ParseFixedHeader(append([]byte{0x30}, enc...))
		if err != nil || h.Remaining != tc.x || n != 1+len(enc) {
			t.Errorf("ParseFixedHeader(30 %s) = %+v, %d, %v", tc.enc, h, n, err)
		}
	}
}

func TestParseFixedHeaderErrors(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{"", io.ErrUnexpectedEOF},
		{"30", io.ErrUnexpectedEOF},
		{"3080", io.ErrUnexpectedEOF},
		{"30ffffff", io.ErrUnexpectedEOF},
		{"308000", ErrMalformed},         // [MQTT-1.5.5-1]
		{"3080808000", ErrMalformed},     // [MQTT-1.5.5-1]
		{"30ffffffff", ErrMalformed},     // fifth byte needed
		{"30ffffffff7f", ErrMalformed},   // five bytes
		{"30ffffff8000", ErrMalformed},   // four bytes, continuation on the last
		{"30ff8000", ErrMalformed},       // non-minimal 3-byte
		{"3080ff8000", ErrMalformed},     // continuation on the fourth byte
		{"30ffff80808000", ErrMalformed}, // longer still
	}
	for _, tc := range cases {
		_, _, err := ParseFixedHeader(mustHex(tc.in))
		if !errors.Is(err, tc.want) {
			t.Errorf("ParseFixedHeader(%s) error %v, want %v", tc.in, err, tc.want)
		}
	}
}

// pieceReader hands out its chunks one per Read call.
type pieceReader struct{ chunks [][]byte }

func (r *pieceReader) Read(p []byte) (int, error) {
	for len(r.chunks) > 0 && len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	return n, nil
}

// failReader fails the test if it is read at all.
type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("the body of an oversize packet was read")
	return 0, errors.New("read")
}

// TestReadPacketTooLargeReadsNoBody: the size check comes before any body
// byte is requested from the stream.
func TestReadPacketTooLargeReadsNoBody(t *testing.T) {
	hdr := mustHex("32ffff7f") // PUBLISH QoS 1, remaining length 2097151
	r := NewReader(io.MultiReader(bytes.NewReader(hdr), failReader{t}), 16)
	h, body, err := r.ReadPacket(1 << 20)
	if !errors.Is(err, ErrPacketTooLarge) || body != nil {
		t.Fatalf("ReadPacket = %v, %d bytes; want PacketTooLarge", err, len(body))
	}
	if h.Type != TypePublish || h.Remaining != 2097151 {
		t.Fatalf("header %+v not returned with the error", h)
	}
}

// TestReadPacketStream reads several packets delivered a byte at a time,
// then a clean io.EOF.
func TestReadPacketStream(t *testing.T) {
	var stream []byte
	var want []Packet
	for _, tc := range roundTripCases {
		if tc.v == V5 && tc.pk.Type() != TypeConnect {
			stream = Append(stream, tc.pk, V5)
			want = append(want, tc.pk)
		}
	}
	r := NewReader(iotest.OneByteReader(bytes.NewReader(stream)), 16)
	for i, pk := range want {
		h, body, err := r.ReadPacket(0)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		got, err := Decode(h, body, V5)
		if err != nil || format(got) != format(pk) {
			t.Fatalf("packet %d: %v\n got: %v\nwant: %s", i, err, got, format(pk))
		}
	}
	if _, _, err := r.ReadPacket(0); err != io.EOF {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
}

// TestReadPacketLargeBody reads bodies above the allocation chunk, in
// pieces, and checks the stream stays in step.
func TestReadPacketLargeBody(t *testing.T) {
	for _, n := range []int{bodyChunk - 1, bodyChunk, bodyChunk + 1, 3*bodyChunk + 17, 300_000} {
		payload := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		p := &Publish{Topic: "big", Payload: payload}
		stream := Append(nil, p, V311)
		stream = Append(stream, &Pingreq{}, V311)
		r := NewReader(iotest.HalfReader(bytes.NewReader(stream)), 4096)
		h, body, err := r.ReadPacket(0)
		if err != nil {
			t.Fatalf("%d: %v", n, err)
		}
		var got Publish
		if err := DecodePublish(&got, h.Flags, body, V311); err != nil || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("%d: payload differs (err %v)", n, err)
		}
		if h, _, err := r.ReadPacket(0); err != nil || h.Type != TypePingreq {
			t.Fatalf("%d: next packet %+v, %v", n, h, err)
		}
	}
}

// TestReadPacketTruncated: the stream ending inside a packet is
// io.ErrUnexpectedEOF, in the header or in a body of any size.
func TestReadPacketTruncated(t *testing.T) {
	full := Append(nil, &Publish{Topic: "t", Payload: make([]byte, 3*bodyChunk)}, V311)
	for _, cut := range []int{1, 2, 3, 10, bodyChunk, 2*bodyChunk + 5, len(full) - 1} {
		r := NewReader(bytes.NewReader(full[:cut]), 16)
		if _, _, err := r.ReadPacket(0); err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
	if _, _, err := NewReader(strings.NewReader(""), 16).ReadPacket(0); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

// TestReadPacketPassesReadErrors: a transport error comes back unchanged.
func TestReadPacketPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(bytes.NewReader([]byte{0x30, 0x05, 0x00}), iotest.ErrReader(boom)), 16)
	if _, _, err := r.ReadPacket(0); err != boom {
		t.Fatalf("error %v, want %v", err, boom)
	}
}

// within reports whether the n bytes at p lie inside buf.
func within(buf []byte, p unsafe.Pointer, n int) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	q := uintptr(p)
	return n == 0 || (q >= start && q+uintptr(n) <= start+uintptr(len(buf)))
}

// TestDecodeAliasesBody: decoded strings and byte slices point into the
// body, they are not copies.
func TestDecodeAliasesBody(t *testing.T) {
	p := &Publish{QoS: 1, PacketID: 7, Topic: "a/b", Payload: []byte("payload"),
		Properties: props(func(p *Properties) {
			p.ContentType, p.CorrelationData = "json", []byte{1}
			p.User = []UserProperty{{"k", "v"}}
		}, PropContentType, PropCorrelationData, PropUser)}
	enc := Append(nil, p, V5)
	h, n, _ := ParseFixedHeader(enc)
	body := enc[n:]
	var got Publish
	if err := DecodePublish(&got, h.Flags, body, V5); err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{
		"topic":        within(body, unsafe.Pointer(unsafe.StringData(got.Topic)), len(got.Topic)),
		"payload":      within(body, unsafe.Pointer(unsafe.SliceData(got.Payload)), len(got.Payload)),
		"content type": within(body, unsafe.Pointer(unsafe.StringData(got.Properties.ContentType)), 4),
		"correlation":  within(body, unsafe.Pointer(unsafe.SliceData(got.Properties.CorrelationData)), 1),
		"user key":     within(body, unsafe.Pointer(unsafe.StringData(got.Properties.User[0].Key)), 1),
	} {
		if !ok {
			t.Errorf("%s is not aliased to the body", name)
		}
	}
	if cap(got.Properties.CorrelationData) != len(got.Properties.CorrelationData) {
		t.Errorf("an aliased slice has spare capacity: appending to it would overwrite the body")
	}
}

// TestDecodePublishDoesNotAllocate [zero-copy hot path].
func TestDecodePublishDoesNotAllocate(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		p := benchPublish(v, 64)
		enc := Append(nil, p, v)
		h, n, _ := ParseFixedHeader(enc)
		var got Publish
		allocs := testing.AllocsPerRun(100, func() {
			if err := DecodePublish(&got, h.Flags, enc[n:], v); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: DecodePublish allocates %.1f times", v, allocs)
		}
	}
}

// TestAppendPublishDoesNotAllocate with a buffer that has room.
func TestAppendPublishDoesNotAllocate(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		p := benchPublish(v, 4096)
		buf := make([]byte, 0, 8192)
		allocs := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], p, v) })
		if allocs != 0 {
			t.Errorf("%v: Append allocates %.1f times", v, allocs)
		}
	}
}

func TestValidUTF8(t *testing.T) {
	cases := []struct {
		s  string
		ok bool
	}{
		{"", true}, {"a/b", true}, {"ü€𝄞", true}, {"\ufeff", true}, {"\u0001\u007f", true},
		{"a\x00", false}, {"\xff", false}, {"\xc0\xaf", false}, {"\xed\xa0\x80", false},
		{"é\x00", false}, {"\xe2\x82", false}, {"\xf4\x90\x80\x80", false},
	}
	for _, tc := range cases {
		if got := ValidUTF8(tc.s); got != tc.ok {
			t.Errorf("ValidUTF8(%q) = %v", tc.s, got)
		}
		if got := validUTF8([]byte(tc.s)); got != tc.ok {
			t.Errorf("validUTF8(%q) = %v", tc.s, got)
		}
	}
}

func TestValidTopicName(t *testing.T) {
	cases := []struct {
		s    string
		code ReasonCode // 0: valid
	}{
		{"a", 0}, {"a/b/c", 0}, {"/", 0}, {"$SYS/x", 0}, {"ü/€", 0},
		{"", TopicNameInvalid},                         // [MQTT-4.7.3-1]
		{"a/+", TopicNameInvalid},                      // [MQTT-3.3.2-2]
		{"#", TopicNameInvalid},                        // [MQTT-3.3.2-2]
		{"é/#", TopicNameInvalid},                      // wildcard after a multi-byte rune
		{"a\x00", MalformedPacket},                     // [MQTT-4.7.3-2]
		{"\xff/+", MalformedPacket},                    // bad UTF-8 reported first
		{strings.Repeat("a", 65536), TopicNameInvalid}, // [MQTT-4.7.3-3]
	}
	for _, tc := range cases {
		err := ValidTopicName(tc.s)
		if tc.code == 0 {
			if err != nil {
				t.Errorf("ValidTopicName(%.20q) = %v", tc.s, err)
			}
			continue
		}
		if pe, ok := err.(*Error); !ok || pe.Code != tc.code {
			t.Errorf("ValidTopicName(%.20q) = %v, want code %v", tc.s, err, tc.code)
		}
	}
}

// TestDecodeConnectReportsVersion: after the protocol name and level were
// read, an error comes with them so the server can answer in kind.
func TestDecodeConnectReportsVersion(t *testing.T) {
	c, err := DecodeConnect(0, mustHex("00044d5154540602003c00026331"))
	if !errors.Is(err, &Error{Code: UnsupportedProtocolVersion}) || c == nil || c.ProtocolVersion != 6 || c.ProtocolName != "MQTT" {
		t.Fatalf("level 6: %+v, %v", c, err)
	}
	c, err = DecodeConnect(0, mustHex("00044d5154540503003c000002633131"))
	if !errors.Is(err, ErrMalformed) || c == nil || c.ProtocolVersion != V5 {
		t.Fatalf("5.0 reserved flag: %+v, %v", c, err)
	}
	c, err = DecodeConnect(0, mustHex("0004"))
	if !errors.Is(err, ErrMalformed) || c != nil {
		t.Fatalf("truncated name: %+v, %v", c, err)
	}
}

// TestErrorCodesUnder311: 3.1.1 has no reason codes, so the 5.0-only codes
// become MalformedPacket; the others are kept.
func TestErrorCodesUnder311(t *testing.T) {
	for _, c := range []ReasonCode{ProtocolError, TopicNameInvalid, TopicAliasInvalid} {
		if got := newError(V311, c, "").Code; got != MalformedPacket {
			t.Errorf("3.1.1 %v -> %v", c, got)
		}
		if got := newError(V5, c, "").Code; got != c {
			t.Errorf("5.0 %v -> %v", c, got)
		}
	}
	for _, c := range []ReasonCode{PacketTooLarge, UnsupportedProtocolVersion, MalformedPacket} {
		if got := newError(V311, c, "").Code; got != c {
			t.Errorf("3.1.1 %v -> %v", c, got)
		}
	}
}
