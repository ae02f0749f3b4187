//go:build !linux

package mqttsn

func enableDropCount(int) {}

// oobSize is 0: no control messages are read where the kernel reports no
// drop count.
var oobSize = 0

func dropCount([]byte) (uint32, bool) { return 0, false }
