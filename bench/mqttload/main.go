// Command mqttload is the load generator of `make bench-broker`
// (scripts/bench-broker.sh). It speaks raw MQTT 3.1.1 over TCP through the
// broker's own allocation-free packet codec, so that the generator is not the
// bottleneck, and runs one scenario against one broker address:
//
//	fanin   -clients publishers (default 16) -> 1 subscriber
//	fanout  1 publisher -> -clients subscribers (default 16)
//	idle    -conns idle connections (CONNECT, keepalive 60) held for
//	        -duration while the broker's RSS (-pid) is sampled
//
// A run connects every subscriber first (SUBSCRIBE answered), then every
// publisher, publishes for -warmup, then measures for -duration, then stops
// the publishers and waits until the subscribers have been quiet for 300ms
// (at most 3s) so that the totals can say what was lost.
//
// Throughput is messages received by all subscribers during the measured
// window, per second. Latency is end to end: the publisher writes a monotonic
// timestamp (nanoseconds since this process started) into the first 8 bytes
// of the payload just before the write that carries it, and the subscriber
// takes the time when the read that returned the message completed; the
// messages received in the window fill a log-linear histogram (about 3%
// resolution) whose p50 and p99 are printed. Publishers and subscribers run
// in this one process, so they share one clock.
//
// QoS 1: every publisher keeps -window PUBLISHes unacknowledged at most
// (a packet id comes back to it with each PUBACK); subscribers acknowledge
// every delivery. The window paces a publisher by the broker's PUBACKs, but a
// broker acknowledges a message once it has it, not once it was delivered:
// when the subscribers are slower than the publishers (16 -> 1), the broker's
// session queue overflows and latency is queueing; -rate paces QoS 1 too.
// QoS 0 with -rate 0 is open-loop overload: publishers write as fast
// as the socket takes bytes, the broker may drop (its right for QoS 0) and
// latency measures queueing, not the broker. With -rate R the publishers
// together publish R messages per second on a fixed schedule (each publisher
// R/n, sending what is due in short batches), which is how latency is
// measured at a rate both brokers sustain.
//
// The last output line is "result key=value ..." for the script to read.
// Every run stops by itself: a watchdog ends the process after -timeout.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

type config struct {
	addr     string
	scenario string
	qos      byte
	size     int
	clients  int
	duration time.Duration
	warmup   time.Duration
	rate     float64
	window   int
	conns    int
	pid      int
	timeout  time.Duration
}

func main() {
	var cfg config
	var qos int
	freePort := flag.Bool("freeport", false, "print a free TCP port on 127.0.0.1 and exit")
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:1883", "broker address (loopback)")
	flag.StringVar(&cfg.scenario, "scenario", "fanin", "fanin, fanout or idle")
	flag.IntVar(&qos, "qos", 0, "QoS of publications and subscriptions: 0 or 1")
	flag.IntVar(&cfg.size, "size", 64, "payload bytes (at least 16)")
	flag.IntVar(&cfg.clients, "clients", 16, "publishers (fanin) or subscribers (fanout)")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time (idle: hold time)")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "publishing time before measuring")
	flag.Float64Var(&cfg.rate, "rate", 0, "total publish rate in messages/s; 0 publishes as fast as possible")
	flag.IntVar(&cfg.window, "window", 32, "QoS 1: unacknowledged PUBLISHes per publisher")
	flag.IntVar(&cfg.conns, "conns", 2000, "idle: connections to open")
	flag.IntVar(&cfg.pid, "pid", 0, "idle: broker process id whose RSS is sampled")
	flag.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "the process exits with status 3 after this long")
	flag.Parse()

	if *freePort {
		port, err := pickPort()
		if err != nil {
			fatalf("%v", err)
		}
		fmt.Println(port)
		return
	}
	cfg.qos = byte(qos)
	if err := cfg.check(); err != nil {
		fatalf("%v", err)
	}
	time.AfterFunc(cfg.timeout, func() {
		fmt.Fprintf(os.Stderr, "mqttload: timed out after %v\n", cfg.timeout)
		os.Exit(3)
	})
	var err error
	switch cfg.scenario {
	case "idle":
		err = runIdle(&cfg)
	default:
		err = runFlow(&cfg)
	}
	if err != nil {
		fatalf("%s: %v", cfg.scenario, err)
	}
}

func (c *config) check() error {
	switch {
	case c.scenario != "fanin" && c.scenario != "fanout" && c.scenario != "idle":
		return fmt.Errorf("unknown scenario %q", c.scenario)
	case c.qos > 1:
		return fmt.Errorf("qos %d: only 0 and 1", c.qos)
	case c.size < 16:
		return fmt.Errorf("size %d: at least 16 bytes", c.size)
	case c.clients < 1, c.window < 1 || c.window > 65535, c.conns < 1:
		return errors.New("clients, window and conns must be positive (window at most 65535)")
	case c.duration <= 0, c.warmup < 0, c.rate < 0:
		return errors.New("duration must be positive, warmup and rate not negative")
	}
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %s: load goes to loopback addresses only", c.addr)
	}
	return nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mqttload: "+format+"\n", args...)
	os.Exit(1)
}

func pickPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// epoch is the zero of the timestamps carried in payloads.
var epoch = time.Now()

// now is the monotonic time since epoch in nanoseconds.
func now() int64 { return int64(time.Since(epoch)) }

// --- connections ------------------------------------------------------------

const ioTimeout = 10 * time.Second

// framer splits a byte stream into packets without allocating: the body
// returned by next aliases the read buffer until the next fill.
type framer struct {
	nc   net.Conn
	buf  []byte
	r, w int
}

// newFramer reads nc through a buffer of size bytes (it grows for a larger
// packet).
func newFramer(nc net.Conn, size int) *framer { return &framer{nc: nc, buf: make([]byte, size)} }

// fill reads more bytes, keeping the unread ones.
func (f *framer) fill() error {
	if f.r > 0 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	if f.w == len(f.buf) {
		f.buf = append(f.buf, make([]byte, len(f.buf))...)
	}
	n, err := f.nc.Read(f.buf[f.w:])
	f.w += n
	if n > 0 {
		return nil
	}
	return err
}

// next returns the next whole packet in the buffer; ok is false when more
// bytes are needed.
func (f *framer) next() (h packet.FixedHeader, body []byte, ok bool, err error) {
	data := f.buf[f.r:f.w]
	h, n, err := packet.ParseFixedHeader(data)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return h, nil, false, nil
		}
		return h, nil, false, err
	}
	end := n + h.Remaining
	if end > len(data) {
		if end > len(f.buf) {
			f.buf = append(f.buf[:f.w], make([]byte, end)...)
			f.buf = f.buf[:cap(f.buf)]
		}
		return h, nil, false, nil
	}
	f.r += end
	return h, data[n:end], true, nil
}

// read returns the next packet, reading as needed.
func (f *framer) read() (packet.FixedHeader, []byte, error) {
	for {
		h, body, ok, err := f.next()
		if err != nil || ok {
			return h, body, err
		}
		if err := f.fill(); err != nil {
			return h, nil, err
		}
	}
}

func write(nc net.Conn, b []byte) error {
	if err := nc.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	_, err := nc.Write(b)
	return err
}

// dialMQTT opens a connection and completes CONNECT/CONNACK; the framer
// reads through a buffer of bufSize bytes.
func dialMQTT(addr, id string, bufSize int) (net.Conn, *framer, error) {
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, nil, err
	}
	cp := &packet.Connect{ProtocolName: "MQTT", ProtocolVersion: packet.V311, ClientID: id, CleanStart: true, KeepAlive: 60}
	if err := write(nc, packet.Append(nil, cp, packet.V311)); err != nil {
		nc.Close()
		return nil, nil, err
	}
	f := newFramer(nc, bufSize)
	_ = nc.SetReadDeadline(time.Now().Add(ioTimeout))
	h, body, err := f.read()
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%s: waiting for CONNACK: %w", id, err)
	}
	if h.Type != packet.TypeConnack || len(body) != 2 || body[1] != 0 {
		nc.Close()
		return nil, nil, fmt.Errorf("%s: refused: %s % x", id, h.Type, body)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return nc, f, nil
}

func subscribe(nc net.Conn, f *framer, filter string, qos byte) error {
	sp := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}
	if err := write(nc, packet.Append(nil, sp, packet.V311)); err != nil {
		return err
	}
	_ = nc.SetReadDeadline(time.Now().Add(ioTimeout))
	defer nc.SetReadDeadline(time.Time{})
	h, body, err := f.read()
	if err != nil {
		return fmt.Errorf("waiting for SUBACK: %w", err)
	}
	if h.Type != packet.TypeSuback || len(body) != 3 || body[2] != qos {
		return fmt.Errorf("SUBSCRIBE %s QoS %d answered with %s % x", filter, qos, h.Type, body)
	}
	return nil
}

func disconnect(nc net.Conn) {
	_ = write(nc, packet.Append(nil, &packet.Disconnect{}, packet.V311))
	nc.Close()
}

// --- latency histogram --------------------------------------------------------

// hist is a log-linear histogram of nanosecond values: exact below 64, then
// 32 buckets per power of two (about 3% wide).
type hist struct {
	counts [64 + 58*32]uint64
	n      uint64
}

func (h *hist) add(v int64) {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	i := int(u)
	if u >= 64 {
		e := bits.Len64(u) - 6 // u >> e is in [32, 63]
		i = 64 + (e-1)*32 + int(u>>e) - 32
	}
	h.counts[i]++
	h.n++
}

// value is the middle of bucket i.
func value(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	e := (i-64)/32 + 1
	m := uint64((i-64)%32 + 32)
	return int64(m<<e + (1<<e)/2)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the value at quantile q (0..1), 0 when empty.
func (h *hist) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return value(i)
		}
	}
	return value(len(h.counts) - 1)
}

// --- fan-in / fan-out -----------------------------------------------------------

type window struct{ start, end int64 } // measured interval, ns since epoch

type subscriber struct {
	nc      net.Conn
	f       *framer
	qos     byte
	win     *window
	got     atomic.Int64 // every PUBLISH received
	inWin   int64        // received during the window (owned by the reader)
	lat     hist
	badSize atomic.Int64
	size    int
}

// run reads deliveries until the connection closes, acknowledging QoS 1.
func (s *subscriber) run() error {
	var p packet.Publish
	ack := &packet.Ack{Kind: packet.TypePuback}
	var acks []byte
	for {
		if err := s.f.fill(); err != nil {
			return err
		}
		t := now()
		inWin := t >= s.win.start && t < s.win.end
		var n int64
		for {
			h, body, ok, err := s.f.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if h.Type != packet.TypePublish {
				continue
			}
			if err := packet.DecodePublish(&p, h.Flags, body, packet.V311); err != nil {
				return err
			}
			n++
			if len(p.Payload) != s.size {
				s.badSize.Add(1)
				continue
			}
			if inWin {
				s.inWin++
				s.lat.add(t - int64(binary.LittleEndian.Uint64(p.Payload)))
			}
			if p.QoS == 1 {
				ack.PacketID = p.PacketID
				acks = packet.Append(acks, ack, packet.V311)
			}
		}
		s.got.Add(n)
		if len(acks) > 0 {
			if err := write(s.nc, acks); err != nil {
				return err
			}
			acks = acks[:0]
		}
	}
}

type publisher struct {
	nc    net.Conn
	f     *framer
	topic string
	cfg   *config
	rate  float64 // this publisher's messages/s; 0 unbounded
	stop  *atomic.Bool
	sent  atomic.Int64
	slots chan uint16 // QoS 1: free packet ids
}

// batchBytes bounds the bytes encoded for one write.
const batchBytes = 32 << 10

// run publishes until stop is set.
func (p *publisher) run() error {
	payload := make([]byte, p.cfg.size)
	for i := 16; i < len(payload); i++ {
		payload[i] = byte(i)
	}
	pub := &packet.Publish{Topic: p.topic, QoS: p.cfg.qos, Payload: payload}
	buf := make([]byte, 0, batchBytes+p.cfg.size+64)
	start := now()
	var sent int64
	for !p.stop.Load() {
		allow := int64(1 << 30)
		if p.rate > 0 {
			due := int64(float64(now()-start)*p.rate/1e9) + 1 - sent
			if due <= 0 {
				// Sleep until the next message is due.
				next := start + int64(float64(sent)*1e9/p.rate)
				time.Sleep(time.Duration(next - now()))
				continue
			}
			allow = due
		}
		buf = buf[:0]
		t := now()
		binary.LittleEndian.PutUint64(payload, uint64(t))
		binary.LittleEndian.PutUint64(payload[8:], uint64(sent))
		var n int64
		for n < allow && len(buf) < batchBytes {
			if p.cfg.qos == 1 {
				if pub.PacketID = p.slot(n == 0); pub.PacketID == 0 {
					break // window full (for 100ms when waiting): write, look at stop again
				}
			}
			buf = packet.Append(buf, pub, packet.V311)
			pub.PacketID = 0
			n++
		}
		if n == 0 {
			continue
		}
		if p.cfg.qos == 1 {
			// The batch waited for packet ids: stamp with the time of the write.
			t = now()
			overwriteStamps(buf, int(n), t)
		}
		if err := write(p.nc, buf); err != nil {
			return err
		}
		sent += n
		p.sent.Add(n)
	}
	return nil
}

// slot takes a free packet id from the window, waiting up to 100ms for one
// when wait is set; 0 means none.
func (p *publisher) slot(wait bool) uint16 {
	select {
	case id := <-p.slots:
		return id
	default:
	}
	if !wait {
		return 0
	}
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case id := <-p.slots:
		return id
	case <-t.C:
		return 0
	}
}

// overwriteStamps rewrites the timestamp of the n PUBLISHes in buf.
func overwriteStamps(buf []byte, n int, t int64) {
	for range n {
		h, hn, err := packet.ParseFixedHeader(buf)
		if err != nil {
			return
		}
		body := buf[hn : hn+h.Remaining]
		tl := int(binary.BigEndian.Uint16(body))
		off := 2 + tl
		if (h.Flags>>1)&3 > 0 {
			off += 2
		}
		binary.LittleEndian.PutUint64(body[off:], uint64(t))
		buf = buf[hn+h.Remaining:]
	}
}

// readAcks returns the packet id of every PUBACK to the window.
func (p *publisher) readAcks() error {
	for {
		h, body, err := p.f.read()
		if err != nil {
			return err
		}
		if h.Type == packet.TypePuback && len(body) >= 2 {
			p.slots <- binary.BigEndian.Uint16(body)
		}
	}
}

func runFlow(cfg *config) error {
	nsub, npub := 1, cfg.clients
	if cfg.scenario == "fanout" {
		nsub, npub = cfg.clients, 1
	}
	tag := strconv.Itoa(os.Getpid())
	base := "bench/" + tag + "/" + cfg.scenario
	filter := base + "/+"

	win := &window{start: 1<<63 - 1, end: 1<<63 - 1}
	subs := make([]*subscriber, nsub)
	for i := range subs {
		nc, f, err := dialMQTT(cfg.addr, fmt.Sprintf("mqttload-%s-sub-%d", tag, i), 256<<10)
		if err != nil {
			return err
		}
		defer nc.Close()
		if err := subscribe(nc, f, filter, cfg.qos); err != nil {
			return err
		}
		subs[i] = &subscriber{nc: nc, f: f, qos: cfg.qos, win: win, size: cfg.size}
	}
	var stop atomic.Bool
	pubs := make([]*publisher, npub)
	for i := range pubs {
		nc, f, err := dialMQTT(cfg.addr, fmt.Sprintf("mqttload-%s-pub-%d", tag, i), 4<<10)
		if err != nil {
			return err
		}
		defer nc.Close()
		p := &publisher{nc: nc, f: f, topic: fmt.Sprintf("%s/%d", base, i), cfg: cfg,
			rate: cfg.rate / float64(npub), stop: &stop}
		if cfg.qos == 1 {
			p.slots = make(chan uint16, cfg.window)
			for id := 1; id <= cfg.window; id++ {
				p.slots <- uint16(id)
			}
		}
		pubs[i] = p
	}

	// The window is set before any goroutine starts; they only read it.
	t0 := now()
	win.start = t0 + int64(cfg.warmup)
	win.end = win.start + int64(cfg.duration)

	errs := make(chan error, nsub+2*npub)
	var subWG, pubWG sync.WaitGroup
	for _, s := range subs {
		subWG.Go(func() { errs <- s.run() })
	}
	for _, p := range pubs {
		pubWG.Go(func() {
			if err := p.run(); err != nil {
				errs <- fmt.Errorf("publisher: %w", err)
			}
		})
		if cfg.qos == 1 {
			subWG.Go(func() { errs <- p.readAcks() })
		}
	}

	// Publish through warm-up and window, watching for early failures.
	deadline := time.Now().Add(cfg.warmup + cfg.duration)
	var failure error
wait:
	for time.Now().Before(deadline) {
		select {
		case err := <-errs:
			failure = err
			break wait
		case <-time.After(time.Until(deadline)):
		}
	}
	stop.Store(true)
	pubWG.Wait()

	// Drain: wait until the subscribers have been quiet for 300ms (at most 3s).
	total := func() int64 {
		var n int64
		for _, s := range subs {
			n += s.got.Load()
		}
		return n
	}
	drainEnd := time.Now().Add(3 * time.Second)
	last, quietSince := total(), time.Now()
	for failure == nil && time.Now().Before(drainEnd) && time.Since(quietSince) < 300*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
		if n := total(); n != last {
			last, quietSince = n, time.Now()
		}
	}
	for _, p := range pubs {
		disconnect(p.nc)
	}
	for _, s := range subs {
		disconnect(s.nc)
	}
	subWG.Wait()
	if failure != nil {
		return failure
	}

	var lat hist
	var inWin, received, bad int64
	for _, s := range subs {
		lat.merge(&s.lat)
		inWin += s.inWin
		received += s.got.Load()
		bad += s.badSize.Load()
	}
	var sent int64
	for _, p := range pubs {
		sent += p.sent.Load()
	}
	if bad > 0 {
		return fmt.Errorf("%d deliveries had a payload of the wrong size", bad)
	}
	expected := sent * int64(nsub)
	loss := 0.0
	if expected > 0 {
		loss = 100 * float64(expected-min(received, expected)) / float64(expected)
	}
	fmt.Printf("result scenario=%s qos=%d size=%d rate=%g clients=%d msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f sent=%d expected=%d received=%d loss_pct=%.2f\n",
		cfg.scenario, cfg.qos, cfg.size, cfg.rate, cfg.clients,
		float64(inWin)/cfg.duration.Seconds(),
		float64(lat.quantile(0.50))/1e3, float64(lat.quantile(0.99))/1e3,
		sent, expected, received, loss)
	return nil
}

// --- idle connections -------------------------------------------------------------

func runIdle(cfg *config) error {
	before, _ := procStatus(cfg.pid, "VmRSS")
	conns := make([]net.Conn, cfg.conns)
	defer func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	tag := strconv.Itoa(os.Getpid())
	begin := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(conns) {
					return
				}
				nc, _, err := dialMQTT(cfg.addr, fmt.Sprintf("mqttload-%s-idle-%d", tag, i), 64)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = nc
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	connectTime := time.Since(begin)

	// Hold, sampling the broker's resident set.
	var held int64
	end := time.Now().Add(cfg.duration)
	for time.Now().Before(end) {
		if v, err := procStatus(cfg.pid, "VmRSS"); err == nil {
			held = max(held, v)
		}
		time.Sleep(250 * time.Millisecond)
	}
	hwm, _ := procStatus(cfg.pid, "VmHWM")
	for i, nc := range conns {
		disconnect(nc)
		conns[i] = nil
	}
	perConn := 0.0
	if held > 0 && before > 0 {
		perConn = float64(held-before) / float64(cfg.conns)
	}
	fmt.Printf("result scenario=idle conns=%d connect_s=%.2f rss_before_kb=%d rss_held_kb=%d hwm_kb=%d kb_per_conn=%.1f\n",
		cfg.conns, connectTime.Seconds(), before, held, hwm, perConn)
	return nil
}

// procStatus reads a kB field of /proc/PID/status.
func procStatus(pid int, field string) (int64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
