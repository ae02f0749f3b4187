package packet

// Variable Byte Integers (MQTT 5.0 §1.5.5, MQTT 3.1.1 §2.2.3).

// varintLen returns the number of bytes the encoding of x takes
// (x must be in 0..MaxRemainingLength).
func varintLen(x int) int {
	switch {
	case x < 1<<7:
		return 1
	case x < 1<<14:
		return 2
	case x < 1<<21:
		return 3
	default:
		return 4
	}
}

// appendVarint appends the minimal encoding of x (0..MaxRemainingLength).
func appendVarint(dst []byte, x int) []byte {
	for x >= 0x80 {
		dst = append(dst, byte(x)|0x80)
		x >>= 7
	}
	return append(dst, byte(x))
}

// Results of parseVarint besides success.
const (
	varintShort    = -1 // b ends before the last byte of the integer
	varintTooLong  = -2 // a fifth byte would be needed
	varintNonMinim = -3 // encoded in more bytes than necessary
)

// parseVarint decodes a variable byte integer at the start of b. It returns
// the value and the number of bytes used, or a negative n (varintShort,
// varintTooLong, varintNonMinim). A multi-byte encoding whose last byte is 0
// is not minimal [MQTT-1.5.5-1]; at most four bytes are allowed.
func parseVarint(b []byte) (x, n int) {
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, varintShort
		}
		c := b[i]
		x |= int(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				return 0, varintNonMinim
			}
			return x, i + 1
		}
	}
	return 0, varintTooLong
}

func varintError(n int, what string) *Error {
	switch n {
	case varintTooLong:
		return malformed(what + ": variable byte integer longer than 4 bytes")
	case varintNonMinim:
		return malformed(what + ": variable byte integer not minimally encoded [MQTT-1.5.5-1]")
	}
	return malformed(what + ": truncated")
}
