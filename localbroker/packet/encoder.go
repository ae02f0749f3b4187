package packet

import (
	"encoding/binary"
	"slices"
)

// Field encoders. Lengths must already be within range (see Validate).

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBinary(dst []byte, b []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// appendHeader appends a fixed header (the type, flags and remaining
// length), first growing dst so that the whole packet fits: one allocation
// at most per packet.
func appendHeader(dst []byte, t Type, flags byte, remaining int) []byte {
	dst = slices.Grow(dst, 1+varintLen(remaining)+remaining)
	return appendVarint(append(dst, byte(t)<<4|flags&0x0f), remaining)
}

// propsField returns the size of a properties block including its
// Property Length, and the Property Length value.
func propsField(p *Properties, set *propSet) (size, n int) {
	n = propsLen(p, set)
	return varintLen(n) + n, n
}
