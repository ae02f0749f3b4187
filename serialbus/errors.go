package serialbus

import "errors"

// Errors of the framings. Decoders report them for input they discarded and
// then resynchronise by themselves; Link counts them in Stats. Errors with
// more detail wrap these, so test them with errors.Is.
var (
	// ErrFrameTooLong: a frame is longer than the decoder's maximum (checked
	// before buffering), or a datagram is longer than a link's MTU.
	ErrFrameTooLong = errors.New("serialbus: frame too long")
	// ErrChecksum: an XBee checksum or a bridge CRC does not match.
	ErrChecksum = errors.New("serialbus: checksum mismatch")
	// ErrBadEscape: an escape byte followed by a byte that may not follow it
	// (SLIP ESC, XBee API 2 0x7D).
	ErrBadEscape = errors.New("serialbus: invalid escape sequence")
	// ErrTruncated: a frame was cut short by the start of the next one.
	ErrTruncated = errors.New("serialbus: frame cut short")
	// ErrBadLength: a length field that no valid frame has.
	ErrBadLength = errors.New("serialbus: invalid length field")
	// ErrMalformed: a whole frame whose content breaks its type's layout.
	ErrMalformed = errors.New("serialbus: malformed frame")
	// ErrUnknownType: a whole, well-formed frame of a type this package
	// does not know.
	ErrUnknownType = errors.New("serialbus: unknown frame type")
	// ErrQueueFull: Link.WriteTo found the outbound queue full.
	ErrQueueFull = errors.New("serialbus: outbound queue full")
	// ErrDutyCycle: a datagram needs more time on air than the whole
	// duty-cycle budget of an hour allows, so it could never be sent.
	ErrDutyCycle = errors.New("serialbus: datagram exceeds the duty-cycle budget")
)
