//go:build linux

// Package ptytest opens real pseudo-terminal pairs for tests of serial
// links: the test plays the radio on the master side, the code under test
// opens the slave's path as its serial port.
package ptytest

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// Open opens a pseudo-terminal pair from /dev/ptmx and returns the master
// (the radio's side, played by the test) and the path of the slave (the
// serial port the code under test opens). The slave is put in raw mode so that nothing
// written before it is opened is echoed or translated. Closing the
// master makes the port vanish, as an unplugged USB adapter does; it is
// closed at the end of the test unless the test closes it first.
func Open(t testing.TB) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ioErr = ioctl(fd, syscall.TIOCGPTN, unsafe.Pointer(&n))
		if ioErr == nil {
			var unlock int32
			ioErr = ioctl(fd, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if ioErr != nil {
		t.Fatalf("pty ioctl: %v", ioErr)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	// The test keeps a slave descriptor open: without one, reading the
	// master fails with EIO until the code under test opens the port.
	t.Cleanup(func() { s.Close() })
	src, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Control(func(fd uintptr) {
		var tio syscall.Termios
		if ioErr = ioctl(fd, syscall.TCGETS, unsafe.Pointer(&tio)); ioErr != nil {
			return
		}
		// cfmakeraw
		tio.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
		tio.Oflag &^= syscall.OPOST
		tio.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
		tio.Cflag &^= syscall.CSIZE | syscall.PARENB
		tio.Cflag |= syscall.CS8
		ioErr = ioctl(fd, syscall.TCSETS, unsafe.Pointer(&tio))
	}); err != nil {
		t.Fatal(err)
	}
	if ioErr != nil {
		t.Fatalf("raw mode: %v", ioErr)
	}
	return m, path
}

func ioctl(fd, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}
