package packet

import (
	"bufio"
	"fmt"
	"io"
	"slices"
)

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

// bodyChunk is the first allocation for a large body, which then doubles as
// bytes arrive: a peer that announces a large packet and stalls holds about
// twice what it sent (at least bodyChunk), not the announced size.
const bodyChunk = 64 << 10

// ReadPacket reads one fixed header and its body. The remaining length is
// validated (minimal encoding, at most 4 bytes) and the whole packet size
// (fixed header + body) is checked against maxPacket BEFORE the body is
// buffered; maxPacket <= 0 means MaxRemainingLength+5. An oversize packet
// returns an *Error with PacketTooLarge (the body is not read). The body is
// freshly allocated and owned by the caller. io.EOF is returned unchanged
// when the stream ends cleanly before a packet starts; io.ErrUnexpectedEOF
// when it ends inside a packet.
//
// After an error the stream is out of step and the connection must be
// closed. The fixed header is returned with PacketTooLarge so that the
// caller can log the type and size. Bodies above 64 KiB are allocated in
// steps as their bytes arrive (see bodyChunk).
func (r *Reader) ReadPacket(maxPacket int) (FixedHeader, []byte, error) {
	b0, err := r.br.ReadByte()
	if err != nil {
		return FixedHeader{}, nil, err
	}
	var hdr [5]byte
	hdr[0] = b0
	n := 1
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			return FixedHeader{}, nil, noEOF(err)
		}
		hdr[n] = c
		n++
		if c&0x80 == 0 || n == len(hdr) {
			break
		}
	}
	h, _, err := ParseFixedHeader(hdr[:n])
	if err != nil {
		return FixedHeader{}, nil, err
	}
	if maxPacket <= 0 {
		maxPacket = MaxRemainingLength + 5
	}
	if size := n + h.Remaining; size > maxPacket {
		return h, nil, &Error{Code: PacketTooLarge, Msg: fmt.Sprintf("%v of %d bytes exceeds the maximum of %d", h.Type, size, maxPacket)}
	}
	body, err := r.readBody(h.Remaining)
	if err != nil {
		return FixedHeader{}, nil, err
	}
	return h, body, nil
}

// readBody reads exactly n bytes into a new slice, growing it as bytes
// arrive when n is large.
func (r *Reader) readBody(n int) ([]byte, error) {
	if n <= bodyChunk {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.br, body); err != nil {
			return nil, noEOF(err)
		}
		return body, nil
	}
	body := make([]byte, 0, bodyChunk)
	for len(body) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, min(cap(body), n-len(body)))
		}
		m, err := io.ReadFull(r.br, body[len(body):min(cap(body), n)])
		body = body[:len(body)+m]
		if err != nil {
			return nil, noEOF(err)
		}
	}
	return body, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseFixedHeader parses a fixed header at the start of b, returning it and
// the number of bytes it used. It returns io.ErrUnexpectedEOF (wrapped is
// fine) when b is too short to hold the whole header. A remaining length
// that is not minimally encoded [MQTT-1.5.5-1] or longer than 4 bytes is a
// MalformedPacket *Error.
func ParseFixedHeader(b []byte) (FixedHeader, int, error) {
	if len(b) < 2 {
		return FixedHeader{}, 0, io.ErrUnexpectedEOF
	}
	x, n := parseVarint(b[1:])
	switch {
	case n == varintShort:
		return FixedHeader{}, 0, io.ErrUnexpectedEOF
	case n < 0:
		return FixedHeader{}, 0, varintError(n, "remaining length")
	}
	return FixedHeader{Type: Type(b[0] >> 4), Flags: b[0] & 0x0f, Remaining: x}, 1 + n, nil
}

// Decode decodes a body read under protocol version v (use DecodeConnect for
// CONNECT, whose version is inside it). The returned packet aliases body.
// Version 3 (MQTT 3.1) decodes like 3.1.1. Errors are *Error values; see
// the rules in errors.go for the codes used under 3.1.1.
func Decode(h FixedHeader, body []byte, v Version) (Packet, error) {
	switch h.Type {
	case TypeConnect:
		return ret(DecodeConnect(h.Flags, body))
	case TypeConnack:
		return ret(decodeConnack(h.Flags, body, v))
	case TypePublish:
		p := new(Publish)
		if err := DecodePublish(p, h.Flags, body, v); err != nil {
			return nil, err
		}
		return p, nil
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		return ret(decodeAck(h, body, v))
	case TypeSubscribe:
		return ret(decodeSubscribe(h, body, v))
	case TypeSuback:
		return ret(decodeSuback(h, body, v))
	case TypeUnsubscribe:
		return ret(decodeUnsubscribe(h, body, v))
	case TypeUnsuback:
		return ret(decodeUnsuback(h, body, v))
	case TypePingreq:
		return ret(&Pingreq{}, decodeEmpty(h, body))
	case TypePingresp:
		return ret(&Pingresp{}, decodeEmpty(h, body))
	case TypeDisconnect:
		return ret(decodeDisconnect(h, body, v))
	case TypeAuth:
		return ret(decodeAuth(h, body, v))
	}
	return nil, malformed("packet type 0 is reserved")
}

// ret returns a nil Packet (not a typed nil) with an error.
func ret[T Packet](p T, err error) (Packet, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Append appends the encoding of pk under version v to dst.
//
// Under 3.1.1 (and 3.1) properties and the 5.0-only fields (acknowledgement
// and DISCONNECT reason codes, UNSUBACK reason codes, subscription options
// beyond QoS) are left out, and an AUTH appends nothing. Under 5.0 the
// acknowledgements, DISCONNECT and AUTH take their short forms when the
// reason code is 0 and there are no properties [MQTT-3.4.2.1]. Only the
// properties the packet type may carry are written, in ascending identifier
// order. For CONNECT, the protocol name and level written are those of v.
// The packet must be valid for v (see Validate); otherwise the bytes are
// unspecified.
func Append(dst []byte, pk Packet, v Version) []byte {
	switch p := pk.(type) {
	case *Publish:
		return p.appendTo(dst, v)
	case *Ack:
		return p.appendTo(dst, v)
	case *Connect:
		return p.appendTo(dst, v)
	case *Connack:
		return p.appendTo(dst, v)
	case *Subscribe:
		return p.appendTo(dst, v)
	case *Suback:
		return p.appendTo(dst, v)
	case *Unsubscribe:
		return p.appendTo(dst, v)
	case *Unsuback:
		return p.appendTo(dst, v)
	case *Pingreq:
		return appendHeader(dst, TypePingreq, 0, 0)
	case *Pingresp:
		return appendHeader(dst, TypePingresp, 0, 0)
	case *Disconnect:
		return p.appendTo(dst, v)
	case *Auth:
		return p.appendTo(dst, v)
	}
	panic(fmt.Sprintf("packet: Append of unknown packet type %T", pk))
}

// Size returns the encoded length of pk under v (fixed header included).
func Size(pk Packet, v Version) int {
	if _, ok := pk.(*Auth); ok && v != V5 {
		return 0
	}
	n := bodyLen(pk, v)
	return 1 + varintLen(n) + n
}

// bodyLen returns the remaining length of pk under v.
func bodyLen(pk Packet, v Version) int {
	var n int
	switch p := pk.(type) {
	case *Publish:
		n, _ = p.bodyLen(v)
	case *Ack:
		n, _ = p.bodyLen(v)
	case *Connect:
		n = p.bodyLen(v)
	case *Connack:
		n = p.bodyLen(v)
	case *Subscribe:
		n, _ = p.bodyLen(v)
	case *Suback:
		n, _ = p.bodyLen(v)
	case *Unsubscribe:
		n, _ = p.bodyLen(v)
	case *Unsuback:
		n, _ = p.bodyLen(v)
	case *Pingreq, *Pingresp:
	case *Disconnect:
		n, _ = p.bodyLen(v)
	case *Auth:
		n, _ = p.bodyLen()
	default:
		panic(fmt.Sprintf("packet: unknown packet type %T", pk))
	}
	return n
}

// Validate reports whether pk can be encoded under v and would be accepted
// by this package's decoder: every length fits its field, the packet fits
// MaxRemainingLength, and every rule the decoder enforces holds (it encodes
// pk and decodes the result, so it allocates; it is meant for packets built
// from outside input, such as configuration or bridged messages, and for
// tests, not for the per-message path). The error is an *Error.
func Validate(pk Packet, v Version) error {
	switch v {
	case V31, V311, V5:
	default:
		return &Error{Code: UnsupportedProtocolVersion, Msg: fmt.Sprintf("protocol level %d", byte(v))}
	}
	if err := checkEncodable(pk, v); err != nil {
		return err
	}
	if bodyLen(pk, v) > MaxRemainingLength {
		return &Error{Code: PacketTooLarge, Msg: "remaining length above 268435455"}
	}
	b := Append(nil, pk, v)
	h, n, err := ParseFixedHeader(b)
	if err != nil {
		return err
	}
	if _, ok := pk.(*Connect); ok {
		_, err = DecodeConnect(h.Flags, b[n:])
		return err
	}
	_, err = Decode(h, b[n:], v)
	return err
}

func checkEncodable(pk Packet, v Version) error {
	switch p := pk.(type) {
	case nil:
		return malformed("nil packet")
	case *Publish:
		if p != nil {
			return p.checkEncodable(v)
		}
	case *Ack:
		if p != nil {
			if p.Kind < TypePuback || p.Kind > TypePubcomp {
				return malformed("Ack.Kind is not PUBACK, PUBREC, PUBREL or PUBCOMP")
			}
			return checkPropsIf(v, &p.Properties, ackProps)
		}
	case *Connect:
		if p != nil {
			return p.checkEncodable(v)
		}
	case *Connack:
		if p != nil {
			return checkPropsIf(v, &p.Properties, connackProps)
		}
	case *Subscribe:
		if p != nil {
			return p.checkEncodable(v)
		}
	case *Suback:
		if p != nil {
			return checkPropsIf(v, &p.Properties, subackProps)
		}
	case *Unsubscribe:
		if p != nil {
			for _, f := range p.Filters {
				if len(f) > 65535 {
					return malformed("UNSUBSCRIBE: topic filter longer than 65535 bytes")
				}
			}
			return checkPropsIf(v, &p.Properties, unsubscribeProps)
		}
	case *Unsuback:
		if p != nil {
			return checkPropsIf(v, &p.Properties, unsubackProps)
		}
	case *Pingreq, *Pingresp:
		return nil
	case *Disconnect:
		if p != nil {
			return checkPropsIf(v, &p.Properties, disconnectProps)
		}
	case *Auth:
		if p != nil {
			if v != V5 {
				return malformed("AUTH is not an MQTT 3.1.1 packet")
			}
			return checkPropsIf(v, &p.Properties, authProps)
		}
	default:
		return malformed(fmt.Sprintf("unknown packet type %T", pk))
	}
	return malformed(fmt.Sprintf("nil %T", pk))
}

func checkPropsIf(v Version, p *Properties, set *propSet) error {
	if v != V5 {
		return nil
	}
	return checkPropsEncodable(p, set)
}
