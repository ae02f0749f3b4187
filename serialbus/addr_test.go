package serialbus

import (
	"testing"

	"go.bug.st/serial/enumerator"
)

func TestAddr(t *testing.T) {
	for _, c := range []struct {
		a         Addr
		network   string
		s         string
		broadcast bool
	}{
		{XBeeAddr(0x0013A20040522BAA), "xbee", "0013a20040522baa", false},
		{XBeeAddr(XBeeBroadcast64), "xbee", "000000000000ffff", true},
		{XBeeAddr16(0x1234), "xbee", "1234", false},
		{XBeeAddr16(0xFFFF), "xbee", "ffff", true},
		{BridgeAddr([]byte{1, 2}), "bridge", "0102", false},
		{BridgeAddr(BridgeBroadcast), "bridge", "ffff", true},
		{BridgeAddr([]byte{0xFF, 0xFF, 0xFF, 0xFF}), "bridge", "ffffffff", true},
		{portAddr("uart0"), "serial", "uart0", true},
	} {
		if c.a.Network() != c.network || c.a.String() != c.s || c.a.IsBroadcast() != c.broadcast {
			t.Errorf("%#v: %s %s %v", c.a, c.a.Network(), c.a.String(), c.a.IsBroadcast())
		}
		p, err := ParseAddr(c.network, c.s)
		if err != nil || p != c.a {
			t.Errorf("ParseAddr(%q, %q) = %#v, %v; want %#v", c.network, c.s, p, err, c.a)
		}
	}
	for _, c := range [][2]string{{"xbee", "0102030405"}, {"xbee", "zz"}, {"bridge", ""}, {"bridge", "010203040506070809"}, {"udp", "01"}} {
		if _, err := ParseAddr(c[0], c[1]); err == nil {
			t.Errorf("ParseAddr(%q, %q) accepted", c[0], c[1])
		}
	}
}

func TestMatchUSB(t *testing.T) {
	ports := []*enumerator.PortDetails{
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyUSB3", IsUSB: true, VID: "0403", PID: "6015", SerialNumber: "D30A9X4B"},
		{Name: "/dev/ttyUSB1", IsUSB: true, VID: "0403", PID: "6015", SerialNumber: "A1B2C3"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "2E8A", PID: "000A", SerialNumber: "E66038B7"},
	}
	for _, c := range []struct {
		m    USBMatch
		want string
	}{
		{USBMatch{VID: "0403"}, "/dev/ttyUSB1"},
		{USBMatch{VID: "0403", PID: "6015", Serial: "D30A9X4B"}, "/dev/ttyUSB3"},
		{USBMatch{VID: "2e8a", PID: "000a"}, "/dev/ttyACM0"},
		{USBMatch{VID: "0403", Serial: "nope"}, ""},
		{USBMatch{VID: "1a86"}, ""},
	} {
		got, err := matchUSB(ports, c.m)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("matchUSB(%+v) = %q, %v; want %q", c.m, got, err, c.want)
		}
	}
}

func TestFrameIDsSkipZero(t *testing.T) {
	l := newLink(t, Options{Device: "/nonexistent", Framing: FramingXBee})
	seen := map[byte]bool{}
	for i := range 600 {
		id := l.nextFrameID()
		if id == 0 {
			t.Fatalf("frame id 0 after %d ids", i)
		}
		if i < 255 {
			seen[id] = true
		}
	}
	if len(seen) != 255 {
		t.Fatalf("%d distinct ids in a cycle, want 255", len(seen))
	}
}
