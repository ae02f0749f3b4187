package packet

import "unsafe"

// Zero-copy conversions. Decoded strings alias the packet body (see the
// package comment); the body must not be modified while they are in use.

// aliasString returns a string that shares b's memory.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// aliasBytes returns a read-only view of s's bytes. It must never be written.
func aliasBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// aliasCodes views b as reason codes (ReasonCode is a byte).
func aliasCodes(b []byte) []ReasonCode {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*ReasonCode)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}
