package localbroker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// Bad input from one client costs that client its connection and nothing
// else: after every case a well-behaved client on the same broker still
// publishes and receives, the offending connection is gone from the broker's
// registry, and no connection handler panicked. The offending bytes are
// written by hand; only the well-behaved clients use the codec.

// hx decodes hex written with spaces between the bytes.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// panicLog is a slog.Handler that counts the broker's "connection handler
// panic" records, which the recover in conn.serve logs.
type panicLog struct {
	n        atomic.Int64
	expected atomic.Bool // the test injects panics on purpose
}

const panicMsg = "connection handler panic"

func (h *panicLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *panicLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == panicMsg {
		h.n.Add(1)
	}
	return nil
}
func (h *panicLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicLog) WithGroup(string) slog.Handler      { return h }

// startCountingBroker is startBroker with a logger that counts recovered
// panics; unless the test sets expected, any panic fails it.
func startCountingBroker(t *testing.T, opts Options, deps ...Deps) (*Broker, string, *panicLog) {
	t.Helper()
	pl := &panicLog{}
	opts.Logger = slog.New(pl)
	b, addr := startBroker(t, opts, deps...)
	t.Cleanup(func() {
		if n := pl.n.Load(); n > 0 && !t.Failed() && !pl.expected.Load() {
			t.Errorf("%d connection handler panic(s) were recovered", n)
		}
	})
	return b, addr, pl
}

// brokerConn returns the broker's conn whose peer is local, or nil.
func brokerConn(b *Broker, local net.Addr) *conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		if c.nc.RemoteAddr().String() == local.String() {
			return c
		}
	}
	return nil
}

// expectDropped waits until the broker no longer tracks the connection of c.
func expectDropped(t *testing.T, b *Broker, c *client) {
	t.Helper()
	local := c.nc.LocalAddr()
	eventually(t, 5*time.Second, "the broker to drop the connection from "+local.String(), func() bool {
		return brokerConn(b, local) == nil
	})
}

// goodClient connects a well-behaved client subscribed at QoS 1 to prefix/#.
func goodClient(t *testing.T, addr string, v packet.Version, prefix string) *client {
	t.Helper()
	c := mustConnect(t, addr, v, "good-"+prefix)
	c.subscribe(1, prefix+"/#", 1)
	return c
}

// stillServes publishes at QoS 1 to prefix/alive and requires both the PUBACK
// and the delivery (in either order): the broker still serves this client.
func (c *client) stillServes(prefix string, pid uint16) {
	c.t.Helper()
	tp := prefix + "/alive"
	c.send(&packet.Publish{Topic: tp, Payload: []byte("alive"), QoS: 1, PacketID: pid})
	gotAck, gotPub := false, false
	for !gotAck || !gotPub {
		pk, err := c.read(5 * time.Second)
		if err != nil {
			c.t.Fatalf("well-behaved client: waiting for PUBACK and delivery: %v", err)
		}
		switch p := pk.(type) {
		case *packet.Ack:
			if p.Kind != packet.TypePuback || p.PacketID != pid {
				c.t.Fatalf("well-behaved client: got %s %d, want PUBACK %d", p.Kind, p.PacketID, pid)
			}
			gotAck = true
		case *packet.Publish:
			if p.Topic != tp || string(p.Payload) != "alive" {
				c.t.Fatalf("well-behaved client: got PUBLISH %q %q, want %q \"alive\"", p.Topic, p.Payload, tp)
			}
			c.ack(p)
			gotPub = true
		default:
			c.t.Fatalf("well-behaved client: unexpected %T", pk)
		}
	}
}

// expectSilentClose requires the peer to close nc within d without sending a
// single byte (no CONNACK, no DISCONNECT).
func expectSilentClose(t *testing.T, nc net.Conn, d time.Duration) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(nc)
	if len(got) > 0 {
		t.Fatalf("expected a close without any bytes, got % x", got)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v", d)
		}
		if !isReset(err) {
			t.Fatalf("expected the connection to close, got %v", err)
		}
	}
}

// expectCloseWith requires the connection of c (version v) to close within
// d; a 5.0 client must get a DISCONNECT with code5 first [MQTT-4.13.1-1],
// a 3.1.1 client no DISCONNECT at all (3.1.1 has none from the server).
func expectCloseWith(t *testing.T, c *client, v packet.Version, code5 packet.ReasonCode, d time.Duration) {
	t.Helper()
	code, saw := c.expectClosed(d)
	if v == packet.V5 {
		if !saw {
			t.Fatalf("closed without DISCONNECT, want DISCONNECT %#02x (%s)", byte(code5), code5)
		}
		if code != code5 {
			t.Fatalf("DISCONNECT %#02x (%s), want %#02x (%s)", byte(code), code, byte(code5), code5)
		}
	} else if saw {
		t.Fatalf("3.1.1 client got a DISCONNECT from the server")
	}
}

// badCase is a packet that must close the connection of a client that has
// completed CONNECT. raw311/raw5 are the bytes for each version (nil: the
// case does not apply to it).
type badCase struct {
	name    string
	raw311  string
	raw5    string
	code5   packet.ReasonCode
	noTrail bool // do not send a valid PUBLISH right behind the bad bytes
}

// The bodies below use topic "a" (00 01 61) and filter "a".
var badAfterConnect = []badCase{
	// Fixed header and remaining length [MQTT-1.5.5-1] (3.1.1 §2.2.3).
	{name: "non-minimal remaining length 80 00 for 0", raw311: "C0 80 00", raw5: "C0 80 00", code5: packet.MalformedPacket},
	{name: "non-minimal remaining length FF 80 00", raw311: "30 FF 80 00", raw5: "30 FF 80 00", code5: packet.MalformedPacket},
	{name: "5-byte remaining length", raw311: "30 80 80 80 80 01", raw5: "30 80 80 80 80 01", code5: packet.MalformedPacket},
	{name: "remaining length beyond MaxPacketSize, header only", raw311: "30 D0 0F", raw5: "30 D0 0F", code5: packet.PacketTooLarge, noTrail: true},
	{name: "remaining length at the protocol maximum, header only", raw311: "30 FF FF FF 7F", raw5: "30 FF FF FF 7F", code5: packet.PacketTooLarge, noTrail: true},
	{name: "packet type 0", raw311: "00 00", raw5: "00 00", code5: packet.MalformedPacket},

	// Reserved flag bits [MQTT-2.2.2-1] [MQTT-2.2.2-2].
	{name: "MQTT-3.6.1-1 PUBREL flags 0000", raw311: "60 02 00 01", raw5: "60 02 00 01", code5: packet.MalformedPacket},
	{name: "MQTT-3.8.1-1 SUBSCRIBE flags 0000", raw311: "80 06 00 01 00 01 61 00", raw5: "80 07 00 01 00 00 01 61 00", code5: packet.MalformedPacket},
	{name: "MQTT-3.10.1-1 UNSUBSCRIBE flags 0000", raw311: "A0 05 00 01 00 01 61", raw5: "A0 06 00 01 00 00 01 61", code5: packet.MalformedPacket},
	{name: "PINGREQ flags 0001", raw311: "C1 00", raw5: "C1 00", code5: packet.MalformedPacket},
	{name: "PINGREQ with a body", raw311: "C0 01 00", raw5: "C0 01 00", code5: packet.MalformedPacket},

	// PUBLISH header and topic.
	{name: "MQTT-3.3.1-4 PUBLISH QoS 3", raw311: "36 05 00 01 61 00 01", raw5: "36 06 00 01 61 00 01 00", code5: packet.MalformedPacket},
	{name: "MQTT-3.3.1-2 DUP with QoS 0", raw311: "38 03 00 01 61", raw5: "38 04 00 01 61 00", code5: packet.MalformedPacket},
	{name: "MQTT-1.5.3-1 topic with invalid UTF-8", raw311: "30 03 00 01 FF", raw5: "30 04 00 01 FF 00", code5: packet.MalformedPacket},
	{name: "MQTT-1.5.3-1 topic with an encoded surrogate", raw311: "30 05 00 03 ED A0 80", raw5: "30 06 00 03 ED A0 80 00", code5: packet.MalformedPacket},
	{name: "MQTT-1.5.3-2 topic with U+0000", raw311: "30 05 00 03 61 00 62", raw5: "30 06 00 03 61 00 62 00", code5: packet.MalformedPacket},
	{name: "MQTT-3.3.2-2 wildcard + in topic", raw311: "30 05 00 03 61 2F 2B", raw5: "30 06 00 03 61 2F 2B 00", code5: packet.TopicNameInvalid},
	{name: "MQTT-3.3.2-2 wildcard # in topic", raw311: "30 05 00 03 61 2F 23", raw5: "30 06 00 03 61 2F 23 00", code5: packet.TopicNameInvalid},
	{name: "MQTT-4.7.3-1 empty topic without alias", raw311: "30 02 00 00", raw5: "30 03 00 00 00", code5: packet.ProtocolError},
	{name: "topic length beyond the packet", raw311: "30 03 00 05 61", raw5: "30 04 00 05 61 00", code5: packet.MalformedPacket},
	{name: "PUBLISH QoS 1 without packet id", raw311: "32 03 00 01 61", raw5: "32 03 00 01 61", code5: packet.MalformedPacket},

	// Packet identifiers [MQTT-2.3.1-1] (5.0 [MQTT-2.2.1-3]).
	{name: "MQTT-2.3.1-1 PUBLISH QoS 1 packet id 0", raw311: "32 05 00 01 61 00 00", raw5: "32 06 00 01 61 00 00 00", code5: packet.ProtocolError},
	{name: "MQTT-2.3.1-1 SUBSCRIBE packet id 0", raw311: "82 06 00 00 00 01 61 00", raw5: "82 07 00 00 00 00 01 61 00", code5: packet.ProtocolError},

	// SUBSCRIBE and UNSUBSCRIBE payloads.
	{name: "MQTT-3.8.3-3 SUBSCRIBE with no filters", raw311: "82 02 00 01", raw5: "82 03 00 01 00", code5: packet.ProtocolError},
	{name: "MQTT-3.10.3-2 UNSUBSCRIBE with no filters", raw311: "A2 02 00 01", raw5: "A2 03 00 01 00", code5: packet.ProtocolError},
	// 3.1.1 [MQTT-3-8.3-4]: malformed; 5.0 §3.8.3.1: a Protocol Error.
	{name: "MQTT-3-8.3-4 SUBSCRIBE QoS 3", raw311: "82 06 00 01 00 01 61 03", raw5: "82 07 00 01 00 00 01 61 03", code5: packet.ProtocolError},
	{name: "SUBSCRIBE retain handling 3", raw5: "82 07 00 01 00 00 01 61 30", code5: packet.ProtocolError},
	{name: "MQTT-3.8.3-5 SUBSCRIBE reserved option bits", raw311: "82 06 00 01 00 01 61 C0", raw5: "82 07 00 01 00 00 01 61 C0", code5: packet.MalformedPacket},

	// Packet order.
	{name: "MQTT-3.1.0-2 second CONNECT",
		raw311: "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 78",
		raw5:   "10 0E 00 04 4D 51 54 54 05 02 00 3C 00 00 01 78", code5: packet.ProtocolError},
	{name: "AUTH type 15", raw311: "F0 00", raw5: "F0 00", code5: packet.ProtocolError}, // 3.1.1: reserved type; 5.0: no auth method in CONNECT
	{name: "CONNACK from a client", raw311: "20 02 00 00", raw5: "20 03 00 00 00", code5: packet.ProtocolError},

	// 5.0 properties.
	{name: "MQTT-3.3.2-8 topic alias 0", raw5: "30 07 00 01 61 03 23 00 00", code5: packet.TopicAliasInvalid},
	{name: "MQTT-3.3.2-9 topic alias above maximum", raw5: "30 07 00 01 61 03 23 00 41", code5: packet.TopicAliasInvalid},
	{name: "unknown topic alias with empty topic", raw5: "30 06 00 00 03 23 00 05", code5: packet.ProtocolError},
	{name: "MQTT-3.3.4-6 subscription identifier from a client", raw5: "30 06 00 01 61 02 0B 01", code5: packet.ProtocolError},
	{name: "payload format indicator twice", raw5: "30 08 00 01 61 04 01 00 01 00", code5: packet.ProtocolError},
	{name: "non-minimal property length", raw5: "30 05 00 01 61 80 00", code5: packet.MalformedPacket},
	{name: "unknown property identifier", raw5: "30 06 00 01 61 02 7F 00", code5: packet.MalformedPacket},
	{name: "property length beyond the packet", raw5: "30 04 00 01 61 05", code5: packet.MalformedPacket},
}

func TestBadInputClosesOnlyTheOffendingConnection(t *testing.T) {
	b, addr, _ := startCountingBroker(t, Options{MaxPacketSize: 1024, ConnectTimeout: 2 * time.Second})
	n := 0
	for _, v := range versions() {
		for _, bc := range badAfterConnect {
			raw := bc.raw311
			if v == packet.V5 {
				raw = bc.raw5
			}
			if raw == "" {
				continue
			}
			n++
			prefix := fmt.Sprintf("g%d", n)
			t.Run(vname(v)+"/"+bc.name, func(t *testing.T) {
				good := goodClient(t, addr, v, prefix)
				bad := mustConnect(t, addr, v, "bad-"+prefix)
				msg := hx(raw)
				if !bc.noTrail {
					// Nothing after a bad packet may be processed: this
					// PUBLISH must not reach the good client.
					msg = packet.Append(msg, &packet.Publish{Topic: prefix + "/trail", Payload: []byte("after the bad packet")}, v)
				}
				bad.sendRaw(msg)
				expectCloseWith(t, bad, v, bc.code5, 5*time.Second)
				expectDropped(t, b, bad)
				good.stillServes(prefix, 2)
			})
		}
	}
}

// Bytes that must close a connection that has not sent CONNECT, silently:
// no CONNACK, no DISCONNECT [MQTT-3.1.0-1] [MQTT-3.1.4-1].
func TestBadFirstPacketClosesSilently(t *testing.T) {
	b, addr, _ := startCountingBroker(t, Options{MaxPacketSize: 1024, ConnectTimeout: 300 * time.Millisecond})
	cases := []struct {
		name      string
		raw       []byte
		halfClose bool
	}{
		{name: "MQTT-3.1.0-1 PUBLISH before CONNECT", raw: hx("30 03 00 01 61")},
		{name: "MQTT-3.1.0-1 PINGREQ before CONNECT", raw: hx("C0 00")},
		{name: "packet type 0", raw: hx("00 00")},
		{name: "garbage bytes", raw: hx("FF FF FF FF FF FF FF FF")},
		{name: "an HTTP request", raw: []byte("GET /mqtt HTTP/1.1\r\nHost: outpost\r\n\r\n")},
		{name: "a TLS ClientHello", raw: hx("16 03 01 00 C8 01 00 00 C4 03 03")},
		{name: "CONNECT larger than MaxPacketSize, header only", raw: hx("10 D0 0F")},
		{name: "CONNECT with a non-minimal remaining length", raw: hx("10 80 00")},
		{name: "truncated CONNECT, then the client stops sending", raw: hx("10 0D 00 04 4D"), halfClose: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("f%d", i)
			good := goodClient(t, addr, versions()[i%2], prefix) // 3.1.1 and 5.0 in turn
			bad := dial(t, addr, packet.V311)
			bad.sendRaw(tc.raw)
			if tc.halfClose {
				if err := bad.nc.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			expectSilentClose(t, bad.nc, 5*time.Second)
			expectDropped(t, b, bad)
			good.stillServes(prefix, 2)
		})
	}
}

// A socket that never sends CONNECT is closed after ConnectTimeout, not before.
func TestNoConnectClosedAfterConnectTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	b, addr, _ := startCountingBroker(t, Options{ConnectTimeout: timeout})
	good := goodClient(t, addr, packet.V5, "nc")
	start := time.Now()
	idle := dial(t, addr, packet.V311)
	expectSilentClose(t, idle.nc, 5*time.Second)
	if el := time.Since(start); el < timeout {
		t.Fatalf("closed after %v, before the connect timeout of %v", el, timeout)
	}
	expectDropped(t, b, idle)
	good.stillServes("nc", 2)
}

// A packet cut short, then the client closes: the broker drops the
// connection as an abnormal close, so the will is published [MQTT-3.1.2-8].
func TestTruncatedPacketThenClientCloses(t *testing.T) {
	b, addr, _ := startCountingBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			prefix := "tc" + vname(v)
			good := goodClient(t, addr, v, prefix)
			bad := mustConnect(t, addr, v, "bad-"+prefix, withWill(prefix+"/will", "gone", 1, false))
			bad.sendRaw(hx("30 14 00 03 61")) // header says 20 bytes; 3 of them follow
			bad.nc.Close()
			expectDropped(t, b, bad)
			good.expectPublish(prefix+"/will", "gone")
			good.stillServes(prefix, 2)
		})
	}
}

// A packet cut short, and the client goes quiet: the keep alive closes it
// [MQTT-3.1.2-24]; a 5.0 client is told 0x8D.
func TestTruncatedPacketClosedByKeepAlive(t *testing.T) {
	b, addr, _ := startCountingBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			t.Parallel()
			prefix := "ka" + vname(v)
			good := goodClient(t, addr, v, prefix)
			bad := mustConnect(t, addr, v, "bad-"+prefix, withKeepAlive(1))
			bad.sendRaw(hx("30 14 00 03 61"))
			expectCloseWith(t, bad, v, packet.KeepAliveTimeout, 5*time.Second)
			expectDropped(t, b, bad)
			good.stillServes(prefix, 2)
		})
	}
}

// A PUBREL for a packet id the broker does not know is answered with PUBCOMP
// [MQTT-3.6.4-1] (5.0: reason 0x92, §3.7.2.1), not a close.
func TestPubrelUnknownPacketIDGetsPubcomp(t *testing.T) {
	_, addr, _ := startCountingBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			prefix := "pr" + vname(v)
			c := goodClient(t, addr, v, prefix)
			c.sendRaw(hx("62 02 00 07"))
			a := expect[*packet.Ack](c)
			if a.Kind != packet.TypePubcomp || a.PacketID != 7 {
				t.Fatalf("got %s %d, want PUBCOMP 7", a.Kind, a.PacketID)
			}
			if want := map[packet.Version]packet.ReasonCode{packet.V311: 0, packet.V5: packet.PacketIDNotFound}[v]; a.ReasonCode != want {
				t.Fatalf("PUBCOMP reason %s, want %s", a.ReasonCode, want)
			}
			c.sendRaw(hx("C0 00"))
			expect[*packet.Pingresp](c)
			c.stillServes(prefix, 2)
		})
	}
}

// A subscriber that stops reading is disconnected as a slow consumer while
// its outbound queue stays within MaxOutboundBytes; a fast subscriber to the
// same busy topic keeps receiving.
func TestSlowConsumerDisconnected(t *testing.T) {
	const maxOut = 64 << 10
	b, addr, _ := startCountingBroker(t, Options{MaxOutboundBytes: maxOut, WriteTimeout: 500 * time.Millisecond})
	const busy = "busy/topic"

	stalled := dial(t, addr, packet.V311)
	if err := stalled.nc.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	stalled.send(&packet.Connect{ProtocolName: "MQTT", ProtocolVersion: packet.V311, ClientID: "stalled", CleanStart: true, KeepAlive: 60})
	if ca := expect[*packet.Connack](stalled); ca.ReasonCode != 0 {
		t.Fatalf("CONNACK %s", ca.ReasonCode)
	}
	stalled.subscribe(1, busy, 0)
	// From here on the stalled client reads nothing.

	fast := mustConnect(t, addr, packet.V5, "fast")
	fast.subscribe(1, busy, 1)
	type result struct {
		flood, ends int
		err         error
	}
	var fastFlood atomic.Int64
	fastDone := make(chan result, 1)
	go func() {
		var r result
		for r.ends < 10 {
			pk, err := fast.read(10 * time.Second)
			if err != nil {
				r.err = err
				break
			}
			p, ok := pk.(*packet.Publish)
			if !ok {
				r.err = fmt.Errorf("fast subscriber got %T", pk)
				break
			}
			if p.QoS == 0 {
				r.flood++
				fastFlood.Add(1)
				continue
			}
			if want := fmt.Sprintf("end-%d", r.ends); string(p.Payload) != want {
				r.err = fmt.Errorf("fast subscriber got %q, want %q", p.Payload, want)
				break
			}
			r.ends++
			ack := packet.Append(nil, &packet.Ack{Kind: packet.TypePuback, PacketID: p.PacketID}, packet.V5)
			// A fresh deadline: the one set by the last send may have passed
			// on a busy machine.
			_ = fast.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := fast.nc.Write(ack); err != nil {
				r.err = err
				break
			}
		}
		fastDone <- r
	}()

	pub := mustConnect(t, addr, packet.V311, "flooder")
	msg := packet.Append(nil, &packet.Publish{Topic: busy, Payload: make([]byte, 4096)}, packet.V311)
	stop := make(chan struct{})
	pubDone := make(chan error, 1)
	go func(stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				pubDone <- nil
				return
			default:
			}
			_ = pub.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := pub.nc.Write(msg); err != nil {
				pubDone <- err
				return
			}
		}
	}(stop)
	var stopOnce sync.Once
	var pubErr error
	stopFlood := func() error {
		stopOnce.Do(func() {
			close(stop)
			pubErr = <-pubDone
		})
		return pubErr
	}
	defer stopFlood()

	// Watch the stalled connection's queue until the broker drops it.
	local := stalled.nc.LocalAddr()
	var maxQueued int64
	seen := false
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := brokerConn(b, local)
		if c == nil {
			break
		}
		seen = true
		c.wmu.Lock()
		maxQueued = max(maxQueued, c.wbytes)
		c.wmu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("stalled subscriber still connected after 20s (queued at most %d bytes)", maxQueued)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !seen {
		t.Fatal("the stalled connection was never seen in the broker")
	}
	if maxQueued > maxOut {
		t.Fatalf("stalled connection queued %d bytes, more than MaxOutboundBytes %d", maxQueued, maxOut)
	}
	atDrop := fastFlood.Load()
	if err := stopFlood(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if b.Stats().MessagesDropped == 0 {
		t.Fatal("no message counted as dropped for the stalled subscriber")
	}
	// The fast subscriber is still served, reliably.
	for i := range 10 {
		pub.publish(uint16(i+1), busy, fmt.Sprintf("end-%d", i), 1, false)
	}
	select {
	case r := <-fastDone:
		if r.err != nil {
			t.Fatalf("fast subscriber: %v (after %d flood messages)", r.err, r.flood)
		}
		if r.flood == 0 {
			t.Fatal("the fast subscriber received none of the flood")
		}
		t.Logf("fast subscriber: %d flood messages, %d of them before the stalled one was dropped; stalled queue peaked at %d bytes",
			r.flood, atDrop, maxQueued)
	case <-time.After(15 * time.Second):
		t.Fatal("the fast subscriber did not receive the end markers")
	}
	if brokerConn(b, fast.nc.LocalAddr()) == nil {
		t.Fatal("the fast subscriber was disconnected")
	}
}

// A panic inside a connection handler (here: inside the broker's hooks, which
// run on the connection's reader goroutine) costs that connection only.
func TestHandlerPanicCostsOneConnection(t *testing.T) {
	deps := Deps{Hooks: Hooks{
		Authenticate: func(c *ClientInfo, _ []byte) packet.ReasonCode {
			if strings.HasPrefix(c.ClientID, "panic-auth") {
				panic("injected panic in Authenticate")
			}
			return packet.Success
		},
		BeforeAck: func(_ *ClientInfo, m *Message) error {
			if strings.HasSuffix(m.Topic, "/boom") {
				panic("injected panic in BeforeAck")
			}
			return nil
		},
	}}
	b, addr, pl := startCountingBroker(t, Options{}, deps)
	pl.expected.Store(true)
	want := int64(0)
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			prefix := "pn" + vname(v)
			good := goodClient(t, addr, v, prefix)

			bad := mustConnect(t, addr, v, "bad-"+prefix)
			bad.send(&packet.Publish{Topic: prefix + "/boom", Payload: []byte("x"), QoS: 1, PacketID: 1})
			expectCloseWith(t, bad, v, packet.ImplementationSpecificError, 5*time.Second)
			expectDropped(t, b, bad)
			want++
			if n := pl.n.Load(); n != want {
				t.Fatalf("%d panics logged, want %d", n, want)
			}
			good.stillServes(prefix, 2)

			early := dial(t, addr, v)
			early.send(&packet.Connect{ProtocolName: "MQTT", ProtocolVersion: v, ClientID: "panic-auth-" + prefix, CleanStart: true})
			expectSilentClose(t, early.nc, 5*time.Second)
			expectDropped(t, b, early)
			want++
			if n := pl.n.Load(); n != want {
				t.Fatalf("%d panics logged, want %d", n, want)
			}
			good.stillServes(prefix, 3)
		})
	}
}
