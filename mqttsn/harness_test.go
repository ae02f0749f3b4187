package mqttsn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outpost-gw/outpost/localbroker"
	bpacket "github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

func subs(filter string, qos byte) []bpacket.Subscription {
	return []bpacket.Subscription{{Filter: filter, QoS: qos}}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs to stderr at debug level when OUTPOST_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("OUTPOST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// runUntilStopped runs a component until the returned stop is called (or
// the test ends), after waiting for it to be ready.
func runUntilStopped(t testing.TB, name string, run func(context.Context) error, ready <-chan struct{}) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("%s Run: %v", name, err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatalf("%s not ready", name)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("%s Run returned %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop within 10s", name)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// startBroker runs a localbroker with a tcp listener on a free loopback
// port and returns it with the listener's address.
func startBroker(t testing.TB) (*localbroker.Broker, string) {
	t.Helper()
	b, err := localbroker.New(localbroker.Options{
		Listeners:   []localbroker.ListenerOptions{{Name: "tcp", Address: "127.0.0.1:0", AllowAnonymous: true}},
		SysInterval: -1,
		Logger:      testLogger(),
	}, localbroker.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "broker", b.Run, b.Ready())
	return b, b.Addrs()["tcp"].String()
}

// startGateway runs a gateway on one UDP transport on 127.0.0.1 (unless
// opts names transports) in front of b, and returns it with the UDP address
// of its first transport. It is stopped before the broker.
func startGateway(t testing.TB, b Broker, opts Options) (*Gateway, *net.UDPAddr) {
	t.Helper()
	if len(opts.Transports) == 0 {
		opts.Transports = []Transport{{Name: "udp", Addr: "127.0.0.1:0"}}
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	g, err := New(opts, Deps{Broker: b})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	runUntilStopped(t, "gateway", g.Run, g.Ready())
	a, _ := g.Addrs()[opts.Transports[0].Name].(*net.UDPAddr)
	return g, a
}

// env is a broker with a tcp listener and a gateway in front of it.
type env struct {
	b      *localbroker.Broker
	tcp    string
	g      *Gateway
	gwAddr *net.UDPAddr
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	b, tcp := startBroker(t)
	g, a := startGateway(t, b, opts)
	return &env{b: b, tcp: tcp, g: g, gwAddr: a}
}

// --- the test MQTT-SN client -------------------------------------------------

// snClient is a tiny MQTT-SN client on its own UDP socket, speaking through
// the codec.
type snClient struct {
	t    testing.TB
	conn net.PacketConn
	gw   net.Addr
	// node, when set, wraps every message in a forwarder encapsulation with
	// this Wireless Node Id, and expects the answers encapsulated.
	node  []byte
	fwd   bool
	msgID uint16
	// wait bounds expect; 0 means recvTimeout. Under synctest, where time
	// is fake, it is long.
	wait time.Duration
	buf  []byte
}

func (c *snClient) timeout() time.Duration {
	if c.wait > 0 {
		return c.wait
	}
	return recvTimeout
}

func newSNClient(t testing.TB, gw net.Addr) *snClient {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &snClient{t: t, conn: c, gw: gw}
}

func (c *snClient) nextID() uint16 {
	c.msgID++
	if c.msgID == 0 {
		c.msgID = 1
	}
	return c.msgID
}

func (c *snClient) send(m packet.Message) {
	c.t.Helper()
	if err := packet.Validate(m); err != nil {
		c.t.Fatalf("test client builds an invalid %s: %v", m.Type(), err)
	}
	var b []byte
	if c.fwd {
		b = packet.AppendEncapsulationHeader(b, 0, c.node)
	}
	c.sendRaw(packet.Append(b, m))
}

func (c *snClient) sendRaw(b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteTo(b, c.gw); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv returns the next message from the gateway, unwrapping the
// encapsulation of a forwarded client (whose node id must match).
func (c *snClient) recv(d time.Duration) (packet.Message, error) {
	if c.buf == nil {
		c.buf = make([]byte, 70000)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := c.conn.ReadFrom(c.buf)
	if err != nil {
		return nil, err
	}
	buf := append([]byte(nil), c.buf[:n]...) // the message aliases it
	m, err := packet.Decode(buf)
	if err != nil {
		return nil, fmt.Errorf("gateway sent a malformed datagram % x: %w", buf[:n], err)
	}
	if e, ok := m.(*packet.Encapsulated); ok {
		if !c.fwd || string(e.NodeID) != string(c.node) {
			return nil, fmt.Errorf("unexpected encapsulation for node %x", e.NodeID)
		}
		return e.Message, nil
	}
	if c.fwd {
		return nil, fmt.Errorf("%s not encapsulated for a forwarded client", m.Type())
	}
	return m, nil
}

const recvTimeout = 5 * time.Second

// expect reads the next message and requires it to be of type T.
func expect[T packet.Message](c *snClient) T {
	c.t.Helper()
	m, err := c.recv(c.timeout())
	if err != nil {
		c.t.Fatalf("expected %T, got error %v", *new(T), err)
	}
	v, ok := m.(T)
	if !ok {
		c.t.Fatalf("expected %T, got %T %+v", *new(T), m, m)
	}
	return v
}

// expectNothing requires that no message arrives within d.
func (c *snClient) expectNothing(d time.Duration) {
	c.t.Helper()
	m, err := c.recv(d)
	if err == nil {
		c.t.Fatalf("expected nothing, got %T %+v", m, m)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("expected nothing, got error %v", err)
	}
}

// connect sends CONNECT (without will) and requires CONNACK accepted.
func (c *snClient) connect(id string, clean bool, keepAlive packet.Seconds) {
	c.t.Helper()
	c.send(&packet.Connect{CleanSession: clean, KeepAlive: keepAlive, ClientID: []byte(id)})
	if ca := expect[*packet.Connack](c); ca.ReturnCode != packet.Accepted {
		c.t.Fatalf("CONNACK %v", ca.ReturnCode)
	}
}

// register registers a topic name and returns its id.
func (c *snClient) register(name string) uint16 {
	c.t.Helper()
	id := c.nextID()
	c.send(&packet.Register{MsgID: id, TopicName: []byte(name)})
	ra := expect[*packet.Regack](c)
	if ra.MsgID != id || ra.ReturnCode != packet.Accepted || ra.TopicID == 0 {
		c.t.Fatalf("REGACK %+v for %q", ra, name)
	}
	return ra.TopicID
}

// subscribe subscribes and returns the SUBACK.
func (c *snClient) subscribe(tt packet.TopicIDType, name string, id uint16, q packet.QoS) *packet.Suback {
	c.t.Helper()
	s := &packet.Subscribe{QoS: q, TopicIDType: tt, MsgID: c.nextID(), TopicID: id}
	if tt == packet.TopicIDNormal {
		s.TopicName = []byte(name)
	}
	c.send(s)
	sa := expect[*packet.Suback](c)
	if sa.MsgID != s.MsgID {
		c.t.Fatalf("SUBACK for MsgId %d, want %d", sa.MsgID, s.MsgID)
	}
	return sa
}

// publish publishes and completes the QoS 1/2 exchange, requiring it to be
// accepted.
func (c *snClient) publish(tt packet.TopicIDType, id uint16, q packet.QoS, retain bool, data string) {
	c.t.Helper()
	p := &packet.Publish{QoS: q, Retain: retain, TopicIDType: tt, TopicID: id, Data: []byte(data)}
	if q > 0 {
		p.MsgID = c.nextID()
	}
	c.send(p)
	switch q {
	case packet.QoS1:
		pa := expect[*packet.Puback](c)
		if pa.MsgID != p.MsgID || pa.ReturnCode != packet.Accepted {
			c.t.Fatalf("PUBACK %+v", pa)
		}
	case packet.QoS2:
		pr := expect[*packet.Pubrec](c)
		if pr.MsgID != p.MsgID {
			c.t.Fatalf("PUBREC %+v", pr)
		}
		c.send(&packet.Pubrel{MsgID: p.MsgID})
		if pc := expect[*packet.Pubcomp](c); pc.MsgID != p.MsgID {
			c.t.Fatalf("PUBCOMP %+v", pc)
		}
	}
}

// expectPublish reads a PUBLISH, answers it as a client does (PUBACK, or
// PUBREC / PUBREL / PUBCOMP) and returns it.
func (c *snClient) expectPublish() *packet.Publish {
	c.t.Helper()
	p := expect[*packet.Publish](c)
	c.ack(p)
	return p
}

func (c *snClient) ack(p *packet.Publish) {
	c.t.Helper()
	switch p.QoS {
	case packet.QoS1:
		c.send(&packet.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.Accepted})
	case packet.QoS2:
		c.send(&packet.Pubrec{MsgID: p.MsgID})
		if rel := expect[*packet.Pubrel](c); rel.MsgID != p.MsgID {
			c.t.Fatalf("PUBREL %+v, want MsgId %d", rel, p.MsgID)
		}
		c.send(&packet.Pubcomp{MsgID: p.MsgID})
	}
}

// acceptRegister reads a REGISTER, acknowledges it and returns it.
func (c *snClient) acceptRegister() *packet.Register {
	c.t.Helper()
	r := expect[*packet.Register](c)
	c.send(&packet.Regack{TopicID: r.TopicID, MsgID: r.MsgID, ReturnCode: packet.Accepted})
	return r
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// --- in-process broker watcher ---------------------------------------------

// watcher is an in-process broker client that records what it gets.
type watcher struct {
	t    testing.TB
	c    *localbroker.Client
	wait time.Duration // bounds expect; 0 means recvTimeout
}

func watch(t testing.TB, b *localbroker.Broker, filter string) *watcher {
	t.Helper()
	c, _, err := b.Attach(localbroker.ClientOptions{ClientID: "watcher-" + filter, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(false) })
	if _, err := c.Subscribe(context.Background(), subs(filter, 2), 0); err != nil {
		t.Fatal(err)
	}
	return &watcher{t: t, c: c}
}

func (w *watcher) next(d time.Duration) (*localbroker.Delivery, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	dl, err := w.c.Next(ctx)
	if err == nil {
		dl.Ack()
	}
	return dl, err
}

func (w *watcher) expect(topic, payload string) *localbroker.Delivery {
	w.t.Helper()
	wait := w.wait
	if wait == 0 {
		wait = recvTimeout
	}
	d, err := w.next(wait)
	if err != nil {
		w.t.Fatalf("waiting for %s %q: %v", topic, payload, err)
	}
	if d.Message.Topic != topic || string(d.Message.Payload) != payload {
		w.t.Fatalf("got %s %q, want %s %q", d.Message.Topic, d.Message.Payload, topic, payload)
	}
	return d
}

func (w *watcher) expectNothing(d time.Duration) {
	w.t.Helper()
	if dl, err := w.next(d); err == nil {
		w.t.Fatalf("got %s %q, want nothing", dl.Message.Topic, dl.Message.Payload)
	}
}

// --- mosquitto_sub / mosquitto_pub -------------------------------------------

// needTool returns the path of a peer binary, skipping the test when it is
// missing (failing under CI=true: CI must run these).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed (CI=true): %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// mosqSub is a running mosquitto_sub whose messages are read line by line.
type mosqSub struct {
	t     testing.TB
	cmd   *exec.Cmd
	lines chan string // "MSG|topic|qos|retain|payload" lines
	done  chan struct{}
}

// startSub starts mosquitto_sub on filter with -V version and waits until
// the broker holds its subscription, so that a publish made now reaches it.
// (Its -d output is block-buffered on a pipe, so the broker's count of
// subscriptions tells when it subscribed.)
func (e *env) startSub(t testing.TB, version, filter string, qos int, extra ...string) *mosqSub {
	t.Helper()
	addr := e.tcp
	before := e.b.Stats().Subscriptions
	path := needTool(t, "mosquitto_sub")
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"-h", host, "-p", port, "-V", version, "-t", filter, "-q", fmt.Sprint(qos),
		"-F", "MSG|%t|%q|%r|%p"}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, path, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &mosqSub{t: t, cmd: cmd, lines: make(chan string, 100), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer cancel()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "MSG|") {
				s.lines <- line
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		// Wait for the broker to drop the subscription, so that the next
		// startSub's count starts from a settled value.
		n := e.b.Stats().Subscriptions
		_ = cmd.Process.Kill()
		<-s.done
		deadline := time.Now().Add(10 * time.Second)
		for e.b.Stats().Subscriptions >= n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for e.b.Stats().Subscriptions <= before {
		select {
		case <-s.done:
			t.Fatalf("mosquitto_sub %v exited before subscribing", args)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub %v did not subscribe", args)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// expect requires the next message line.
func (s *mosqSub) expect(want string) {
	s.t.Helper()
	select {
	case got := <-s.lines:
		if got != want {
			s.t.Fatalf("mosquitto_sub printed %q, want %q", got, want)
		}
	case <-time.After(recvTimeout):
		s.t.Fatalf("mosquitto_sub printed nothing, want %q", want)
	}
}

// mosqPub runs mosquitto_pub to completion.
func mosqPub(t testing.TB, addr, version string, args ...string) {
	t.Helper()
	path := needTool(t, "mosquitto_pub")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	all := append([]string{"-h", host, "-p", port, "-V", version}, args...)
	out, err := exec.CommandContext(ctx, path, all...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %v: %v\n%s", all, err, out)
	}
}

var mosqVersions = []string{"mqttv311", "mqttv5"}
