package serialbus

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const patience = 10 * time.Second // generous bound for anything the tests wait for

// logBuffer collects a link's log lines for tests that check a warning.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runLink starts l.Run and stops it at the end of the test, checking that
// Run returns nil.
func runLink(t *testing.T, l *Link) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(patience):
			t.Errorf("Run did not return after its context was cancelled")
		}
	})
}

func newLink(t *testing.T, opts Options) *Link {
	t.Helper()
	if opts.ReconnectMin == 0 {
		opts.ReconnectMin, opts.ReconnectMax = 5*time.Millisecond, 50*time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(io.Discard)
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func readFrom(t *testing.T, l *Link) ([]byte, Addr) {
	t.Helper()
	l.SetReadDeadline(time.Now().Add(patience))
	buf := make([]byte, 2048)
	n, a, err := l.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	return buf[:n], a.(Addr)
}

// board plays the radio or bridge board on the master side of a pty.
type board struct {
	t       *testing.T
	m       *os.File
	dec     frameDecoder
	pending [][]byte
	buf     []byte
}

func newBoard(t *testing.T, m *os.File, dec frameDecoder) *board {
	return &board{t: t, m: m, dec: dec, buf: make([]byte, 4096)}
}

func (b *board) write(p []byte) {
	b.t.Helper()
	if _, err := b.m.Write(p); err != nil {
		b.t.Fatalf("board write: %v", err)
	}
}

// next returns the next frame the link wrote.
func (b *board) next() []byte {
	b.t.Helper()
	b.m.SetReadDeadline(time.Now().Add(patience))
	for len(b.pending) == 0 {
		n, err := b.m.Read(b.buf)
		if err != nil {
			b.t.Fatalf("board read: %v", err)
		}
		for _, e := range feed(b.dec, b.buf[:n]) {
			if e.err != nil {
				b.t.Fatalf("the link wrote a bad frame: %v", e.err)
			}
			b.pending = append(b.pending, e.frame)
		}
	}
	f := b.pending[0]
	b.pending = b.pending[1:]
	return f
}

func TestRawLinkPty(t *testing.T) {
	m, path := openPty(t)
	l := newLink(t, Options{Name: "uart0", Device: path, Framing: FramingRaw})
	runLink(t, l)
	waitFor(t, "the link to come up", func() bool { return l.State() == StateUp })
	b := newBoard(t, m, &RawDecoder{})

	// Device -> link: two packets in one write, then one split over writes.
	b.write([]byte{0x02, 0x16, 0x0b, 0x0c, 0x61, 0x00, 0x01, 0x00, 0x00, 0x32, 0x31, 0x2e, 0x35})
	b.write([]byte{0x03, 0x01})
	b.write([]byte{0x00})
	for _, want := range [][]byte{{0x02, 0x16}, {0x0b, 0x0c, 0x61, 0x00, 0x01, 0x00, 0x00, 0x32, 0x31, 0x2e, 0x35}, {0x03, 0x01, 0x00}} {
		got, a := readFrom(t, l)
		if !bytes.Equal(got, want) || a.String() != "uart0" || a.Network() != NetworkSerial {
			t.Fatalf("ReadFrom = %x from %v, want %x from uart0", got, a, want)
		}
	}
	// Link -> device.
	if _, err := l.WriteTo([]byte{0x03, 0x05, 0x00}, l.Broadcast()); err != nil {
		t.Fatal(err)
	}
	if got := b.next(); !bytes.Equal(got, []byte{0x03, 0x05, 0x00}) {
		t.Fatalf("device got %x", got)
	}
	// A packet whose Length field lies is refused.
	if _, err := l.WriteTo([]byte{0x05, 0x05, 0x00}, l.Broadcast()); !errors.Is(err, ErrBadLength) {
		t.Fatalf("WriteTo with a wrong Length field: %v", err)
	}
	st := l.Stats()
	if st.FramesIn != 3 || st.FramesOut != 1 || st.BytesIn != 16 || st.BytesOut != 3 || st.Device != path {
		t.Fatalf("stats %+v", st)
	}
}

func TestRawLinkTooLongPty(t *testing.T) {
	m, path := openPty(t)
	l := newLink(t, Options{Device: path, Framing: FramingRaw, MTU: 8})
	runLink(t, l)
	waitFor(t, "the link to come up", func() bool { return l.State() == StateUp })
	b := newBoard(t, m, &RawDecoder{})
	// Length 200 is refused before anything is buffered; the bytes after it
	// are read as Lengths: 02 16 is the PINGREQ that follows.
	b.write([]byte{200, 0x16, 0x02, 0x16})
	got, _ := readFrom(t, l)
	if !bytes.Equal(got, []byte{0x02, 0x16}) {
		t.Fatalf("got %x", got)
	}
	if st := l.Stats(); st.FramingErrors != 2 {
		t.Fatalf("framing errors %d, want 2 (lengths 200 and 22)", st.FramingErrors)
	}
	if _, err := l.WriteTo(make([]byte, 9), l.Broadcast()); !errors.Is(err, ErrFrameTooLong) {
		t.Fatalf("WriteTo beyond the MTU: %v", err)
	}
}

func bridgeWire(t *testing.T, f BridgeFrame) []byte {
	t.Helper()
	b, err := AppendBridge(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureBytes(t *testing.T, dir, name string) []byte {
	t.Helper()
	for _, fx := range loadFixtures(t, dir) {
		if fx.name == name {
			return fx.data
		}
	}
	t.Fatalf("no fixture %s/%s", dir, name)
	return nil
}

func TestBridgeLinkPty(t *testing.T) {
	m, path := openPty(t)
	l := newLink(t, Options{Name: "lora0", Device: path, Framing: FramingBridge})
	runLink(t, l)
	b := newBoard(t, m, &BridgeDecoder{})

	// The link asks for STATUS when it opens the port.
	if f, err := DecodeBridge(b.next()); err != nil || f.Type != BridgeStatusRequest {
		t.Fatalf("first frame from the link: %+v, %v", f, err)
	}
	// A STATUS sets the MTU to the board's max datagram, below the default
	// of 255; a later one with another value (new radio settings) moves it
	// again, but never above the configured ceiling.
	b.write(bridgeWire(t, BridgeFrame{Type: BridgeStatus, Info: BridgeInfo{Version: 1, MaxDatagram: 51, Firmware: "x"}}))
	waitFor(t, "the STATUS to lower the MTU", func() bool { return l.MTU() == 51 })
	b.write(bridgeWire(t, BridgeFrame{Type: BridgeStatus, Info: BridgeInfo{Version: 1, MaxDatagram: 1000, Firmware: "x"}}))
	waitFor(t, "the STATUS to raise the MTU to its ceiling", func() bool { return l.MTU() == 255 })
	b.write(fixtureBytes(t, "bridge", "status"))
	waitFor(t, "the STATUS to set the MTU", func() bool { return l.MTU() == 222 })
	if st := l.Stats(); st.Bridge == nil || st.Bridge.Firmware != "outpost-bridge 0.1.0" || st.Bridge.FrequencyHz != 868100000 {
		t.Fatalf("bridge info %+v", st.Bridge)
	}

	// Board -> host: the golden RX_DATA, after noise and a frame with a bad CRC.
	b.write([]byte{0x55, 0xAA, 0x13})
	b.write(fixtureBytes(t, "bridge", "bad-crc"))
	b.write(fixtureBytes(t, "bridge", "rx-data"))
	got, a := readFrom(t, l)
	if !bytes.Equal(got, []byte{0x0b, 0x0c, 0x61, 0x00, 0x01, 0x00, 0x00, 0x32, 0x31, 0x2e, 0x35}) || a.String() != "0102" || a.Network() != NetworkBridge {
		t.Fatalf("ReadFrom = %x from %v", got, a)
	}
	st := l.Stats()
	// The noise is a frame of its own up to the leading END of the bad
	// frame: two CRC errors.
	if st.ChecksumErrors != 2 || st.Nodes["0102"].RSSI != -87 || st.Nodes["0102"].SNR != 25 || st.Nodes["0102"].Frames != 1 {
		t.Fatalf("stats %+v", st)
	}

	// Host -> board, then a failed TX_STATUS for it.
	if _, err := l.WriteTo([]byte{0x03, 0x05, 0x00}, BridgeAddr([]byte{1, 2})); err != nil {
		t.Fatal(err)
	}
	f, err := DecodeBridge(b.next())
	if err != nil || f.Type != BridgeTxData || f.FrameID == 0 || !bytes.Equal(f.Node, []byte{1, 2}) || !bytes.Equal(f.Data, []byte{0x03, 0x05, 0x00}) {
		t.Fatalf("board got %+v, %v", f, err)
	}
	b.write(bridgeWire(t, BridgeFrame{Type: BridgeTxStatus, FrameID: f.FrameID, Failed: true, Reason: BridgeReasonDutyCycle}))
	waitFor(t, "the TX_STATUS failure to be counted", func() bool { return l.Stats().TxFailures == 1 })

	// Broadcast: the node id FF FF, and a net.Addr of another type that
	// parses.
	if _, err := l.WriteTo([]byte{0x05, 0x00, 0x01, 0x03, 0x84}, l.Broadcast()); err != nil {
		t.Fatal(err)
	}
	if f, _ := DecodeBridge(b.next()); !bytes.Equal(f.Node, []byte{0xFF, 0xFF}) {
		t.Fatalf("broadcast went to %x", f.Node)
	}
	if _, err := l.WriteTo([]byte{0x02, 0x16}, &net.UnixAddr{Name: "26011bd4", Net: "bridge"}); err != nil {
		t.Fatal(err)
	}
	if f, _ := DecodeBridge(b.next()); !bytes.Equal(f.Node, []byte{0x26, 0x01, 0x1b, 0xd4}) {
		t.Fatalf("datagram went to %x", f.Node)
	}
	if _, err := l.WriteTo([]byte{0x02, 0x16}, XBeeAddr(1)); err == nil {
		t.Fatal("WriteTo accepted an XBee address on a bridge link")
	}

	// A frame longer than the decoder's maximum is counted and skipped; the
	// next frame still arrives.
	before := l.Stats().FramingErrors
	big := bridgeWire(t, BridgeFrame{Type: BridgeRxData, Node: []byte{9}, Data: bytes.Repeat([]byte{0x41}, DefaultBridgeMax)})
	b.write(big)
	b.write(fixtureBytes(t, "bridge", "rx-data"))
	if got, _ := readFrom(t, l); len(got) != 11 {
		t.Fatalf("after a long frame got %d bytes", len(got))
	}
	if after := l.Stats().FramingErrors; after != before+1 {
		t.Fatalf("framing errors %d -> %d, want one more", before, after)
	}
	if l.Stats().FramesIn != 2 {
		t.Fatalf("frames in %d", l.Stats().FramesIn)
	}
}

// xbeeModule answers the start-up AT queries like a module with the given
// AP, AO and NP, and the address 0013A20040522BAA.
func xbeeModule(t *testing.T, b *board, escaped bool, ap, ao byte, np uint16) {
	t.Helper()
	values := map[string][]byte{
		"AP": {ap}, "AO": {ao}, "NP": {byte(np >> 8), byte(np)},
		"SH": {0x00, 0x13, 0xa2, 0x00}, "SL": {0x40, 0x52, 0x2b, 0xaa},
	}
	for range 5 {
		f, err := DecodeXBee(b.next())
		if err != nil || f.Type != XBeeATCommand {
			t.Fatalf("start-up frame %+v, %v", f, err)
		}
		v, ok := values[string(f.Command[:])]
		if !ok {
			t.Fatalf("unexpected AT query %s", f.Command[:])
		}
		r := XBeeFrame{Type: XBeeATResponse, FrameID: f.FrameID, Command: f.Command, Data: v}
		wire, _ := AppendXBee(nil, &r, escaped)
		b.write(wire)
	}
}

func TestXBeeLinkPty(t *testing.T) {
	for _, framing := range []string{FramingXBee, FramingXBeeAPI1} {
		t.Run(framing, func(t *testing.T) {
			escaped := framing == FramingXBee
			m, path := openPty(t)
			logs := &logBuffer{}
			l := newLink(t, Options{Device: path, Framing: framing, Logger: testLogger(logs)})
			runLink(t, l)
			b := newBoard(t, m, &XBeeDecoder{Escaped: escaped})
			ap := byte(2)
			if !escaped {
				ap = 1
			}
			xbeeModule(t, b, escaped, ap, 0, 84)
			waitFor(t, "NP to set the MTU", func() bool { return l.MTU() == 84 })
			waitFor(t, "the module's address", func() bool { return l.LocalAddr().String() == "0013a20040522baa" })

			// Module -> link: Digi's Receive Packet example.
			b.write(fixtureBytes(t, "xbee", map[bool]string{true: "receive-packet-api2", false: "receive-packet"}[escaped]))
			got, a := readFrom(t, l)
			if string(got) != "RxData" || a.String() != "0013a20040522baa" {
				t.Fatalf("ReadFrom = %q from %v", got, a)
			}

			// Link -> module: a Transmit Request to the sender, with bytes
			// that API 2 escapes; then a failed Transmit Status.
			payload := []byte{0x7E, 0x7D, 0x11, 0x13, 0x02}
			if _, err := l.WriteTo(payload, a); err != nil {
				t.Fatal(err)
			}
			f, err := DecodeXBee(b.next())
			if err != nil || f.Type != XBeeTransmitRequest || f.FrameID == 0 || f.Addr64 != 0x0013A20040522BAA || f.Addr16 != 0xFFFE || !bytes.Equal(f.Data, payload) {
				t.Fatalf("module got %+v, %v", f, err)
			}
			st := XBeeFrame{Type: XBeeTransmitStatus, FrameID: f.FrameID, Addr16: 0xFFFD, Status: 0x21}
			wire, _ := AppendXBee(nil, &st, escaped)
			b.write(wire)
			waitFor(t, "the delivery failure to be counted", func() bool { return l.Stats().TxFailures == 1 })

			if _, err := l.WriteTo([]byte{0x05, 0x00, 0x01, 0x03, 0x84}, l.Broadcast()); err != nil {
				t.Fatal(err)
			}
			if f, _ := DecodeXBee(b.next()); f.Addr64 != XBeeBroadcast64 {
				t.Fatalf("broadcast went to %016x", f.Addr64)
			}
			if _, err := l.WriteTo(make([]byte, 85), a); !errors.Is(err, ErrFrameTooLong) {
				t.Fatalf("85 bytes with NP 84: %v", err)
			}
			x := l.Stats().XBee
			if x == nil || x.APIMode != int(ap) || x.APIOutput != 0 || x.MaxPayload != 84 || x.Legacy {
				t.Fatalf("xbee info %+v", x)
			}
			if strings.Contains(logs.String(), "API mode") {
				t.Fatalf("warned about the API mode:\n%s", logs)
			}
		})
	}
}

func TestXBeeLegacyAndMismatchPty(t *testing.T) {
	m, path := openPty(t)
	logs := &logBuffer{}
	l := newLink(t, Options{Device: path, Framing: FramingXBee, Logger: testLogger(logs)})
	runLink(t, l)
	b := newBoard(t, m, &XBeeDecoder{Escaped: true})
	// An 802.15.4 module in API mode 1 with legacy output (AO=2). The
	// replies hold no byte that needs escaping, so the link reads them.
	xbeeModule(t, b, false, 1, 2, 100)
	waitFor(t, "the API mode warning", func() bool {
		return strings.Contains(logs.String(), "API mode 1 (AP=1, unescaped) but the link's framing is")
	})
	b.write(fixtureBytes(t, "xbee", "rx16"))
	got, a := readFrom(t, l)
	if string(got) != "TxData" || a.String() != "1234" {
		t.Fatalf("ReadFrom = %q from %v", got, a)
	}
	if n := l.Stats().Nodes["1234"]; n.RSSI != -94 {
		t.Fatalf("node stats %+v", n)
	}
	b.write(fixtureBytes(t, "xbee", "rx64"))
	_, a64 := readFrom(t, l)
	// Legacy modules get TX64 and TX16 requests.
	for _, dst := range []Addr{a, a64} {
		if _, err := l.WriteTo([]byte{0x02, 0x16}, dst); err != nil {
			t.Fatal(err)
		}
	}
	if f, _ := DecodeXBee(b.next()); f.Type != XBeeTX16 || f.Addr16 != 0x1234 {
		t.Fatalf("reply to a 16-bit address: %+v", f)
	}
	if f, _ := DecodeXBee(b.next()); f.Type != XBeeTX64 || f.Addr64 != 0x0013A20012345678 {
		t.Fatalf("reply to a 64-bit address: %+v", f)
	}
	b.write(fixtureBytes(t, "xbee", "tx-status"))
	tx := XBeeFrame{Type: XBeeTXStatus, FrameID: 9, Status: 1} // no ACK
	wire, _ := AppendXBee(nil, &tx, true)
	b.write(wire)
	waitFor(t, "the TX status failure", func() bool { return l.Stats().TxFailures == 1 })
}

func TestXBeeSilentModuleStillCarriesData(t *testing.T) {
	old := xbeeQueryTimeout
	xbeeQueryTimeout = 50 * time.Millisecond
	t.Cleanup(func() { xbeeQueryTimeout = old })
	m, path := openPty(t)
	logs := &logBuffer{}
	l := newLink(t, Options{Device: path, Framing: FramingXBee, Logger: testLogger(logs)})
	runLink(t, l)
	b := newBoard(t, m, &XBeeDecoder{Escaped: true})
	for range 5 { // the queries, unanswered
		b.next()
	}
	if _, err := l.WriteTo([]byte{0x02, 0x16}, XBeeAddr(0x0013A20040522BAA)); err != nil {
		t.Fatal(err)
	}
	if f, _ := DecodeXBee(b.next()); f.Type != XBeeTransmitRequest {
		t.Fatalf("got %+v", f)
	}
	if !strings.Contains(logs.String(), "does not answer AT queries") {
		t.Fatalf("no warning about the silent module:\n%s", logs)
	}
}

// repoint makes the symlink at link point to target, atomically.
func repoint(t *testing.T, link, target string) {
	t.Helper()
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

func TestHotPlugPty(t *testing.T) {
	dev := t.TempDir() + "/usb-Outpost_Bridge_0001-if00"
	m1, path1 := openPty(t)
	repoint(t, dev, path1)
	l := newLink(t, Options{Device: dev, Framing: FramingBridge})
	runLink(t, l)
	b1 := newBoard(t, m1, &BridgeDecoder{})
	b1.next() // STATUS_REQUEST
	b1.write(fixtureBytes(t, "bridge", "rx-data"))
	readFrom(t, l)

	// The device vanishes.
	m1.Close()
	waitFor(t, "the link to go down", func() bool { return l.State() == StateDown })
	// Datagrams written while it is away wait in the queue.
	if _, err := l.WriteTo([]byte{0x02, 0x16}, BridgeAddr([]byte{1, 2})); err != nil {
		t.Fatal(err)
	}

	// It comes back under the same name, as a new tty.
	m2, path2 := openPty(t)
	repoint(t, dev, path2)
	waitFor(t, "the link to come back", func() bool { return l.State() == StateUp && l.Stats().Reconnects == 1 })
	b2 := newBoard(t, m2, &BridgeDecoder{})
	if f, _ := DecodeBridge(b2.next()); f.Type != BridgeStatusRequest {
		t.Fatalf("first frame after reconnect: %+v", f)
	}
	if f, _ := DecodeBridge(b2.next()); f.Type != BridgeTxData || !bytes.Equal(f.Data, []byte{0x02, 0x16}) {
		t.Fatalf("queued datagram after reconnect: %+v", f)
	}
	b2.write(fixtureBytes(t, "bridge", "rx-data"))
	if got, _ := readFrom(t, l); len(got) != 11 {
		t.Fatalf("got %x after reconnect", got)
	}
	if st := l.Stats(); st.Device != dev {
		t.Fatalf("device %q", st.Device)
	}
}

func TestOpenFailsAtStartThenRetries(t *testing.T) {
	dev := t.TempDir() + "/ttyLORA"
	logs := &logBuffer{}
	l := newLink(t, Options{Device: dev, Framing: FramingRaw, Logger: testLogger(logs)})
	runLink(t, l)
	waitFor(t, "a warning about the missing port", func() bool { return strings.Contains(logs.String(), "cannot open the serial port") })
	if l.State() != StateDown {
		t.Fatal("up without a port")
	}
	m, path := openPty(t)
	repoint(t, dev, path)
	waitFor(t, "the link to come up", func() bool { return l.State() == StateUp })
	b := newBoard(t, m, &RawDecoder{})
	b.write([]byte{0x02, 0x16})
	if got, _ := readFrom(t, l); !bytes.Equal(got, []byte{0x02, 0x16}) {
		t.Fatalf("got %x", got)
	}
	if l.Stats().Reconnects != 0 {
		t.Fatal("the first open counted as a reconnect")
	}
}

func TestWriteQueueFull(t *testing.T) {
	l := newLink(t, Options{Device: "/nonexistent", Framing: FramingBridge, QueueLen: 2})
	to := BridgeAddr([]byte{1})
	for range 2 {
		if _, err := l.WriteTo([]byte{0x02, 0x16}, to); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.WriteTo([]byte{0x02, 0x16}, to); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third write: %v", err)
	}
	if st := l.Stats(); st.QueueFull != 1 {
		t.Fatalf("queue full count %d", st.QueueFull)
	}
}

func TestReadDeadlineAndClose(t *testing.T) {
	l := newLink(t, Options{Device: "/nonexistent"})
	l.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, _, err := l.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom past the deadline: %v", err)
	}
	l.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, _, err := l.ReadFrom(make([]byte, 10))
		done <- err
	}()
	l.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v", err)
	}
	if _, err := l.WriteTo([]byte{2, 0x16}, l.Broadcast()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	if err := l.Run(context.Background()); err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
}

func TestCloseStopsRun(t *testing.T) {
	m, path := openPty(t)
	_ = m
	l := newLink(t, Options{Device: path})
	done := make(chan error, 1)
	go func() { done <- l.Run(context.Background()) }()
	waitFor(t, "the link to come up", func() bool { return l.State() == StateUp })
	l.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(patience):
		t.Fatal("Run did not return after Close")
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{},
		{Device: "/dev/x", Framing: "slip"},
		{Device: "/dev/x", DutyCycle: 1.5},
		{Device: "/dev/x", Baud: -1},
		{Device: "/dev/x", Framing: FramingBridge, MTU: 5000},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
