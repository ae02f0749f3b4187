//go:build unix

package mqttsn

import "syscall"

// setBroadcast sets SO_BROADCAST on a UDP socket the gateway opens, so
// that ADVERTISE can go to a broadcast address (MQTT-SN 1.2 §6.1).
func setBroadcast(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
