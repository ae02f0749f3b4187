package serialbus

import (
	"encoding/binary"
	"fmt"
)

// The raw framing carries bare MQTT-SN packets back to back, delimited by the
// packet's own Length field (MQTT-SN 1.2 §5.2.1): one octet holding the total
// length (2-255), or 0x01 followed by the total length in two octets.

// DefaultRawMax is the largest packet a zero RawDecoder.Max allows.
const DefaultRawMax = 0xFFFF

// RawDecoder splits a byte stream into MQTT-SN packets by their Length field.
// A Length of 0, a 3-octet Length below 4 (ErrBadLength) or a Length above
// Max (ErrFrameTooLong) is reported before anything is buffered, and the next
// byte after the false Length octet is taken as a Length (for a 3-octet
// Length, the two octets after 0x01 are looked at again). A line with one
// device goes quiet between packets, so whoever feeds the decoder calls Reset
// after an idle gap: that drops a packet cut short and resynchronises on the
// next Length. Link does so after Options.IdleGap.
//
// The zero value is ready to use.
type RawDecoder struct {
	// Max is the largest packet accepted (Length field included); zero
	// means DefaultRawMax.
	Max int

	state   rawState
	hdr     [2]byte
	want    int
	buf     []byte
	replay  [2]byte
	nreplay int
}

type rawState uint8

const (
	rawLength rawState = iota
	rawLong1
	rawLong2
	rawBody
)

// Next works as SLIPDecoder.Next and returns whole MQTT-SN packets, Length
// field included.
func (d *RawDecoder) Next(p []byte) (pkt []byte, n int, err error) {
	for d.nreplay > 0 {
		b := d.replay[0]
		d.replay[0] = d.replay[1]
		d.nreplay--
		if pkt, err = d.step(b); pkt != nil || err != nil {
			return pkt, 0, err
		}
	}
	for i, b := range p {
		if pkt, err = d.step(b); pkt != nil || err != nil {
			return pkt, i + 1, err
		}
	}
	return nil, len(p), nil
}

func (d *RawDecoder) max() int {
	if d.Max <= 0 || d.Max > DefaultRawMax {
		return DefaultRawMax
	}
	return d.Max
}

func (d *RawDecoder) step(b byte) ([]byte, error) {
	switch d.state {
	case rawLength:
		switch {
		case b == 0:
			return nil, fmt.Errorf("%w: MQTT-SN Length 0", ErrBadLength)
		case b == 1:
			d.state = rawLong1
			return nil, nil
		case int(b) > d.max():
			return nil, fmt.Errorf("%w: MQTT-SN Length %d, maximum %d", ErrFrameTooLong, b, d.max())
		}
		d.want = int(b)
		d.buf = append(d.buf[:0], b)
		d.state = rawBody
	case rawLong1:
		d.hdr[0] = b
		d.state = rawLong2
	case rawLong2:
		d.hdr[1] = b
		d.want = int(binary.BigEndian.Uint16(d.hdr[:]))
		if d.want < 4 || d.want > d.max() {
			d.state = rawLength
			d.replay, d.nreplay = d.hdr, 2
			if d.want < 4 {
				return nil, fmt.Errorf("%w: MQTT-SN 3-octet Length %d", ErrBadLength, d.want)
			}
			return nil, fmt.Errorf("%w: MQTT-SN Length %d, maximum %d", ErrFrameTooLong, d.want, d.max())
		}
		d.buf = append(d.buf[:0], 1, d.hdr[0], d.hdr[1])
		d.state = rawBody
	case rawBody:
		d.buf = append(d.buf, b)
	}
	if d.state == rawBody && len(d.buf) == d.want {
		d.state = rawLength
		return d.buf, nil
	}
	return nil, nil
}

// Reset drops a partly received packet; the next byte is a Length field.
func (d *RawDecoder) Reset() { d.state, d.nreplay = rawLength, 0 }

// AppendRaw appends the MQTT-SN packet pkt to dst for the raw framing, after
// checking that its Length field gives its length.
func AppendRaw(dst, pkt []byte) ([]byte, error) {
	if err := checkRaw(pkt); err != nil {
		return dst, err
	}
	return append(dst, pkt...), nil
}

func checkRaw(pkt []byte) error {
	switch {
	case len(pkt) >= 4 && pkt[0] == 1 && int(binary.BigEndian.Uint16(pkt[1:])) == len(pkt):
		return nil
	case len(pkt) >= 2 && len(pkt) <= 255 && int(pkt[0]) == len(pkt):
		return nil
	}
	return fmt.Errorf("%w: the Length field of a %d-byte MQTT-SN packet does not give its length", ErrBadLength, len(pkt))
}
