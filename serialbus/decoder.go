package serialbus

// frameDecoder is what the stream decoders of the framings have in common.
type frameDecoder interface {
	// Next consumes bytes from p until it has a whole frame or an error,
	// or until p is used up; see SLIPDecoder.Next.
	Next(p []byte) (frame []byte, n int, err error)
	// Reset drops a partly received frame.
	Reset()
}

var (
	_ frameDecoder = (*SLIPDecoder)(nil)
	_ frameDecoder = (*BridgeDecoder)(nil)
	_ frameDecoder = (*XBeeDecoder)(nil)
	_ frameDecoder = (*RawDecoder)(nil)
)
