package packet

// codeSet is a set of byte values (reason codes allowed in a packet).
type codeSet [4]uint64

func newCodeSet(codes ...byte) codeSet {
	var s codeSet
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

func (s *codeSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }
