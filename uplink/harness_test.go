package uplink

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"go.uber.org/goleak"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/spool"
)

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

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func execCommand(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// --- mosquitto as the cloud broker -----------------------------------------

// lookMosquitto returns the path of a mosquitto tool. A missing tool fails
// the test under CI=true and skips it elsewhere.
func lookMosquitto(t testing.TB, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/usr/bin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true: apt-get install mosquitto mosquitto-clients)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// cloud is a mosquitto broker on a loopback port, started and killed by
// the test. Conf lines go after the listener line; "allow_anonymous true"
// is added unless they mention allow_anonymous.
type cloud struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	conf string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newCloud(t testing.TB, conf string) *cloud {
	t.Helper()
	c := &cloud{t: t, bin: lookMosquitto(t, "mosquitto"), dir: t.TempDir(), port: freePort(t), conf: conf}
	t.Cleanup(c.kill)
	return c
}

func (c *cloud) url() string { return fmt.Sprintf("mqtt://127.0.0.1:%d", c.port) }
func (c *cloud) addr() string {
	return fmt.Sprintf("127.0.0.1:%d", c.port)
}

// start starts mosquitto (persistence off) and waits until it accepts
// connections.
func (c *cloud) start() {
	c.t.Helper()
	conf := fmt.Sprintf("listener %d 127.0.0.1\n%s\n", c.port, c.conf)
	if !strings.Contains(c.conf, "allow_anonymous") {
		conf += "allow_anonymous true\n"
	}
	conf += "persistence false\nlog_dest stderr\nlog_type all\n"
	if os.Geteuid() == 0 {
		conf += "user root\n" // else mosquitto drops to "mosquitto", which cannot read t.TempDir()
	}
	path := filepath.Join(c.dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", path)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.mu.Lock()
	c.cmd, c.exited, c.log = cmd, exited, log
	c.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			c.t.Fatalf("mosquitto exited at start:\n%s", log.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", c.addr(), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("mosquitto does not accept connections: %v\n%s", err, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill kills mosquitto (SIGKILL: an outage, no goodbye) and waits for it.
func (c *cloud) kill() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// reload makes mosquitto read its password and ACL files again.
func (c *cloud) reload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		_ = c.cmd.Process.Signal(syscall.SIGHUP)
	}
}

func (c *cloud) logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log == nil {
		return ""
	}
	return c.log.String()
}

// --- a subscriber at the cloud ----------------------------------------------

type cloudMsg struct {
	topic   string
	payload string
	qos     byte
	retain  bool
	props   *paho.PublishProperties
}

// cloudSub is a paho client subscribed at the cloud, collecting messages.
type cloudSub struct {
	cli  *paho.Client
	mu   sync.Mutex
	msgs []cloudMsg
}

type dialer func() (net.Conn, error)

func tcpDialer(addr string) dialer {
	return func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
}

func subscribeCloud(t testing.TB, dial dialer, user, pass string, filters ...string) *cloudSub {
	t.Helper()
	conn, err := dial()
	if err != nil {
		t.Fatalf("subscriber dial: %v", err)
	}
	s := &cloudSub{}
	s.cli = paho.NewClient(paho.ClientConfig{
		Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			p := pr.Packet
			s.mu.Lock()
			s.msgs = append(s.msgs, cloudMsg{topic: p.Topic, payload: string(p.Payload), qos: p.QoS, retain: p.Retain, props: p.Properties})
			s.mu.Unlock()
			return true, nil
		}},
	})
	cp := &paho.Connect{ClientID: fmt.Sprintf("test-sub-%d", time.Now().UnixNano()), CleanStart: true, KeepAlive: 30}
	if user != "" {
		cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = user, true, []byte(pass), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.cli.Connect(ctx, cp); err != nil {
		t.Fatalf("subscriber connect: %v", err)
	}
	t.Cleanup(func() { _ = s.cli.Disconnect(&paho.Disconnect{}) })
	subs := make([]paho.SubscribeOptions, len(filters))
	for i, f := range filters {
		subs[i] = paho.SubscribeOptions{Topic: f, QoS: 2, RetainAsPublished: true}
	}
	if _, err := s.cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		t.Fatalf("subscriber subscribe: %v", err)
	}
	return s
}

func (s *cloudSub) got() []cloudMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cloudMsg(nil), s.msgs...)
}

func (s *cloudSub) waitN(t testing.TB, n int, timeout time.Duration) []cloudMsg {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d messages at the cloud subscriber", n), func() bool { return len(s.got()) >= n })
	return s.got()
}

// firstOccurrences returns the payloads in the order of their first
// arrival (QoS 1 may duplicate).
func firstOccurrences(msgs []cloudMsg) []string {
	seen := make(map[string]bool)
	var out []string
	for _, m := range msgs {
		if !seen[m.payload] {
			seen[m.payload] = true
			out = append(out, m.payload)
		}
	}
	return out
}

// --- the gateway side: spool, broker, bridge --------------------------------

type env struct {
	t      testing.TB
	store  *spool.Store
	broker *localbroker.Broker
	bridge *Bridge
	pub    *localbroker.Client
	opts   Options
}

// baseOptions are bridge options for tests: fast reconnection.
func baseOptions(url string, rules ...Rule) Options {
	return Options{
		Name:           "cloud",
		URL:            url,
		ReconnectMin:   20 * time.Millisecond,
		ReconnectMax:   200 * time.Millisecond,
		ConnectTimeout: 5 * time.Second,
		DrainTimeout:   time.Second,
		Rules:          rules,
	}
}

// newEnv starts a spool, a broker with the bridge's BeforeAck, and the
// bridge, and stops them in reverse order when the test ends.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	return newEnvWith(t, opts, spoolLimits(), nil)
}

// newEnvWith is newEnv with the spool limits of the bridge's queues, and a
// hook that runs in the broker's BeforeAck before the bridge's.
func newEnvWith(t testing.TB, opts Options, lim spool.Limits, hook func(*localbroker.ClientInfo, *localbroker.Message) error) *env {
	t.Helper()
	e := &env{t: t, opts: opts}
	store, err := spool.New(spool.Options{Dir: t.TempDir(), MinFreeBytes: -1, Sync: spool.SyncNever, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	runUntilCleanup(t, "spool", store.Run, store.Ready())

	broker, err := localbroker.New(localbroker.Options{SysInterval: -1, Logger: testLogger()}, localbroker.Deps{
		Hooks: localbroker.Hooks{BeforeAck: func(c *localbroker.ClientInfo, m *localbroker.Message) error {
			if hook != nil {
				if err := hook(c, m); err != nil {
					return err
				}
			}
			return e.bridge.BeforeAck(c, m)
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.broker = broker
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	e.bridge, err = New(opts, Deps{Broker: broker, OpenQueue: func(name string) (Queue, error) {
		return store.Queue(name, lim)
	}})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "broker", broker.Run, broker.Ready())
	e.pub, _, err = broker.Attach(localbroker.ClientOptions{ClientID: "test-pub"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.pub.Close(false) })
	runUntilCleanup(t, "bridge", e.bridge.Run, e.bridge.Ready())
	return e
}

// runUntilCleanup runs a component until the test ends, then stops it and
// checks that Run returned nil.
func runUntilCleanup(t testing.TB, name string, run func(context.Context) error, ready <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s Run: %v", name, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s Run did not return", name)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s Run returned at start: %v", name, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s not ready", name)
	}
}

// publish publishes locally and checks that the broker accepted it (for
// QoS 1/2: the spool has it).
func (e *env) publish(topic, payload string, qos byte) {
	e.t.Helper()
	code, err := e.pub.Publish(context.Background(), &localbroker.Message{Topic: topic, Payload: []byte(payload), QoS: qos})
	if err != nil || code >= 0x80 {
		e.t.Fatalf("local publish %s: %v, %v", topic, code, err)
	}
}

func (e *env) depth(prio int) int64 {
	for _, c := range e.bridge.Stats().Classes {
		if c.Priority == prio {
			return c.Depth
		}
	}
	e.t.Fatalf("no class %d", prio)
	return 0
}

func (e *env) waitOnline() {
	e.t.Helper()
	waitFor(e.t, 15*time.Second, "the bridge online", func() bool { return e.bridge.Stats().State == StateOnline })
}

func spoolLimits() spool.Limits { return spool.Limits{} }

// gate keeps the gateway out of a cloud until the test is ready: the
// cloud needs a password, and the gateway's account exists only while the
// gate is open. The subscriber "watcher" can always get in, so it can
// subscribe before anything is drained.
type gate struct {
	t    testing.TB
	pw   string
	file string
}

const (
	gateUser, gatePass       = "gateway", "g-secret"
	watcherUser, watcherPass = "watcher", "w-secret"
)

func newGatedCloud(t testing.TB, conf string) (*cloud, *gate) {
	t.Helper()
	g := &gate{t: t, pw: lookMosquitto(t, "mosquitto_passwd"), file: filepath.Join(t.TempDir(), "passwd")}
	g.run("-b", "-c", g.file, watcherUser, watcherPass)
	c := newCloud(t, "allow_anonymous false\npassword_file "+g.file+"\n"+conf)
	return c, g
}

func (g *gate) run(args ...string) {
	g.t.Helper()
	if out, err := execCommand(g.pw, args...); err != nil {
		g.t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
	}
}

// open adds the gateway's account and makes a running cloud reload.
func (g *gate) open(c *cloud) {
	g.t.Helper()
	g.run("-b", g.file, gateUser, gatePass)
	c.reload()
}

// shut removes the gateway's account (for the next start).
func (g *gate) shut() {
	g.t.Helper()
	g.run("-D", g.file, gateUser)
}

// gatedOptions are baseOptions with the gateway's account.
func gatedOptions(url string, rules ...Rule) Options {
	o := baseOptions(url, rules...)
	o.Username, o.Password = gateUser, gatePass
	return o
}

// watch subscribes the watcher at a gated cloud.
func watch(t testing.TB, c *cloud, filters ...string) *cloudSub {
	t.Helper()
	return subscribeCloud(t, tcpDialer(c.addr()), watcherUser, watcherPass, filters...)
}
