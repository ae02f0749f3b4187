package blackbox

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Store and forward through the real binary: a fast raw QoS 1 publisher on
// the LAN side, Debian's mosquitto as the cloud, and a raw subscriber at the
// cloud with a persistent session there, so that it misses nothing the
// bridge delivers while it is away. Outages, kill -9 of outpost while it
// takes messages and while it drains them.
//
// The default run sends 5000 messages per test; `make soak-uplink` passes
// -long for 100000 (OUTPOST_SOAK_N sets any other count).

var long = flag.Bool("long", false, "store-and-forward tests with 100000 messages (make soak-uplink)")

// sfCount is the number of messages of each store-and-forward test.
func sfCount(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("OUTPOST_SOAK_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			t.Fatalf("OUTPOST_SOAK_N=%q: want a count of at least 10", s)
		}
		return n
	}
	if *long {
		return 100000
	}
	return 5000
}

// sfWindow is the bridge's window of QoS 1 messages in flight to the cloud
// in these tests (the config's default is 64). A kill -9 can only duplicate what was in flight:
// sent and not yet acknowledged, or acknowledged by the cloud and not yet
// removed from the spool, at most twice the window.
const sfWindow = 16

// sfTopic is where the publisher publishes; sfRemote is where the bridge
// puts it at the cloud.
const (
	sfTopic  = "sensors/t"
	sfRemote = "site7/sensors/t"
)

// sfUplink is the [[uplink]] of the store-and-forward tests, with more keys
// of the table in extra.
func sfUplink(cloudPort int, extra string) string {
	return fmt.Sprintf(`
[[uplink]]
name = "site7"
url = "mqtt://127.0.0.1:%d"
client_id = "outpost-site7"
reconnect_min = "50ms"
reconnect_max = "500ms"
window = %d
%s
[[uplink.rule]]
direction = "out"
local = "sensors/#"
remote = "site7/sensors/#"
max_qos = 1
`, cloudPort, sfWindow, extra)
}

// --- the cloud: mosquitto with persistence ---------------------------------

// sfCloud is mosquitto on a fixed loopback port with persistence in its
// folder, so that a subscriber's persistent session (and the messages
// queued for it) outlives a stop and start of the cloud. Its queues are
// unbounded: mosquitto's default of 1000 queued messages per client would
// drop what a slow subscriber has not taken yet.
type sfCloud struct {
	t    *testing.T
	dir  string
	port int
	p    *proc
}

func newSFCloud(t *testing.T) *sfCloud {
	t.Helper()
	peer(t, "mosquitto")
	return &sfCloud{t: t, dir: t.TempDir(), port: freePort(t)}
}

func (c *sfCloud) addr() string { return fmt.Sprintf("127.0.0.1:%d", c.port) }

// start starts mosquitto and waits until it runs.
func (c *sfCloud) start() {
	c.t.Helper()
	cfg := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
max_queued_messages 0
max_inflight_messages 100
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
`, c.port, c.dir)
	if os.Geteuid() == 0 {
		cfg += "user root\n" // else mosquitto runs as "mosquitto", which cannot write t.TempDir()
	}
	conf := filepath.Join(c.dir, "cloud.conf")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.p = startProc(c.t, peer(c.t, "mosquitto"), "-c", conf)
	c.p.waitLine(10*time.Second, "mosquitto version", "running")
}

// stop stops mosquitto with SIGTERM, which saves its database.
func (c *sfCloud) stop() {
	c.t.Helper()
	c.p.stop(syscall.SIGTERM)
}

// --- raw MQTT 3.1.1 encoding -------------------------------------------------

func appendVarint(b []byte, n int) []byte {
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func appendStr(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

// connect311Packet is a 3.1.1 CONNECT, keep alive 60.
func connect311Packet(clientID string, clean bool) []byte {
	var flags byte
	if clean {
		flags = 0x02
	}
	body := appendStr(nil, "MQTT")
	body = append(body, 4, flags, 0, 60)
	body = appendStr(body, clientID)
	return append(appendVarint([]byte{0x10}, len(body)), body...)
}

// appendPublish1 appends a QoS 1 PUBLISH.
func appendPublish1(b []byte, topic string, id uint16, payload []byte) []byte {
	b = appendVarint(append(b, 0x32), 2+len(topic)+2+len(payload))
	b = appendStr(b, topic)
	b = append(b, byte(id>>8), byte(id))
	return append(b, payload...)
}

// readPacket reads one packet: its first byte and its body.
func readPacket(br *bufio.Reader) (byte, []byte, error) {
	first, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, errors.New("remaining length longer than 4 bytes")
		}
		c, err := br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(c&0x7f) * mult
		mult <<= 7
		if c&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, nil, err
	}
	return first, body, nil
}

// sfPayload is the payload of message seq: its number, 8 digits.
func sfPayload(seq int) []byte { return fmt.Appendf(nil, "%08d", seq) }

// --- the publishers ----------------------------------------------------------

// rawPublisher publishes its share of messages 1..n at QoS 1 on one
// connection as fast as the broker acknowledges them, up to window
// unacknowledged, and records which ones were acknowledged. Publisher p of
// P publishes p+1, p+1+P, p+1+2P, ...: the numbers of each publisher
// increase, and MQTT orders the messages of one publisher.
type rawPublisher struct {
	nc   net.Conn
	done chan struct{} // closed when the reader ended; err is then set
	err  error         // nil when all were acknowledged

	mu      sync.Mutex
	pending map[uint16]int // packet id -> message
	acked   []int          // in the order of the PUBACKs
	written int            // the highest message handed to the socket
}

// startPublisher connects publisher p of P (a 3.1.1 client) to outpost and
// starts publishing its messages among 1..n to sfTopic.
func startPublisher(t *testing.T, addr string, p, P, n, window int) *rawPublisher {
	t.Helper()
	c := dialRaw(t, addr)
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(connect311Packet(fmt.Sprintf("sf-pub-%d", p), true)); err != nil {
		t.Fatal(err)
	}
	c.expectExact(connack311)
	_ = c.nc.SetDeadline(time.Time{})
	pub := &rawPublisher{nc: c.nc, done: make(chan struct{}), pending: make(map[uint16]int)}
	total := 0
	for x := p + 1; x <= n; x += P {
		total++
	}
	free := make(chan uint16, window)
	for id := 1; id <= window; id++ {
		free <- uint16(id)
	}
	go func() { // the writer; it ends when the reader does
		bw := bufio.NewWriterSize(c.nc, 64<<10)
		var buf []byte
		for x := p + 1; x <= n; x += P {
			var id uint16
			select {
			case id = <-free:
			default:
				if bw.Flush() != nil {
					return
				}
				select {
				case id = <-free:
				case <-pub.done:
					return
				}
			}
			pub.mu.Lock()
			pub.pending[id] = x
			pub.mu.Unlock()
			buf = appendPublish1(buf[:0], sfTopic, id, sfPayload(x))
			if _, err := bw.Write(buf); err != nil {
				return
			}
			pub.mu.Lock()
			pub.written = x
			pub.mu.Unlock()
		}
		_ = bw.Flush()
	}()
	go func() { // the reader: PUBACKs
		defer close(pub.done)
		for pub.ackedCount() < total {
			first, body, err := readPacket(c.br)
			if err != nil {
				pub.err = err
				return
			}
			if first != 0x40 || len(body) != 2 {
				pub.err = fmt.Errorf("publisher got packet %02X % X; want only PUBACKs", first, body)
				return
			}
			id := uint16(body[0])<<8 | uint16(body[1])
			pub.mu.Lock()
			x, ok := pub.pending[id]
			delete(pub.pending, id)
			if ok {
				pub.acked = append(pub.acked, x)
			}
			pub.mu.Unlock()
			if !ok {
				pub.err = fmt.Errorf("PUBACK for packet id %d, which is not in flight", id)
				return
			}
			free <- id
		}
	}()
	return pub
}

func (p *rawPublisher) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// pubGroup is P publishers that publish messages 1..n between them.
type pubGroup struct {
	P    int
	pubs []*rawPublisher
}

// sfPublishers is how many publishers publish at once: outpost syncs the
// spool once for the messages that arrive together, so several publishers
// are faster than one (a sync takes a millisecond or more).
const sfPublishers = 8

func startPublishers(t *testing.T, addr string, n int) *pubGroup {
	t.Helper()
	g := &pubGroup{P: sfPublishers}
	for p := range g.P {
		g.pubs = append(g.pubs, startPublisher(t, addr, p, g.P, n, 32))
	}
	return g
}

func (g *pubGroup) ackedCount() int {
	n := 0
	for _, p := range g.pubs {
		n += p.ackedCount()
	}
	return n
}

// ended reports whether a publisher ended, and its error.
func (g *pubGroup) ended() (bool, error) {
	for _, p := range g.pubs {
		select {
		case <-p.done:
			return true, p.err
		default:
		}
	}
	return false, nil
}

// wait waits up to d for every publisher to end and returns the first
// error.
func (g *pubGroup) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	deadline := time.After(d)
	var first error
	for _, p := range g.pubs {
		select {
		case <-p.done:
			if first == nil {
				first = p.err
			}
		case <-deadline:
			t.Fatalf("publishers still running after %v (%d acknowledged)", d, g.ackedCount())
		}
	}
	return first
}

// result returns the acknowledged messages, sorted, and a test of whether
// a message was handed to the socket.
func (g *pubGroup) result(t *testing.T) (acked []int, written func(int) bool) {
	t.Helper()
	high := make([]int, g.P)
	for i, p := range g.pubs {
		p.mu.Lock()
		// One connection's PUBACKs come in the order of its PUBLISHes.
		if !slices.IsSorted(p.acked) {
			t.Errorf("publisher %d: PUBACKs out of order: %v", i, p.acked)
		}
		acked = append(acked, p.acked...)
		high[i] = p.written
		p.mu.Unlock()
	}
	slices.Sort(acked)
	return acked, func(x int) bool { return x >= 1 && x <= high[(x-1)%g.P] }
}

// --- the subscriber at the cloud ---------------------------------------------

// cloudSubscriber is a raw 3.1.1 client of the cloud with a persistent
// session subscribed to site7/sensors/# at QoS 1. It acknowledges every
// delivery and records the message numbers in arrival order.
type cloudSubscriber struct {
	t    *testing.T
	nc   net.Conn
	done chan struct{}
	err  error

	mu  sync.Mutex
	got []int // duplicates included
}

// sfSubID is the client id of the cloud subscriber.
const sfSubID = "sf-sub"

// createSubscription makes the subscriber's persistent session at the cloud
// and leaves: the cloud queues what arrives for it from now on.
func createSubscription(t *testing.T, c *sfCloud) {
	t.Helper()
	conn := dialRaw(t, c.addr())
	_ = conn.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.nc.Write(connect311Packet(sfSubID, false)); err != nil {
		t.Fatal(err)
	}
	conn.expectExact(connack311) // a new session
	// SUBSCRIBE id 1, "site7/sensors/#" QoS 1 -> SUBACK granted QoS 1.
	sub := appendStr([]byte{0x00, 0x01}, "site7/sensors/#")
	sub = append(sub, 1)
	if _, err := conn.nc.Write(append(appendVarint([]byte{0x82}, len(sub)), sub...)); err != nil {
		t.Fatal(err)
	}
	conn.expectExact("90 03 00 01 01")
	conn.write(disconnect)
	conn.expectClosed(5 * time.Second)
}

// resumeSubscription connects the subscriber to its session and starts
// taking messages.
func resumeSubscription(t *testing.T, c *sfCloud) *cloudSubscriber {
	t.Helper()
	conn := dialRaw(t, c.addr())
	_ = conn.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.nc.Write(connect311Packet(sfSubID, false)); err != nil {
		t.Fatal(err)
	}
	conn.expectExact(connack311Present)
	_ = conn.nc.SetDeadline(time.Time{})
	s := &cloudSubscriber{t: t, nc: conn.nc, done: make(chan struct{})}
	go s.read(conn.br)
	t.Cleanup(func() {
		conn.nc.Close()
		<-s.done
	})
	return s
}

func (s *cloudSubscriber) read(br *bufio.Reader) {
	defer close(s.done)
	bw := bufio.NewWriter(s.nc)
	for {
		first, body, err := readPacket(br)
		if err != nil {
			s.err = err
			return
		}
		if first&0xF0 != 0x30 || first&0x06 != 0x02 {
			s.err = fmt.Errorf("subscriber got packet %02X % X; want QoS 1 PUBLISHes", first, body)
			return
		}
		if len(body) < 2 {
			s.err = fmt.Errorf("short PUBLISH % X", body)
			return
		}
		tl := int(body[0])<<8 | int(body[1])
		if len(body) < 2+tl+2 {
			s.err = fmt.Errorf("short PUBLISH % X", body)
			return
		}
		topic, id, payload := string(body[2:2+tl]), body[2+tl:4+tl], body[4+tl:]
		if topic != sfRemote {
			s.err = fmt.Errorf("message on %q; want %q", topic, sfRemote)
			return
		}
		x, err := strconv.Atoi(string(payload))
		if err != nil {
			s.err = fmt.Errorf("payload %q is not a message number", payload)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, x)
		s.mu.Unlock()
		_, _ = bw.Write([]byte{0x40, 0x02, id[0], id[1]})
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				s.err = err
				return
			}
		}
	}
}

// arrived returns the message numbers in arrival order.
func (s *cloudSubscriber) arrived() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// distinct returns how many different messages arrived.
func (s *cloudSubscriber) distinct() int {
	seen := make(map[int]bool)
	for _, x := range s.arrived() {
		seen[x] = true
	}
	return len(seen)
}

// waitFor polls until every message in want arrived, for up to d.
func (s *cloudSubscriber) waitFor(want []int, d time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.arrived()
		missing := missingFrom(got, want)
		if len(missing) == 0 {
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("the cloud subscriber stopped (%v) with %d of %d messages; missing %s", s.err, len(want)-len(missing), len(want), ranges(missing))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %v the cloud has %d of %d messages; missing %s", d, len(want)-len(missing), len(want), ranges(missing))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// missingFrom returns the members of want that are not in got.
func missingFrom(got, want []int) []int {
	seen := make(map[int]bool, len(got))
	for _, x := range got {
		seen[x] = true
	}
	var out []int
	for _, x := range want {
		if !seen[x] {
			out = append(out, x)
		}
	}
	return out
}

// ranges writes sorted numbers as "1-5, 9" (at most 20 ranges).
func ranges(xs []int) string {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	var s []byte
	for i, n := 0, 0; i < len(xs); n++ {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if n == 20 {
			s = fmt.Appendf(s, ", ... (%d in all)", len(xs))
			break
		}
		if n > 0 {
			s = append(s, ", "...)
		}
		if i == j {
			s = strconv.AppendInt(s, int64(xs[i]), 10)
		} else {
			s = fmt.Appendf(s, "%d-%d", xs[i], xs[j])
		}
		i = j + 1
	}
	return string(s)
}

// checkArrivals checks what the cloud got: the first occurrences of each
// publisher's messages in increasing order (the order of publication),
// only messages that were published, and at most maxDups duplicates. It
// returns the number of duplicates.
func checkArrivals(t *testing.T, got []int, published func(int) bool, maxDups int) int {
	t.Helper()
	seen := make(map[int]bool, len(got))
	last := make([]int, sfPublishers)
	dups := 0
	for i, x := range got {
		if !published(x) {
			t.Fatalf("arrival %d is message %d, which was never published", i, x)
		}
		if seen[x] {
			dups++
			continue
		}
		seen[x] = true
		p := (x - 1) % sfPublishers
		if x < last[p] {
			t.Fatalf("arrival %d is message %d for the first time, after message %d of the same publisher: out of order", i, x, last[p])
		}
		last[p] = x
	}
	if dups > maxDups {
		t.Fatalf("%d duplicates at the cloud; at most %d can have been in flight", dups, maxDups)
	}
	return dups
}

// upTo returns a test for the messages 1..n.
func upTo(n int) func(int) bool { return func(x int) bool { return x >= 1 && x <= n } }

func seq(from, to int) []int {
	out := make([]int, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// sfSetup starts the cloud, makes the subscriber's session there, and
// stops the cloud again: the outage begins.
func sfSetup(t *testing.T) *sfCloud {
	t.Helper()
	c := newSFCloud(t)
	c.start()
	createSubscription(t, c)
	c.stop()
	return c
}

// An outage: the cloud is down while n QoS 1 messages are published to
// outpost, which acknowledges them from its spool; when the cloud is back,
// all of them arrive, in order, and none twice (nothing was in flight).
func TestStoreForwardOutage(t *testing.T) {
	n := sfCount(t)
	c := newSFCloud(t)
	c.start()
	createSubscription(t, c)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := runOutpost(t, dir, addr, sfUplink(c.port, ""))
	c.p.waitLine(15*time.Second, "New client connected", "as outpost-site7")
	c.stop()

	start := time.Now()
	pub := startPublishers(t, o.addr, n)
	if err := pub.wait(t, time.Duration(n/100+60)*time.Second); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Logf("%d messages acknowledged by outpost in %v (%.0f/s) with the cloud down", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())

	start = time.Now()
	c.start()
	sub := resumeSubscription(t, c)
	sub.waitFor(seq(1, n), time.Duration(n/200+60)*time.Second)
	t.Logf("all %d at the cloud %v after it came back", n, time.Since(start).Round(time.Millisecond))
	if dups := checkArrivals(t, sub.arrived(), upTo(n), 0); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	o.signal(syscall.SIGTERM)
	if code := o.waitExit(10 * time.Second); code != 0 {
		t.Errorf("outpost exited %d after SIGTERM; want 0", code)
	}
}

// A crash while taking messages: outpost is killed with SIGKILL while the
// publisher is mid-stream and the cloud is down. After a restart every
// message that the publisher got a PUBACK for reaches the cloud, in order;
// of the others (written, not acknowledged) some may arrive too.
func TestStoreForwardKillWhilePublishing(t *testing.T) {
	n := sfCount(t)
	c := sfSetup(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := runOutpost(t, dir, addr, sfUplink(c.port, ""))

	pub := startPublishers(t, o.addr, n)
	deadline := time.Now().Add(time.Duration(n/100+60) * time.Second)
	for pub.ackedCount() < n/3 {
		if ended, err := pub.ended(); ended {
			t.Fatalf("a publisher ended before the kill: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages acknowledged", pub.ackedCount(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	o.kill9()
	if err := pub.wait(t, 10*time.Second); err == nil {
		t.Fatal("the publisher got every PUBACK although outpost was killed mid-stream")
	}
	acked, written := pub.result(t)
	t.Logf("killed with %d acknowledged", len(acked))
	if len(acked) >= n {
		t.Fatal("every message was acknowledged before the kill")
	}

	o = runOutpost(t, dir, addr, sfUplink(c.port, ""))
	c.start()
	sub := resumeSubscription(t, c)
	sub.waitFor(acked, time.Duration(n/200+60)*time.Second)
	dups := checkArrivals(t, sub.arrived(), written, 0)
	t.Logf("the cloud got all %d acknowledged (and %d of the unacknowledged) with %d duplicates", len(acked), sub.distinct()-len(acked), dups)
	o.signal(syscall.SIGTERM)
	if code := o.waitExit(10 * time.Second); code != 0 {
		t.Errorf("outpost exited %d after SIGTERM; want 0", code)
	}
}

// A crash while draining: the cloud is up and a backlog of n messages is
// draining (paced by a rate limit, so that the kill comes mid-drain) when
// outpost is killed with SIGKILL. After a restart the rest arrives: nothing
// that was acknowledged to the publisher is missing, the first occurrences
// are in order, and only what was in flight arrives twice.
func TestStoreForwardKillWhileDraining(t *testing.T) {
	n := sfCount(t)
	c := sfSetup(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := sfUplink(c.port, "rate_limit = 5000\nrate_burst = 100\n")
	o := runOutpost(t, dir, addr, cfg)

	pub := startPublishers(t, o.addr, n)
	if err := pub.wait(t, time.Duration(n/100+60)*time.Second); err != nil {
		t.Fatalf("publisher: %v", err)
	}

	c.start()
	sub := resumeSubscription(t, c)
	deadline := time.Now().Add(30 * time.Second)
	for sub.distinct() < n/5 {
		if time.Now().After(deadline) {
			t.Fatalf("the drain did not get going: %d of %d at the cloud after 30s", sub.distinct(), n)
		}
		time.Sleep(time.Millisecond)
	}
	o.kill9()
	atKill := sub.distinct()
	if atKill >= n {
		t.Fatalf("the drain was over (%d of %d) before the kill", atKill, n)
	}
	t.Logf("killed mid-drain with %d of %d at the cloud", atKill, n)

	o = runOutpost(t, dir, addr, cfg)
	sub.waitFor(seq(1, n), time.Duration(n/1000+60)*time.Second)
	dups := checkArrivals(t, sub.arrived(), upTo(n), 2*sfWindow)
	t.Logf("all %d at the cloud after the restart, %d duplicates", n, dups)
	o.signal(syscall.SIGTERM)
	if code := o.waitExit(10 * time.Second); code != 0 {
		t.Errorf("outpost exited %d after SIGTERM; want 0", code)
	}
}
