//go:build !unix

package mqttsn

import "syscall"

// setBroadcast does nothing where SO_BROADCAST is not set the unix way.
func setBroadcast(_, _ string, _ syscall.RawConn) error { return nil }
