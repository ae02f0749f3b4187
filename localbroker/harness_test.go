package localbroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs to the test output at debug level when OUTPOST_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("OUTPOST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startBroker runs a broker with one tcp listener "tcp" on a free loopback
// port (unless opts names listeners) and stops it when the test ends.
func startBroker(t testing.TB, opts Options, deps ...Deps) (*Broker, string) {
	t.Helper()
	if len(opts.Listeners) == 0 {
		opts.Listeners = []ListenerOptions{{Name: "tcp", Address: "127.0.0.1:0", AllowAnonymous: true}}
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	if opts.SysInterval == 0 {
		opts.SysInterval = -1
	}
	var d Deps
	if len(deps) > 0 {
		d = deps[0]
	}
	b, err := New(opts, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	runUntilStopped(t, "broker", b.Run, b.Ready())
	return b, b.Addrs()[opts.Listeners[0].Name].String()
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
	case <-time.After(30 * time.Second):
		cancel()
		<-errc // let it finish with the test's folders before they go
		t.Fatalf("%s not ready within 30s", name)
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

// client is a raw MQTT test client speaking through the packet codec.
type client struct {
	t   testing.TB
	nc  net.Conn
	rd  *packet.Reader
	ver packet.Version
}

func dial(t testing.TB, addr string, v packet.Version) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, rd: packet.NewReader(nc, 4096), ver: v}
}

func (c *client) send(pk packet.Packet) {
	c.t.Helper()
	c.sendRaw(packet.Append(nil, pk, c.ver))
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next packet or an error (io.EOF when the broker closed).
func (c *client) read(d time.Duration) (packet.Packet, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	h, body, err := c.rd.ReadPacket(0)
	if err != nil {
		return nil, err
	}
	if h.Type == packet.TypeConnect {
		return packet.DecodeConnect(h.Flags, body)
	}
	return packet.Decode(h, body, c.ver)
}

// expect reads the next packet and requires it to be of type T.
func expect[T packet.Packet](c *client) T {
	c.t.Helper()
	pk, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("expected %T, got error %v", *new(T), err)
	}
	v, ok := pk.(T)
	if !ok {
		c.t.Fatalf("expected %T, got %T %+v", *new(T), pk, pk)
	}
	return v
}

// expectNothing requires that no packet arrives within d.
func (c *client) expectNothing(d time.Duration) {
	c.t.Helper()
	pk, err := c.read(d)
	if err == nil {
		c.t.Fatalf("expected nothing, got %T %+v", pk, pk)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("expected a quiet connection, got %v", err)
	}
}

// expectClosed requires the broker to close the connection within d,
// after an optional DISCONNECT whose reason code is returned (0 if none).
func (c *client) expectClosed(d time.Duration) (packet.ReasonCode, bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var code packet.ReasonCode
	sawDisconnect := false
	for {
		pk, err := c.read(time.Until(deadline))
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return code, sawDisconnect
			}
			c.t.Fatalf("expected the connection to close, got %v", err)
		}
		if dc, ok := pk.(*packet.Disconnect); ok {
			code, sawDisconnect = dc.ReasonCode, true
		}
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

type connectOpt func(*packet.Connect)

func withClean(clean bool) connectOpt { return func(c *packet.Connect) { c.CleanStart = clean } }
func withKeepAlive(s uint16) connectOpt {
	return func(c *packet.Connect) { c.KeepAlive = s }
}
func withExpiry(s uint32) connectOpt {
	return func(c *packet.Connect) {
		c.Properties.SessionExpiry = s
		c.Properties.Set(packet.PropSessionExpiry)
	}
}
func withUser(u, p string) connectOpt {
	return func(c *packet.Connect) {
		c.UsernameFlag, c.Username = true, u
		c.PasswordFlag, c.Password = true, []byte(p)
	}
}
func withWill(topic, payload string, qos byte, retain bool) connectOpt {
	return func(c *packet.Connect) {
		c.WillFlag, c.WillTopic, c.WillPayload, c.WillQoS, c.WillRetain = true, topic, []byte(payload), qos, retain
	}
}

// connect dials, sends CONNECT and returns the client with the CONNACK.
func connect(t testing.TB, addr string, v packet.Version, id string, opts ...connectOpt) (*client, *packet.Connack) {
	t.Helper()
	c := dial(t, addr, v)
	cp := &packet.Connect{ProtocolName: "MQTT", ProtocolVersion: v, ClientID: id, CleanStart: true, KeepAlive: 60}
	for _, o := range opts {
		o(cp)
	}
	c.send(cp)
	ca := expect[*packet.Connack](c)
	return c, ca
}

// mustConnect is connect that requires success.
func mustConnect(t testing.TB, addr string, v packet.Version, id string, opts ...connectOpt) *client {
	t.Helper()
	c, ca := connect(t, addr, v, id, opts...)
	if ca.ReasonCode != 0 {
		t.Fatalf("CONNACK %s for %q", ca.ReasonCode, id)
	}
	return c
}

func (c *client) subscribe(pid uint16, filter string, qos byte) *packet.Suback {
	c.t.Helper()
	c.send(&packet.Subscribe{PacketID: pid, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	sa := expect[*packet.Suback](c)
	if sa.PacketID != pid {
		c.t.Fatalf("SUBACK id %d, want %d", sa.PacketID, pid)
	}
	return sa
}

// publish sends a PUBLISH and completes its QoS flow from the publisher's side.
func (c *client) publish(pid uint16, topic, payload string, qos byte, retain bool) {
	c.t.Helper()
	c.send(&packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain, PacketID: pid})
	switch qos {
	case 1:
		a := expect[*packet.Ack](c)
		if a.Kind != packet.TypePuback || a.PacketID != pid {
			c.t.Fatalf("got %s id %d, want PUBACK %d", a.Kind, a.PacketID, pid)
		}
	case 2:
		a := expect[*packet.Ack](c)
		if a.Kind != packet.TypePubrec || a.PacketID != pid {
			c.t.Fatalf("got %s id %d, want PUBREC %d", a.Kind, a.PacketID, pid)
		}
		c.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: pid})
		a = expect[*packet.Ack](c)
		if a.Kind != packet.TypePubcomp || a.PacketID != pid {
			c.t.Fatalf("got %s id %d, want PUBCOMP %d", a.Kind, a.PacketID, pid)
		}
	}
}

// expectPublish reads a PUBLISH, checks topic and payload, and acknowledges
// it (QoS 1: PUBACK; QoS 2: PUBREC, PUBREL, PUBCOMP).
func (c *client) expectPublish(topic, payload string) *packet.Publish {
	c.t.Helper()
	p := expect[*packet.Publish](c)
	if p.Topic != topic || string(p.Payload) != payload {
		c.t.Fatalf("got PUBLISH %q %q, want %q %q", p.Topic, p.Payload, topic, payload)
	}
	c.ack(p)
	return p
}

func (c *client) ack(p *packet.Publish) {
	c.t.Helper()
	switch p.QoS {
	case 1:
		c.send(&packet.Ack{Kind: packet.TypePuback, PacketID: p.PacketID})
	case 2:
		c.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: p.PacketID})
		r := expect[*packet.Ack](c)
		if r.Kind != packet.TypePubrel || r.PacketID != p.PacketID {
			c.t.Fatalf("got %s %d, want PUBREL %d", r.Kind, r.PacketID, p.PacketID)
		}
		c.send(&packet.Ack{Kind: packet.TypePubcomp, PacketID: p.PacketID})
	}
}

func (c *client) disconnect() {
	c.t.Helper()
	c.send(&packet.Disconnect{})
	c.nc.Close()
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

func versions() []packet.Version { return []packet.Version{packet.V311, packet.V5} }

func vname(v packet.Version) string { return fmt.Sprintf("v%s", v) }
