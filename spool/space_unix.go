//go:build linux || darwin || freebsd || netbsd || openbsd

package spool

import (
	"io/fs"
	"syscall"
)

// freeBytes returns the space available to unprivileged users on the file
// system that holds dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // field types differ per platform
}

// allocated returns the disk space a file takes: its blocks, which for a
// sparse file are fewer than its size.
func allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512 //nolint:unconvert // field types differ per platform
	}
	return fi.Size()
}
