package serialbus

import (
	"encoding/binary"
	"fmt"
)

// Digi XBee API frames:
//
//	0x7E | length (2, big-endian) | frame data (length bytes) | checksum (1)
//
// The frame data starts with the API frame type; the checksum is 0xFF minus
// the 8-bit sum of the frame data. In API mode 2 (AP=2) every byte after the
// start delimiter that is 0x7E, 0x7D, 0x11 or 0x13 is sent as 0x7D followed by
// the byte XOR 0x20; the length and checksum are of the unescaped bytes.
const (
	xbeeStart = 0x7E
	xbeeEsc   = 0x7D
	xbeeXON   = 0x11
	xbeeXOFF  = 0x13
	xbeeXOR   = 0x20
)

func xbeeNeedsEscape(b byte) bool {
	return b == xbeeStart || b == xbeeEsc || b == xbeeXON || b == xbeeXOFF
}

// XBeeType is the API frame type, the first byte of the frame data.
type XBeeType byte

// XBee API frame types that this package decodes and encodes.
const (
	XBeeTX64            XBeeType = 0x00 // 802.15.4 legacy: TX request, 64-bit address
	XBeeTX16            XBeeType = 0x01 // 802.15.4 legacy: TX request, 16-bit address
	XBeeATCommand       XBeeType = 0x08
	XBeeTransmitRequest XBeeType = 0x10
	XBeeRX64            XBeeType = 0x80 // 802.15.4 legacy: RX packet, 64-bit address
	XBeeRX16            XBeeType = 0x81 // 802.15.4 legacy: RX packet, 16-bit address
	XBeeATResponse      XBeeType = 0x88
	XBeeTXStatus        XBeeType = 0x89 // 802.15.4 legacy: TX status
	XBeeModemStatus     XBeeType = 0x8A
	XBeeTransmitStatus  XBeeType = 0x8B
	XBeeReceivePacket   XBeeType = 0x90
)

func (t XBeeType) String() string {
	switch t {
	case XBeeTX64:
		return "TX64"
	case XBeeTX16:
		return "TX16"
	case XBeeATCommand:
		return "AT"
	case XBeeTransmitRequest:
		return "TRANSMIT_REQUEST"
	case XBeeRX64:
		return "RX64"
	case XBeeRX16:
		return "RX16"
	case XBeeATResponse:
		return "AT_RESPONSE"
	case XBeeTXStatus:
		return "TX_STATUS"
	case XBeeModemStatus:
		return "MODEM_STATUS"
	case XBeeTransmitStatus:
		return "TRANSMIT_STATUS"
	case XBeeReceivePacket:
		return "RECEIVE_PACKET"
	}
	return fmt.Sprintf("0x%02x", byte(t))
}

// XBee addresses with a meaning of their own.
const (
	XBeeBroadcast64 uint64 = 0x000000000000FFFF
	XBeeUnknown16   uint16 = 0xFFFE // "use the 64-bit address" in a 0x10 frame
	XBeeBroadcast16 uint16 = 0xFFFF
)

// XBeeFrame is one decoded API frame. Which fields are used depends on Type:
//
//	TX64 0x00              FrameID, Addr64 (destination), Options, Data
//	TX16 0x01              FrameID, Addr16 (destination), Options, Data
//	AT 0x08                FrameID, Command, Data (parameter; empty for a query)
//	TRANSMIT_REQUEST 0x10  FrameID, Addr64, Addr16 (0xFFFE), Radius, Options, Data
//	RX64 0x80              Addr64 (source), RSSI, Options, Data
//	RX16 0x81              Addr16 (source), RSSI, Options, Data
//	AT_RESPONSE 0x88       FrameID, Command, Status, Data (value)
//	TX_STATUS 0x89         FrameID, Status
//	MODEM_STATUS 0x8A      Status
//	TRANSMIT_STATUS 0x8B   FrameID, Addr16, Retries, Status (delivery), Discovery
//	RECEIVE_PACKET 0x90    Addr64 (source), Addr16 (source), Options, Data
//
// After DecodeXBee, Data aliases the decoded bytes.
type XBeeFrame struct {
	Type      XBeeType
	FrameID   byte
	Addr64    uint64
	Addr16    uint16
	Radius    byte
	Options   byte
	RSSI      byte // -dBm
	Command   [2]byte
	Status    byte
	Retries   byte
	Discovery byte
	Data      []byte
}

// xbeeLayout gives the fixed part of each type's frame data (type byte
// included) and whether a variable part (Data) follows.
func xbeeLayout(t XBeeType) (fixed int, variable, ok bool) {
	switch t {
	case XBeeTX64:
		return 11, true, true
	case XBeeTX16:
		return 5, true, true
	case XBeeATCommand:
		return 4, true, true
	case XBeeTransmitRequest:
		return 14, true, true
	case XBeeRX64:
		return 11, true, true
	case XBeeRX16:
		return 5, true, true
	case XBeeATResponse:
		return 5, true, true
	case XBeeTXStatus:
		return 3, false, true
	case XBeeModemStatus:
		return 2, false, true
	case XBeeTransmitStatus:
		return 7, false, true
	case XBeeReceivePacket:
		return 12, true, true
	}
	return 0, false, false
}

// DecodeXBee decodes the frame data of an API frame (as XBeeDecoder yields
// it: type byte first, no checksum). Lengths must fit the type's layout; a
// type it does not know is ErrUnknownType.
func DecodeXBee(data []byte) (XBeeFrame, error) {
	var f XBeeFrame
	if len(data) == 0 {
		return f, fmt.Errorf("%w: empty XBee frame data", ErrMalformed)
	}
	f.Type = XBeeType(data[0])
	fixed, variable, ok := xbeeLayout(f.Type)
	switch {
	case !ok:
		return XBeeFrame{}, fmt.Errorf("%w: XBee API frame type %v", ErrUnknownType, f.Type)
	case len(data) < fixed || !variable && len(data) != fixed:
		return XBeeFrame{}, fmt.Errorf("%w: XBee %v frame data of %d bytes", ErrMalformed, f.Type, len(data))
	}
	p := data[1:]
	be := binary.BigEndian
	switch f.Type {
	case XBeeTX64:
		f.FrameID, f.Addr64, f.Options = p[0], be.Uint64(p[1:]), p[9]
	case XBeeTX16:
		f.FrameID, f.Addr16, f.Options = p[0], be.Uint16(p[1:]), p[3]
	case XBeeATCommand:
		f.FrameID, f.Command = p[0], [2]byte{p[1], p[2]}
	case XBeeTransmitRequest:
		f.FrameID, f.Addr64, f.Addr16, f.Radius, f.Options = p[0], be.Uint64(p[1:]), be.Uint16(p[9:]), p[11], p[12]
	case XBeeRX64:
		f.Addr64, f.RSSI, f.Options = be.Uint64(p), p[8], p[9]
	case XBeeRX16:
		f.Addr16, f.RSSI, f.Options = be.Uint16(p), p[2], p[3]
	case XBeeATResponse:
		f.FrameID, f.Command, f.Status = p[0], [2]byte{p[1], p[2]}, p[3]
	case XBeeTXStatus:
		f.FrameID, f.Status = p[0], p[1]
	case XBeeModemStatus:
		f.Status = p[0]
	case XBeeTransmitStatus:
		f.FrameID, f.Addr16, f.Retries, f.Status, f.Discovery = p[0], be.Uint16(p[1:]), p[3], p[4], p[5]
	case XBeeReceivePacket:
		f.Addr64, f.Addr16, f.Options = be.Uint64(p), be.Uint16(p[8:]), p[10]
	}
	if variable {
		f.Data = data[fixed:]
	}
	return f, nil
}

// MaxXBeeLength is the largest frame data length the 16-bit length field
// carries.
const MaxXBeeLength = 0xFFFF

// AppendXBee appends f to dst as an API frame on the wire: start delimiter,
// length, frame data and checksum, escaped for API mode 2 when escaped is
// true.
func AppendXBee(dst []byte, f *XBeeFrame, escaped bool) ([]byte, error) {
	fixed, variable, ok := xbeeLayout(f.Type)
	switch {
	case !ok:
		return dst, fmt.Errorf("%w: XBee API frame type %v", ErrUnknownType, f.Type)
	case !variable && len(f.Data) != 0:
		return dst, fmt.Errorf("%w: XBee %v frame has no data field", ErrMalformed, f.Type)
	case fixed+len(f.Data) > MaxXBeeLength:
		return dst, fmt.Errorf("%w: XBee frame data of %d bytes", ErrFrameTooLong, fixed+len(f.Data))
	}
	w := xbeeWriter{esc: escaped}
	w.begin(dst, fixed+len(f.Data))
	w.put(byte(f.Type))
	switch f.Type {
	case XBeeTX64:
		w.put(f.FrameID)
		w.put64(f.Addr64)
		w.put(f.Options)
	case XBeeTX16:
		w.put(f.FrameID)
		w.put16(f.Addr16)
		w.put(f.Options)
	case XBeeATCommand:
		w.put(f.FrameID, f.Command[0], f.Command[1])
	case XBeeTransmitRequest:
		w.put(f.FrameID)
		w.put64(f.Addr64)
		w.put16(f.Addr16)
		w.put(f.Radius, f.Options)
	case XBeeRX64:
		w.put64(f.Addr64)
		w.put(f.RSSI, f.Options)
	case XBeeRX16:
		w.put16(f.Addr16)
		w.put(f.RSSI, f.Options)
	case XBeeATResponse:
		w.put(f.FrameID, f.Command[0], f.Command[1], f.Status)
	case XBeeTXStatus:
		w.put(f.FrameID, f.Status)
	case XBeeModemStatus:
		w.put(f.Status)
	case XBeeTransmitStatus:
		w.put(f.FrameID)
		w.put16(f.Addr16)
		w.put(f.Retries, f.Status, f.Discovery)
	case XBeeReceivePacket:
		w.put64(f.Addr64)
		w.put16(f.Addr16)
		w.put(f.Options)
	}
	w.put(f.Data...)
	return w.end(), nil
}

// AppendXBeeAPI appends any frame data (type byte first) to dst as an API
// frame on the wire, escaped for API mode 2 when escaped is true.
func AppendXBeeAPI(dst, data []byte, escaped bool) ([]byte, error) {
	if len(data) == 0 || len(data) > MaxXBeeLength {
		return dst, fmt.Errorf("%w: XBee frame data of %d bytes", ErrBadLength, len(data))
	}
	w := xbeeWriter{esc: escaped}
	w.begin(dst, len(data))
	w.put(data...)
	return w.end(), nil
}

// xbeeWriter appends an API frame, escaping as it goes and summing the frame
// data for the checksum.
type xbeeWriter struct {
	dst []byte
	esc bool
	sum byte
}

func (w *xbeeWriter) begin(dst []byte, n int) {
	w.dst = append(dst, xbeeStart)
	w.raw(byte(n>>8), byte(n))
}

func (w *xbeeWriter) end() []byte {
	w.raw(0xFF - w.sum)
	return w.dst
}

// raw appends bytes that are not summed (length, checksum).
func (w *xbeeWriter) raw(p ...byte) {
	for _, b := range p {
		if w.esc && xbeeNeedsEscape(b) {
			w.dst = append(w.dst, xbeeEsc, b^xbeeXOR)
		} else {
			w.dst = append(w.dst, b)
		}
	}
}

func (w *xbeeWriter) put(p ...byte) {
	for _, b := range p {
		w.sum += b
	}
	w.raw(p...)
}

func (w *xbeeWriter) put16(v uint16) { w.put(byte(v>>8), byte(v)) }

func (w *xbeeWriter) put64(v uint64) {
	w.put(byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// XBeeDecoder splits a byte stream into XBee API frames and checks their
// checksums. Bytes outside a frame are skipped (counted by Skipped). A length
// of zero (ErrBadLength) or above Max (ErrFrameTooLong) is reported before
// anything is buffered, and the search for a start delimiter goes on right
// after the false one, so a frame that began inside the two length bytes is
// still found. A bad checksum is ErrChecksum. In API mode 2 a 0x7E inside a
// frame always starts a new frame (the cut one is ErrTruncated), and 0x7D
// followed by a byte that is not an escape of 0x7E, 0x7D, 0x11 or 0x13 is
// ErrBadEscape.
//
// The zero value decodes API mode 1 frames of any length.
type XBeeDecoder struct {
	// Escaped selects API mode 2 (AP=2).
	Escaped bool
	// Max is the largest frame data length accepted; zero means
	// MaxXBeeLength.
	Max int

	state   xbeeState
	esc     bool
	length  int
	hdr     [2]byte
	buf     []byte
	sum     byte
	replay  [2]byte
	nreplay int
	skipped uint64
}

type xbeeState uint8

const (
	xbeeHunt xbeeState = iota
	xbeeLen1
	xbeeLen2
	xbeeData
	xbeeSum
)

// Next works as SLIPDecoder.Next and returns the frame data (type byte
// first, checksum stripped) of a frame whose checksum matched, for
// DecodeXBee.
func (d *XBeeDecoder) Next(p []byte) (data []byte, n int, err error) {
	for d.nreplay > 0 {
		b := d.replay[0]
		d.replay[0] = d.replay[1]
		d.nreplay--
		if data, err = d.step(b, b == xbeeStart); data != nil || err != nil {
			return data, 0, err
		}
	}
	for i, b := range p {
		raw := false
		if d.Escaped {
			if b == xbeeStart {
				raw = true // a start delimiter wherever it appears
			} else if d.esc {
				d.esc = false
				b ^= xbeeXOR
				if !xbeeNeedsEscape(b) && d.state != xbeeHunt {
					d.state = xbeeHunt
					return nil, i + 1, ErrBadEscape
				}
			} else if b == xbeeEsc {
				d.esc = true
				continue
			}
		} else {
			raw = b == xbeeStart
		}
		if data, err = d.step(b, raw); data != nil || err != nil {
			return data, i + 1, err
		}
	}
	return nil, len(p), nil
}

// step takes one unescaped byte; raw is set for an unescaped start delimiter.
func (d *XBeeDecoder) step(b byte, raw bool) ([]byte, error) {
	if raw && d.Escaped {
		cut := d.state != xbeeHunt
		d.state, d.esc = xbeeLen1, false
		if cut {
			return nil, ErrTruncated
		}
		return nil, nil
	}
	switch d.state {
	case xbeeHunt:
		if raw {
			d.state = xbeeLen1
		} else {
			d.skipped++
		}
	case xbeeLen1:
		d.hdr[0] = b
		d.state = xbeeLen2
	case xbeeLen2:
		d.hdr[1] = b
		d.length = int(d.hdr[0])<<8 | int(b)
		max := d.Max
		if max <= 0 || max > MaxXBeeLength {
			max = MaxXBeeLength
		}
		if d.length == 0 || d.length > max {
			d.state = xbeeHunt
			if !d.Escaped {
				// API 1: the start delimiter was false; a real one may
				// be among the length bytes.
				d.replay, d.nreplay = d.hdr, 2
			}
			if d.length == 0 {
				return nil, ErrBadLength
			}
			return nil, fmt.Errorf("%w: XBee length %d, maximum %d", ErrFrameTooLong, d.length, max)
		}
		d.buf, d.sum, d.state = d.buf[:0], 0, xbeeData
	case xbeeData:
		d.buf = append(d.buf, b)
		d.sum += b
		if len(d.buf) == d.length {
			d.state = xbeeSum
		}
	case xbeeSum:
		d.state = xbeeHunt
		if d.sum+b != 0xFF {
			return nil, fmt.Errorf("%w: XBee checksum 0x%02x, want 0x%02x", ErrChecksum, b, 0xFF-d.sum)
		}
		return d.buf, nil
	}
	return nil, nil
}

// Reset drops a partly received frame.
func (d *XBeeDecoder) Reset() {
	d.state, d.esc, d.nreplay = xbeeHunt, false, 0
}

// Skipped returns the number of bytes skipped outside frames so far.
func (d *XBeeDecoder) Skipped() uint64 { return d.skipped }
