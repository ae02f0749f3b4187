package gateway

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// startGateway builds and runs a gateway for cfg and waits until it is
// ready. The returned stop function cancels it and requires a clean stop; it
// runs at cleanup too if the test did not call it.
func startGateway(t *testing.T, cfg *Config) (g *Gateway, stop func()) {
	t.Helper()
	g, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	select {
	case <-g.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("gateway stopped while starting: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("gateway not ready after 15s")
	}
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := waitFor(t, done, "the gateway to stop"); err != nil {
			t.Errorf("gateway Run = %v; want a clean stop", err)
		}
	}
	t.Cleanup(stop)
	return g, stop
}

// mqttClient is a paho.golang MQTT 5 client of a test.
type mqttClient struct {
	t       *testing.T
	c       *paho.Client
	connack *paho.Connack
	recv    chan *paho.Publish
	errs    chan error
	closing atomic.Bool
}

// dialMQTT connects a paho.golang client with id to addr. expiry is the
// session expiry interval in seconds (0: the session ends with the
// connection); cleanStart false resumes a kept session.
func dialMQTT(t *testing.T, addr net.Addr, id string, cleanStart bool, expiry uint32) *mqttClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := &mqttClient{t: t, recv: make(chan *paho.Publish, 64), errs: make(chan error, 4)}
	m.c = paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     packets.NewThreadSafeConn(nc),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				select {
				case m.recv <- pr.Packet:
				default:
					m.report(fmt.Errorf("receive buffer full, dropped %q", pr.Packet.Topic))
				}
				return true, nil
			},
		},
		OnClientError: func(err error) {
			if !m.closing.Load() { // paho reports the socket it closed itself
				m.report(err)
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.connack, err = m.c.Connect(ctx, &paho.Connect{
		ClientID:   id,
		CleanStart: cleanStart,
		KeepAlive:  30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry},
	})
	if err != nil {
		nc.Close()
		t.Fatalf("connect %s: %v", id, err)
	}
	if m.connack.ReasonCode != 0 {
		t.Fatalf("connect %s: CONNACK reason %#x", id, m.connack.ReasonCode)
	}
	t.Cleanup(m.close)
	return m
}

func (m *mqttClient) report(err error) {
	select {
	case m.errs <- err:
	default:
	}
}

// close disconnects with reason 0, which keeps a session with an expiry.
func (m *mqttClient) close() {
	if m.closing.Swap(true) {
		return
	}
	_ = m.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	select {
	case <-m.c.Done():
	case <-time.After(5 * time.Second):
		m.t.Errorf("paho client did not stop")
	}
	select {
	case err := <-m.errs:
		m.t.Errorf("paho client: %v", err)
	default:
	}
}

func (m *mqttClient) subscribe(filter string, qos byte) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := m.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if err != nil {
		m.t.Fatalf("subscribe %s: %v", filter, err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] != qos {
		m.t.Fatalf("subscribe %s: SUBACK reasons %v; want [%d]", filter, sa.Reasons, qos)
	}
}

// publish publishes at QoS 1 and requires a PUBACK with a success code.
func (m *mqttClient) publish(topic, payload string, retain bool) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := m.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: retain, Payload: []byte(payload)})
	if err != nil {
		m.t.Fatalf("publish %s: %v", topic, err)
	}
	if resp.ReasonCode != 0 && resp.ReasonCode != 0x10 { // Success, No matching subscribers
		m.t.Fatalf("publish %s: PUBACK reason %#x", topic, resp.ReasonCode)
	}
}

// expect requires the next received messages to be want, as "topic=payload".
func (m *mqttClient) expect(want ...string) []*paho.Publish {
	m.t.Helper()
	var got []*paho.Publish
	for _, w := range want {
		select {
		case p := <-m.recv:
			if s := p.Topic + "=" + string(p.Payload); s != w {
				m.t.Fatalf("received %s; want %s", s, w)
			}
			got = append(got, p)
		case <-time.After(5 * time.Second):
			m.t.Fatalf("no message received; want %s", w)
		}
	}
	return got
}

// expectNothing requires that no message arrives within d. It is the only
// wait of a fixed length here, and it can only make the test fail.
func (m *mqttClient) expectNothing(d time.Duration) {
	m.t.Helper()
	select {
	case p := <-m.recv:
		m.t.Fatalf("received %s=%s; want nothing", p.Topic, p.Payload)
	case <-time.After(d):
	}
}

// Retained messages and persistent sessions (subscriptions and the messages
// queued for the session while it was offline) are in the spool under
// data_dir, and a second gateway on the same data_dir has them.
func TestGatewayKeepsRetainedAndSessionsAcrossRestarts(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0

	g, stop := startGateway(t, cfg)
	addr := g.Addrs()["default"]
	keeper := dialMQTT(t, addr, "keeper", true, 3600)
	keeper.subscribe("plant/#", 1)
	keeper.close()

	pub := dialMQTT(t, addr, "pub", true, 0)
	pub.publish("plant/status", "online", true)
	pub.publish("plant/t1", "21.5", false)
	pub.publish("other/x", "not for keeper", false)
	pub.close()
	stop()

	if _, err := os.Stat(filepath.Join(cfg.DataDir, "spool")); err != nil {
		t.Fatalf("no spool folder in data_dir: %v", err)
	}

	// A new gateway on the same data_dir.
	g, stop = startGateway(t, cfg)
	addr = g.Addrs()["default"]
	keeper = dialMQTT(t, addr, "keeper", false, 3600)
	if !keeper.connack.SessionPresent {
		t.Fatal("keeper's session is not present after the restart")
	}
	for _, p := range keeper.expect("plant/status=online", "plant/t1=21.5") {
		if p.QoS != 1 {
			t.Errorf("%s delivered at QoS %d; want 1", p.Topic, p.QoS)
		}
	}
	// The subscription itself was restored: new messages match it too.
	pub = dialMQTT(t, addr, "pub", true, 0)
	pub.publish("plant/t2", "22.0", false)
	keeper.expect("plant/t2=22.0")

	// The retained message is there for a new subscriber, flagged retained.
	fresh := dialMQTT(t, addr, "fresh", true, 0)
	fresh.subscribe("plant/status", 1)
	if p := fresh.expect("plant/status=online")[0]; !p.Retain {
		t.Error("plant/status is not flagged as retained")
	}
	keeper.expectNothing(200 * time.Millisecond)
	keeper.close()
	fresh.close()
	pub.close()
	stop()
}

// A gateway whose spool cannot open (the data_dir is a file) fails to start
// and starts nothing after the spool: the broker's port stays free.
func TestGatewayFailsWhenTheSpoolCannotOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-folder")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cfg := testConfig()
	cfg.DataDir = file
	cfg.Listeners[0].Address = addr
	g, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = waitFor(t, runGateway(context.Background(), g), "Run to return")
	if err == nil {
		t.Fatal("Run succeeded with a data_dir that is a file")
	}
	if want := "spool stopped before it was ready"; !strings.Contains(err.Error(), want) {
		t.Errorf("Run = %v; want %q", err, want)
	}
	// The broker never ran: its port can be bound.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("the broker's address %s is taken after a failed start: %v", addr, err)
	} else {
		ln.Close()
	}
}
