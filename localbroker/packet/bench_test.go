package packet

import (
	"bytes"
	"fmt"
	"testing"
)

// benchPublish is a typical sensor message: QoS 1 with, under 5.0, the
// properties a device commonly sets.
func benchPublish(v Version, payload int) *Publish {
	p := &Publish{QoS: 1, PacketID: 42, Topic: "sensors/garden/bed-3/temperature",
		Payload: bytes.Repeat([]byte{'x'}, payload)}
	if v == V5 {
		p.Properties = props(func(p *Properties) {
			p.PayloadFormat, p.MessageExpiry, p.ContentType = 1, 3600, "application/json"
		}, PropPayloadFormat, PropMessageExpiry, PropContentType)
	}
	return p
}

var benchSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"4KiB", 4096}}

func BenchmarkDecodePublish(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		for _, sz := range benchSizes {
			b.Run(fmt.Sprintf("%v/%s", v, sz.name), func(b *testing.B) {
				enc := Append(nil, benchPublish(v, sz.n), v)
				h, n, _ := ParseFixedHeader(enc)
				body := enc[n:]
				var p Publish
				b.SetBytes(int64(len(enc)))
				b.ReportAllocs()
				for b.Loop() {
					if err := DecodePublish(&p, h.Flags, body, v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		for _, sz := range benchSizes {
			b.Run(fmt.Sprintf("%v/%s", v, sz.name), func(b *testing.B) {
				p := benchPublish(v, sz.n)
				buf := make([]byte, 0, Size(p, v))
				b.SetBytes(int64(Size(p, v)))
				b.ReportAllocs()
				for b.Loop() {
					buf = Append(buf[:0], p, v)
				}
			})
		}
	}
}

// loopReader serves the same bytes forever.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// BenchmarkReadPacket frames PUBLISH packets from a stream (one body
// allocation per packet, owned by the caller) and decodes them.
func BenchmarkReadPacket(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		for _, sz := range benchSizes {
			b.Run(fmt.Sprintf("%v/%s", v, sz.name), func(b *testing.B) {
				enc := Append(nil, benchPublish(v, sz.n), v)
				r := NewReader(&loopReader{data: bytes.Repeat(enc, 16)}, 64<<10)
				var p Publish
				b.SetBytes(int64(len(enc)))
				b.ReportAllocs()
				for b.Loop() {
					h, body, err := r.ReadPacket(1 << 20)
					if err != nil {
						b.Fatal(err)
					}
					if err := DecodePublish(&p, h.Flags, body, v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
