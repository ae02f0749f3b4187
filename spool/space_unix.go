//go:build linux || darwin || freebsd || netbsd || openbsd

package spool

import "syscall"

// freeBytes returns the space available to unprivileged users on the file
// system that holds dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // field types differ per platform
}
