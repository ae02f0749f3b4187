package mqttsn

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

func TestOptionsValidation(t *testing.T) {
	b, _ := startBroker(t)
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"grace below 1", Options{KeepAliveGrace: 0.5}, "grace"},
		{"negative retry", Options{Tretry: -time.Second}, "negative"},
		{"too many topics", Options{MaxTopicsPerClient: 70000}, "max topics"},
		{"short advertise", Options{AdvertiseInterval: time.Millisecond}, "advertise"},
		{"duplicate transport", Options{Transports: []Transport{{Name: "a"}, {Name: "a"}}}, "duplicate"},
		{"tiny MTU", Options{Transports: []Transport{{MTU: 4}}}, "MTU"},
		{"reserved id", Options{Predefined: map[uint16]string{0xFFFF: "x"}}, "reserved"},
		{"wildcard pre-defined", Options{Predefined: map[uint16]string{1: "a/#"}}, "not a topic name"},
		{"client reserved id", Options{ClientPredefined: map[string]map[uint16]string{"d": {0: "x"}}}, "reserved"},
	} {
		if _, err := New(c.opts, Deps{Broker: b}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New error %v, want one with %q", c.name, err, c.want)
		}
	}
	if _, err := New(Options{}, Deps{}); err == nil {
		t.Error("New without a broker succeeded")
	}
	g, err := New(Options{}, Deps{Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	o := g.opts
	if o.Tretry != 10*time.Second || o.Nretry != 3 || o.KeepAliveGrace != 1.5 || o.MaxBuffered != 100 ||
		o.SessionExpiry != 24*time.Hour || len(o.Transports) != 1 || o.Transports[0].Addr != "[::]:1885" ||
		o.Transports[0].Name != "udp@[::]:1885" || g.Name() != "mqttsn" {
		t.Fatalf("defaults %+v", o)
	}
}

// A transport on a Conn the caller owns: Run stops its reader with a read
// deadline and leaves the Conn open; Run cannot be called twice.
func TestCallerOwnedConn(t *testing.T) {
	b, _ := startBroker(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	g, err := New(Options{Transports: []Transport{{Conn: pc}}, Logger: testLogger()}, Deps{Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	stop := runUntilStopped(t, "gateway", g.Run, g.Ready())
	if err := g.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
	c := newSNClient(t, pc.LocalAddr())
	c.connect("owned", true, 60)
	stop()
	// Still open: it can send.
	if _, err := pc.WriteTo(packet.Append(nil, &packet.Pingresp{}), c.conn.LocalAddr()); err != nil {
		t.Fatalf("the caller's conn was closed: %v", err)
	}
	expect[*packet.Pingresp](c)
}

// A transport that cannot be opened fails Run at once.
func TestRunListenError(t *testing.T) {
	b, _ := startBroker(t)
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	g, err := New(Options{Transports: []Transport{{Addr: busy.LocalAddr().String()}}, Logger: testLogger()}, Deps{Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(context.Background()); err == nil {
		t.Fatal("Run on a busy address succeeded")
	}
}
