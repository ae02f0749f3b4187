package serialbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Framings a Link speaks, for Options.Framing.
const (
	FramingRaw      = "raw"       // bare MQTT-SN packets, one device on the line
	FramingXBee     = "xbee"      // XBee API mode 2 (AP=2, escaped)
	FramingXBeeAPI1 = "xbee-api1" // XBee API mode 1 (AP=1, unescaped)
	FramingBridge   = "bridge"    // Outpost bridge board (BRIDGE-PROTOCOL.md)
)

// USBMatch picks a USB serial adapter by its identity, so that the link
// finds the device again whatever tty name it gets when plugged in.
type USBMatch struct {
	VID    string // USB vendor id, hex ("0403"); empty: no USB match
	PID    string // USB product id, hex ("6015"); empty: any
	Serial string // USB serial number; empty: any
}

// Options configure a Link. The zero value of each field is useful where its
// comment says what zero means.
type Options struct {
	// Name names the link in logs, and is the node address of the raw
	// framing's one device. Zero: Device, or "usb:VID:PID".
	Name string
	// Device is the port's path. Prefer a stable name such as
	// /dev/serial/by-id/usb-FTDI_FT231X_USB_UART_D30A9X4B-if00-port0 over
	// /dev/ttyUSB0. It is opened anew on each reconnect, so a symlink that
	// udev re-points follows the device. Zero: use USB.
	Device string
	// USB finds the port by USB identity when Device is empty; it is
	// resolved with go.bug.st/serial/enumerator on every (re)connect.
	USB USBMatch
	// Baud is the serial line speed. Zero: 9600 for the XBee framings (the
	// modules' factory setting), 115200 otherwise.
	Baud int
	// Framing is FramingRaw, FramingXBee, FramingXBeeAPI1 or FramingBridge.
	// Zero: FramingRaw.
	Framing string
	// MTU is the largest datagram WriteTo accepts. Zero: 255 for the bridge
	// (a LoRa packet), 256 for the XBee framings, 1024 for raw. It is a
	// ceiling: the MTU in force is the smaller of it and what the radio
	// reports it can carry (an XBee's NP, a bridge board's max datagram).
	MTU int
	// MinGap is the least silence between two frames the link writes: from
	// the end of one frame (its time on air at BitRate or on the line at
	// Baud, whichever is longer) to the start of the next. Zero: none.
	MinGap time.Duration
	// DutyCycle is the share of a rolling hour the link may spend on air,
	// e.g. 0.01 for 1%. Frames that would exceed it wait in the queue.
	// Time on air is the frame's bytes as written to the port at BitRate,
	// 8 bits per byte. Zero: no limit.
	DutyCycle float64
	// BitRate is the air bit rate for duty-cycle accounting (e.g. about
	// 5470 for LoRa SF7/125 kHz). Zero: Baud.
	BitRate int
	// QueueLen bounds the datagrams waiting to be written, and those read
	// but not yet taken by ReadFrom. Zero: 32.
	QueueLen int
	// ReconnectMin and ReconnectMax bound the backoff between attempts to
	// open the port; the wait doubles after each failure. Zero: 250ms and
	// 10s.
	ReconnectMin, ReconnectMax time.Duration
	// IdleGap: for the raw framing, a silence on the line longer than this
	// drops a partly received packet and resynchronises on the next Length
	// field. Zero: 32 byte-times at Baud, but at least 20ms (USB serial
	// adapters deliver bytes in bursts some milliseconds apart).
	IdleGap time.Duration
	// Logger receives the link's logs. Zero: slog.Default().
	Logger *slog.Logger
}

// State is whether a Link's port is open.
type State int32

// States of a Link.
const (
	StateDown State = iota // the port is not open; the link retries
	StateUp                // the port is open
)

func (s State) String() string {
	if s == StateUp {
		return "up"
	}
	return "down"
}

// NodeStats is what a Link saw last of one node.
type NodeStats struct {
	RSSI     int16 // dBm; RSSIUnknown when the radio did not tell
	SNR      int8  // quarter dB; SNRUnknown when the radio did not tell
	Frames   uint64
	LastSeen time.Time
}

// XBeeInfo is what a Link learned from an XBee's AT queries at start-up.
type XBeeInfo struct {
	APIMode    int    // AP: 1 or 2; 0 unknown
	APIOutput  int    // AO; -1 unknown
	MaxPayload int    // NP; 0 unknown
	Address    uint64 // SH and SL; 0 unknown
	Legacy     bool   // 802.15.4 frames (TX64/RX64/RX16) are in use
}

// Stats are a Link's counters since New.
type Stats struct {
	State          State
	Device         string // the path opened last
	MTU            int
	Reconnects     uint64 // times the port was opened again after it was lost
	FramesIn       uint64 // datagrams received
	FramesOut      uint64 // datagrams written to the port
	BytesIn        uint64 // bytes read from the port
	BytesOut       uint64 // bytes written to the port
	ChecksumErrors uint64 // frames with a bad XBee checksum or bridge CRC
	FramingErrors  uint64 // frames too long, badly escaped, cut short, malformed or of unknown type
	QueueFull      uint64 // datagrams WriteTo refused because the queue was full
	DroppedIn      uint64 // datagrams received while the ReadFrom queue was full
	DroppedOut     uint64 // queued datagrams that turned out longer than a lowered MTU
	TxFailures     uint64 // XBee transmit status or bridge TX_STATUS failures
	Nodes          map[string]NodeStats
	Bridge         *BridgeInfo // the board's last STATUS; nil until one came
	XBee           *XBeeInfo   // nil for other framings
}

const maxNodes = 1024 // nodes kept in Stats.Nodes; the least recently seen goes

// port is the part of go.bug.st/serial's Port that a Link uses; tests put a
// fake in its place.
type port interface {
	io.ReadWriteCloser
}

type datagram struct {
	addr Addr
	data []byte
}

// Link is a serial port carrying datagrams, as a net.PacketConn. Run owns the
// port: it opens it, reopens it when it goes away, and paces what WriteTo
// queues. ReadFrom and WriteTo may be called before Run and while the port
// is down; WriteTo then queues.
type Link struct {
	opts    Options
	log     *slog.Logger
	network string
	open    func(ctx context.Context) (port, string, error)
	idleGap time.Duration
	portMax int // largest frame the decoder accepts

	in        chan datagram
	out       chan datagram
	closed    chan struct{}
	closeOnce sync.Once
	running   atomic.Bool
	mu        sync.Mutex
	cancelRun context.CancelFunc // under mu
	device    string             // under mu

	rdMu       sync.Mutex
	rdDeadline time.Time
	rdChanged  chan struct{}

	state  atomic.Int32
	mtu    atomic.Int32
	ids    atomic.Uint32
	legacy atomic.Bool
	pace   pacer // writer only

	statsMu    sync.Mutex
	nodes      map[string]NodeStats
	bridgeInfo *BridgeInfo
	xbeeInfo   XBeeInfo
	warned     map[string]time.Time

	reconnects, framesIn, framesOut, bytesIn, bytesOut atomic.Uint64
	checksumErrs, framingErrs, queueFull               atomic.Uint64
	droppedIn, droppedOut, txFailures                  atomic.Uint64
}

var _ net.PacketConn = (*Link)(nil)

// New checks opts and returns a Link; it opens nothing. Run starts it.
func New(opts Options) (*Link, error) {
	o := opts
	if o.Framing == "" {
		o.Framing = FramingRaw
	}
	l := &Link{closed: make(chan struct{}), rdChanged: make(chan struct{}), nodes: map[string]NodeStats{}, warned: map[string]time.Time{}}
	defMTU, maxMTU := 0, 0
	switch o.Framing {
	case FramingRaw:
		l.network, defMTU, maxMTU = NetworkSerial, 1024, DefaultRawMax
	case FramingXBee, FramingXBeeAPI1:
		l.network, defMTU, maxMTU = NetworkXBee, 256, MaxXBeeLength-14
	case FramingBridge:
		l.network, defMTU, maxMTU = NetworkBridge, 255, DefaultBridgeMax-(1+3+3+BridgeMaxNode+2)
	default:
		return nil, fmt.Errorf("serialbus: framing %q: want %q, %q, %q or %q", o.Framing, FramingRaw, FramingXBee, FramingXBeeAPI1, FramingBridge)
	}
	switch {
	case o.Device == "" && o.USB.VID == "":
		return nil, errors.New("serialbus: neither a device path nor a USB vendor id to find the port by")
	case o.Baud < 0, o.MTU < 0, o.QueueLen < 0, o.BitRate < 0, o.MinGap < 0, o.IdleGap < 0, o.ReconnectMin < 0, o.ReconnectMax < 0:
		return nil, errors.New("serialbus: negative option")
	case o.DutyCycle < 0 || o.DutyCycle > 1:
		return nil, fmt.Errorf("serialbus: duty cycle %v is not between 0 and 1", o.DutyCycle)
	case o.MTU > maxMTU:
		return nil, fmt.Errorf("serialbus: MTU %d is more than the %s framing carries (%d)", o.MTU, o.Framing, maxMTU)
	}
	if o.Name == "" {
		o.Name = o.Device
		if o.Name == "" {
			o.Name = "usb:" + o.USB.VID + ":" + o.USB.PID
		}
	}
	if o.Baud == 0 {
		o.Baud = 115200
		if l.network == NetworkXBee {
			o.Baud = 9600
		}
	}
	if o.MTU == 0 {
		o.MTU = defMTU
	}
	if o.BitRate == 0 {
		o.BitRate = o.Baud
	}
	if o.QueueLen == 0 {
		o.QueueLen = 32
	}
	if o.ReconnectMin == 0 {
		o.ReconnectMin = 250 * time.Millisecond
	}
	if o.ReconnectMax == 0 {
		o.ReconnectMax = 10 * time.Second
	}
	o.ReconnectMax = max(o.ReconnectMax, o.ReconnectMin)
	if o.Framing == FramingRaw {
		l.idleGap = o.IdleGap
		if l.idleGap == 0 {
			l.idleGap = max(time.Duration(32*10*int64(time.Second)/int64(o.Baud)), 20*time.Millisecond)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l.opts = o
	l.log = o.Logger.With("component", "serialbus", "link", o.Name, "framing", o.Framing)
	l.in = make(chan datagram, o.QueueLen)
	l.out = make(chan datagram, o.QueueLen)
	l.mtu.Store(int32(o.MTU))
	switch l.network {
	case NetworkSerial:
		l.portMax = o.MTU
	case NetworkXBee:
		l.portMax = max(o.MTU+32, 256)
	case NetworkBridge:
		l.portMax = max(o.MTU+1+3+3+BridgeMaxNode+bridgeCRCLen, bridgeStatusFixed+255+bridgeCRCLen)
	}
	l.pace = pacer{minGap: o.MinGap, baud: o.Baud, bitRate: o.BitRate,
		budget: time.Duration(o.DutyCycle * float64(dutyWindow))}
	l.open = l.openSerial
	l.xbeeInfo.APIOutput = -1
	return l, nil
}

// Name returns the link's name.
func (l *Link) Name() string { return l.opts.Name }

// State reports whether the port is open.
func (l *Link) State() State { return State(l.state.Load()) }

// MTU returns the largest datagram WriteTo accepts now.
func (l *Link) MTU() int { return int(l.mtu.Load()) }

// Broadcast returns the address that reaches every node: the XBee 64-bit
// broadcast address, the bridge node id FF FF, or the raw framing's port.
func (l *Link) Broadcast() net.Addr {
	switch l.network {
	case NetworkXBee:
		return XBeeAddr(XBeeBroadcast64)
	case NetworkBridge:
		return BridgeAddr(BridgeBroadcast)
	}
	return portAddr(l.opts.Name)
}

// LocalAddr returns the link's own address: the XBee's 64-bit address once
// the module told it, else the link's name.
func (l *Link) LocalAddr() net.Addr {
	l.statsMu.Lock()
	a := l.xbeeInfo.Address
	l.statsMu.Unlock()
	if a != 0 {
		return XBeeAddr(a)
	}
	return Addr{network: l.network, id: l.opts.Name, text: true}
}

// Run opens the port and moves datagrams until ctx is done or Close is
// called; then it closes the port and returns nil once every goroutine it
// started has exited. A port that cannot be opened, or that goes away (a USB
// adapter unplugged), is retried with backoff: Run does not fail for it.
func (l *Link) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("serialbus: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.mu.Lock()
	l.cancelRun = cancel
	l.mu.Unlock()
	select {
	case <-l.closed:
		return nil
	default:
	}

	backoff := l.opts.ReconnectMin
	failing, opened := false, false
	for ctx.Err() == nil {
		p, dev, err := l.open(ctx)
		if err != nil {
			if !failing {
				l.log.Warn("cannot open the serial port; retrying with backoff", "device", l.opts.Device, "usb_vid", l.opts.USB.VID, "usb_pid", l.opts.USB.PID, "err", err)
				failing = true
			} else {
				l.log.Debug("cannot open the serial port", "err", err, "retry_in", backoff)
			}
			if !sleepCtx(ctx, backoff) {
				break
			}
			backoff = min(2*backoff, l.opts.ReconnectMax)
			continue
		}
		failing = false
		if opened {
			l.reconnects.Add(1)
		}
		opened = true
		l.mu.Lock()
		l.device = dev
		l.mu.Unlock()
		l.log.Info("serial port open", "device", dev, "baud", l.opts.Baud)
		start := time.Now()
		err = l.session(ctx, p)
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) >= l.opts.ReconnectMax {
			backoff = l.opts.ReconnectMin
		}
		l.log.Warn("serial port lost; reopening", "device", dev, "err", err, "retry_in", backoff)
		if !sleepCtx(ctx, backoff) {
			break
		}
		backoff = min(2*backoff, l.opts.ReconnectMax)
	}
	l.log.Info("link stopped")
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// session is one open period of the port.
type session struct {
	port  port
	ctrl  chan []byte    // frames of the link itself (AT queries), written first
	ready chan struct{}  // closed when datagrams may go (after the XBee queries)
	at    chan XBeeFrame // AT command responses for the start-up queries
}

// session runs the reader, the writer and the start-up queries on an open
// port until one of them fails or ctx is done, and closes the port.
func (l *Link) session(ctx context.Context, p port) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &session{port: p, ctrl: make(chan []byte, 8), ready: make(chan struct{}), at: make(chan XBeeFrame, 8)}
	l.state.Store(int32(StateUp))
	defer l.state.Store(int32(StateDown))

	errc := make(chan error, 2)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		errc <- l.reader(s)
		cancel()
	}()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.writer(ctx, s); err != nil {
			errc <- err
			cancel()
		}
	})
	wg.Go(func() { l.startup(ctx, s) })
	<-ctx.Done()
	wg.Wait() // nothing writes to the port any more
	cerr := p.Close()
	<-readerDone
	select {
	case err := <-errc:
		return err
	default:
		return cerr
	}
}

// reader reads the port until it fails, and hands each whole frame on.
func (l *Link) reader(s *session) error {
	var dec frameDecoder
	switch l.opts.Framing {
	case FramingRaw:
		dec = &RawDecoder{Max: l.portMax}
	case FramingXBee, FramingXBeeAPI1:
		dec = &XBeeDecoder{Escaped: l.opts.Framing == FramingXBee, Max: l.portMax}
	case FramingBridge:
		dec = &BridgeDecoder{Max: l.portMax}
	}
	buf := make([]byte, 4096)
	var last time.Time
	for {
		n, err := s.port.Read(buf)
		if n > 0 {
			now := time.Now()
			if l.idleGap > 0 && !last.IsZero() && now.Sub(last) > l.idleGap {
				dec.Reset() // MQTT-SN packets on a raw line do not pause halfway
			}
			last = now
			l.bytesIn.Add(uint64(n))
			for p := buf[:n]; len(p) > 0; {
				frame, k, err := dec.Next(p)
				p = p[k:]
				switch {
				case err != nil:
					l.countError(err)
				case frame != nil:
					l.handle(s, frame)
				}
			}
		}
		if err != nil {
			return err
		}
	}
}

func (l *Link) countError(err error) {
	if errors.Is(err, ErrChecksum) {
		l.checksumErrs.Add(1)
	} else {
		l.framingErrs.Add(1)
	}
	l.warnLimited("frame", "discarded a damaged frame", "err", err)
}

// warnLimited logs at Warn at most once a minute per key, at Debug otherwise.
func (l *Link) warnLimited(key, msg string, args ...any) {
	now := time.Now()
	l.statsMu.Lock()
	last, seen := l.warned[key]
	if !seen || now.Sub(last) >= time.Minute {
		l.warned[key] = now
		seen = false
	}
	l.statsMu.Unlock()
	if seen {
		l.log.Debug(msg, args...)
		return
	}
	l.log.Warn(msg, args...)
}

// handle takes one whole frame from the decoder.
func (l *Link) handle(s *session, frame []byte) {
	switch l.network {
	case NetworkSerial:
		l.deliver(portAddr(l.opts.Name), frame)
	case NetworkBridge:
		l.handleBridge(frame)
	case NetworkXBee:
		l.handleXBee(s, frame)
	}
}

func (l *Link) handleBridge(body []byte) {
	f, err := DecodeBridge(body)
	if err != nil {
		l.countError(err)
		return
	}
	switch f.Type {
	case BridgeRxData:
		a := BridgeAddr(f.Node)
		l.seen(a, f.RSSI, f.SNR)
		l.deliver(a, f.Data)
	case BridgeTxStatus:
		if f.Failed {
			l.txFailures.Add(1)
			l.warnLimited("tx", "the bridge board could not send a frame", "frame_id", f.FrameID, "reason", f.Reason)
		}
	case BridgeStatus:
		info := f.Info
		l.statsMu.Lock()
		l.bridgeInfo = &info
		l.statsMu.Unlock()
		if info.MaxDatagram > 0 {
			l.learnMTU(int(info.MaxDatagram), "the bridge board's max datagram")
		}
		l.log.Info("bridge board", "firmware", info.Firmware, "protocol", info.Version,
			"frequency_hz", info.FrequencyHz, "bandwidth_hz", info.BandwidthHz, "sf", info.SpreadingFactor,
			"cr", fmt.Sprintf("4/%d", info.CodingRate), "tx_power_dbm", info.TxPowerDBm, "max_datagram", info.MaxDatagram)
		if info.Version != BridgeProtocolVersion {
			l.log.Warn("the bridge board speaks another protocol version", "board", info.Version, "host", BridgeProtocolVersion)
		}
	default:
		l.countError(fmt.Errorf("%w: %v frame from the board", ErrUnknownType, f.Type))
	}
}

func (l *Link) handleXBee(s *session, data []byte) {
	f, err := DecodeXBee(data)
	if err != nil {
		l.countError(err)
		return
	}
	switch f.Type {
	case XBeeReceivePacket:
		a := XBeeAddr(f.Addr64)
		if f.Addr64 == 0xFFFFFFFFFFFFFFFF { // 64-bit address unknown
			a = XBeeAddr16(f.Addr16)
		}
		l.seen(a, RSSIUnknown, SNRUnknown)
		l.deliver(a, f.Data)
	case XBeeRX64, XBeeRX16:
		l.legacy.Store(true)
		a := XBeeAddr(f.Addr64)
		if f.Type == XBeeRX16 {
			a = XBeeAddr16(f.Addr16)
		}
		l.seen(a, -int16(f.RSSI), SNRUnknown)
		l.deliver(a, f.Data)
	case XBeeTransmitStatus, XBeeTXStatus:
		if f.Status != 0 {
			l.txFailures.Add(1)
			l.warnLimited("tx", "the XBee could not deliver a frame", "frame_id", f.FrameID, "status", fmt.Sprintf("0x%02x", f.Status))
		}
	case XBeeATResponse:
		f.Data = append([]byte(nil), f.Data...) // the decoder reuses its buffer
		select {
		case s.at <- f:
		default:
		}
	case XBeeModemStatus:
		l.log.Info("XBee modem status", "status", fmt.Sprintf("0x%02x", f.Status))
	default:
		l.countError(fmt.Errorf("%w: %v frame from the module", ErrUnknownType, f.Type))
	}
}

// seen updates the per-node statistics.
func (l *Link) seen(a Addr, rssi int16, snr int8) {
	key := a.String()
	now := time.Now()
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	n, ok := l.nodes[key]
	if !ok && len(l.nodes) >= maxNodes {
		var oldest string
		var t time.Time
		for k, v := range l.nodes {
			if oldest == "" || v.LastSeen.Before(t) {
				oldest, t = k, v.LastSeen
			}
		}
		delete(l.nodes, oldest)
	}
	n.RSSI, n.SNR, n.LastSeen = rssi, snr, now
	n.Frames++
	l.nodes[key] = n
}

// deliver queues a received datagram for ReadFrom; it copies data.
func (l *Link) deliver(a Addr, data []byte) {
	l.framesIn.Add(1)
	select {
	case l.in <- datagram{addr: a, data: append([]byte(nil), data...)}:
	default:
		l.droppedIn.Add(1)
		l.warnLimited("in", "nobody reads the link fast enough; dropped a received datagram", "from", a.String())
	}
}

// learnMTU sets the MTU to the smaller of the configured one and n, what
// the radio says it carries now (an XBee's NP, a board's max datagram, which
// changes with its radio settings).
func (l *Link) learnMTU(n int, why string) {
	mtu := int32(min(l.opts.MTU, n))
	if old := l.mtu.Swap(mtu); old != mtu {
		l.log.Info("MTU set", "mtu", mtu, "by", why)
	}
}

// nextFrameID cycles through 1..255; 0 (no status wanted) never comes out.
func (l *Link) nextFrameID() byte { return byte((l.ids.Add(1)-1)%255 + 1) }

// writer writes the link's own frames and then, once the start-up queries
// are done, the queued datagrams, paced.
func (l *Link) writer(ctx context.Context, s *session) error {
	ready := s.ready
	var queue chan datagram
	var buf []byte
	for {
		select { // the link's own frames go first
		case b := <-s.ctrl:
			if err := l.write(s.port, b); err != nil {
				return err
			}
			continue
		default:
		}
		var d datagram
		select {
		case <-ctx.Done():
			return nil
		case b := <-s.ctrl:
			if err := l.write(s.port, b); err != nil {
				return err
			}
			continue
		case <-ready:
			ready, queue = nil, l.out
			continue
		case d = <-queue:
		}
		if len(d.data) > l.MTU() {
			l.droppedOut.Add(1)
			l.warnLimited("mtu", "dropped a queued datagram longer than the MTU learned since", "len", len(d.data), "mtu", l.MTU(), "to", d.addr.String())
			continue
		}
		var err error
		buf, err = l.encode(buf[:0], d)
		if err != nil { // WriteTo checked the address and length
			l.droppedOut.Add(1)
			l.log.Error("cannot encode a datagram", "err", err)
			continue
		}
		if !l.pace.fits(len(buf)) {
			l.droppedOut.Add(1)
			l.warnLimited("duty", "dropped a datagram that needs more time on air than the duty-cycle budget", "len", len(d.data))
			continue
		}
		if at := l.pace.earliest(time.Now(), len(buf)); !sleepUntil(ctx, at) {
			return nil
		}
		start := time.Now()
		if err := l.write(s.port, buf); err != nil {
			return err
		}
		l.pace.sent(start, len(buf))
		l.framesOut.Add(1)
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	if d := time.Until(t); d > 0 {
		return sleepCtx(ctx, d)
	}
	return ctx.Err() == nil
}

func (l *Link) write(p port, b []byte) error {
	for len(b) > 0 {
		n, err := p.Write(b)
		l.bytesOut.Add(uint64(n))
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

// encode appends the frame that carries d to buf.
func (l *Link) encode(buf []byte, d datagram) ([]byte, error) {
	switch l.network {
	case NetworkBridge:
		f := BridgeFrame{Type: BridgeTxData, FrameID: l.nextFrameID(), Node: []byte(d.addr.id), Data: d.data}
		return AppendBridge(buf, &f)
	case NetworkXBee:
		f := XBeeFrame{FrameID: l.nextFrameID(), Data: d.data}
		id := []byte(d.addr.id)
		switch {
		case len(id) == 2:
			f.Type, f.Addr16 = XBeeTX16, uint16(id[0])<<8|uint16(id[1])
		case l.legacy.Load():
			f.Type, f.Addr64 = XBeeTX64, beUint64(id)
		default:
			f.Type, f.Addr64, f.Addr16 = XBeeTransmitRequest, beUint64(id), XBeeUnknown16
		}
		return AppendXBee(buf, &f, l.opts.Framing == FramingXBee)
	}
	return AppendRaw(buf, d.data)
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// ReadFrom returns the next datagram received and the node that sent it. A
// datagram longer than p is cut to len(p) and the error is
// io.ErrShortBuffer.
func (l *Link) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		l.rdMu.Lock()
		dl, changed := l.rdDeadline, l.rdChanged
		l.rdMu.Unlock()
		var timeout <-chan time.Time
		var timer *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		select {
		case d := <-l.in:
			if timer != nil {
				timer.Stop()
			}
			n := copy(p, d.data)
			if n < len(d.data) {
				return n, d.addr, io.ErrShortBuffer
			}
			return n, d.addr, nil
		case <-l.closed:
			if timer != nil {
				timer.Stop()
			}
			return 0, nil, net.ErrClosed
		case <-timeout:
			return 0, nil, os.ErrDeadlineExceeded
		case <-changed:
			if timer != nil {
				timer.Stop()
			}
		}
	}
}

// WriteTo queues p for the node at addr (an Addr of the link's network, or
// any net.Addr whose String parses as one) and returns at once. It fails
// with ErrQueueFull when the queue is full, and with ErrFrameTooLong when p
// is longer than the MTU; nothing is dropped without an error or a count.
func (l *Link) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-l.closed:
		return 0, net.ErrClosed
	default:
	}
	a, err := l.resolve(addr)
	if err != nil {
		return 0, err
	}
	switch mtu := l.MTU(); {
	case len(p) == 0:
		return 0, fmt.Errorf("serialbus: %s: empty datagram", l.opts.Name)
	case len(p) > mtu:
		return 0, fmt.Errorf("%w: %s: datagram of %d bytes, MTU %d", ErrFrameTooLong, l.opts.Name, len(p), mtu)
	case l.network == NetworkSerial:
		if err := checkRaw(p); err != nil {
			return 0, err
		}
	}
	if !l.pace.fits(len(p)) {
		return 0, fmt.Errorf("%w: %s: datagram of %d bytes", ErrDutyCycle, l.opts.Name, len(p))
	}
	select {
	case l.out <- datagram{addr: a, data: append([]byte(nil), p...)}:
		return len(p), nil
	default:
		l.queueFull.Add(1)
		return 0, fmt.Errorf("%w: %s: %d datagrams waiting", ErrQueueFull, l.opts.Name, cap(l.out))
	}
}

func (l *Link) resolve(addr net.Addr) (Addr, error) {
	var a Addr
	switch v := addr.(type) {
	case Addr:
		a = v
	case *Addr:
		if v == nil {
			return Addr{}, errors.New("serialbus: nil address")
		}
		a = *v
	case nil:
		return Addr{}, errors.New("serialbus: nil address")
	default:
		var err error
		if a, err = ParseAddr(l.network, addr.String()); err != nil {
			return Addr{}, err
		}
	}
	if a.network != l.network {
		return Addr{}, fmt.Errorf("serialbus: %s: a %s address cannot be reached on a %s link", l.opts.Name, a.network, l.network)
	}
	return a, a.check()
}

// Close makes ReadFrom and WriteTo fail with net.ErrClosed and stops Run.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.mu.Lock()
		if l.cancelRun != nil {
			l.cancelRun()
		}
		l.mu.Unlock()
	})
	return nil
}

// SetDeadline sets the read deadline; writes never block.
func (l *Link) SetDeadline(t time.Time) error { return l.SetReadDeadline(t) }

// SetReadDeadline makes ReadFrom fail with os.ErrDeadlineExceeded after t; a
// zero t means no deadline.
func (l *Link) SetReadDeadline(t time.Time) error {
	l.rdMu.Lock()
	l.rdDeadline = t
	close(l.rdChanged)
	l.rdChanged = make(chan struct{})
	l.rdMu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: WriteTo never blocks.
func (l *Link) SetWriteDeadline(time.Time) error { return nil }

// Stats returns the link's counters.
func (l *Link) Stats() Stats {
	st := Stats{
		State:          l.State(),
		MTU:            l.MTU(),
		Reconnects:     l.reconnects.Load(),
		FramesIn:       l.framesIn.Load(),
		FramesOut:      l.framesOut.Load(),
		BytesIn:        l.bytesIn.Load(),
		BytesOut:       l.bytesOut.Load(),
		ChecksumErrors: l.checksumErrs.Load(),
		FramingErrors:  l.framingErrs.Load(),
		QueueFull:      l.queueFull.Load(),
		DroppedIn:      l.droppedIn.Load(),
		DroppedOut:     l.droppedOut.Load(),
		TxFailures:     l.txFailures.Load(),
	}
	l.mu.Lock()
	st.Device = l.device
	l.mu.Unlock()
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	st.Nodes = make(map[string]NodeStats, len(l.nodes))
	for k, v := range l.nodes {
		st.Nodes[k] = v
	}
	if l.bridgeInfo != nil {
		b := *l.bridgeInfo
		st.Bridge = &b
	}
	if l.network == NetworkXBee {
		x := l.xbeeInfo
		x.Legacy = l.legacy.Load()
		st.XBee = &x
	}
	return st
}
