package serialbus

import (
	"reflect"
	"testing"
)

// cutAt splits p at points chosen by cuts: each byte moves the next cut
// forward by its value plus one.
func cutAt(p, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		n := int(c) + 1
		if n >= len(p) {
			break
		}
		out = append(out, p[:n])
		p = p[n:]
	}
	return append(out, p)
}

// sameEvents fails t unless whole and chunked decoding reported the same.
func sameEvents(t *testing.T, whole, chunked []event) {
	t.Helper()
	if len(whole) != len(chunked) {
		t.Fatalf("whole input gave %d events %v, chunked %d %v", len(whole), whole, len(chunked), chunked)
	}
	for i := range whole {
		w, c := whole[i], chunked[i]
		if !equalBytes(w.frame, c.frame) || (w.err == nil) != (c.err == nil) || w.err != nil && w.err.Error() != c.err.Error() {
			t.Fatalf("event %d: whole %v, chunked %v", i, w, c)
		}
	}
}

func FuzzBridgeDecoder(f *testing.F) {
	for _, fx := range loadFixtures(f, "bridge") {
		f.Add(fx.data, []byte{2, 5, 0, 9}, uint16(fx.max))
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte, max uint16) {
		whole := feed(&BridgeDecoder{Max: int(max)}, data)
		sameEvents(t, whole, feed(&BridgeDecoder{Max: int(max)}, cutAt(data, cuts)...))
		for _, e := range whole {
			if e.frame == nil {
				continue
			}
			fr, err := DecodeBridge(e.frame)
			if err != nil {
				continue
			}
			wire, err := AppendBridge(nil, &fr)
			if err != nil {
				t.Fatalf("AppendBridge of decoded %x: %v", e.frame, err)
			}
			again := feed(&BridgeDecoder{Max: int(max)}, wire)
			if len(again) != 1 || again[0].err != nil {
				t.Fatalf("re-encoded %x decodes to %v", wire, again)
			}
			fr2, err := DecodeBridge(again[0].frame)
			if err != nil || !reflect.DeepEqual(normBridge(fr), normBridge(fr2)) {
				t.Fatalf("round trip of %x: %+v, then %+v, %v", e.frame, fr, fr2, err)
			}
			// A version 1 frame has one encoding.
			if fr.Type != BridgeStatus || fr.Info.Version == 1 {
				if !equalBytes(again[0].frame, e.frame) {
					t.Fatalf("re-encoded body %x, decoded from %x", again[0].frame, e.frame)
				}
			}
		}
	})
}

// normBridge makes empty and nil slices compare equal.
func normBridge(f BridgeFrame) BridgeFrame {
	if len(f.Node) == 0 {
		f.Node = nil
	}
	if len(f.Data) == 0 {
		f.Data = nil
	}
	return f
}

func FuzzBridgeEncode(f *testing.F) {
	f.Add(byte(BridgeRxData), byte(1), int16(-87), int8(25), byte(0), []byte{1, 2}, []byte{2, 0x16}, false, byte(0), "fw")
	f.Add(byte(BridgeTxData), byte(0xC0), int16(0), int8(0), byte(1), []byte{0xDB, 0xC0}, []byte{0xC0, 0xDB}, false, byte(0), "")
	f.Add(byte(BridgeTxStatus), byte(2), int16(0), int8(0), byte(0), []byte(nil), []byte(nil), true, byte(2), "")
	f.Add(byte(BridgeStatus), byte(0), int16(0), int8(0), byte(0), []byte(nil), []byte(nil), false, byte(0), "outpost-bridge 0.1.0")
	f.Fuzz(func(t *testing.T, typ, id byte, rssi int16, snr int8, radius byte, node, data []byte, failed bool, reason byte, fw string) {
		in := BridgeFrame{Type: BridgeType(typ), FrameID: id, RSSI: rssi, SNR: snr, Radius: radius, Node: node, Data: data,
			Failed: failed, Reason: BridgeReason(reason),
			Info: BridgeInfo{Version: 1, MaxDatagram: uint16(rssi), FrequencyHz: uint32(len(data)) * 1000003, BandwidthHz: 125000,
				SpreadingFactor: id, CodingRate: radius, TxPowerDBm: snr, Firmware: fw}}
		wire, err := AppendBridge(nil, &in)
		if err != nil {
			return
		}
		evs := feed(&BridgeDecoder{Max: len(wire)}, wire)
		if len(evs) != 1 || evs[0].err != nil {
			t.Fatalf("encoded %+v as %x, decodes to %v", in, wire, evs)
		}
		out, err := DecodeBridge(evs[0].frame)
		if err != nil {
			t.Fatalf("encoded %+v as %x: %v", in, wire, err)
		}
		// Fields a type does not carry stay zero.
		want := BridgeFrame{Type: in.Type}
		switch in.Type {
		case BridgeTxData:
			want.FrameID, want.Radius, want.Node, want.Data = in.FrameID, in.Radius, in.Node, in.Data
		case BridgeRxData:
			want.RSSI, want.SNR, want.Radius, want.Node, want.Data = in.RSSI, in.SNR, in.Radius, in.Node, in.Data
		case BridgeTxStatus:
			want.FrameID, want.Failed, want.Reason = in.FrameID, in.Failed, in.Reason
		case BridgeStatus:
			want.Info = in.Info
		}
		if !reflect.DeepEqual(normBridge(out), normBridge(want)) {
			t.Fatalf("encoded %+v, decoded %+v", want, out)
		}
	})
}

func FuzzXBeeDecoder(f *testing.F) {
	for _, fx := range loadFixtures(f, "xbee") {
		f.Add(fx.data, []byte{1, 4, 0, 7}, uint16(fx.max), fx.mode == "api2")
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte, max uint16, escaped bool) {
		whole := feed(&XBeeDecoder{Escaped: escaped, Max: int(max)}, data)
		d := &XBeeDecoder{Escaped: escaped, Max: int(max)}
		sameEvents(t, whole, feed(d, cutAt(data, cuts)...))
		whole2 := &XBeeDecoder{Escaped: escaped, Max: int(max)}
		feed(whole2, data)
		if whole2.Skipped() != d.Skipped() {
			t.Fatalf("skipped %d bytes whole, %d chunked", whole2.Skipped(), d.Skipped())
		}
		for _, e := range whole {
			if e.frame == nil {
				continue
			}
			wire, err := AppendXBeeAPI(nil, e.frame, escaped)
			if err != nil {
				t.Fatalf("AppendXBeeAPI(%x): %v", e.frame, err)
			}
			again := feed(&XBeeDecoder{Escaped: escaped, Max: int(max)}, wire)
			if len(again) != 1 || !equalBytes(again[0].frame, e.frame) {
				t.Fatalf("frame data %x re-encoded as %x decodes to %v", e.frame, wire, again)
			}
			fr, err := DecodeXBee(e.frame)
			if err != nil {
				continue
			}
			typed, err := AppendXBee(nil, &fr, escaped)
			if err != nil || !equalBytes(typed, wire) {
				t.Fatalf("AppendXBee(%+v) = %x, %v; want %x", fr, typed, err, wire)
			}
		}
	})
}

func FuzzXBeeEncode(f *testing.F) {
	f.Add(byte(XBeeTransmitRequest), byte(1), uint64(0x0013A200400A0127), uint16(0xFFFE), byte(0), byte(0), []byte("TxData0A"), false)
	f.Add(byte(XBeeReceivePacket), byte(0), uint64(0x0013A20040522BAA), uint16(0x7D84), byte(0x7E), byte(0x11), []byte{0x7D, 0x13}, true)
	f.Add(byte(XBeeATResponse), byte(3), uint64(0), uint16(0x4E50), byte(0), byte(0), []byte{0, 0x54}, true)
	f.Fuzz(func(t *testing.T, typ, id byte, a64 uint64, a16 uint16, b1, b2 byte, data []byte, escaped bool) {
		in := XBeeFrame{Type: XBeeType(typ), FrameID: id, Addr64: a64, Addr16: a16, Radius: b1, Options: b2, RSSI: b1,
			Command: [2]byte{byte(a16 >> 8), byte(a16)}, Status: b2, Retries: b1, Discovery: id, Data: data}
		wire, err := AppendXBee(nil, &in, escaped)
		if err != nil {
			return
		}
		evs := feed(&XBeeDecoder{Escaped: escaped}, wire)
		if len(evs) != 1 || evs[0].err != nil {
			t.Fatalf("encoded %+v as %x, decodes to %v", in, wire, evs)
		}
		out, err := DecodeXBee(evs[0].frame)
		if err != nil {
			t.Fatalf("encoded %+v as %x: %v", in, wire, err)
		}
		again, err := AppendXBee(nil, &out, escaped)
		if err != nil || !equalBytes(again, wire) {
			t.Fatalf("decoded %+v re-encodes as %x, %v; want %x", out, again, err, wire)
		}
		if !equalBytes(out.Data, in.Data) {
			t.Fatalf("data %x, want %x", out.Data, in.Data)
		}
	})
}

func FuzzRawDecoder(f *testing.F) {
	for _, fx := range loadFixtures(f, "raw") {
		f.Add(fx.data, []byte{0, 3, 1}, uint16(fx.max))
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte, max uint16) {
		whole := feed(&RawDecoder{Max: int(max)}, data)
		sameEvents(t, whole, feed(&RawDecoder{Max: int(max)}, cutAt(data, cuts)...))
		var stream []byte
		var frames int
		for _, e := range whole {
			if e.frame == nil {
				continue
			}
			out, err := AppendRaw(nil, e.frame)
			if err != nil || !equalBytes(out, e.frame) {
				t.Fatalf("AppendRaw(%x) = %x, %v", e.frame, out, err)
			}
			if max != 0 && len(e.frame) > int(max) {
				t.Fatalf("packet of %d bytes passed a maximum of %d", len(e.frame), max)
			}
			stream = append(stream, out...)
			frames++
		}
		// The packets back to back, without the garbage, decode cleanly.
		again := feed(&RawDecoder{Max: int(max)}, stream)
		if len(again) != frames {
			t.Fatalf("%d packets re-encoded decode to %v", frames, again)
		}
		for _, e := range again {
			if e.err != nil {
				t.Fatalf("clean stream %x: %v", stream, e.err)
			}
		}
	})
}

func FuzzSLIP(f *testing.F) {
	f.Add([]byte{0xC0, 0xDB, 0xDC, 0xDD, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		wire := AppendSLIP(nil, p)
		evs := feed(&SLIPDecoder{Max: len(p)}, wire, wire)
		want := 2
		if len(p) == 0 {
			want = 0
		}
		if len(evs) != want {
			t.Fatalf("%x framed as %x decodes to %v", p, wire, evs)
		}
		for _, e := range evs {
			if !equalBytes(e.frame, p) {
				t.Fatalf("%x framed as %x decodes to %v", p, wire, evs)
			}
		}
	})
}
