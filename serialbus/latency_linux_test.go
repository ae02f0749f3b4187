//go:build linux

package serialbus

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/internal/ptytest"
)

// latencyBaud is the line speed the serial-path latency is computed for.
// A pty does not enforce it: the measured times are the software path
// (encode, write, the kernel's pty, read, decode), and wire-µs is what
// the bytes would add on a real line at this speed.
const latencyBaud = 115200

// ptyRadio is the radio side of a pty for the latency benchmark: it reads
// the frames the link writes, answering the XBee's start-up AT queries.
type ptyRadio struct {
	b       *testing.B
	m       *os.File
	dec     frameDecoder
	escaped bool
	buf     []byte
	pending [][]byte
}

// next returns the next data frame (TX_DATA, Transmit Request or a raw
// packet) the link wrote, as the bytes on the wire decoded.
func (r *ptyRadio) next() []byte {
	r.b.Helper()
	for {
		for len(r.pending) > 0 {
			f := r.pending[0]
			r.pending = r.pending[1:]
			switch r.dec.(type) {
			case *BridgeDecoder:
				if f[0] != byte(BridgeTxData) {
					continue
				}
			case *XBeeDecoder:
				x, err := DecodeXBee(f)
				if err != nil {
					r.b.Fatal(err)
				}
				if x.Type == XBeeATCommand {
					resp := XBeeFrame{Type: XBeeATResponse, FrameID: x.FrameID, Command: x.Command, Data: map[string][]byte{
						"AP": {2}, "AO": {0}, "NP": {0, 100}, "SH": {0, 0x13, 0xa2, 0}, "SL": {0x40, 0x52, 0x2b, 0xaa}}[string(x.Command[:])]}
					w, _ := AppendXBee(nil, &resp, r.escaped)
					if _, err := r.m.Write(w); err != nil {
						r.b.Fatal(err)
					}
					continue
				}
			}
			return f
		}
		_ = r.m.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := r.m.Read(r.buf)
		if err != nil {
			r.b.Fatalf("radio read: %v", err)
		}
		p := r.buf[:n]
		for len(p) > 0 {
			f, used, err := r.dec.Next(p)
			p = p[used:]
			if err != nil {
				r.b.Fatalf("the link wrote a bad frame: %v", err)
			}
			if f != nil {
				r.pending = append(r.pending, append([]byte(nil), f...))
			}
		}
	}
}

// BenchmarkSerialPathLatency sends a 67-byte MQTT-SN PUBLISH from the radio
// through a pty-backed Link at 115200 baud (up: radio → ReadFrom) and one
// back (down: WriteTo → radio), per framing. up-µs and down-µs are the
// measured means; wire-up-µs and wire-down-µs are the frames' time on a
// real 115200-baud line (10 bits a byte), which a pty does not add. The
// link's writer paces frames at the line's speed, so down-µs includes the
// wait for the previous frame's wire time when it has not yet passed.
func BenchmarkSerialPathLatency(b *testing.B) {
	pkt := benchPublish()
	for _, tc := range []struct {
		framing string
		dec     func() frameDecoder
		up      func() []byte
	}{
		{FramingRaw, func() frameDecoder { return &RawDecoder{} }, func() []byte { w, _ := AppendRaw(nil, pkt); return w }},
		{FramingBridge, func() frameDecoder { return &BridgeDecoder{} }, func() []byte {
			w, _ := AppendBridge(nil, &BridgeFrame{Type: BridgeRxData, RSSI: -80, SNR: 20, Node: []byte{1, 2}, Data: pkt})
			return w
		}},
		{FramingXBee, func() frameDecoder { return &XBeeDecoder{Escaped: true} }, func() []byte {
			w, _ := AppendXBee(nil, &XBeeFrame{Type: XBeeReceivePacket, Addr64: 0x0013A20040A00001, Addr16: 0xFFFE, Options: 1, Data: pkt}, true)
			return w
		}},
	} {
		b.Run(tc.framing, func(b *testing.B) {
			m, path := ptytest.Open(b)
			l, err := New(Options{Device: path, Framing: tc.framing, Baud: latencyBaud, Logger: testLogger(io.Discard)})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			b.Cleanup(func() {
				cancel()
				if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
					b.Errorf("Run: %v", err)
				}
			})
			radio := &ptyRadio{b: b, m: m, dec: tc.dec(), escaped: true, buf: make([]byte, 4096)}
			up := tc.up()
			buf := make([]byte, 2048)
			var downWire int
			roundTrip := func() (time.Duration, time.Duration) {
				t0 := time.Now()
				if _, err := m.Write(up); err != nil {
					b.Fatal(err)
				}
				_ = l.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, from, err := l.ReadFrom(buf)
				if err != nil || n != len(pkt) {
					b.Fatalf("ReadFrom: %d bytes, %v", n, err)
				}
				t1 := time.Now()
				if _, err := l.WriteTo(buf[:n], from); err != nil {
					b.Fatal(err)
				}
				f := radio.next()
				t2 := time.Now()
				downWire = wireLen(tc.framing, f)
				return t1.Sub(t0), t2.Sub(t1)
			}
			roundTrip() // the start-up queries, answered
			var sumUp, sumDown time.Duration
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				u, d := roundTrip()
				sumUp += u
				sumDown += d
				n++
			}
			wire := func(bytes int) float64 { return float64(bytes) * 10 / latencyBaud * 1e6 }
			b.ReportMetric(float64(sumUp.Microseconds())/float64(n), "up-µs")
			b.ReportMetric(float64(sumDown.Microseconds())/float64(n), "down-µs")
			b.ReportMetric(wire(len(up)), "wire-up-µs")
			b.ReportMetric(wire(downWire), "wire-down-µs")
		})
	}
}

// wireLen is the length on the wire of a frame the radio decoded: the
// decoders strip what their framing adds.
func wireLen(framing string, f []byte) int {
	switch framing {
	case FramingBridge:
		x, _ := DecodeBridge(f)
		w, _ := AppendBridge(nil, &x)
		return len(w)
	case FramingXBee:
		x, _ := DecodeXBee(f)
		w, _ := AppendXBee(nil, &x, true)
		return len(w)
	}
	return len(f)
}
