package packet

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// checkDecoded is the round-trip property: a packet that decodes re-encodes
// to bytes of the size Size reports, passes Validate, decodes again to an
// equal value, and re-encodes to the same bytes (so canonical inputs, such
// as the valid fixtures without a reencode line, come back byte for byte;
// TestFixtures checks that for them).
func checkDecoded(t *testing.T, h FixedHeader, body []byte, v Version) {
	t.Helper()
	var pk Packet
	var err error
	if h.Type == TypeConnect {
		var c *Connect
		c, err = DecodeConnect(h.Flags, body)
		if err == nil {
			pk, v = c, c.ProtocolVersion
		}
	} else {
		pk, err = Decode(h, body, v)
	}
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("decode error %v (%T) is not an *Error", err, err)
		}
		if pk != nil {
			t.Fatalf("decode returned %T with error %v", pk, err)
		}
		return
	}
	enc := Append(nil, pk, v)
	if Size(pk, v) != len(enc) {
		t.Fatalf("Size = %d, encoding has %d bytes", Size(pk, v), len(enc))
	}
	if err := Validate(pk, v); err != nil {
		t.Fatalf("decoded packet fails Validate: %v\n%s", err, format(pk))
	}
	pk2, err := decodeAny(enc, v)
	if err != nil {
		t.Fatalf("re-encoding does not decode: %v\n%s\n% x", err, format(pk), enc)
	}
	if !reflect.DeepEqual(pk, pk2) {
		t.Fatalf("round trip changed the value\n got: %s\nwant: %s", format(pk2), format(pk))
	}
	if enc2 := Append(nil, pk2, v); !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding is not stable\n% x\n% x", enc, enc2)
	}
}

// FuzzDecode decodes one packet under 3.1.1 or 5.0 and checks the
// round-trip property for whatever decodes.
func FuzzDecode(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add(byte(fx.version), fx.data)
	}
	f.Fuzz(func(t *testing.T, vb byte, data []byte) {
		v := V311
		if vb&1 != 0 {
			v = V5
		}
		h, n, err := ParseFixedHeader(data)
		if err != nil {
			return
		}
		body := data[n:]
		if len(body) < h.Remaining {
			return
		}
		body = body[:h.Remaining:h.Remaining]
		checkDecoded(t, h, body, v)
	})
}

// splitReader returns a, then b, in separate reads (nats-server's parser
// fuzz splits its input in halves the same way).
type splitReader struct{ a, b []byte }

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.a) > 0 {
		n := copy(p, r.a)
		r.a = r.a[n:]
		return n, nil
	}
	if len(r.b) > 0 {
		n := copy(p, r.b)
		r.b = r.b[n:]
		return n, nil
	}
	return 0, io.EOF
}

// sameError reports whether two framing errors are of the same kind.
func sameError(a, b error) bool {
	if a == b {
		return true
	}
	var pa, pb *Error
	return errors.As(a, &pa) && errors.As(b, &pb) && pa.Code == pb.Code
}

// FuzzReadPacket feeds a stream split at a random point to Reader and checks
// that it frames exactly what ParseFixedHeader over the whole input frames,
// ending with the same error, and that every framed packet obeys the
// round-trip property under both versions.
func FuzzReadPacket(f *testing.F) {
	var all []byte
	for _, fx := range loadFixtures(f) {
		f.Add(fx.data, uint(len(fx.data)/2), uint16(fx.max))
		if fx.err == "" {
			all = append(all, fx.data...)
		}
	}
	f.Add(all, uint(len(all)/3), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint, maxb uint16) {
		maxPacket := int(maxb) // 0: no limit
		type frame struct {
			h    FixedHeader
			body []byte
		}
		var want []frame
		var wantErr error
		for rest := data; ; {
			if len(rest) == 0 {
				wantErr = io.EOF
				break
			}
			h, n, err := ParseFixedHeader(rest)
			if err != nil {
				wantErr = err
				break
			}
			if maxPacket > 0 && n+h.Remaining > maxPacket {
				wantErr = ErrPacketTooLarge
				break
			}
			if len(rest)-n < h.Remaining {
				wantErr = io.ErrUnexpectedEOF
				break
			}
			want = append(want, frame{h, rest[n : n+h.Remaining]})
			rest = rest[n+h.Remaining:]
		}

		s := int(split % uint(len(data)+1))
		r := NewReader(&splitReader{data[:s], data[s:]}, 16)
		for i := 0; ; i++ {
			h, body, err := r.ReadPacket(maxPacket)
			if err != nil {
				if i != len(want) || !sameError(err, wantErr) {
					t.Fatalf("packet %d: error %v; want %d packets then %v", i, err, len(want), wantErr)
				}
				return
			}
			if i >= len(want) || h != want[i].h || !bytes.Equal(body, want[i].body) {
				t.Fatalf("packet %d: %+v % x differs from the reference framing", i, h, body)
			}
			checkDecoded(t, h, body, V311)
			checkDecoded(t, h, body, V5)
		}
	})
}
