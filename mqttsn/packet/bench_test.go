package packet

import (
	"bytes"
	"fmt"
	"testing"
)

// benchSizes are a typical sensor reading and a PUBLISH that needs the
// 3-octet Length form.
var benchSizes = []int{16, 512}

func benchPublish(n int) *Publish {
	return &Publish{QoS: QoS1, TopicID: 17, MsgID: 42, Data: bytes.Repeat([]byte{'x'}, n)}
}

func BenchmarkDecodePublish(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			enc := Append(nil, benchPublish(n))
			var p Publish
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if err := DecodePublish(&p, enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			p := benchPublish(n)
			buf := make([]byte, 0, Size(p))
			b.SetBytes(int64(Size(p)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendPublish(buf[:0], p)
			}
		})
	}
}

func BenchmarkDecodeConnect(b *testing.B) {
	enc := Append(nil, &Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("greenhouse-sensor-0042")})
	b.Run("Decode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeInto", func(b *testing.B) {
		var c Connect
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if err := DecodeInto(&c, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecode is the generic path for a PUBLISH, which allocates the
// message value.
func BenchmarkDecode(b *testing.B) {
	enc := Append(nil, benchPublish(16))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
