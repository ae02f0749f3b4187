//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package spool

import (
	"errors"
	"io/fs"
)

func freeBytes(string) (int64, error) {
	return 0, errors.New("free space is not known on this platform")
}

// allocated returns the size of a file: its disk space is not known here.
func allocated(fi fs.FileInfo) int64 { return fi.Size() }
