package uplink

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// unhex decodes annotated hex: '#' starts a comment to the end of the
// line, whitespace is ignored.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

type recordFixture struct {
	name string
	hex  string
	want Record // when err is nil
	err  error
}

var recordFixtures = []recordFixture{
	{
		name: "minimal QoS 1",
		hex: `01       # version
		      01       # flags: QoS 1
		      00       # flags2
		      03 612f62 # topic "a/b"
		      6869     # payload "hi"`,
		want: Record{Topic: "a/b", QoS: 1, Payload: []byte("hi")},
	},
	{
		name: "empty payload QoS 2 retained",
		hex:  `01 06 00 01 74`,
		want: Record{Topic: "t", QoS: 2, Retain: true, Payload: []byte{}},
	},
	{
		name: "every field",
		hex: `01
		      FD            # QoS 1, retain, payload format, content type, response topic, correlation, user
		      07            # expiry, deadline, reason
		      01            # payload format: UTF-8
		      01 74         # topic "t"
		      02 6a73       # content type "js"
		      02 722f       # response topic "r/"
		      01 ff         # correlation data
		      02            # 2 user properties
		      01 6b 00      # "k" = ""
		      00 01 76      # "" = "v"
		      e8 07         # expiry 1000 ms
		      d0 0f         # deadline 2000 ms
		      87            # reason: not authorized
		      7b7d          # payload "{}"`,
		want: Record{
			Topic: "t", QoS: 1, Retain: true, HasPayloadFormat: true, PayloadFormat: 1,
			ContentType: "js", ResponseTopic: "r/", CorrelationData: []byte{0xff},
			User:   []packet.UserProperty{{Key: "k"}, {Value: "v"}},
			Expiry: time.UnixMilli(1000), Deadline: time.UnixMilli(2000), Reason: 0x87,
			Payload: []byte("{}"),
		},
	},
	{name: "empty", hex: ``, err: ErrRecordCorrupt},
	{name: "unknown version", hex: `02 00 00 01 74`, err: ErrRecordVersion},
	{name: "QoS 3", hex: `01 03 00 01 74`, err: ErrRecordCorrupt},
	{name: "reserved flags2 bit", hex: `01 00 08 01 74`, err: ErrRecordCorrupt},
	{name: "empty topic", hex: `01 00 00 00`, err: ErrRecordCorrupt},
	{name: "topic past the end", hex: `01 00 00 05 74`, err: ErrRecordCorrupt},
	{name: "non-minimal varint", hex: `01 00 00 81 00 74`, err: ErrRecordCorrupt},
	{name: "varint too long", hex: `01 00 00 ffffffffffffffffff01`, err: ErrRecordCorrupt},
	{name: "topic not UTF-8", hex: `01 00 00 01 ff`, err: ErrRecordCorrupt},
	{name: "topic with U+0000", hex: `01 00 00 01 00`, err: ErrRecordCorrupt},
	{name: "payload format 2", hex: `01 08 00 02 01 74`, err: ErrRecordCorrupt},
	{name: "flagged empty content type", hex: `01 10 00 01 74 00`, err: ErrRecordCorrupt},
	{name: "flagged empty correlation data", hex: `01 40 00 01 74 00`, err: ErrRecordCorrupt},
	{name: "zero user properties", hex: `01 80 00 01 74 00`, err: ErrRecordCorrupt},
	{name: "truncated user property", hex: `01 80 00 01 74 01 01 6b`, err: ErrRecordCorrupt},
	{name: "zero expiry", hex: `01 00 01 01 74 00`, err: ErrRecordCorrupt},
	{name: "reason below 0x80", hex: `01 00 04 01 74 10`, err: ErrRecordCorrupt},
	{name: "missing reason", hex: `01 00 04 01 74`, err: ErrRecordCorrupt},
}

func TestDecodeRecordFixtures(t *testing.T) {
	for _, f := range recordFixtures {
		t.Run(f.name, func(t *testing.T) {
			b := unhex(t, f.hex)
			got, err := DecodeRecord(b)
			if f.err != nil {
				if !errors.Is(err, f.err) {
					t.Fatalf("DecodeRecord = %+v, %v; want error %v", got, err, f.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if !recordsEqual(got, f.want) {
				t.Fatalf("DecodeRecord =\n%+v\nwant\n%+v", got, f.want)
			}
			if enc := AppendRecord(nil, &f.want); !bytes.Equal(enc, b) {
				t.Fatalf("AppendRecord = % x\nwant         % x", enc, b)
			}
		})
	}
}

func recordsEqual(a, b Record) bool {
	if !a.Expiry.Equal(b.Expiry) || !a.Deadline.Equal(b.Deadline) {
		return false
	}
	a.Expiry, a.Deadline, b.Expiry, b.Deadline = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(a.Payload) == 0 && len(b.Payload) == 0 {
		a.Payload, b.Payload = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func TestAppendRecordAppends(t *testing.T) {
	r := Record{Topic: "x", QoS: 1, Payload: []byte("p")}
	prefix := []byte("keep")
	b := AppendRecord(prefix, &r)
	if !bytes.HasPrefix(b, []byte("keep")) {
		t.Fatalf("AppendRecord lost the prefix: %q", b)
	}
	got, err := DecodeRecord(b[4:])
	if err != nil || got.Topic != "x" || string(got.Payload) != "p" {
		t.Fatalf("DecodeRecord = %+v, %v", got, err)
	}
}

// FuzzDecodeRecord checks the round trip: whatever decodes encodes back to
// the same bytes, and those decode to the same record.
func FuzzDecodeRecord(f *testing.F) {
	for _, fx := range recordFixtures {
		f.Add(unhex(f, fx.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		enc := AppendRecord(nil, &r)
		if !bytes.Equal(enc, b) {
			t.Fatalf("round trip changed the bytes:\n in % x\nout % x", b, enc)
		}
		r2, err := DecodeRecord(enc)
		if err != nil || !recordsEqual(r, r2) {
			t.Fatalf("second decode = %+v, %v; want %+v", r2, err, r)
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	r := Record{Topic: "site7/sensors/boiler/temperature", QoS: 1, Payload: make([]byte, 64),
		ContentType: "application/json", User: []packet.UserProperty{{Key: "unit", Value: "C"}}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], &r)
		if _, err := DecodeRecord(buf); err != nil {
			b.Fatal(err)
		}
	}
}
