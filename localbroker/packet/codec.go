package packet

import (
	"bufio"
	"io"
)

// STUB: signatures fixed; bodies to be implemented (see the codec task).

// FixedHeader is the first part of every packet.
type FixedHeader struct {
	Type      Type
	Flags     byte // low nibble
	Remaining int  // remaining length (body size)
}

// Reader reads whole packets from a byte stream.
type Reader struct {
	br *bufio.Reader
}

// NewReader returns a Reader with a read buffer of bufSize bytes.
func NewReader(r io.Reader, bufSize int) *Reader { return &Reader{br: bufio.NewReaderSize(r, bufSize)} }

// ReadPacket reads one fixed header and its body. The remaining length is
// validated (minimal encoding, at most 4 bytes) and the whole packet size
// (fixed header + body) is checked against maxPacket BEFORE the body is
// buffered; maxPacket <= 0 means MaxRemainingLength+5. An oversize packet
// returns an *Error with PacketTooLarge (the body is not read). The body is
// freshly allocated and owned by the caller. io.EOF is returned unchanged
// when the stream ends cleanly before a packet starts; io.ErrUnexpectedEOF
// when it ends inside a packet.
func (r *Reader) ReadPacket(maxPacket int) (FixedHeader, []byte, error) { panic("stub") }

// ParseFixedHeader parses a fixed header at the start of b, returning it and
// the number of bytes it used. It returns io.ErrUnexpectedEOF (wrapped is
// fine) when b is too short to hold the whole header.
func ParseFixedHeader(b []byte) (FixedHeader, int, error) { panic("stub") }

// Decode decodes a body read under protocol version v (use DecodeConnect for
// CONNECT, whose version is inside it). The returned packet aliases body.
func Decode(h FixedHeader, body []byte, v Version) (Packet, error) { panic("stub") }

// DecodeConnect decodes a CONNECT body (the version is read from it). Errors
// carry the reason code the server must answer with: UnsupportedProtocolVersion
// for an unknown level or name, MalformedPacket / ProtocolError otherwise.
func DecodeConnect(flags byte, body []byte) (*Connect, error) { panic("stub") }

// DecodePublish decodes a PUBLISH body into p without allocating
// (properties lists excepted). p aliases body.
func DecodePublish(p *Publish, flags byte, body []byte, v Version) error { panic("stub") }

// Append appends the encoding of pk under version v to dst.
func Append(dst []byte, pk Packet, v Version) []byte { panic("stub") }

// Size returns the encoded length of pk under v (fixed header included).
func Size(pk Packet, v Version) int { panic("stub") }

// ValidTopicName checks a PUBLISH topic name: non-empty, valid UTF-8 without
// U+0000, no wildcard characters [MQTT-4.7.3-1] [MQTT-3.3.2-2], at most 65535 bytes.
func ValidTopicName(s string) error { panic("stub") }

// ValidUTF8 checks an MQTT UTF-8 string [MQTT-1.5.3-1] [MQTT-1.5.3-2].
func ValidUTF8(s string) bool { panic("stub") }
