//go:build linux || darwin || freebsd || netbsd || openbsd

package spool

import (
	"errors"
	"os"
	"syscall"
)

// dirLocked reports whether another process holds badger's lock on dir
// (an exclusive flock of the folder, taken by a Store's Run), by trying a
// shared lock and letting it go at once.
func dirLocked(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
