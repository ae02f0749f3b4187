package serialbus

import (
	"encoding/binary"
	"fmt"
)

// The bridge framing is Outpost's own protocol between the gateway (host)
// and a radio bridge board; BRIDGE-PROTOCOL.md specifies it. On the wire
// each frame is one SLIP frame (RFC 1055) whose content is
//
//	type (1) | payload | CRC-16 (2, big-endian)
//
// with the CRC-16/CCITT-FALSE of type and payload (see CRC16).

// BridgeType is the first byte of a bridge frame. Types with the high bit set
// go from the board to the host.
type BridgeType byte

// Bridge frame types.
const (
	BridgeTxData        BridgeType = 0x01 // host → board: send a datagram on air
	BridgeStatusRequest BridgeType = 0x02 // host → board: answer with STATUS
	BridgeRxData        BridgeType = 0x81 // board → host: a datagram received on air
	BridgeTxStatus      BridgeType = 0x82 // board → host: outcome of a TX_DATA
	BridgeStatus        BridgeType = 0x83 // board → host: firmware and radio settings
)

func (t BridgeType) String() string {
	switch t {
	case BridgeTxData:
		return "TX_DATA"
	case BridgeStatusRequest:
		return "STATUS_REQUEST"
	case BridgeRxData:
		return "RX_DATA"
	case BridgeTxStatus:
		return "TX_STATUS"
	case BridgeStatus:
		return "STATUS"
	}
	return fmt.Sprintf("0x%02x", byte(t))
}

// BridgeReason tells why a board could not send a TX_DATA frame.
type BridgeReason byte

// Reasons of a failed TX_STATUS. Receivers treat a value they do not know as
// BridgeReasonOther.
const (
	BridgeReasonNone        BridgeReason = 0x00 // sent (only with Failed false)
	BridgeReasonChannelBusy BridgeReason = 0x01 // listen-before-talk or CAD found the channel busy
	BridgeReasonDutyCycle   BridgeReason = 0x02 // the board's own duty-cycle budget is used up
	BridgeReasonTooLong     BridgeReason = 0x03 // too long for the radio's current settings
	BridgeReasonNoAck       BridgeReason = 0x04 // the node did not acknowledge (link-layer acks)
	BridgeReasonQueueFull   BridgeReason = 0x05 // the board's transmit queue was full
	BridgeReasonRadioError  BridgeReason = 0x06 // the radio failed or timed out
	BridgeReasonBadFrame    BridgeReason = 0x07 // the board could not use the TX_DATA frame
	BridgeReasonOther       BridgeReason = 0xFF
)

// Sentinels of an RX_DATA frame for a board that cannot measure.
const (
	RSSIUnknown int16 = -32768 // 0x8000
	SNRUnknown  int8  = -128   // 0x80
)

// BridgeMaxNode is the longest wireless node id the bridge framing carries.
// A node id of 0xFF bytes only is the broadcast address; the host sends
// broadcasts to FF FF.
const BridgeMaxNode = 8

// BridgeBroadcast is the node id the host sends broadcasts to.
var BridgeBroadcast = []byte{0xFF, 0xFF}

// BridgeProtocolVersion is the version of BRIDGE-PROTOCOL.md this package
// implements; a board reports its own in STATUS.
const BridgeProtocolVersion = 1

// BridgeInfo is the content of a STATUS frame.
type BridgeInfo struct {
	Version         byte   // protocol version the board implements, 1 or more
	MaxDatagram     uint16 // largest MQTT-SN message the board can send now; 0 unknown
	FrequencyHz     uint32
	BandwidthHz     uint32
	SpreadingFactor byte // 5-12 for LoRa, 0 when it does not apply
	CodingRate      byte // denominator n of 4/n (5-8), 0 when it does not apply
	TxPowerDBm      int8
	Firmware        string // printable ASCII, at most 255 bytes
}

// BridgeFrame is one decoded bridge frame. Which fields are used depends on
// Type:
//
//	TX_DATA         FrameID, Radius, Node, Data
//	STATUS_REQUEST  -
//	RX_DATA         RSSI, SNR, Radius, Node, Data
//	TX_STATUS       FrameID, Failed, Reason
//	STATUS          Info
//
// Node and Data are the wireless node id and the inner MQTT-SN message of
// the forwarder encapsulation (MQTT-SN 1.2 §5.5) that TX_DATA and RX_DATA
// carry. After DecodeBridge they alias the decoded bytes.
type BridgeFrame struct {
	Type    BridgeType
	FrameID byte  // 0 in TX_DATA: the host wants no TX_STATUS
	RSSI    int16 // dBm, or RSSIUnknown
	SNR     int8  // quarter dB, or SNRUnknown
	Radius  byte  // Ctrl radius bits of the encapsulation (0-3)
	Node    []byte
	Data    []byte
	Failed  bool
	Reason  BridgeReason
	Info    BridgeInfo
}

const (
	bridgeStatusFixed = 1 + 1 + 2 + 4 + 4 + 1 + 1 + 1 + 1 // type .. firmware length
	bridgeCRCLen      = 2
)

// DefaultBridgeMax is the largest frame (type, payload and CRC, unescaped) a
// zero BridgeDecoder.Max allows: a full STATUS, or data frames with inner
// messages of up to 1000 bytes.
const DefaultBridgeMax = 1024

// BridgeDecoder splits a byte stream into bridge frames: SLIP frames whose
// CRC it checks and strips. Bad CRCs (ErrChecksum) and frames shorter than a
// type and a CRC (ErrMalformed) are reported and skipped, as are the
// SLIPDecoder's errors. The zero value is ready to use.
type BridgeDecoder struct {
	// Max is the largest frame accepted (type, payload and CRC, unescaped);
	// zero means DefaultBridgeMax.
	Max int

	slip SLIPDecoder
}

// Next works as SLIPDecoder.Next and returns type and payload of a frame
// whose CRC matched, for DecodeBridge.
func (d *BridgeDecoder) Next(p []byte) (body []byte, n int, err error) {
	d.slip.Max = d.Max
	if d.slip.Max <= 0 {
		d.slip.Max = DefaultBridgeMax
	}
	f, n, err := d.slip.Next(p)
	if f == nil {
		return nil, n, err
	}
	if len(f) < 1+bridgeCRCLen {
		return nil, n, fmt.Errorf("%w: bridge frame of %d bytes", ErrMalformed, len(f))
	}
	body = f[:len(f)-bridgeCRCLen]
	if got, want := CRC16(body), binary.BigEndian.Uint16(f[len(body):]); got != want {
		return nil, n, fmt.Errorf("%w: bridge CRC 0x%04x, computed 0x%04x", ErrChecksum, want, got)
	}
	return body, n, nil
}

// Reset drops a partly received frame.
func (d *BridgeDecoder) Reset() { d.slip.Reset() }

// DecodeBridge decodes the type and payload of a bridge frame (a frame from
// BridgeDecoder, without its CRC). Node, Data and nothing else alias body.
// It is strict: lengths must match the type's layout exactly, reserved bits
// must be zero, and a type it does not know is ErrUnknownType.
func DecodeBridge(body []byte) (BridgeFrame, error) {
	var f BridgeFrame
	if len(body) == 0 {
		return f, fmt.Errorf("%w: empty bridge frame", ErrMalformed)
	}
	f.Type = BridgeType(body[0])
	p := body[1:]
	bad := func(format string, args ...any) (BridgeFrame, error) {
		return BridgeFrame{}, fmt.Errorf("%w: %v: "+format, append([]any{ErrMalformed, f.Type}, args...)...)
	}
	var err error
	switch f.Type {
	case BridgeTxData:
		if len(p) < 1 {
			return bad("no frame id")
		}
		f.FrameID = p[0]
		f.Radius, f.Node, f.Data, err = decodeEncap(p[1:], BridgeMaxNode)
	case BridgeStatusRequest:
		if len(p) != 0 {
			return bad("%d payload bytes, want none", len(p))
		}
	case BridgeRxData:
		if len(p) < 3 {
			return bad("no RSSI and SNR")
		}
		f.RSSI = int16(binary.BigEndian.Uint16(p))
		f.SNR = int8(p[2])
		f.Radius, f.Node, f.Data, err = decodeEncap(p[3:], BridgeMaxNode)
	case BridgeTxStatus:
		if len(p) != 3 {
			return bad("%d payload bytes, want 3", len(p))
		}
		f.FrameID, f.Reason = p[0], BridgeReason(p[2])
		switch {
		case p[1] > 1:
			return bad("result %d, want 0 (sent) or 1 (failed)", p[1])
		case p[1] == 0 && f.Reason != BridgeReasonNone:
			return bad("sent with reason %d", f.Reason)
		case p[1] == 1 && f.Reason == BridgeReasonNone:
			return bad("failed without a reason")
		}
		f.Failed = p[1] == 1
	case BridgeStatus:
		if len(body) < bridgeStatusFixed {
			return bad("%d bytes, want at least %d", len(body), bridgeStatusFixed)
		}
		in := &f.Info
		in.Version = p[0]
		in.MaxDatagram = binary.BigEndian.Uint16(p[1:])
		in.FrequencyHz = binary.BigEndian.Uint32(p[3:])
		in.BandwidthHz = binary.BigEndian.Uint32(p[7:])
		in.SpreadingFactor = p[11]
		in.CodingRate = p[12]
		in.TxPowerDBm = int8(p[13])
		fw := p[15:]
		switch n := int(p[14]); {
		case in.Version == 0:
			return bad("protocol version 0")
		case n > len(fw):
			return bad("firmware string of %d bytes in %d", n, len(fw))
		case n < len(fw) && in.Version == 1: // newer versions may append fields
			return bad("%d bytes after the firmware string", len(fw)-n)
		default:
			fw = fw[:n]
		}
		for _, c := range fw {
			if c < 0x20 || c > 0x7E {
				return bad("firmware string has byte 0x%02x", c)
			}
		}
		in.Firmware = string(fw)
	default:
		return BridgeFrame{}, fmt.Errorf("%w: bridge type %v", ErrUnknownType, f.Type)
	}
	if err != nil {
		return BridgeFrame{}, fmt.Errorf("%v: %w", f.Type, err)
	}
	return f, nil
}

// AppendBridge appends f to dst as it goes on the wire: a SLIP frame (with a
// leading END) of type, payload and CRC. It checks f as DecodeBridge would.
func AppendBridge(dst []byte, f *BridgeFrame) ([]byte, error) {
	w := bridgeWriter{dst: append(dst, slipEnd), crc: 0xFFFF}
	w.put(byte(f.Type))
	switch f.Type {
	case BridgeTxData, BridgeRxData:
		if err := checkEncap(f.Radius, f.Node, f.Data, BridgeMaxNode); err != nil {
			return dst, fmt.Errorf("%v: %w", f.Type, err)
		}
		if f.Type == BridgeTxData {
			w.put(f.FrameID)
		} else {
			w.put(byte(uint16(f.RSSI)>>8), byte(f.RSSI), byte(f.SNR))
		}
		w.put(byte(encapHeader+len(f.Node)), encapType, f.Radius)
		w.put(f.Node...)
		w.put(f.Data...)
	case BridgeStatusRequest:
	case BridgeTxStatus:
		result := byte(0)
		if f.Failed {
			result = 1
		}
		if f.Failed == (f.Reason == BridgeReasonNone) {
			return dst, fmt.Errorf("%w: TX_STATUS failed=%v with reason %d", ErrMalformed, f.Failed, f.Reason)
		}
		w.put(f.FrameID, result, byte(f.Reason))
	case BridgeStatus:
		in := &f.Info
		if in.Version == 0 || len(in.Firmware) > 255 {
			return dst, fmt.Errorf("%w: STATUS version %d, firmware of %d bytes", ErrMalformed, in.Version, len(in.Firmware))
		}
		for i := 0; i < len(in.Firmware); i++ {
			if c := in.Firmware[i]; c < 0x20 || c > 0x7E {
				return dst, fmt.Errorf("%w: STATUS firmware string has byte 0x%02x", ErrMalformed, c)
			}
		}
		w.put(in.Version, byte(in.MaxDatagram>>8), byte(in.MaxDatagram))
		w.put32(in.FrequencyHz)
		w.put32(in.BandwidthHz)
		w.put(in.SpreadingFactor, in.CodingRate, byte(in.TxPowerDBm), byte(len(in.Firmware)))
		for i := 0; i < len(in.Firmware); i++ {
			w.put(in.Firmware[i])
		}
	default:
		return dst, fmt.Errorf("%w: bridge type %v", ErrUnknownType, f.Type)
	}
	crc := w.crc
	w.put(byte(crc>>8), byte(crc))
	return append(w.dst, slipEnd), nil
}

// bridgeWriter appends SLIP-escaped bytes and keeps the CRC of what it wrote.
type bridgeWriter struct {
	dst []byte
	crc uint16
}

func (w *bridgeWriter) put(p ...byte) {
	w.crc = crc16Update(w.crc, p)
	w.dst = appendSLIPEscaped(w.dst, p)
}

func (w *bridgeWriter) put32(v uint32) {
	w.put(byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
