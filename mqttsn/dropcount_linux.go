package mqttsn

import (
	"encoding/binary"
	"syscall"
)

// enableDropCount asks the kernel to report, with each datagram, how many
// it dropped on this socket so far (SO_RXQ_OVFL).
func enableDropCount(fd int) {
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
}

// oobSize is room for the SO_RXQ_OVFL control message.
var oobSize = syscall.CmsgSpace(4)

// dropCount returns the SO_RXQ_OVFL counter in a datagram's control
// messages, without allocating (syscall.ParseSocketControlMessage would).
// The kernel adds the message only once the counter is not 0.
func dropCount(oob []byte) (uint32, bool) {
	lenSize := syscall.SizeofCmsghdr - 8 // Len is a word; Level and Type are int32
	for len(oob) >= syscall.SizeofCmsghdr {
		var n uint64
		if lenSize == 8 {
			n = binary.NativeEndian.Uint64(oob)
		} else {
			n = uint64(binary.NativeEndian.Uint32(oob))
		}
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		if n < uint64(syscall.SizeofCmsghdr) || n > uint64(len(oob)) {
			return 0, false
		}
		data := oob[syscall.CmsgLen(0):n]
		if level == syscall.SOL_SOCKET && typ == syscall.SO_RXQ_OVFL && len(data) >= 4 {
			return binary.NativeEndian.Uint32(data), true
		}
		next := syscall.CmsgSpace(int(n) - syscall.CmsgLen(0))
		if next > len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}
