package uplink

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// Record is one message in a bridge's spool queues: what is published to
// the cloud, with the topic already mapped.
//
// Its binary form (AppendRecord, DecodeRecord) is:
//
//	byte     version (1)
//	byte     flags: bits 0-1 QoS (0..2), bit 2 retain, bit 3 payload format,
//	         bit 4 content type, bit 5 response topic, bit 6 correlation
//	         data, bit 7 user properties
//	byte     flags2: bit 0 expiry, bit 1 deadline, bit 2 reason; the other
//	         bits are 0
//	[byte]   payload format indicator (0 or 1), when flagged
//	str      topic (non-empty)
//	[str]    content type, [str] response topic, [bin] correlation data,
//	[uvarint count, count × (str key, str value)] user properties,
//	[uvarint] expiry, [uvarint] deadline (Unix milliseconds, non-zero),
//	[byte]   reason (>= 0x80), each when flagged
//	...      payload: the rest of the record
//
// str and bin are a uvarint length and the bytes; strings are valid UTF-8
// without U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]. A flagged field is never
// empty, uvarints are minimal, so each Record has exactly one encoding.
type Record struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool

	// MQTT 5.0 properties passed to the cloud.
	HasPayloadFormat bool
	PayloadFormat    byte // 0 unspecified bytes, 1 UTF-8
	ContentType      string
	ResponseTopic    string
	CorrelationData  []byte
	User             []packet.UserProperty

	// Expiry is when the message expires (its Message Expiry Interval,
	// counted from when the broker received it); zero means never.
	Expiry time.Time
	// Deadline is when the rule's MaxAge drops it; zero means never.
	Deadline time.Time

	// Reason is the cloud's refusal, in the quarantine queue; 0 elsewhere.
	Reason byte
}

const recordVersion = 1

const (
	fQoSMask       = 0x03
	fRetain        = 0x04
	fPayloadFormat = 0x08
	fContentType   = 0x10
	fResponseTopic = 0x20
	fCorrelation   = 0x40
	fUser          = 0x80

	f2Expiry   = 0x01
	f2Deadline = 0x02
	f2Reason   = 0x04
	f2Reserved = 0xF8
)

// maxUserProps bounds the user properties of one record, so that a corrupt
// count does not allocate much.
const maxUserProps = 1 << 16

// Errors of DecodeRecord (wrapped with detail).
var (
	ErrRecordVersion = errors.New("uplink: unknown record version")
	ErrRecordCorrupt = errors.New("uplink: corrupt record")
)

// AppendRecord appends r's binary form to dst and returns the extended
// buffer. r must be valid: QoS 0..2, a non-empty topic, times after 1970,
// Reason 0 or >= 0x80 (DecodeRecord rejects anything else).
func AppendRecord(dst []byte, r *Record) []byte {
	f := r.QoS & fQoSMask
	if r.Retain {
		f |= fRetain
	}
	if r.HasPayloadFormat {
		f |= fPayloadFormat
	}
	if r.ContentType != "" {
		f |= fContentType
	}
	if r.ResponseTopic != "" {
		f |= fResponseTopic
	}
	if len(r.CorrelationData) > 0 {
		f |= fCorrelation
	}
	if len(r.User) > 0 {
		f |= fUser
	}
	var f2 byte
	if !r.Expiry.IsZero() {
		f2 |= f2Expiry
	}
	if !r.Deadline.IsZero() {
		f2 |= f2Deadline
	}
	if r.Reason != 0 {
		f2 |= f2Reason
	}
	dst = append(dst, recordVersion, f, f2)
	if r.HasPayloadFormat {
		dst = append(dst, r.PayloadFormat)
	}
	dst = appendStr(dst, r.Topic)
	if f&fContentType != 0 {
		dst = appendStr(dst, r.ContentType)
	}
	if f&fResponseTopic != 0 {
		dst = appendStr(dst, r.ResponseTopic)
	}
	if f&fCorrelation != 0 {
		dst = appendUvarint(dst, uint64(len(r.CorrelationData)))
		dst = append(dst, r.CorrelationData...)
	}
	if f&fUser != 0 {
		dst = appendUvarint(dst, uint64(len(r.User)))
		for _, u := range r.User {
			dst = appendStr(dst, u.Key)
			dst = appendStr(dst, u.Value)
		}
	}
	if f2&f2Expiry != 0 {
		dst = appendUvarint(dst, uint64(r.Expiry.UnixMilli()))
	}
	if f2&f2Deadline != 0 {
		dst = appendUvarint(dst, uint64(r.Deadline.UnixMilli()))
	}
	if f2&f2Reason != 0 {
		dst = append(dst, r.Reason)
	}
	return append(dst, r.Payload...)
}

func appendStr(dst []byte, s string) []byte {
	dst = appendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// DecodeRecord decodes a record made by AppendRecord. Payload and
// CorrelationData alias b; the strings are copies. Times come back in the
// local time zone with millisecond precision.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	d := decoder{b: b}
	if len(b) < 3 {
		return r, fmt.Errorf("%w: %d bytes", ErrRecordCorrupt, len(b))
	}
	if b[0] != recordVersion {
		return r, fmt.Errorf("%w %d", ErrRecordVersion, b[0])
	}
	f, f2 := b[1], b[2]
	d.i = 3
	r.QoS = f & fQoSMask
	if r.QoS > 2 {
		return r, fmt.Errorf("%w: QoS 3", ErrRecordCorrupt)
	}
	if f2&f2Reserved != 0 {
		return r, fmt.Errorf("%w: reserved flags %#x", ErrRecordCorrupt, f2)
	}
	r.Retain = f&fRetain != 0
	if f&fPayloadFormat != 0 {
		r.HasPayloadFormat = true
		r.PayloadFormat = d.byte()
		if d.err == nil && r.PayloadFormat > 1 {
			d.fail("payload format %d", r.PayloadFormat)
		}
	}
	r.Topic = d.str("topic")
	if f&fContentType != 0 {
		r.ContentType = d.str("content type")
	}
	if f&fResponseTopic != 0 {
		r.ResponseTopic = d.str("response topic")
	}
	if f&fCorrelation != 0 {
		r.CorrelationData = d.bin("correlation data")
	}
	if f&fUser != 0 {
		n := d.uvarint()
		if d.err == nil && (n == 0 || n > maxUserProps) {
			d.fail("%d user properties", n)
		}
		if d.err == nil {
			r.User = make([]packet.UserProperty, 0, min(n, 64))
			for range n {
				k := d.strEmptyOK()
				v := d.strEmptyOK()
				if d.err != nil {
					break
				}
				r.User = append(r.User, packet.UserProperty{Key: k, Value: v})
			}
		}
	}
	if f2&f2Expiry != 0 {
		r.Expiry = d.time("expiry")
	}
	if f2&f2Deadline != 0 {
		r.Deadline = d.time("deadline")
	}
	if f2&f2Reason != 0 {
		r.Reason = d.byte()
		if d.err == nil && r.Reason < 0x80 {
			d.fail("reason %#x", r.Reason)
		}
	}
	if d.err != nil {
		return Record{}, d.err
	}
	r.Payload = b[d.i:len(b):len(b)]
	return r, nil
}

type decoder struct {
	b   []byte
	i   int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrRecordCorrupt, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.i >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.i]
	d.i++
	return c
}

// uvarint reads a minimal unsigned varint of at most 63 bits.
func (d *decoder) uvarint() uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if d.err != nil {
			return 0
		}
		if shift > 56 {
			d.fail("varint too long")
			return 0
		}
		c := d.byte()
		if d.err != nil {
			return 0
		}
		v |= uint64(c&0x7F) << shift
		if c < 0x80 {
			if c == 0 && shift > 0 {
				d.fail("non-minimal varint")
				return 0
			}
			return v
		}
	}
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.i) {
		d.fail("%s of %d bytes past the end", what, n)
		return nil
	}
	s := d.b[d.i : d.i+int(n) : d.i+int(n)]
	d.i += int(n)
	return s
}

func (d *decoder) bin(what string) []byte {
	s := d.bytes(what)
	if d.err == nil && len(s) == 0 {
		d.fail("empty %s", what)
	}
	return s
}

func (d *decoder) strEmptyOK() string {
	s := d.bytes("string")
	if d.err != nil {
		return ""
	}
	if !validUTF8(s) {
		d.fail("string is not valid UTF-8 without U+0000")
		return ""
	}
	return string(s)
}

func (d *decoder) str(what string) string {
	s := d.strEmptyOK()
	if d.err == nil && s == "" {
		d.fail("empty %s", what)
	}
	return s
}

func (d *decoder) time(what string) time.Time {
	ms := d.uvarint()
	if d.err == nil && (ms == 0 || ms > 1<<53) {
		d.fail("%s %d", what, ms)
	}
	if d.err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

// validUTF8 reports whether s is valid UTF-8 without U+0000 [MQTT-1.5.4-1]
// [MQTT-1.5.4-2].
func validUTF8(s []byte) bool {
	for _, c := range s {
		if c == 0 {
			return false
		}
	}
	return utf8.Valid(s)
}
