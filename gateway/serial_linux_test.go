//go:build linux

package gateway

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPty opens a pseudo-terminal pair from /dev/ptmx and returns the master
// (the radio's side, played by the test) and the path of the slave (the
// serial port the Link opens). The slave is put in raw mode so that nothing
// written before the Link opens it is echoed or translated. Closing the
// master makes the port vanish, as an unplugged USB adapter does; it is
// closed at the end of the test unless the test closes it first.
func openPty(t *testing.T) (*os.File, string) {
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
	// master fails with EIO until the Link opens the port.
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

// A real gateway with a [[serial]] link in the raw framing on a pty: the
// device on the line connects and publishes at QoS 1 to a pre-defined topic
// id of its own (client_predefined), which an MQTT subscriber gets.
func TestGatewayServesMQTTSNOverSerial(t *testing.T) {
	m, dev := openPty(t)
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	cfg.MQTTSN.ClientPredefined = map[string]map[string]string{"uart1": {"0x0010": "sensors/uart1/level"}}
	s := DefaultSerial()
	s.Name, s.Device = "uart", dev
	cfg.Serials = []SerialConfig{s}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, stop := startGateway(t, cfg)
	sub := dialMQTT(t, g.Addrs()["default"], "lan", true, 0)
	sub.subscribe("sensors/#", 1)

	send := func(b []byte) {
		if _, err := m.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() []byte {
		_ = m.SetReadDeadline(time.Now().Add(10 * time.Second))
		return readRaw(t, m)
	}
	// The link opens the port soon after the start; what is written before
	// waits in the pty.
	snConnectAndPublish(t, send, read, "uart1", 0x0010, "77")
	if p := sub.expect("sensors/uart1/level=77")[0]; p.QoS != 1 {
		t.Errorf("delivered at QoS %d; want 1", p.QoS)
	}
	sub.close()
	stop()
}
