//go:build !unix

package mqttsn

import "syscall"

// setSockopts does nothing where socket options are not set the unix way.
func setSockopts(_, _ string, _ syscall.RawConn) error { return nil }
