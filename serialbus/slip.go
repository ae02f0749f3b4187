package serialbus

// SLIP framing (RFC 1055): a frame ends with END; END and ESC inside a frame
// are sent as two-byte escapes.
const (
	slipEnd    = 0xC0
	slipEsc    = 0xDB
	slipEscEnd = 0xDC
	slipEscEsc = 0xDD
)

// DefaultSLIPMax is the largest unescaped SLIP frame a zero SLIPDecoder.Max
// allows.
const DefaultSLIPMax = 1024

// SLIPDecoder splits a byte stream into SLIP frames (RFC 1055). Feed it the
// stream in chunks of any size with Next. Empty frames (END END, which
// senders use to flush line noise) are skipped. A frame longer than Max, or
// with an ESC followed by anything but ESC_END or ESC_ESC, is reported once
// and the rest of it up to the next END is discarded; decoding goes on with
// the frame after that END.
//
// The zero value is ready to use.
type SLIPDecoder struct {
	// Max is the largest unescaped frame accepted, in bytes; zero means
	// DefaultSLIPMax. The check is made before a byte is buffered.
	Max int

	buf  []byte
	esc  bool // the previous byte was ESC
	drop bool // discarding until END after an error
}

// Next consumes bytes from p until it has a whole frame or an error, or until
// p is used up. It returns the frame (without escapes and END), the number of
// bytes of p consumed, and an error for input that was discarded. At most one
// of frame and err is non-nil; when both are nil, n == len(p). The frame
// aliases the decoder's buffer: it is valid until the next call of Next or
// Reset.
func (d *SLIPDecoder) Next(p []byte) (frame []byte, n int, err error) {
	max := d.Max
	if max <= 0 {
		max = DefaultSLIPMax
	}
	for i, b := range p {
		if b == slipEnd {
			switch {
			case d.drop:
				d.reset()
				continue
			case d.esc: // RFC 1055 leaves ESC END undefined; we reject it
				d.reset()
				return nil, i + 1, ErrBadEscape
			case len(d.buf) == 0:
				continue
			}
			frame = d.buf
			d.buf = d.buf[:0]
			return frame, i + 1, nil
		}
		if d.drop {
			continue
		}
		if d.esc {
			d.esc = false
			switch b {
			case slipEscEnd:
				b = slipEnd
			case slipEscEsc:
				b = slipEsc
			default:
				d.drop = true
				d.buf = d.buf[:0]
				return nil, i + 1, ErrBadEscape
			}
		} else if b == slipEsc {
			d.esc = true
			continue
		}
		if len(d.buf) >= max {
			d.drop = true
			d.buf = d.buf[:0]
			return nil, i + 1, ErrFrameTooLong
		}
		d.buf = append(d.buf, b)
	}
	return nil, len(p), nil
}

// Reset drops a partly received frame. The next byte starts a new frame.
func (d *SLIPDecoder) Reset() { d.reset() }

func (d *SLIPDecoder) reset() {
	d.buf = d.buf[:0]
	d.esc = false
	d.drop = false
}

// AppendSLIP appends p as one SLIP frame to dst: END, p with END and ESC
// escaped, END. The leading END flushes line noise at the receiver, as RFC
// 1055 suggests.
func AppendSLIP(dst, p []byte) []byte {
	dst = append(dst, slipEnd)
	dst = appendSLIPEscaped(dst, p)
	return append(dst, slipEnd)
}

func appendSLIPEscaped(dst, p []byte) []byte {
	for _, b := range p {
		switch b {
		case slipEnd:
			dst = append(dst, slipEsc, slipEscEnd)
		case slipEsc:
			dst = append(dst, slipEsc, slipEscEsc)
		default:
			dst = append(dst, b)
		}
	}
	return dst
}
