//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package spool

import "errors"

// dirLocked is not known on this platform; badger's own error tells.
func dirLocked(string) (bool, error) {
	return false, errors.New("directory locks are not probed on this platform")
}
