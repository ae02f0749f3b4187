//go:build unix

package mqttsn

import "syscall"

// recvBuffer is the receive buffer asked for a UDP socket the gateway
// opens, so that a burst of datagrams (devices waking together, a gateway
// restart) waits in the kernel rather than being dropped; the kernel caps it
// at net.core.rmem_max.
const recvBuffer = 4 << 20

// setSockopts prepares a UDP socket the gateway opens: SO_BROADCAST, so
// that ADVERTISE can go to a broadcast address (MQTT-SN 1.2 §6.1), a large
// receive buffer, and where the kernel has it the count of datagrams it
// drops for lack of room (Stats.SocketDrops).
func setSockopts(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, recvBuffer) // best effort
		enableDropCount(int(fd))
	})
	if err != nil {
		return err
	}
	return serr
}
