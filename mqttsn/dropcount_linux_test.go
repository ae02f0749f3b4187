package mqttsn

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// The kernel's SO_RXQ_OVFL count reaches dropCount: a socket with a small
// receive buffer that is not read drops most of a burst, and a datagram
// queued after that carries the number.
func TestDropCountFromTheKernel(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			enableDropCount(int(fd))
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		})
	}}
	pc, err := lc.ListenPacket(t.Context(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	u := pc.(*net.UDPConn)
	out, err := net.Dial("udp", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for range 200 {
		_, _ = out.Write(make([]byte, 100))
	}
	buf, oob := make([]byte, 200), make([]byte, oobSize)
	_ = u.SetReadDeadline(time.Now().Add(5 * time.Second))
	// A datagram carries the count of the drops before it was queued: one
	// more is sent for each read, until one queued after the burst comes.
	var got uint32
	for got == 0 {
		if _, err := out.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		_, oobn, _, _, err := u.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			t.Fatalf("no datagram with a drop count: %v", err)
		}
		got, _ = dropCount(oob[:oobn])
	}
	if got >= 200 {
		t.Fatalf("drop count %d of 200 sent, one of which was read", got)
	}
	if _, ok := dropCount(nil); ok {
		t.Fatal("a count in no control message")
	}
	if _, ok := dropCount(oob[:3]); ok {
		t.Fatal("a count in a truncated control message")
	}
}
