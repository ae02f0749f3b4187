package localbroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

// Conformance tests for MQTT 3.1.1, named after the normative statements of
// the OASIS MQTT 3.1.1 specification they check. Behaviour that both
// versions share runs for 3.1.1 and 5.0 (versions()); where the answer
// differs only in its code (CONNACK return code or reason code), both are
// checked. Helpers in this file are prefixed c3 so that they do not clash
// with the other test files of the package.

// --- helpers --------------------------------------------------------------

// c3Code picks the 3.1.1 or the 5.0 code for v.
func c3Code(v packet.Version, c311, c5 packet.ReasonCode) packet.ReasonCode {
	if v == packet.V5 {
		return c5
	}
	return c311
}

// c3Persistent returns the CONNECT options for a session that outlives the
// connection: clean session 0 in 3.1.1, clean start 0 with an expiry in 5.0.
func c3Persistent(v packet.Version) []connectOpt {
	if v == packet.V5 {
		return []connectOpt{withClean(false), withExpiry(300)}
	}
	return []connectOpt{withClean(false)}
}

// c3ConnectBytes encodes a CONNECT as the harness's connect would send it.
func c3ConnectBytes(v packet.Version, id string, opts ...connectOpt) []byte {
	cp := &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 60}
	for _, o := range opts {
		o(cp)
	}
	return packet.Append(nil, cp, v)
}

// c3Closed reads until the broker closes the connection within d and
// returns every packet that came before the close.
func c3Closed(c *client, d time.Duration) []packet.Packet {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var got []packet.Packet
	for {
		pk, err := c.read(time.Until(deadline))
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return got
			}
			c.t.Fatalf("expected the broker to close the connection, got %v after %d packets", err, len(got))
		}
		got = append(got, pk)
	}
}

// c3ClosedSilently requires the broker to close the connection without
// sending anything.
func c3ClosedSilently(c *client, d time.Duration) {
	c.t.Helper()
	if got := c3Closed(c, d); len(got) > 0 {
		c.t.Fatalf("expected a close without any packet, got %T %+v", got[0], got[0])
	}
}

// c3ClosedForViolation requires the broker to close the connection after a
// protocol violation: a 3.1.1 client gets nothing [MQTT-4.8.0-1]; a 5.0
// client gets at most a DISCONNECT, whose reason code must be code5.
func c3ClosedForViolation(c *client, code5 packet.ReasonCode) {
	c.t.Helper()
	got := c3Closed(c, 5*time.Second)
	if c.ver != packet.V5 {
		if len(got) > 0 {
			c.t.Fatalf("3.1.1: expected a plain close, got %T %+v", got[0], got[0])
		}
		return
	}
	for _, pk := range got {
		dc, ok := pk.(*packet.Disconnect)
		if !ok {
			c.t.Fatalf("5.0: expected at most a DISCONNECT before the close, got %T %+v", pk, pk)
		}
		if dc.ReasonCode != code5 {
			c.t.Fatalf("5.0: DISCONNECT %s, want %s", dc.ReasonCode, code5)
		}
	}
}

// c3Refused connects and requires a refusing CONNACK with the version's
// code, Session Present 0 [MQTT-3.2.2-4] and a close [MQTT-3.2.2-5].
func c3Refused(t *testing.T, addr string, v packet.Version, id string, c311, c5 packet.ReasonCode, opts ...connectOpt) {
	t.Helper()
	c, ca := connect(t, addr, v, id, opts...)
	if want := c3Code(v, c311, c5); ca.ReasonCode != want {
		t.Fatalf("CONNACK %s (0x%02X), want 0x%02X", ca.ReasonCode, byte(ca.ReasonCode), byte(want))
	}
	if ca.SessionPresent {
		t.Fatal("refusing CONNACK with Session Present 1 [MQTT-3.2.2-4]")
	}
	c3ClosedSilently(c, 5*time.Second) // [MQTT-3.2.2-5]
}

// c3Ping requires the connection to be open and served.
func c3Ping(c *client) {
	c.t.Helper()
	c.send(&packet.Pingreq{})
	expect[*packet.Pingresp](c)
}

// c3Drain reads PUBLISHes, acknowledging each, until none arrives for quiet.
func c3Drain(c *client, quiet time.Duration) []*packet.Publish {
	c.t.Helper()
	var got []*packet.Publish
	for {
		pk, err := c.read(quiet)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got
			}
			c.t.Fatalf("reading PUBLISHes: %v", err)
		}
		p, ok := pk.(*packet.Publish)
		if !ok {
			c.t.Fatalf("expected PUBLISH, got %T %+v", pk, pk)
		}
		c.ack(p)
		got = append(got, p)
	}
}

// c3ReadPublishes reads n PUBLISHes and acknowledges them as they come,
// while the broker keeps its window full: with QoS 2 its PUBRELs arrive
// between later PUBLISHes. It returns once every QoS 2 flow completed.
func c3ReadPublishes(c *client, n int) []*packet.Publish {
	c.t.Helper()
	var got []*packet.Publish
	open := map[uint16]bool{} // QoS 2 ids waiting for PUBREL
	for len(got) < n || len(open) > 0 {
		switch p := expect[packet.Packet](c).(type) {
		case *packet.Publish:
			got = append(got, p)
			switch p.QoS {
			case 1:
				c.send(&packet.Ack{Kind: packet.TypePuback, PacketID: p.PacketID})
			case 2:
				open[p.PacketID] = true
				c.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: p.PacketID})
			}
		case *packet.Ack:
			if p.Kind != packet.TypePubrel || !open[p.PacketID] {
				c.t.Fatalf("unexpected %s %d", p.Kind, p.PacketID)
			}
			delete(open, p.PacketID)
			c.send(&packet.Ack{Kind: packet.TypePubcomp, PacketID: p.PacketID})
		default:
			c.t.Fatalf("expected PUBLISH or PUBREL, got %T %+v", p, p)
		}
	}
	return got
}

// c3ExpectAck reads an acknowledgement of kind k for pid.
func c3ExpectAck(c *client, k packet.Type, pid uint16) *packet.Ack {
	c.t.Helper()
	a := expect[*packet.Ack](c)
	if a.Kind != k || a.PacketID != pid {
		c.t.Fatalf("got %s id %d, want %s %d", a.Kind, a.PacketID, k, pid)
	}
	return a
}

// c3Conns is the number of network connections the broker tracks.
func c3Conns(b *Broker) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// --- CONNECT ---------------------------------------------------------------

func Test311FirstPacketMustBeConnect(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.1.0-1]", func(t *testing.T) {
			for _, first := range []packet.Packet{
				&packet.Pingreq{},
				&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "x/#", QoS: 1}}},
				&packet.Publish{Topic: "x/y", Payload: []byte("p"), QoS: 1, PacketID: 1},
			} {
				c := dial(t, addr, v)
				c.send(first)
				// No CONNACK, no PINGRESP, no SUBACK: the socket is closed.
				c3ClosedSilently(c, 5*time.Second)
			}
		})
	}
}

func Test311SecondConnectIsProtocolViolation(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.1.0-2]", func(t *testing.T) {
			obs := mustConnect(t, addr, v, "c3-2nd-obs"+vname(v))
			obs.subscribe(1, "c3/2nd/"+vname(v), 1)
			c := mustConnect(t, addr, v, "c3-2nd"+vname(v))
			raw := c3ConnectBytes(v, "c3-2nd"+vname(v))
			raw = packet.Append(raw, &packet.Publish{Topic: "c3/2nd/" + vname(v), Payload: []byte("after")}, v)
			c.sendRaw(raw)
			c3ClosedForViolation(c, packet.ProtocolError)
			// The PUBLISH behind the second CONNECT was not processed.
			obs.expectNothing(100 * time.Millisecond)
		})
	}
}

func Test311UnsupportedProtocolLevel(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	mqtt := func(level byte) []byte {
		b := c3ConnectBytes(packet.V311, "c3-level")
		b[8] = level // 0x10 len 0x00 0x04 'M' 'Q' 'T' 'T' level
		return b
	}
	cases := []struct {
		name string
		raw  []byte
	}{
		{"MQTT level 6", mqtt(6)},
		{"MQTT level 3", mqtt(3)},
		{"MQTT level 0", mqtt(0)},
		{"MQIsdp level 3 (MQTT 3.1)", packet.Append(nil, &packet.Connect{ClientID: "c3-level", CleanStart: true}, packet.V31)},
	}
	for _, tc := range cases {
		t.Run("[MQTT-3.1.2-2]/"+tc.name, func(t *testing.T) {
			c := dial(t, addr, packet.V311)
			c.sendRaw(tc.raw)
			ca := expect[*packet.Connack](c)
			if ca.ReasonCode != packet.ConnRefusedVersion {
				t.Fatalf("CONNACK %s, want 0x01 (unacceptable protocol level)", ca.ReasonCode)
			}
			if ca.SessionPresent {
				t.Fatal("Session Present 1 on a refusal [MQTT-3.2.2-4]")
			}
			c3ClosedSilently(c, 5*time.Second) // [MQTT-3.2.2-5]
		})
	}
}

func Test311ReservedConnectFlag(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.1.2-3]", func(t *testing.T) {
			raw := c3ConnectBytes(v, "c3-reserved"+vname(v))
			if raw[9]&0x01 != 0 {
				t.Fatal("test bug: reserved flag already set")
			}
			raw[9] |= 0x01
			// A PINGREQ behind the bad CONNECT must not be answered
			// [MQTT-3.1.4-5].
			raw = packet.Append(raw, &packet.Pingreq{}, v)
			c := dial(t, addr, v)
			c.sendRaw(raw)
			got := c3Closed(c, 5*time.Second)
			if v == packet.V311 && len(got) > 0 {
				// [MQTT-3.1.4-1] close without CONNACK.
				t.Fatalf("3.1.1: got %T %+v, want a close without CONNACK", got[0], got[0])
			}
			for _, pk := range got {
				// 5.0: a malformed CONNECT may be answered with CONNACK 0x81.
				if ca, ok := pk.(*packet.Connack); !ok || ca.ReasonCode != packet.MalformedPacket {
					t.Fatalf("5.0: got %T %+v, want nothing or CONNACK 0x81", pk, pk)
				}
			}
		})
	}
}

func Test311CleanSessionAndSessionPresent(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			id := "c3-cs" + vname(v)
			tp := "c3/cs/" + vname(v)
			pub := mustConnect(t, addr, v, "c3-cs-pub"+vname(v))
			steps := []struct {
				name string
				fn   func(t *testing.T)
			}{
				{"[MQTT-3.2.2-3] no stored session: Session Present 0", func(t *testing.T) {
					c, ca := connect(t, addr, v, id, c3Persistent(v)...)
					if ca.ReasonCode != 0 || ca.SessionPresent {
						t.Fatalf("CONNACK %s present=%v, want 0 present=0", ca.ReasonCode, ca.SessionPresent)
					}
					c.subscribe(1, tp, 1)
					c.disconnect()
					waitOffline(t, b, id)
				}},
				{"[MQTT-3.1.2-5] QoS 1 messages are stored while disconnected", func(t *testing.T) {
					pub.publish(1, tp, "while-away", 1, false)
				}},
				{"[MQTT-3.2.2-2] stored session: Session Present 1 [MQTT-3.1.2-4]", func(t *testing.T) {
					c, ca := connect(t, addr, v, id, c3Persistent(v)...)
					if ca.ReasonCode != 0 || !ca.SessionPresent {
						t.Fatalf("CONNACK %s present=%v, want 0 present=1", ca.ReasonCode, ca.SessionPresent)
					}
					p := c.expectPublish(tp, "while-away")
					if p.QoS != 1 {
						t.Fatalf("stored message delivered at QoS %d, want 1", p.QoS)
					}
					// The subscription is part of the resumed session.
					pub.publish(2, tp, "live", 1, false)
					c.expectPublish(tp, "live")
					c.disconnect()
					waitOffline(t, b, id)
					pub.publish(3, tp, "before-clean", 1, false)
				}},
				{"[MQTT-3.2.2-1] clean session: Session Present 0 and the old session is discarded [MQTT-3.1.2-6]", func(t *testing.T) {
					c, ca := connect(t, addr, v, id)
					if ca.ReasonCode != 0 || ca.SessionPresent {
						t.Fatalf("CONNACK %s present=%v, want 0 present=0", ca.ReasonCode, ca.SessionPresent)
					}
					pub.publish(4, tp, "after-clean", 1, false)
					c.expectNothing(150 * time.Millisecond) // neither the stored message nor the subscription survive
					c.disconnect()
					waitOffline(t, b, id)
				}},
				{"[MQTT-3.1.2-6] a clean session's state is not reused", func(t *testing.T) {
					c, ca := connect(t, addr, v, id, c3Persistent(v)...)
					if ca.ReasonCode != 0 || ca.SessionPresent {
						t.Fatalf("CONNACK %s present=%v, want 0 present=0", ca.ReasonCode, ca.SessionPresent)
					}
					c.expectNothing(100 * time.Millisecond)
					c.disconnect()
				}},
			}
			for _, s := range steps {
				if !t.Run(s.name, s.fn) {
					return
				}
			}
		})
	}
}

func Test311EmptyClientID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	t.Run(vname(packet.V311)+"/[MQTT-3.1.3-8] zero-byte id with clean session 0 is rejected with 0x02", func(t *testing.T) {
		c3Refused(t, addr, packet.V311, "", packet.ConnRefusedIdentifier, 0, withClean(false))
	})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.1.3-6][MQTT-3.1.3-7] zero-byte id with clean session 1 gets a unique id", func(t *testing.T) {
			a, caA := connect(t, addr, v, "")
			if caA.ReasonCode != 0 || caA.SessionPresent {
				t.Fatalf("first CONNACK %s present=%v", caA.ReasonCode, caA.SessionPresent)
			}
			b, caB := connect(t, addr, v, "")
			if caB.ReasonCode != 0 {
				t.Fatalf("second CONNACK %s", caB.ReasonCode)
			}
			if v == packet.V5 {
				ia, ib := caA.Properties.AssignedClientID, caB.Properties.AssignedClientID
				if ia == "" || ib == "" || ia == ib {
					t.Fatalf("assigned client ids %q and %q, want two distinct ones", ia, ib)
				}
			}
			// Distinct ids: the second did not take the first over, and
			// both work as clients.
			tp := "c3/empty/" + vname(v)
			a.subscribe(1, tp+"/a", 1)
			b.subscribe(1, tp+"/b", 1)
			b.publish(2, tp+"/a", "to a", 1, false)
			a.expectPublish(tp+"/a", "to a")
			a.publish(3, tp+"/b", "to b", 1, false)
			b.expectPublish(tp+"/b", "to b")
			c3Ping(a)
		})
	}
}

func Test311ConnectTimeout(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{ConnectTimeout: 300 * time.Millisecond})
	t.Run("a socket that sends nothing is closed", func(t *testing.T) {
		t.Parallel()
		c := dial(t, addr, packet.V311)
		c.expectNothing(150 * time.Millisecond) // not closed at once
		c3ClosedSilently(c, 5*time.Second)
	})
	t.Run("a socket that sends half a CONNECT is closed", func(t *testing.T) {
		t.Parallel()
		c := dial(t, addr, packet.V311)
		raw := c3ConnectBytes(packet.V311, "c3-half")
		c.sendRaw(raw[:len(raw)/2])
		c3ClosedSilently(c, 5*time.Second)
	})
	for _, v := range versions() {
		t.Run(vname(v)+"/a client that connected in time is not closed by it", func(t *testing.T) {
			t.Parallel()
			c := mustConnect(t, addr, v, "c3-intime"+vname(v), withKeepAlive(0))
			c.expectNothing(500 * time.Millisecond)
			c3Ping(c)
		})
	}
}

func Test311KeepAlive(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.1.2-24]", func(t *testing.T) {
			t.Parallel()
			tp := "c3/ka/" + vname(v)
			obs := mustConnect(t, addr, v, "c3-ka-obs"+vname(v))
			obs.subscribe(1, tp, 1)
			c := mustConnect(t, addr, v, "c3-ka"+vname(v), withKeepAlive(1), withWill(tp, "timed out", 1, false))
			// Any control packet resets the timer: a client that pings
			// every 0.6s stays connected well past 1.5 x keep alive.
			for range 3 {
				c.expectNothing(600 * time.Millisecond)
				c3Ping(c)
			}
			// Then it goes quiet: not closed within the keep alive
			// itself (the broker allows one and a half times it) ...
			obs.expectNothing(1100 * time.Millisecond)
			// ... but closed soon after, as if the network had failed:
			// the will is published.
			p := obs.expectPublish(tp, "timed out")
			if p.QoS != 1 {
				t.Fatalf("will delivered at QoS %d, want 1", p.QoS)
			}
			code, saw := c.expectClosed(5 * time.Second)
			if v == packet.V311 && saw {
				t.Fatal("3.1.1 client got a DISCONNECT")
			}
			if v == packet.V5 && saw && code != packet.KeepAliveTimeout {
				t.Fatalf("DISCONNECT %s, want 0x8D", code)
			}
		})
	}
}

func Test311Pingresp(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.12.4-1]", func(t *testing.T) {
			c := mustConnect(t, addr, v, "c3-ping"+vname(v))
			for range 3 {
				c3Ping(c)
			}
			// Three in one write get three answers.
			var raw []byte
			for range 3 {
				raw = packet.Append(raw, &packet.Pingreq{}, v)
			}
			c.sendRaw(raw)
			for range 3 {
				expect[*packet.Pingresp](c)
			}
			c.expectNothing(50 * time.Millisecond)
		})
	}
}

func Test311SessionTakeover(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.1.4-2]", func(t *testing.T) {
			id := "c3-take" + vname(v)
			tp := "c3/take/" + vname(v)
			first := mustConnect(t, addr, v, id, c3Persistent(v)...)
			first.subscribe(1, tp, 1)
			second, ca := connect(t, addr, v, id, c3Persistent(v)...)
			if ca.ReasonCode != 0 || !ca.SessionPresent {
				t.Fatalf("CONNACK %s present=%v, want the session resumed", ca.ReasonCode, ca.SessionPresent)
			}
			code, saw := first.expectClosed(5 * time.Second)
			if v == packet.V311 && saw {
				t.Fatal("3.1.1 client got a DISCONNECT")
			}
			if v == packet.V5 && (!saw || code != packet.SessionTakenOver) {
				t.Fatalf("5.0: DISCONNECT %v %s, want 0x8E", saw, code)
			}
			// The new connection owns the session and its subscription.
			pub := mustConnect(t, addr, v, "c3-take-pub"+vname(v))
			pub.publish(1, tp, "to the new owner", 1, false)
			second.expectPublish(tp, "to the new owner")
		})
	}
}

func Test311ResendOnReconnect(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-4.4.0-1][MQTT-4.6.0-1] unacknowledged PUBLISH and PUBREL are resent with their ids, in order", func(t *testing.T) {
			id := "c3-resend" + vname(v)
			tp := "c3/resend/" + vname(v)
			sub := mustConnect(t, addr, v, id, c3Persistent(v)...)
			sub.subscribe(1, tp+"/#", 2)
			pub := mustConnect(t, addr, v, "c3-resend-pub"+vname(v))
			pub.publish(1, tp+"/a", "a", 2, false)
			pub.publish(2, tp+"/b", "b", 1, false)
			pub.publish(3, tp+"/c", "c", 2, false)
			pa := expect[*packet.Publish](sub)
			pb := expect[*packet.Publish](sub)
			pc := expect[*packet.Publish](sub)
			// a: PUBREC sent, PUBREL received, PUBCOMP never sent.
			sub.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: pa.PacketID})
			c3ExpectAck(sub, packet.TypePubrel, pa.PacketID)
			sub.nc.Close() // b and c never acknowledged
			waitOffline(t, b, id)
			sub, ca := connect(t, addr, v, id, c3Persistent(v)...)
			if !ca.SessionPresent {
				t.Fatal("session not resumed")
			}
			c3ExpectAck(sub, packet.TypePubrel, pa.PacketID)
			for _, want := range []*packet.Publish{pb, pc} {
				p := expect[*packet.Publish](sub)
				if p.PacketID != want.PacketID || p.Topic != want.Topic || p.QoS != want.QoS || !p.Dup {
					t.Fatalf("resent %q id %d QoS %d dup %v, want %q id %d QoS %d with DUP",
						p.Topic, p.PacketID, p.QoS, p.Dup, want.Topic, want.PacketID, want.QoS)
				}
			}
			sub.send(&packet.Ack{Kind: packet.TypePubcomp, PacketID: pa.PacketID})
			sub.ack(pb)
			sub.ack(pc)
			sub.expectNothing(100 * time.Millisecond)
		})
	}
}

func Test311Will(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			base := "c3/will/" + vname(v) + "/"
			obs := mustConnect(t, addr, v, "c3-will-obs"+vname(v))
			obs.subscribe(1, base+"#", 2)
			for q := byte(0); q <= 2; q++ {
				t.Run(fmt.Sprintf("[MQTT-3.1.2-8] QoS %d will published when the connection is lost", q), func(t *testing.T) {
					tp := fmt.Sprintf("%sq%d", base, q)
					c := mustConnect(t, addr, v, fmt.Sprintf("c3-will-q%d%s", q, vname(v)), withWill(tp, "lost", q, false))
					c.nc.Close()
					p := obs.expectPublish(tp, "lost")
					if p.QoS != q {
						t.Fatalf("will delivered at QoS %d, want %d", p.QoS, q)
					}
					if p.Retain {
						t.Fatal("will delivered live with retain 1 [MQTT-3.3.1-9]")
					}
				})
			}
			t.Run("[MQTT-3.1.2-17] a will with retain 1 is published as a retained message", func(t *testing.T) {
				tp := base + "retained"
				c := mustConnect(t, addr, v, "c3-will-ret"+vname(v), withWill(tp, "last words", 1, true))
				c.nc.Close()
				obs.expectPublish(tp, "last words")
				late := mustConnect(t, addr, v, "c3-will-late"+vname(v))
				late.subscribe(1, tp, 1)
				p := late.expectPublish(tp, "last words")
				if !p.Retain {
					t.Fatal("stored will delivered without retain flag [MQTT-3.3.1-8]")
				}
			})
			t.Run("[MQTT-3.1.2-16] a will with retain 0 is not retained", func(t *testing.T) {
				tp := base + "plain"
				c := mustConnect(t, addr, v, "c3-will-plain"+vname(v), withWill(tp, "bye", 1, false))
				c.nc.Close()
				obs.expectPublish(tp, "bye")
				late := mustConnect(t, addr, v, "c3-will-late2"+vname(v))
				late.subscribe(1, tp, 1)
				late.expectNothing(100 * time.Millisecond)
			})
			t.Run("[MQTT-3.1.2-10][MQTT-3.14.4-3] no will after DISCONNECT", func(t *testing.T) {
				tp := base + "polite"
				c := mustConnect(t, addr, v, "c3-will-polite"+vname(v), withWill(tp, "never", 2, true))
				c.disconnect()
				obs.expectNothing(200 * time.Millisecond)
				late := mustConnect(t, addr, v, "c3-will-late3"+vname(v))
				late.subscribe(1, tp, 1)
				late.expectNothing(100 * time.Millisecond)
			})
			t.Run("[MQTT-3.1.2-12] no will flag, no will", func(t *testing.T) {
				c := mustConnect(t, addr, v, "c3-will-none"+vname(v))
				c.nc.Close()
				obs.expectNothing(150 * time.Millisecond)
			})
		})
	}
}

// --- QoS flows ---------------------------------------------------------------

func Test311QoS1Flow(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-4.3.2-2]", func(t *testing.T) {
			tp := "c3/q1/" + vname(v)
			sub := mustConnect(t, addr, v, "c3-q1-sub"+vname(v))
			sub.subscribe(1, tp, 1)
			pub := mustConnect(t, addr, v, "c3-q1-pub"+vname(v))
			pub.send(&packet.Publish{Topic: tp, Payload: []byte("one"), QoS: 1, PacketID: 9})
			c3ExpectAck(pub, packet.TypePuback, 9) // PUBACK with the PUBLISH's id
			p := sub.expectPublish(tp, "one")
			if p.QoS != 1 || p.PacketID == 0 || p.Dup {
				t.Fatalf("delivery QoS %d id %d dup %v, want QoS 1, an id, no DUP", p.QoS, p.PacketID, p.Dup)
			}
			// After the PUBACK the same id (even with DUP) is a new
			// publication: delivered again.
			pub.send(&packet.Publish{Topic: tp, Payload: []byte("one"), QoS: 1, PacketID: 9, Dup: true})
			c3ExpectAck(pub, packet.TypePuback, 9)
			p2 := sub.expectPublish(tp, "one")
			if p2.Dup {
				t.Fatal("DUP propagated to the subscriber [MQTT-3.3.1-3]")
			}
			sub.expectNothing(100 * time.Millisecond)
		})
	}
}

func Test311QoS2DuplicateDeliveredOnce(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-4.3.3-2]", func(t *testing.T) {
			tp := "c3/q2/" + vname(v)
			sub := mustConnect(t, addr, v, "c3-q2-sub"+vname(v))
			sub.subscribe(1, tp, 2)
			pub := mustConnect(t, addr, v, "c3-q2-pub"+vname(v))
			pub.send(&packet.Publish{Topic: tp, Payload: []byte("once"), QoS: 2, PacketID: 5})
			c3ExpectAck(pub, packet.TypePubrec, 5)
			// The publisher did not see the PUBREC and sends again, with
			// DUP, before PUBREL: acknowledged again, not delivered again.
			for range 2 {
				pub.send(&packet.Publish{Topic: tp, Payload: []byte("once"), QoS: 2, PacketID: 5, Dup: true})
				c3ExpectAck(pub, packet.TypePubrec, 5)
			}
			pub.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: 5})
			c3ExpectAck(pub, packet.TypePubcomp, 5)
			p := sub.expectPublish(tp, "once")
			if p.QoS != 2 {
				t.Fatalf("delivered at QoS %d, want 2", p.QoS)
			}
			sub.expectNothing(150 * time.Millisecond)
			// After PUBCOMP the id is free: the same id is a new message.
			pub.publish(5, tp, "again", 2, false)
			sub.expectPublish(tp, "again")
			sub.expectNothing(100 * time.Millisecond)
		})
	}
}

func Test311PubrelUnknownID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-4.3.3-2] PUBREL for an unknown id gets PUBCOMP", func(t *testing.T) {
			c := mustConnect(t, addr, v, "c3-pubrel"+vname(v))
			c.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: 77})
			a := c3ExpectAck(c, packet.TypePubcomp, 77)
			if v == packet.V5 && a.ReasonCode != packet.PacketIDNotFound {
				t.Fatalf("5.0 PUBCOMP reason %s, want 0x92", a.ReasonCode)
			}
			c3Ping(c) // the connection stays up
		})
	}
}

func Test311OrderedTopic(t *testing.T) {
	t.Parallel()
	const n = 200
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		for q := byte(0); q <= 2; q++ {
			t.Run(fmt.Sprintf("%s/QoS%d/[MQTT-4.6.0-6]", vname(v), q), func(t *testing.T) {
				tp := fmt.Sprintf("c3/order/%s/%d", vname(v), q)
				sub := mustConnect(t, addr, v, fmt.Sprintf("c3-order-sub%d%s", q, vname(v)))
				sub.subscribe(1, tp, 2)
				pub := mustConnect(t, addr, v, fmt.Sprintf("c3-order-pub%d%s", q, vname(v)))
				// Pipelined: windows of 50 PUBLISHes, then their acks.
				for base := 0; base < n; base += 50 {
					var raw []byte
					for i := base; i < base+50; i++ {
						p := &packet.Publish{Topic: tp, Payload: []byte(strconv.Itoa(i)), QoS: q}
						if q > 0 {
							p.PacketID = uint16(i + 1)
						}
						raw = packet.Append(raw, p, v)
					}
					pub.sendRaw(raw)
					if q == 0 {
						continue
					}
					first := packet.TypePuback
					if q == 2 {
						first = packet.TypePubrec
					}
					for i := base; i < base+50; i++ {
						c3ExpectAck(pub, first, uint16(i+1))
					}
					if q == 2 {
						for i := base; i < base+50; i++ {
							pub.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: uint16(i + 1)})
						}
						for i := base; i < base+50; i++ {
							c3ExpectAck(pub, packet.TypePubcomp, uint16(i+1))
						}
					}
				}
				for i, p := range c3ReadPublishes(sub, n) {
					if p.Topic != tp || string(p.Payload) != strconv.Itoa(i) || p.QoS != q {
						t.Fatalf("message %d: %q %q at QoS %d, want %q %q at QoS %d", i, p.Topic, p.Payload, p.QoS, tp, strconv.Itoa(i), q)
					}
				}
				sub.expectNothing(50 * time.Millisecond)
			})
		}
	}
}

func Test311InflightWindow(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{MaxInflight: 2})
	for _, v := range versions() {
		t.Run(vname(v)+"/QoS1", func(t *testing.T) {
			tp := "c3/win1/" + vname(v)
			sub := mustConnect(t, addr, v, "c3-win1-sub"+vname(v))
			sub.subscribe(1, tp, 1)
			pub := mustConnect(t, addr, v, "c3-win1-pub"+vname(v))
			for i := range 5 {
				pub.publish(uint16(i+1), tp, fmt.Sprint("m", i), 1, false)
			}
			p0 := expect[*packet.Publish](sub)
			p1 := expect[*packet.Publish](sub)
			if string(p0.Payload) != "m0" || string(p1.Payload) != "m1" {
				t.Fatalf("got %q %q, want m0 m1", p0.Payload, p1.Payload)
			}
			sub.expectNothing(150 * time.Millisecond) // window of 2 is full
			sub.ack(p0)
			p2 := expect[*packet.Publish](sub)
			if string(p2.Payload) != "m2" {
				t.Fatalf("got %q, want m2", p2.Payload)
			}
			sub.expectNothing(100 * time.Millisecond)
			sub.ack(p1)
			sub.ack(p2)
			sub.expectPublish(tp, "m3")
			sub.expectPublish(tp, "m4")
			sub.expectNothing(50 * time.Millisecond)
		})
		t.Run(vname(v)+"/QoS2 counts until PUBCOMP", func(t *testing.T) {
			tp := "c3/win2/" + vname(v)
			sub := mustConnect(t, addr, v, "c3-win2-sub"+vname(v))
			sub.subscribe(1, tp, 2)
			pub := mustConnect(t, addr, v, "c3-win2-pub"+vname(v))
			for i := range 4 {
				pub.publish(uint16(i+1), tp, fmt.Sprint("m", i), 2, false)
			}
			p0 := expect[*packet.Publish](sub)
			p1 := expect[*packet.Publish](sub)
			if string(p0.Payload) != "m0" || string(p1.Payload) != "m1" {
				t.Fatalf("got %q %q, want m0 m1", p0.Payload, p1.Payload)
			}
			sub.expectNothing(150 * time.Millisecond)
			sub.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: p0.PacketID})
			c3ExpectAck(sub, packet.TypePubrel, p0.PacketID)
			sub.expectNothing(150 * time.Millisecond) // still in flight until PUBCOMP
			sub.send(&packet.Ack{Kind: packet.TypePubcomp, PacketID: p0.PacketID})
			p2 := expect[*packet.Publish](sub)
			if string(p2.Payload) != "m2" {
				t.Fatalf("got %q, want m2", p2.Payload)
			}
			sub.ack(p1)
			sub.expectPublish(tp, "m3")
			sub.ack(p2)
			sub.expectNothing(50 * time.Millisecond)
		})
	}
}

func Test311MaxQueuedMessages(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{MaxQueuedMessages: 3})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.1.2-5] offline queue is bounded", func(t *testing.T) {
			id := "c3-mq" + vname(v)
			tp := "c3/mq/" + vname(v)
			sub := mustConnect(t, addr, v, id, c3Persistent(v)...)
			sub.subscribe(1, tp, 1)
			sub.disconnect()
			waitOffline(t, b, id)
			pub := mustConnect(t, addr, v, "c3-mq-pub"+vname(v))
			before := b.Stats().MessagesDropped
			for i := range 5 {
				pub.publish(uint16(i+1), tp, fmt.Sprint("m", i), 1, false)
			}
			if d := b.Stats().MessagesDropped - before; d != 2 {
				t.Fatalf("MessagesDropped grew by %d, want 2", d)
			}
			sub, ca := connect(t, addr, v, id, c3Persistent(v)...)
			if !ca.SessionPresent {
				t.Fatal("session not resumed")
			}
			for i := range 3 {
				sub.expectPublish(tp, fmt.Sprint("m", i))
			}
			sub.expectNothing(150 * time.Millisecond)
		})
	}
}

// --- retained messages ---------------------------------------------------------

func Test311Retained(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			tp := "c3/ret/" + vname(v) + "/t"
			filter := "c3/ret/" + vname(v) + "/#"
			pub := mustConnect(t, addr, v, "c3-ret-pub"+vname(v))
			live := mustConnect(t, addr, v, "c3-ret-live"+vname(v))
			live.subscribe(1, filter, 2)
			n := 0
			fresh := func(t *testing.T, q byte) *client {
				n++
				c := mustConnect(t, addr, v, fmt.Sprintf("c3-ret-%d%s", n, vname(v)))
				c.subscribe(1, filter, q)
				return c
			}
			steps := []struct {
				name string
				fn   func(t *testing.T)
			}{
				{"[MQTT-3.3.1-9] live delivery has retain 0", func(t *testing.T) {
					pub.publish(1, tp, "one", 1, true)
					if p := live.expectPublish(tp, "one"); p.Retain {
						t.Fatal("retain 1 on delivery to an established subscription")
					}
				}},
				{"[MQTT-3.3.1-5][MQTT-3.3.1-6][MQTT-3.3.1-8] a new subscription gets the retained message with retain 1", func(t *testing.T) {
					c := fresh(t, 2)
					p := c.expectPublish(tp, "one")
					if !p.Retain {
						t.Fatal("retained message sent on subscribe without retain 1")
					}
					if p.QoS != 1 {
						t.Fatalf("retained message at QoS %d, want its stored QoS 1", p.QoS)
					}
					c.expectNothing(50 * time.Millisecond)
					if q0 := fresh(t, 0); expect[*packet.Publish](q0).QoS != 0 {
						t.Fatal("retained message above the subscription's QoS 0")
					}
				}},
				{"[MQTT-3.3.1-5] a retained message replaces the previous one", func(t *testing.T) {
					pub.publish(2, tp, "two", 2, true)
					live.expectPublish(tp, "two")
					c := fresh(t, 2)
					if p := c.expectPublish(tp, "two"); !p.Retain || p.QoS != 2 {
						t.Fatalf("got retain %v QoS %d, want retain 1 QoS 2", p.Retain, p.QoS)
					}
					c.expectNothing(50 * time.Millisecond)
				}},
				{"[MQTT-3.3.1-12] retain 0 does not store, remove or replace", func(t *testing.T) {
					pub.publish(3, tp, "not-kept", 1, false)
					live.expectPublish(tp, "not-kept")
					c := fresh(t, 2)
					c.expectPublish(tp, "two")
					c.expectNothing(50 * time.Millisecond)
				}},
				{"[MQTT-3.8.4-3] subscribing again re-sends the retained message", func(t *testing.T) {
					c := fresh(t, 1)
					c.expectPublish(tp, "two")
					c.subscribe(2, filter, 1)
					if p := c.expectPublish(tp, "two"); !p.Retain {
						t.Fatal("re-sent retained message without retain 1")
					}
				}},
				{"[MQTT-3.3.1-10] zero-byte retained message is delivered and clears the topic", func(t *testing.T) {
					before := b.Stats().Retained
					pub.publish(4, tp, "", 1, true)
					if p := live.expectPublish(tp, ""); p.Retain {
						t.Fatal("live delivery with retain 1")
					}
					c := fresh(t, 2)
					c.expectNothing(100 * time.Millisecond)
					if after := b.Stats().Retained; after != before-1 {
						t.Fatalf("retained count %d -> %d, want one fewer", before, after)
					}
				}},
				{"[MQTT-3.3.1-11] a zero-byte retained message is not stored", func(t *testing.T) {
					before := b.Stats().Retained
					pub.publish(5, tp+"/never", "", 0, true)
					live.expectPublish(tp+"/never", "")
					c := fresh(t, 2)
					c.expectNothing(100 * time.Millisecond)
					if after := b.Stats().Retained; after != before {
						t.Fatalf("retained count %d -> %d, want unchanged", before, after)
					}
				}},
				{"[MQTT-3.3.1-7] QoS 0 retained message replaces and is stored", func(t *testing.T) {
					pub.publish(0, tp, "zero", 0, true)
					live.expectPublish(tp, "zero")
					c := fresh(t, 2)
					if p := c.expectPublish(tp, "zero"); !p.Retain || p.QoS != 0 {
						t.Fatalf("got retain %v QoS %d, want retain 1 QoS 0", p.Retain, p.QoS)
					}
				}},
			}
			for _, s := range steps {
				if !t.Run(s.name, s.fn) {
					return
				}
			}
		})
	}
}

// --- topic matching -------------------------------------------------------------

func Test311Wildcards(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	topics := []string{"sport", "sport/", "sport/tennis", "sport/tennis/player1",
		"sport/tennis/player1/ranking", "/finance", "finance", "sports", "$app/sport", "$app"}
	cases := []struct {
		name   string
		filter string
		want   []string
	}{
		{"[MQTT-4.7.1-2] # matches the parent and any number of levels", "sport/#",
			[]string{"sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking"}},
		{"[MQTT-4.7.1-3] + matches exactly one level", "sport/tennis/+", []string{"sport/tennis/player1"}},
		{"[MQTT-4.7.1-3] sport/+ matches sport/ but not sport", "sport/+", []string{"sport/", "sport/tennis"}},
		{"[MQTT-4.7.1-3] + alone is one level", "+", []string{"sport", "finance", "sports"}},
		{"[MQTT-4.7.1-3] +/+ matches an empty first level", "+/+", []string{"sport/", "sport/tennis", "/finance"}},
		{"[MQTT-4.7.1-3] /+", "/+", []string{"/finance"}},
		{"[MQTT-4.7.1-3] + then #", "+/tennis/#", []string{"sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking"}},
		{"[MQTT-4.7.2-1] # does not match $ topics", "#",
			[]string{"sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "/finance", "finance", "sports"}},
		{"[MQTT-4.7.2-1] + does not match a $ level", "+/sport", nil},
		{"[MQTT-4.7.2-1] a filter naming the $ level matches", "$app/#", []string{"$app/sport", "$app"}},
		{"[MQTT-4.7.2-1] $app/+", "$app/+", []string{"$app/sport"}},
		{"[MQTT-4.7.3-4] no normalization", "Sport/#", nil},
	}
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			subs := make([]*client, len(cases))
			for i, tc := range cases {
				subs[i] = mustConnect(t, addr, v, fmt.Sprintf("c3-wild%d%s", i, vname(v)))
				subs[i].subscribe(1, tc.filter, 1)
			}
			pub := mustConnect(t, addr, v, "c3-wild-pub"+vname(v))
			for i, tp := range topics {
				pub.publish(uint16(i+1), tp, tp, 1, false)
			}
			// Every delivery was queued before the last PUBACK: one quiet
			// period after the first subscriber covers them all.
			quiet := 80 * time.Millisecond
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := subs[i]
					c.t = t
					for _, w := range tc.want {
						c.expectPublish(w, w) // in publish order
					}
					c.expectNothing(quiet)
					quiet = 10 * time.Millisecond
				})
			}
		})
	}
}

func Test311SysTopics(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{SysInterval: 50 * time.Millisecond})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			t.Run("$SYS/# gets the broker's topics", func(t *testing.T) {
				c := mustConnect(t, addr, v, "c3-sys"+vname(v))
				c.subscribe(1, "$SYS/#", 0)
				// The retained values come on subscribe; the count of
				// connected clients includes this one from the next period on.
				seen := map[string]*packet.Publish{}
				connected := 0
				deadline := time.Now().Add(5 * time.Second)
				for seen["$SYS/broker/version"] == nil || connected < 1 {
					if time.Now().After(deadline) {
						t.Fatalf("saw %v, clients/connected %d", slices.Collect(maps.Keys(seen)), connected)
					}
					p := expect[*packet.Publish](c)
					if !strings.HasPrefix(p.Topic, "$SYS/") {
						t.Fatalf("got %q on $SYS/#", p.Topic)
					}
					if seen[p.Topic] == nil {
						seen[p.Topic] = p
					}
					if p.Topic == "$SYS/broker/clients/connected" {
						n, err := strconv.Atoi(string(p.Payload))
						if err != nil {
							t.Fatalf("$SYS/broker/clients/connected = %q, not a count", p.Payload)
						}
						connected = n
					}
				}
				// The version is published once, at start: it can only come
				// as the retained message [MQTT-3.3.1-8].
				if ver := seen["$SYS/broker/version"]; string(ver.Payload) != Version || !ver.Retain {
					t.Fatalf("$SYS/broker/version = %q retain %v, want %q retain 1", ver.Payload, ver.Retain, Version)
				}
			})
			t.Run("[MQTT-4.7.2-1] wildcards at the first level do not match $SYS", func(t *testing.T) {
				c := mustConnect(t, addr, v, "c3-nosys"+vname(v))
				for i, f := range []string{"#", "+/broker/version", "+/#", "+/+/+"} {
					c.subscribe(uint16(i+1), f, 0)
				}
				c.expectNothing(250 * time.Millisecond) // five $SYS periods
			})
			t.Run("clients may not publish to $SYS", func(t *testing.T) {
				watch := mustConnect(t, addr, v, "c3-syswatch"+vname(v))
				watch.subscribe(1, "$SYS/#", 1)
				c := mustConnect(t, addr, v, "c3-sysw"+vname(v))
				for i, tp := range []string{"$SYS/broker/version", "$SYS/c3/new"} {
					c.send(&packet.Publish{Topic: tp, Payload: []byte("forged"), QoS: 1, Retain: true, PacketID: uint16(i + 1)})
					a := c3ExpectAck(c, packet.TypePuback, uint16(i+1))
					if want := c3Code(v, packet.Success, packet.NotAuthorized); a.ReasonCode != want {
						t.Fatalf("PUBACK %s, want %s", a.ReasonCode, want)
					}
				}
				// Read the watcher for a few $SYS periods: the forged
				// messages never appear.
				end := time.Now().Add(250 * time.Millisecond)
				for time.Now().Before(end) {
					pk, err := watch.read(time.Until(end))
					if err != nil {
						break
					}
					if p, ok := pk.(*packet.Publish); ok {
						if string(p.Payload) == "forged" {
							t.Fatalf("forged $SYS message delivered on %q", p.Topic)
						}
						watch.ack(p)
					}
				}
				late := mustConnect(t, addr, v, "c3-syslate"+vname(v))
				late.subscribe(1, "$SYS/broker/version", 0)
				if p := expect[*packet.Publish](late); string(p.Payload) != Version {
					t.Fatalf("retained $SYS/broker/version = %q after a forged publish", p.Payload)
				}
				late.subscribe(2, "$SYS/c3/new", 0)
				late.expectNothing(100 * time.Millisecond)
			})
		})
	}
}

func Test311OverlappingSubscriptions(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.3.5-1] one copy at the highest QoS", func(t *testing.T) {
			base := "c3/ov/" + vname(v)
			sub := mustConnect(t, addr, v, "c3-ov"+vname(v))
			sub.subscribe(1, base+"/#", 0)
			sub.subscribe(2, base+"/+", 2)
			sub.subscribe(3, base+"/a", 1)
			pub := mustConnect(t, addr, v, "c3-ov-pub"+vname(v))
			for q := byte(0); q <= 2; q++ {
				pub.publish(uint16(q+1), base+"/a", fmt.Sprint("q", q), q, false)
				if p := sub.expectPublish(base+"/a", fmt.Sprint("q", q)); p.QoS != q {
					t.Fatalf("QoS %d publish delivered at %d, want %d", q, p.QoS, q)
				}
				sub.expectNothing(60 * time.Millisecond)
			}
			// Matching only the QoS 0 filter: QoS 0.
			pub.publish(9, base+"/a/b", "deep", 2, false)
			if p := sub.expectPublish(base+"/a/b", "deep"); p.QoS != 0 {
				t.Fatalf("delivered at QoS %d, want 0", p.QoS)
			}
			sub.expectNothing(60 * time.Millisecond)
		})
	}
}

func Test311SharedSubscriptions(t *testing.T) {
	t.Parallel()
	const n = 30
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/each message to one member of each group", func(t *testing.T) {
			tp := "c3/sh/" + vname(v)
			members := make([]*client, 3)
			for i := range members {
				members[i] = mustConnect(t, addr, v, fmt.Sprintf("c3-sh-g%d%s", i, vname(v)))
				members[i].subscribe(1, "$share/g/"+tp+"/#", 1)
			}
			other := mustConnect(t, addr, v, "c3-sh-h"+vname(v))
			other.subscribe(1, "$share/h/"+tp+"/+", 1)
			plain := mustConnect(t, addr, v, "c3-sh-plain"+vname(v))
			plain.subscribe(1, tp+"/#", 1)
			pub := mustConnect(t, addr, v, "c3-sh-pub"+vname(v))
			for i := range n {
				pub.publish(uint16(i+1), fmt.Sprintf("%s/%d", tp, i), strconv.Itoa(i), 1, false)
			}
			want := make([]string, n)
			for i := range want {
				want[i] = strconv.Itoa(i)
			}
			payloads := func(ps []*packet.Publish) []string {
				out := make([]string, len(ps))
				for i, p := range ps {
					out[i] = string(p.Payload)
				}
				return out
			}
			if got := payloads(c3Drain(plain, 200*time.Millisecond)); !slices.Equal(got, want) {
				t.Fatalf("plain subscriber got %v", got)
			}
			if got := payloads(c3Drain(other, 50*time.Millisecond)); !slices.Equal(got, want) {
				t.Fatalf("single member of group h got %v", got)
			}
			var all []int
			for i, m := range members {
				got := payloads(c3Drain(m, 50*time.Millisecond))
				if len(got) == 0 {
					t.Fatalf("member %d of group g got nothing: not spread", i)
				}
				for _, s := range got {
					k, _ := strconv.Atoi(s)
					all = append(all, k)
				}
			}
			slices.Sort(all)
			for i, k := range all {
				if len(all) != n || k != i {
					t.Fatalf("group g got %d messages %v, want each of 0..%d exactly once", len(all), all, n-1)
				}
			}
			if len(all) != n {
				t.Fatalf("group g got %d messages, want %d", len(all), n)
			}
		})
	}
}

func Test311Unsubscribe(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			base := "c3/unsub/" + vname(v)
			sub := mustConnect(t, addr, v, "c3-unsub"+vname(v))
			sub.subscribe(1, base+"/#", 1)
			sub.subscribe(2, base+"/+", 1)
			sub.subscribe(3, base+"/x", 1)
			pub := mustConnect(t, addr, v, "c3-unsub-pub"+vname(v))
			unsub := func(pid uint16, filters ...string) {
				t.Helper()
				sub.send(&packet.Unsubscribe{PacketID: pid, Filters: filters})
				ua := expect[*packet.Unsuback](sub)
				if ua.PacketID != pid {
					t.Fatalf("UNSUBACK id %d, want %d [MQTT-3.10.4-4]", ua.PacketID, pid)
				}
			}
			t.Run("[MQTT-3.10.4-1] only the identical filter is removed", func(t *testing.T) {
				unsub(10, base+"/+")
				pub.publish(1, base+"/x", "a", 1, false)
				sub.expectPublish(base+"/x", "a") // still matched by /# and /x: one copy
				sub.expectNothing(60 * time.Millisecond)
			})
			t.Run("[MQTT-3.10.4-4][MQTT-3.10.4-5] UNSUBACK with the same id even when nothing matched", func(t *testing.T) {
				unsub(11, base+"/never-subscribed")
				unsub(65535, "c3/unsub/none/#")
			})
			t.Run("[MQTT-3.10.4-3] a QoS 2 delivery already started is completed", func(t *testing.T) {
				c := mustConnect(t, addr, v, "c3-unsub-q2"+vname(v))
				c.subscribe(1, "c3/unsubq2/"+vname(v), 2)
				pub.publish(4, "c3/unsubq2/"+vname(v), "started", 2, false)
				p := expect[*packet.Publish](c)
				if p.QoS != 2 || string(p.Payload) != "started" {
					t.Fatalf("got %q at QoS %d, want QoS 2", p.Payload, p.QoS)
				}
				c.send(&packet.Unsubscribe{PacketID: 2, Filters: []string{"c3/unsubq2/" + vname(v)}})
				if ua := expect[*packet.Unsuback](c); ua.PacketID != 2 {
					t.Fatalf("UNSUBACK id %d", ua.PacketID)
				}
				// PUBREC, PUBREL, PUBCOMP still run to the end.
				c.ack(p)
				c.expectNothing(100 * time.Millisecond)
			})
			t.Run("[MQTT-3.10.4-6][MQTT-3.10.4-2] several filters, one UNSUBACK, delivery stops", func(t *testing.T) {
				unsub(12, base+"/#", base+"/x")
				c3Ping(sub) // exactly one UNSUBACK came before this PINGRESP
				pub.publish(2, base+"/x", "b", 1, false)
				pub.publish(3, base+"/y", "c", 1, false)
				sub.expectNothing(150 * time.Millisecond)
			})
		})
	}
}

func Test311SubackReturnCodes(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	for _, v := range versions() {
		t.Run(vname(v)+"/[MQTT-3.8.4-5][MQTT-3.9.3-1] one code per filter, in order", func(t *testing.T) {
			base := "c3/suback/" + vname(v)
			sub := mustConnect(t, addr, v, "c3-suback"+vname(v))
			bad := c3Code(v, packet.SubackFailure311, packet.TopicFilterInvalid)
			subs := []packet.Subscription{
				{Filter: base + "/2", QoS: 2},
				{Filter: "a/#/b", QoS: 1}, // [MQTT-4.7.1-2]
				{Filter: base + "/0", QoS: 0},
				{Filter: "a+", QoS: 1}, // [MQTT-4.7.1-3]
				{Filter: base + "/1", QoS: 1},
				{Filter: "a/b#", QoS: 0},   // [MQTT-4.7.1-2]
				{Filter: "+a/b", QoS: 2},   // [MQTT-4.7.1-3]
				{Filter: "sport+", QoS: 1}, // [MQTT-4.7.1-3]
			}
			want := []packet.ReasonCode{2, bad, 0, bad, 1, bad, bad, bad}
			sub.send(&packet.Subscribe{PacketID: 42, Subscriptions: subs})
			sa := expect[*packet.Suback](sub)
			if sa.PacketID != 42 {
				t.Fatalf("SUBACK id %d, want 42 [MQTT-3.8.4-2]", sa.PacketID)
			}
			if !slices.Equal(sa.ReasonCodes, want) {
				t.Fatalf("SUBACK codes % X, want % X", sa.ReasonCodes, want)
			}
			// The granted ones work at their QoS, despite the failures.
			pub := mustConnect(t, addr, v, "c3-suback-pub"+vname(v))
			for _, q := range []byte{2, 0, 1} {
				tp := fmt.Sprintf("%s/%d", base, q)
				pub.publish(1, tp, "x", 2, false)
				if p := sub.expectPublish(tp, "x"); p.QoS != q {
					t.Fatalf("%s delivered at QoS %d, want %d", tp, p.QoS, q)
				}
			}
		})
	}
}

func Test311TopicLimits(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{MaxTopicLevels: 3, MaxTopicLength: 24})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			watch := mustConnect(t, addr, v, "c3-lim-watch"+vname(v))
			watch.subscribe(1, "#", 0)
			cases := []struct{ name, topic string }{
				{"[MQTT-3.3.2-2] wildcard + in a topic name closes the connection", "a/+/c"},
				{"[MQTT-3.3.2-2] wildcard # in a topic name closes the connection", "a/#"},
				{"more levels than MaxTopicLevels close the connection", "a/b/c/d"},
				{"a topic longer than MaxTopicLength closes the connection", strings.Repeat("x", 25)},
			}
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := mustConnect(t, addr, v, fmt.Sprintf("c3-lim%d%s", i, vname(v)))
					c.send(&packet.Publish{Topic: tc.topic, Payload: []byte("x"), QoS: 1, PacketID: 1})
					c3ClosedForViolation(c, packet.TopicNameInvalid)
					watch.expectNothing(50 * time.Millisecond)
				})
			}
			t.Run("within the limits is fine", func(t *testing.T) {
				c := mustConnect(t, addr, v, "c3-lim-ok"+vname(v))
				c.publish(1, "a/b/c", "ok", 1, false)
				c.publish(2, strings.Repeat("y", 24), "ok", 1, false)
				watch.expectPublish("a/b/c", "ok")
				watch.expectPublish(strings.Repeat("y", 24), "ok")
			})
			t.Run("a filter beyond the limits is refused in SUBACK, the connection stays", func(t *testing.T) {
				c := mustConnect(t, addr, v, "c3-lim-sub"+vname(v))
				bad := c3Code(v, packet.SubackFailure311, packet.TopicFilterInvalid)
				for i, f := range []string{"a/b/c/#", strings.Repeat("z", 25)} {
					if sa := c.subscribe(uint16(i+1), f, 1); sa.ReasonCodes[0] != bad {
						t.Fatalf("SUBACK %s for %q, want %s", sa.ReasonCodes[0], f, bad)
					}
				}
				c3Ping(c)
			})
		})
	}
}

// --- limits, authentication and authorization ------------------------------------

func Test311MaxConnections(t *testing.T) {
	t.Parallel()
	for _, v := range versions() {
		t.Run(vname(v)+"/the connection beyond the limit is refused", func(t *testing.T) {
			b, addr := startBroker(t, Options{MaxConnections: 2})
			c1 := mustConnect(t, addr, v, "c3-max1")
			c2 := mustConnect(t, addr, v, "c3-max2")
			c3Refused(t, addr, v, "c3-max3", packet.ConnRefusedUnavailable, packet.ServerBusy)
			c3Ping(c1)
			c3Ping(c2)
			c1.disconnect()
			eventually(t, 5*time.Second, "a free connection slot", func() bool { return c3Conns(b) < 2 })
			c4 := mustConnect(t, addr, v, "c3-max4")
			c3Ping(c4)
		})
	}
}

func Test311Authentication(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	var lines []string
	for _, up := range [][2]string{{"alice", "s3cret"}, {"bob", "hunter2"}} {
		h, err := auth.HashPassword([]byte(up[1]), 1000)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, up[0]+":"+h)
	}
	if err := os.WriteFile(pwFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "noanon", Address: "127.0.0.1:0"},
		{Name: "passwd", Address: "127.0.0.1:0", PasswordFile: pwFile},
	}})
	noanon := b.Addrs()["noanon"].String()
	pw := b.Addrs()["passwd"].String()
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			t.Run("allow_anonymous false: no user name is refused with not authorized", func(t *testing.T) {
				c3Refused(t, noanon, v, "c3-anon"+vname(v), packet.ConnRefusedNotAuthorized, packet.NotAuthorized)
			})
			t.Run("allow_anonymous false without a password file: any user name is accepted", func(t *testing.T) {
				c3Ping(mustConnect(t, noanon, v, "c3-named"+vname(v), withUser("whoever", "anything")))
			})
			t.Run("password file: the right password is accepted", func(t *testing.T) {
				c3Ping(mustConnect(t, pw, v, "c3-alice"+vname(v), withUser("alice", "s3cret")))
				c3Ping(mustConnect(t, pw, v, "c3-bob"+vname(v), withUser("bob", "hunter2")))
			})
			t.Run("password file: a wrong password is refused with bad user name or password", func(t *testing.T) {
				c3Refused(t, pw, v, "c3-alice-bad"+vname(v), packet.ConnRefusedBadCredentials, packet.BadUsernameOrPassword,
					withUser("alice", "hunter2"))
				c3Refused(t, pw, v, "c3-alice-empty"+vname(v), packet.ConnRefusedBadCredentials, packet.BadUsernameOrPassword,
					withUser("alice", ""))
			})
			t.Run("password file: an unknown user is refused with bad user name or password", func(t *testing.T) {
				c3Refused(t, pw, v, "c3-mallory"+vname(v), packet.ConnRefusedBadCredentials, packet.BadUsernameOrPassword,
					withUser("mallory", "s3cret"))
			})
			t.Run("password file: no user name is refused with not authorized", func(t *testing.T) {
				c3Refused(t, pw, v, "c3-pw-anon"+vname(v), packet.ConnRefusedNotAuthorized, packet.NotAuthorized)
			})
		})
	}
}

func Test311ACL(t *testing.T) {
	t.Parallel()
	aclFile := filepath.Join(t.TempDir(), "acl")
	const acl = `# conformance311_test.go
user alice
topic readwrite acl/alice/#
topic read acl/public/#

user bob
topic write acl/public/#
topic readwrite acl/bob/#
`
	if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "acl", Address: "127.0.0.1:0", AllowAnonymous: true, ACLFile: aclFile},
	}})
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			vn := vname(v)
			alice := mustConnect(t, addr, v, "c3-acl-alice"+vn, withUser("alice", "x"))
			bob := mustConnect(t, addr, v, "c3-acl-bob"+vn, withUser("bob", "x"))
			bob2 := mustConnect(t, addr, v, "c3-acl-bob2"+vn, withUser("bob", "x")) // publishes what bob reads
			alice.subscribe(1, "acl/public/"+vn+"/#", 1)
			t.Run("an allowed publish is delivered to a reader", func(t *testing.T) {
				bob.publish(1, "acl/public/"+vn+"/x", "from bob", 1, false)
				alice.expectPublish("acl/public/"+vn+"/x", "from bob")
			})
			t.Run("a publish without write access is acknowledged and dropped", func(t *testing.T) {
				for q := byte(1); q <= 2; q++ {
					pid := uint16(10 + q)
					alice.send(&packet.Publish{Topic: "acl/public/" + vn + "/x", Payload: []byte("forbidden"), QoS: q, PacketID: pid})
					kind := packet.TypePuback
					if q == 2 {
						kind = packet.TypePubrec
					}
					a := c3ExpectAck(alice, kind, pid)
					if want := c3Code(v, packet.Success, packet.NotAuthorized); a.ReasonCode != want {
						t.Fatalf("QoS %d ack %s, want %s", q, a.ReasonCode, want)
					}
					if q == 2 && v == packet.V311 {
						alice.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: pid})
						c3ExpectAck(alice, packet.TypePubcomp, pid)
					}
				}
				alice.send(&packet.Publish{Topic: "acl/public/" + vn + "/x", Payload: []byte("forbidden")})
				alice.expectNothing(150 * time.Millisecond) // alice reads acl/public, yet gets nothing
				c3Ping(alice)
			})
			t.Run("a subscription to one topic without read access is refused", func(t *testing.T) {
				sa := bob.subscribe(2, "acl/public/"+vn+"/x", 1)
				if want := c3Code(v, packet.SubackFailure311, packet.NotAuthorized); sa.ReasonCodes[0] != want {
					t.Fatalf("SUBACK %s, want %s", sa.ReasonCodes[0], want)
				}
				alice.publish(3, "acl/alice/"+vn+"/n", "n", 1, false) // keep the pipe busy
				bob.publish(4, "acl/public/"+vn+"/x", "unread", 1, false)
				alice.expectPublish("acl/public/"+vn+"/x", "unread")
				bob.expectNothing(100 * time.Millisecond)
			})
			t.Run("a wildcard subscription is granted and filtered per message", func(t *testing.T) {
				// Retained messages are filtered too.
				alice.publish(5, "acl/alice/"+vn+"/r", "alice retained", 1, true)
				bob.publish(6, "acl/bob/"+vn+"/r", "bob retained", 1, true)
				sa := bob.subscribe(3, "acl/+/"+vn+"/#", 1)
				if sa.ReasonCodes[0] != 1 {
					t.Fatalf("SUBACK %s, want granted QoS 1", sa.ReasonCodes[0])
				}
				if p := bob.expectPublish("acl/bob/"+vn+"/r", "bob retained"); !p.Retain {
					t.Fatal("retained delivery without retain 1")
				}
				alice.publish(7, "acl/alice/"+vn+"/a", "for alice only", 1, false)
				bob2.publish(8, "acl/bob/"+vn+"/b", "for bob", 1, false)
				bob.expectPublish("acl/bob/"+vn+"/b", "for bob")
				bob.expectNothing(100 * time.Millisecond)
			})
		})
	}
}

// --- in-process clients ------------------------------------------------------------

func Test311InprocInterop(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ip, _, err := b.Attach(ClientOptions{ClientID: "c3-inproc", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ip.Close(false)
	for q := byte(0); q <= 2; q++ {
		codes, err := ip.Subscribe(ctx, []packet.Subscription{{Filter: fmt.Sprintf("c3/ip/in/%d/#", q), QoS: q}}, 0)
		if err != nil || codes[0] != packet.ReasonCode(q) {
			t.Fatalf("in-process Subscribe QoS %d: %v %v", q, codes, err)
		}
	}
	for _, v := range versions() {
		peer := mustConnect(t, addr, v, "c3-ip-net"+vname(v))
		for sq := byte(0); sq <= 2; sq++ {
			peer.subscribe(uint16(sq+1), fmt.Sprintf("c3/ip/out/%s/%d/#", vname(v), sq), sq)
		}
		for pq := byte(0); pq <= 2; pq++ {
			for sq := byte(0); sq <= 2; sq++ {
				t.Run(fmt.Sprintf("%s/network QoS %d to in-process QoS %d", vname(v), pq, sq), func(t *testing.T) {
					peer.t = t
					tp := fmt.Sprintf("c3/ip/in/%d/%s/%d", sq, vname(v), pq)
					peer.publish(7, tp, "up", pq, false)
					d, err := ip.Next(ctx)
					if err != nil {
						t.Fatal(err)
					}
					defer d.Ack()
					if d.Message.Topic != tp || string(d.Message.Payload) != "up" || d.QoS != min(pq, sq) || d.Retain || d.Dup {
						t.Fatalf("delivery %q %q QoS %d retain %v dup %v, want %q at QoS %d",
							d.Message.Topic, d.Message.Payload, d.QoS, d.Retain, d.Dup, tp, min(pq, sq))
					}
				})
				t.Run(fmt.Sprintf("%s/in-process QoS %d to network QoS %d", vname(v), pq, sq), func(t *testing.T) {
					peer.t = t
					tp := fmt.Sprintf("c3/ip/out/%s/%d/%d", vname(v), sq, pq)
					code, err := ip.Publish(ctx, &Message{Topic: tp, Payload: []byte("down"), QoS: pq})
					if err != nil || code != packet.Success {
						t.Fatalf("in-process Publish: %s %v", code, err)
					}
					if p := peer.expectPublish(tp, "down"); p.QoS != min(pq, sq) || p.Retain {
						t.Fatalf("delivered at QoS %d retain %v, want QoS %d", p.QoS, p.Retain, min(pq, sq))
					}
				})
			}
		}
		peer.t = t
		peer.expectNothing(50 * time.Millisecond)
	}
	qctx, qcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer qcancel()
	if d, err := ip.Next(qctx); err == nil {
		t.Fatalf("extra in-process delivery %q", d.Message.Topic)
	}
}

// --- shutdown ------------------------------------------------------------------------

func Test311GracefulShutdown(t *testing.T) {
	t.Parallel()
	b, err := New(Options{
		Listeners:   []ListenerOptions{{Name: "tcp", Address: "127.0.0.1:0", AllowAnonymous: true}},
		Logger:      testLogger(),
		SysInterval: -1,
	}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			select {
			case <-errc:
			case <-time.After(10 * time.Second):
				t.Error("broker did not stop")
			}
		}
	})
	select {
	case <-b.Ready():
	case err := <-errc:
		stopped = true
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("broker not ready")
	}
	addr := b.Addrs()["tcp"].String()
	c5 := mustConnect(t, addr, packet.V5, "c3-down5")
	c4 := mustConnect(t, addr, packet.V311, "c3-down4", c3Persistent(packet.V311)...)
	c4.subscribe(1, "c3/down/#", 1)
	idle := dial(t, addr, packet.V311) // has not sent CONNECT yet
	ip, _, err := b.Attach(ClientOptions{ClientID: "c3-down-ip"})
	if err != nil {
		t.Fatal(err)
	}

	cancel()
	t.Run("5.0 clients get DISCONNECT 0x8B", func(t *testing.T) {
		code, saw := c5.expectClosed(5 * time.Second)
		if !saw || code != packet.ServerShuttingDown {
			t.Fatalf("DISCONNECT %v %s, want 0x8B", saw, code)
		}
	})
	t.Run("3.1.1 clients are closed", func(t *testing.T) {
		c3ClosedSilently(c4, 5*time.Second)
	})
	t.Run("a connection that has not sent CONNECT is closed", func(t *testing.T) {
		c3ClosedSilently(idle, 5*time.Second)
	})
	t.Run("Run returns promptly", func(t *testing.T) {
		select {
		case err := <-errc:
			stopped = true
			if err != nil {
				t.Fatalf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5s of the cancel")
		}
	})
	t.Run("in-process clients are closed", func(t *testing.T) {
		nctx, ncancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ncancel()
		if _, err := ip.Next(nctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after shutdown: %v, want ErrClosed", err)
		}
	})
	t.Run("the listener no longer accepts", func(t *testing.T) {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			t.Fatal("dial succeeded after shutdown")
		}
	})
}
