package serialbus

import (
	"bytes"
	"errors"
	"testing"
)

// crc16Bitwise is the bit-at-a-time CRC-16/CCITT-FALSE that
// BRIDGE-PROTOCOL.md gives for firmware.
func crc16Bitwise(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range p {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func TestCRC16(t *testing.T) {
	if got := CRC16([]byte("123456789")); got != 0x29B1 {
		t.Fatalf("check value 0x%04x, want 0x29b1", got)
	}
	if got := CRC16(nil); got != 0xFFFF {
		t.Fatalf("CRC of nothing 0x%04x, want the initial value 0xffff", got)
	}
	p := make([]byte, 300)
	for i := range p {
		p[i] = byte(i*7 + 3)
		if got, want := CRC16(p[:i]), crc16Bitwise(p[:i]); got != want {
			t.Fatalf("length %d: table 0x%04x, bitwise 0x%04x", i, got, want)
		}
	}
}

func TestSLIPBadEscapeSkipsToEnd(t *testing.T) {
	evs := feed(&SLIPDecoder{}, []byte{0xC0, 1, 0xDB, 0x05, 0xDB, 0xDC, 2, 0xC0, 3, 0xC0})
	if len(evs) != 2 || !errors.Is(evs[0].err, ErrBadEscape) || !bytes.Equal(evs[1].frame, []byte{3}) {
		t.Fatalf("events %v", evs)
	}
}

func TestSLIPMaxCheckedBeforeBuffering(t *testing.T) {
	d := &SLIPDecoder{Max: 4}
	evs := feed(d, bytes.Repeat([]byte{7}, 1000), []byte{0xC0, 1, 2, 3, 4, 0xC0})
	if len(evs) != 2 || !errors.Is(evs[0].err, ErrFrameTooLong) || !bytes.Equal(evs[1].frame, []byte{1, 2, 3, 4}) {
		t.Fatalf("events %v", evs)
	}
	if cap(d.buf) > 64 {
		t.Fatalf("buffer grew to %d bytes for a maximum of 4", cap(d.buf))
	}
}

func TestXBeeMaxCheckedBeforeBuffering(t *testing.T) {
	d := &XBeeDecoder{Max: 100}
	evs := feed(d, []byte{0x7E, 0xFF, 0xFF}, bytes.Repeat([]byte{1}, 70000))
	if len(evs) != 1 || !errors.Is(evs[0].err, ErrFrameTooLong) || cap(d.buf) != 0 {
		t.Fatalf("events %v, buffer %d", evs, cap(d.buf))
	}
	if d.Skipped() != 70002 { // the length bytes are looked at again, then skipped
		t.Fatalf("skipped %d, want 70002", d.Skipped())
	}
}

func TestXBeeFullLength(t *testing.T) {
	data := make([]byte, MaxXBeeLength)
	data[0] = byte(XBeeReceivePacket)
	for i := 1; i < len(data); i++ {
		data[i] = byte(i)
	}
	for _, escaped := range []bool{false, true} {
		wire, err := AppendXBeeAPI(nil, data, escaped)
		if err != nil {
			t.Fatal(err)
		}
		evs := feed(&XBeeDecoder{Escaped: escaped}, split(wire, 4096)...)
		if len(evs) != 1 || !bytes.Equal(evs[0].frame, data) {
			t.Fatalf("escaped=%v: %d events", escaped, len(evs))
		}
		f, err := DecodeXBee(evs[0].frame)
		if err != nil || len(f.Data) != MaxXBeeLength-12 {
			t.Fatalf("decoded %d data bytes, %v", len(f.Data), err)
		}
	}
	if _, err := AppendXBeeAPI(nil, make([]byte, MaxXBeeLength+1), false); !errors.Is(err, ErrBadLength) {
		t.Fatalf("frame data of 65536 bytes: %v", err)
	}
}

func TestRawResetDropsCutPacket(t *testing.T) {
	d := &RawDecoder{}
	evs := feed(d, []byte{0x0B, 0x0C, 0x61}) // a PUBLISH cut short
	d.Reset()                                // the idle gap
	evs = append(evs, feed(d, []byte{0x02, 0x16})...)
	if len(evs) != 1 || !bytes.Equal(evs[0].frame, []byte{0x02, 0x16}) {
		t.Fatalf("events %v", evs)
	}
}

func TestAppendRawChecksLength(t *testing.T) {
	for _, bad := range [][]byte{nil, {0}, {1}, {3, 1}, {2, 1, 0}, {1, 0, 3, 0}, {1, 0, 5, 1}} {
		if _, err := AppendRaw(nil, bad); !errors.Is(err, ErrBadLength) {
			t.Errorf("AppendRaw(%x): %v", bad, err)
		}
	}
}

func TestEncapsulation(t *testing.T) {
	b, err := AppendEncapsulated(nil, 2, []byte{0xAB}, []byte{2, 0x16})
	if err != nil || !bytes.Equal(b, []byte{4, 0xFE, 2, 0xAB, 2, 0x16}) {
		t.Fatalf("%x, %v", b, err)
	}
	r, node, msg, err := DecodeEncapsulated(b)
	if err != nil || r != 2 || !bytes.Equal(node, []byte{0xAB}) || !bytes.Equal(msg, []byte{2, 0x16}) {
		t.Fatalf("%d %x %x %v", r, node, msg, err)
	}
	for _, bad := range [][]byte{{4, 0xFE, 0, 1}, {3, 0xFE, 0, 2, 0x16}, {4, 0xFD, 0, 1, 2, 0x16}, {4, 0xFE, 0x80, 1, 2, 0x16}, {9, 0xFE, 0, 1}} {
		if _, _, _, err := DecodeEncapsulated(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeEncapsulated(%x): %v", bad, err)
		}
	}
	if _, err := AppendEncapsulated(nil, 4, []byte{1}, []byte{2, 0x16}); !errors.Is(err, ErrMalformed) {
		t.Errorf("radius 4: %v", err)
	}
}

func TestCodecAllocations(t *testing.T) {
	rx := BridgeFrame{Type: BridgeRxData, RSSI: -80, SNR: 10, Node: []byte{1, 2}, Data: bytes.Repeat([]byte{0xC0}, 60)}
	buf := make([]byte, 0, 512)
	var bd BridgeDecoder
	wire, _ := AppendBridge(nil, &rx)
	feed(&bd, wire) // grow the decoder's buffer once
	if n := testing.AllocsPerRun(100, func() {
		w, _ := AppendBridge(buf[:0], &rx)
		body, _, _ := bd.Next(w)
		if _, err := DecodeBridge(body); err != nil {
			panic(err)
		}
	}); n != 0 {
		t.Errorf("bridge encode+decode: %v allocations", n)
	}
	tx := XBeeFrame{Type: XBeeTransmitRequest, FrameID: 1, Addr64: 0x0013A200400A0127, Addr16: XBeeUnknown16, Data: bytes.Repeat([]byte{0x7E}, 60)}
	xd := XBeeDecoder{Escaped: true}
	wire, _ = AppendXBee(nil, &tx, true)
	feed(&xd, wire)
	if n := testing.AllocsPerRun(100, func() {
		w, _ := AppendXBee(buf[:0], &tx, true)
		data, _, _ := xd.Next(w)
		if _, err := DecodeXBee(data); err != nil {
			panic(err)
		}
	}); n != 0 {
		t.Errorf("xbee encode+decode: %v allocations", n)
	}
}

func BenchmarkBridgeDecode(b *testing.B) {
	rx := BridgeFrame{Type: BridgeRxData, RSSI: -80, SNR: 10, Node: []byte{1, 2}, Data: bytes.Repeat([]byte{0x41}, 60)}
	wire, _ := AppendBridge(nil, &rx)
	var d BridgeDecoder
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		body, _, _ := d.Next(wire)
		if _, err := DecodeBridge(body); err != nil {
			b.Fatal(err)
		}
	}
	reportFrames(b)
}

func BenchmarkXBeeDecode(b *testing.B) {
	rx := XBeeFrame{Type: XBeeReceivePacket, Addr64: 0x0013A20040522BAA, Addr16: 0x7D84, Data: bytes.Repeat([]byte{0x41}, 60)}
	wire, _ := AppendXBee(nil, &rx, true)
	d := XBeeDecoder{Escaped: true}
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		data, _, _ := d.Next(wire)
		if _, err := DecodeXBee(data); err != nil {
			b.Fatal(err)
		}
	}
	reportFrames(b)
}

// BRIDGE-PROTOCOL.md §2.1: the CRC over content and CRC is zero.
func TestCRC16Residue(t *testing.T) {
	for _, s := range []string{"", "123456789", "\x81\xff\xa9"} {
		c := CRC16([]byte(s))
		if r := CRC16(append([]byte(s), byte(c>>8), byte(c))); r != 0 {
			t.Errorf("%q: residue 0x%04x", s, r)
		}
	}
}
