package packet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"testing"
)

// decodeAny decodes one whole packet held in b under v (CONNECT reads its
// own version).
func decodeAny(b []byte, v Version) (Packet, error) {
	h, n, err := ParseFixedHeader(b)
	if err != nil {
		return nil, err
	}
	if len(b)-n != h.Remaining {
		return nil, io.ErrUnexpectedEOF
	}
	if h.Type == TypeConnect {
		c, err := DecodeConnect(h.Flags, b[n:])
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return Decode(h, b[n:], v)
}

// checkError reports whether err is what a fixture's error line names.
func checkError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("decoded without error, want %s", want)
	}
	if want == "UnexpectedEOF" {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
		}
		return
	}
	code, ok := errorCodes[want]
	if !ok {
		t.Fatalf("fixture names unknown error %q", want)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if pe.Code != code {
		t.Fatalf("error %v has code %v, want %v", err, pe.Code, code)
	}
	if !errors.Is(err, &Error{Code: code}) {
		t.Fatalf("errors.Is(%v, code %v) is false", err, code)
	}
}

// TestFixtures runs every golden fixture through the stream reader, the
// decoder and (for valid ones) the encoder: the decoded value must render as
// expected, re-encode to the same bytes (or the stated canonical ones),
// have the size Size reports, pass Validate, and decode again to an equal
// value.
func TestFixtures(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		t.Run(fx.file+"/"+fx.name, func(t *testing.T) {
			t.Logf("%s:%d: %s", fx.file, fx.line, fx.desc)
			r := NewReader(bytes.NewReader(fx.data), 16)
			h, body, err := r.ReadPacket(fx.max)
			if err != nil {
				if fx.err == "" {
					t.Fatalf("ReadPacket: %v", err)
				}
				checkError(t, err, fx.err)
				return
			}
			if _, _, err := r.ReadPacket(fx.max); err != io.EOF {
				t.Fatalf("fixture holds more than one packet (next read: %v)", err)
			}
			ph, n, err := ParseFixedHeader(fx.data)
			if err != nil || ph != h || !bytes.Equal(fx.data[n:], body) {
				t.Fatalf("ParseFixedHeader = %+v, %d, %v; ReadPacket = %+v", ph, n, err, h)
			}
			pk, err := decodeAny(fx.data, fx.version)
			if fx.err != "" {
				checkError(t, err, fx.err)
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := format(pk); got != fx.expect {
				t.Fatalf("decoded\n got: %s\nwant: %s", got, fx.expect)
			}
			want := fx.data
			if fx.reencode != nil {
				want = fx.reencode
			}
			enc := Append(nil, pk, fx.version)
			if !bytes.Equal(enc, want) {
				t.Fatalf("re-encoded\n got: % x\nwant: % x", enc, want)
			}
			if s := Size(pk, fx.version); s != len(enc) {
				t.Fatalf("Size = %d, encoding has %d bytes", s, len(enc))
			}
			if err := Validate(pk, fx.version); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			pk2, err := decodeAny(enc, fx.version)
			if err != nil {
				t.Fatalf("decode of re-encoding: %v", err)
			}
			if !reflect.DeepEqual(pk, pk2) {
				t.Fatalf("round trip changed the value\n got: %s\nwant: %s", format(pk2), format(pk))
			}
		})
	}
}

// TestFixtureCoverage fails when a packet type lacks a valid or an invalid
// fixture under either version.
func TestFixtureCoverage(t *testing.T) {
	type key struct {
		t     Type
		v     Version
		valid bool
	}
	seen := map[key]bool{}
	for _, fx := range loadFixtures(t) {
		if len(fx.data) == 0 {
			continue
		}
		v := fx.version
		if v == V31 {
			v = V311
		}
		seen[key{Type(fx.data[0] >> 4), v, fx.err == ""}] = true
	}
	for ty := TypeConnect; ty <= TypeAuth; ty++ {
		for _, v := range []Version{V311, V5} {
			for _, valid := range []bool{true, false} {
				if ty == TypeAuth && v == V311 && valid {
					continue // AUTH does not exist in 3.1.1
				}
				if !seen[key{ty, v, valid}] {
					t.Errorf("no %s fixture for %v under %v", map[bool]string{true: "valid", false: "invalid"}[valid], ty, v)
				}
			}
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
