package serialbus

import (
	"bytes"
	"testing"
)

// reportFrames adds frames/s to a benchmark whose every iteration handles
// one frame.
func reportFrames(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "frames/s")
	}
}

// benchPublish is an MQTT-SN PUBLISH (QoS 1, pre-defined topic id 5, msg
// id 7) with a 60-byte payload, 67 bytes in all.
func benchPublish() []byte {
	return append([]byte{67, 0x0c, 0x21, 0x00, 0x05, 0x00, 0x07}, bytes.Repeat([]byte{0x41}, 60)...)
}

func BenchmarkXBeeEncode(b *testing.B) {
	tx := XBeeFrame{Type: XBeeTransmitRequest, FrameID: 1, Addr64: 0x0013A20040522BAA, Addr16: 0xFFFE, Data: benchPublish()}
	buf, _ := AppendXBee(nil, &tx, true)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendXBee(buf[:0], &tx, true); err != nil {
			b.Fatal(err)
		}
	}
	reportFrames(b)
}

func BenchmarkBridgeEncode(b *testing.B) {
	tx := BridgeFrame{Type: BridgeTxData, FrameID: 1, Node: []byte{1, 2}, Data: benchPublish()}
	buf, _ := AppendBridge(nil, &tx)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendBridge(buf[:0], &tx); err != nil {
			b.Fatal(err)
		}
	}
	reportFrames(b)
}

func BenchmarkRawDecode(b *testing.B) {
	wire, _ := AppendRaw(nil, benchPublish())
	var d RawDecoder
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		pkt, n, err := d.Next(wire)
		if err != nil || n != len(wire) || len(pkt) != len(wire) {
			b.Fatalf("Next = %d bytes, used %d, %v", len(pkt), n, err)
		}
	}
	reportFrames(b)
}

func BenchmarkRawEncode(b *testing.B) {
	pkt := benchPublish()
	buf, _ := AppendRaw(nil, pkt)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendRaw(buf[:0], pkt); err != nil {
			b.Fatal(err)
		}
	}
	reportFrames(b)
}
