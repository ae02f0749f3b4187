package localbroker

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// MQTT 5.0 conformance: each test or subtest is named after the normative
// statement it checks ([MQTT-x.y.z-n]) or, where the specification states a
// rule without a number, after its section (§x.y.z). Every test speaks raw
// MQTT 5.0 to a broker on a loopback port through the harness client.
//
// Statement numbers follow the OASIS MQTT Version 5.0 standard of 7 March
// 2019.

// --- helpers (prefixed c5 so that they do not collide with other files) ---

func c5Props(f func(p *packet.Properties)) connectOpt {
	return func(c *packet.Connect) { f(&c.Properties) }
}

func c5ReceiveMax(n uint16) connectOpt {
	return c5Props(func(p *packet.Properties) {
		p.ReceiveMaximum = n
		p.Set(packet.PropReceiveMaximum)
	})
}

func c5MaxPacket(n uint32) connectOpt {
	return c5Props(func(p *packet.Properties) {
		p.MaximumPacketSize = n
		p.Set(packet.PropMaximumPacketSize)
	})
}

func c5WillProps(f func(p *packet.Properties)) connectOpt {
	return func(c *packet.Connect) { f(&c.WillProperties) }
}

func c5WillDelay(secs uint32) connectOpt {
	return c5WillProps(func(p *packet.Properties) {
		p.WillDelay = secs
		p.Set(packet.PropWillDelay)
	})
}

func c5Conn(t *testing.T, addr, id string, opts ...connectOpt) *client {
	t.Helper()
	return mustConnect(t, addr, packet.V5, id, opts...)
}

// c5Subscribe sends one SUBSCRIBE (with a Subscription Identifier when
// subID > 0) and returns the SUBACK reason codes.
func c5Subscribe(c *client, pid uint16, subID uint32, subs ...packet.Subscription) []packet.ReasonCode {
	c.t.Helper()
	sp := &packet.Subscribe{PacketID: pid, Subscriptions: subs}
	if subID > 0 {
		sp.Properties.SubscriptionIDs = []uint32{subID}
		sp.Properties.Set(packet.PropSubscriptionID)
	}
	c.send(sp)
	sa := expect[*packet.Suback](c)
	if sa.PacketID != pid || len(sa.ReasonCodes) != len(subs) {
		c.t.Fatalf("SUBACK id %d codes %v for SUBSCRIBE %d with %d filters", sa.PacketID, sa.ReasonCodes, pid, len(subs))
	}
	return sa.ReasonCodes
}

// c5Sub subscribes to one filter and requires the granted QoS.
func c5Sub(c *client, pid uint16, filter string, qos byte) {
	c.t.Helper()
	if codes := c5Subscribe(c, pid, 0, packet.Subscription{Filter: filter, QoS: qos}); codes[0] != packet.ReasonCode(qos) {
		c.t.Fatalf("SUBSCRIBE %q: %s, want granted QoS %d", filter, codes[0], qos)
	}
}

// c5Publish sends p and runs the publisher's side of its QoS flow. It
// returns the reason code of the PUBACK or PUBREC (Success for QoS 0).
func c5Publish(c *client, p *packet.Publish) packet.ReasonCode {
	c.t.Helper()
	c.send(p)
	switch p.QoS {
	case 1:
		a := expect[*packet.Ack](c)
		if a.Kind != packet.TypePuback || a.PacketID != p.PacketID {
			c.t.Fatalf("got %s %d, want PUBACK %d", a.Kind, a.PacketID, p.PacketID)
		}
		return a.ReasonCode
	case 2:
		a := expect[*packet.Ack](c)
		if a.Kind != packet.TypePubrec || a.PacketID != p.PacketID {
			c.t.Fatalf("got %s %d, want PUBREC %d", a.Kind, a.PacketID, p.PacketID)
		}
		if a.ReasonCode.IsError() {
			return a.ReasonCode
		}
		c.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: p.PacketID})
		cp := expect[*packet.Ack](c)
		if cp.Kind != packet.TypePubcomp || cp.PacketID != p.PacketID || cp.ReasonCode != packet.Success {
			c.t.Fatalf("got %s %d %s, want PUBCOMP %d success", cp.Kind, cp.PacketID, cp.ReasonCode, p.PacketID)
		}
		return a.ReasonCode
	}
	return packet.Success
}

// c5Pub publishes a payload without properties and requires acceptance
// (Success, or No Matching Subscribers when nobody listens).
func c5Pub(c *client, pid uint16, topic, payload string, qos byte, retain bool) {
	c.t.Helper()
	code := c5Publish(c, &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain, PacketID: pid})
	if code != packet.Success && code != packet.NoMatchingSubscribers {
		c.t.Fatalf("PUBLISH %q refused: %s", topic, code)
	}
}

// c5ExpectDisconnect reads until the broker sends DISCONNECT, requires its
// reason code and that the connection then closes, and returns it. A
// server's DISCONNECT never carries a Session Expiry Interval
// [MQTT-3.14.2-2]; that is checked for every DISCONNECT seen here.
func c5ExpectDisconnect(c *client, want packet.ReasonCode) *packet.Disconnect {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pk, err := c.read(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("connection ended (%v) without DISCONNECT %s", err, want)
		}
		d, ok := pk.(*packet.Disconnect)
		if !ok {
			continue
		}
		if d.ReasonCode != want {
			c.t.Fatalf("DISCONNECT %s, want %s", d.ReasonCode, want)
		}
		if d.Properties.Has(packet.PropSessionExpiry) {
			c.t.Fatal("server DISCONNECT carries a Session Expiry Interval [MQTT-3.14.2-2]")
		}
		if _, err := c.read(3 * time.Second); err == nil {
			c.t.Fatal("packet after DISCONNECT [MQTT-3.14.4-1]")
		} else if !c5Closed(err) {
			c.t.Fatalf("connection not closed after DISCONNECT: %v [MQTT-3.14.4-2]", err)
		}
		return d
	}
}

func c5Closed(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true // EOF, reset, or closed
}

// c5Next reads the next PUBLISH without acknowledging it.
func c5Next(c *client) *packet.Publish {
	c.t.Helper()
	return expect[*packet.Publish](c)
}

// c5Drain reads and acknowledges PUBLISH packets until none arrives for quiet.
func c5Drain(c *client, quiet time.Duration) []*packet.Publish {
	c.t.Helper()
	var got []*packet.Publish
	for {
		pk, err := c.read(quiet)
		if err != nil {
			if !c5Closed(err) {
				return got
			}
			c.t.Fatalf("connection closed while draining: %v", err)
		}
		p, ok := pk.(*packet.Publish)
		if !ok {
			c.t.Fatalf("got %T while draining, want PUBLISH", pk)
		}
		c.ack(p)
		got = append(got, p)
	}
}

// c5Disconnect sends DISCONNECT with optional properties and closes.
func c5Disconnect(c *client, code packet.ReasonCode, props func(*packet.Properties)) {
	c.t.Helper()
	d := &packet.Disconnect{ReasonCode: code}
	if props != nil {
		props(&d.Properties)
	}
	c.send(d)
	c.nc.Close()
}

// c5WaitGone waits until the broker no longer holds a session for id.
func c5WaitGone(t *testing.T, b *Broker, id string) {
	t.Helper()
	eventually(t, 5*time.Second, "session "+id+" to end", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.sessions[id] == nil
	})
}

// c5WaitUntil blocks until the wall clock passes at (message expiry is
// measured on the wall clock, so the test must let it pass).
func c5WaitUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		<-time.After(d)
	}
}

func c5ACL(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --- CONNECT / CONNACK ------------------------------------------------------

func TestConformance5Connack(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{ReceiveMaximum: 7, MaxPacketSize: 4096, TopicAliasMaximum: 5})

	t.Run("[MQTT-3.2.2-16] empty client id gets a new Assigned Client Identifier", func(t *testing.T) {
		c1, ca1 := connect(t, addr, packet.V5, "", withExpiry(300))
		_, ca2 := connect(t, addr, packet.V5, "")
		id1, id2 := ca1.Properties.AssignedClientID, ca2.Properties.AssignedClientID
		if ca1.ReasonCode != 0 || !ca1.Properties.Has(packet.PropAssignedClientID) || id1 == "" {
			t.Fatalf("CONNACK %s without Assigned Client Identifier (%q)", ca1.ReasonCode, id1)
		}
		if id2 == "" || id1 == id2 {
			t.Fatalf("assigned ids %q and %q, want two distinct ids", id1, id2)
		}
		// [MQTT-3.1.3-7] the CONNECT is processed as if the client had given
		// that id: the session is found under it.
		c5Sub(c1, 1, "aci/t", 1)
		c1.disconnect()
		waitOffline(t, b, id1)
		_, ca := connect(t, addr, packet.V5, id1, withClean(false), withExpiry(300))
		if !ca.SessionPresent {
			t.Fatal("no session under the assigned client id")
		}
		if ca.Properties.Has(packet.PropAssignedClientID) {
			t.Fatal("Assigned Client Identifier sent to a client that gave its id")
		}
	})

	t.Run("§3.2.2.3 CONNACK states Receive Maximum, Maximum Packet Size and Topic Alias Maximum", func(t *testing.T) {
		_, ca := connect(t, addr, packet.V5, "props")
		p := &ca.Properties
		if !p.Has(packet.PropReceiveMaximum) || p.ReceiveMaximum != 7 {
			t.Errorf("Receive Maximum present=%v %d, want 7", p.Has(packet.PropReceiveMaximum), p.ReceiveMaximum)
		}
		if !p.Has(packet.PropMaximumPacketSize) || p.MaximumPacketSize != 4096 {
			t.Errorf("Maximum Packet Size present=%v %d, want 4096", p.Has(packet.PropMaximumPacketSize), p.MaximumPacketSize)
		}
		if !p.Has(packet.PropTopicAliasMaximum) || p.TopicAliasMaximum != 5 {
			t.Errorf("Topic Alias Maximum present=%v %d, want 5", p.Has(packet.PropTopicAliasMaximum), p.TopicAliasMaximum)
		}
	})

	t.Run("[MQTT-4.12.0-1] unsupported Authentication Method gets CONNACK 0x8C and close", func(t *testing.T) {
		c, ca := connect(t, addr, packet.V5, "authm", c5Props(func(p *packet.Properties) {
			p.AuthMethod = "SCRAM-SHA-1"
			p.Set(packet.PropAuthMethod)
		}))
		if ca.ReasonCode != packet.BadAuthenticationMethod {
			t.Fatalf("CONNACK %s, want 0x8C", ca.ReasonCode)
		}
		if ca.SessionPresent {
			t.Fatal("session present with a failing CONNACK [MQTT-3.2.2-6]")
		}
		if code, saw := c.expectClosed(3 * time.Second); saw {
			t.Fatalf("DISCONNECT %s after a failing CONNACK", code)
		}
	})

	t.Run("§4.12 AUTH without an Authentication Method is a Protocol Error", func(t *testing.T) {
		c := c5Conn(t, addr, "authp")
		c.send(&packet.Auth{ReasonCode: packet.ContinueAuthentication})
		c5ExpectDisconnect(c, packet.ProtocolError)
	})
}

func TestConformance5KeepAlive(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{MaxKeepAlive: 1})

	t.Run("[MQTT-3.2.2-21] Server Keep Alive when the client asks more than the maximum", func(t *testing.T) {
		for _, ask := range []uint16{60, 0} {
			_, ca := connect(t, addr, packet.V5, fmt.Sprintf("ka%d", ask), withKeepAlive(ask))
			if !ca.Properties.Has(packet.PropServerKeepAlive) || ca.Properties.ServerKeepAlive != 1 {
				t.Fatalf("keep alive %d: Server Keep Alive present=%v %d, want 1", ask,
					ca.Properties.Has(packet.PropServerKeepAlive), ca.Properties.ServerKeepAlive)
			}
		}
		// [MQTT-3.2.2-22] within the maximum: the client's value stands.
		_, ca := connect(t, addr, packet.V5, "ka1", withKeepAlive(1))
		if ca.Properties.Has(packet.PropServerKeepAlive) {
			t.Fatalf("Server Keep Alive %d sent for an acceptable keep alive", ca.Properties.ServerKeepAlive)
		}
	})

	t.Run("[MQTT-3.1.2-22] keep alive timeout closes with DISCONNECT 0x8D, on the Server Keep Alive", func(t *testing.T) {
		// The client asked 60s; the broker said 1s and must time out
		// after 1.5s of silence, long before the client's 90s.
		c := c5Conn(t, addr, "kato", withKeepAlive(60))
		c5ExpectDisconnect(c, packet.KeepAliveTimeout)
	})
}

// --- sessions ---------------------------------------------------------------

func TestConformance5SessionExpiry(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{})

	t.Run("[MQTT-3.1.2-23] session kept for the expiry interval, gone after it", func(t *testing.T) {
		c := c5Conn(t, addr, "se1", withExpiry(1))
		c5Sub(c, 1, "se1/t", 1)
		c.nc.Close()
		waitOffline(t, b, "se1")
		pub := c5Conn(t, addr, "se1pub")
		c5Pub(pub, 1, "se1/t", "kept", 1, false)
		c, ca := connect(t, addr, packet.V5, "se1", withClean(false), withExpiry(1))
		if !ca.SessionPresent {
			t.Fatal("session gone right after disconnect, expiry 1s")
		}
		c.expectPublish("se1/t", "kept")
		c.disconnect()
		c5WaitGone(t, b, "se1")
		_, ca = connect(t, addr, packet.V5, "se1", withClean(false), withExpiry(1))
		if ca.SessionPresent {
			t.Fatal("session present after its expiry interval [MQTT-3.2.2-3]")
		}
	})

	t.Run("§3.1.2.11.2 session expiry absent ends the session at disconnect", func(t *testing.T) {
		c := c5Conn(t, addr, "se0")
		c5Sub(c, 1, "se0/t", 1)
		c.disconnect()
		waitOffline(t, b, "se0")
		c, ca := connect(t, addr, packet.V5, "se0", withClean(false))
		if ca.SessionPresent {
			t.Fatal("session present after a disconnect with expiry 0")
		}
		pub := c5Conn(t, addr, "se0pub")
		if code := c5Publish(pub, &packet.Publish{Topic: "se0/t", QoS: 1, PacketID: 1}); code != packet.NoMatchingSubscribers {
			t.Fatalf("subscription outlived its session: PUBACK %s", code)
		}
		c.expectNothing(100 * time.Millisecond)
	})

	t.Run("[MQTT-3.1.2-4] Clean Start 1 discards a kept session", func(t *testing.T) {
		c := c5Conn(t, addr, "secs", withExpiry(300))
		c5Sub(c, 1, "secs/t", 1)
		c.disconnect()
		waitOffline(t, b, "secs")
		_, ca := connect(t, addr, packet.V5, "secs", withClean(true), withExpiry(300))
		if ca.SessionPresent {
			t.Fatal("session present with Clean Start 1 [MQTT-3.2.2-2]")
		}
		pub := c5Conn(t, addr, "secspub")
		if code := c5Publish(pub, &packet.Publish{Topic: "secs/t", QoS: 1, PacketID: 1}); code != packet.NoMatchingSubscribers {
			t.Fatalf("subscription of the discarded session still matches: PUBACK %s", code)
		}
	})

	t.Run("§3.14.2.2.2 DISCONNECT with Session Expiry 0 ends a session that had one", func(t *testing.T) {
		c := c5Conn(t, addr, "sed0", withExpiry(300))
		c.subscribe(1, "sed0/t", 1)
		c5Disconnect(c, packet.Success, func(p *packet.Properties) { p.SessionExpiry = 0; p.Set(packet.PropSessionExpiry) })
		c5WaitGone(t, b, "sed0")
		_, ca := connect(t, addr, packet.V5, "sed0", withClean(false), withExpiry(300))
		if ca.SessionPresent {
			t.Fatal("session present after DISCONNECT set expiry 0")
		}
	})

	t.Run("§3.14.2.2.2 DISCONNECT shortens the Session Expiry", func(t *testing.T) {
		c := c5Conn(t, addr, "sed1", withExpiry(3600))
		c.subscribe(1, "sed1/t", 1)
		c5Disconnect(c, packet.Success, func(p *packet.Properties) { p.SessionExpiry = 1; p.Set(packet.PropSessionExpiry) })
		c5WaitGone(t, b, "sed1") // within 5s, not 3600s
	})

	t.Run("§3.14.2.2.2 non-zero Session Expiry on DISCONNECT after 0 at CONNECT is a Protocol Error", func(t *testing.T) {
		obs := c5Conn(t, addr, "sepobs")
		obs.subscribe(1, "sep/will", 1)
		c := c5Conn(t, addr, "sep", withWill("sep/will", "bad disconnect", 1, false))
		c.subscribe(1, "sep/t", 1)
		c.send(&packet.Disconnect{Properties: packet.Properties{SessionExpiry: 300, Present: 1 << packet.PropSessionExpiry}})
		c5ExpectDisconnect(c, packet.ProtocolError)
		// Not a valid DISCONNECT: the will goes out and the session ends.
		obs.expectPublish("sep/will", "bad disconnect")
		c5WaitGone(t, b, "sep")
	})
}

func TestConformance5SessionExpiryCapOnDisconnect(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{MaxSessionExpiry: time.Second})
	// Options.MaxSessionExpiry caps a client's session expiry; a DISCONNECT
	// that asks for more must not lift the cap.
	c, ca := connect(t, addr, packet.V5, "cap", withExpiry(3600))
	if !ca.Properties.Has(packet.PropSessionExpiry) || ca.Properties.SessionExpiry != 1 {
		t.Fatalf("CONNACK Session Expiry present=%v %d, want 1", ca.Properties.Has(packet.PropSessionExpiry), ca.Properties.SessionExpiry)
	}
	c5Disconnect(c, packet.Success, func(p *packet.Properties) { p.SessionExpiry = 0xFFFFFFFF; p.Set(packet.PropSessionExpiry) })
	c5WaitGone(t, b, "cap")
}

func TestConformance5SessionTakeover(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	t.Run("[MQTT-3.1.4-3] takeover sends DISCONNECT 0x8E to the old connection", func(t *testing.T) {
		first := c5Conn(t, addr, "tko", withExpiry(60))
		second := c5Conn(t, addr, "tko", withExpiry(60))
		c5ExpectDisconnect(first, packet.SessionTakenOver)
		second.send(&packet.Pingreq{})
		expect[*packet.Pingresp](second)
	})
}

// --- wills ------------------------------------------------------------------

func TestConformance5Will(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{})

	t.Run("[MQTT-3.1.2-8] delayed will published after the Will Delay Interval", func(t *testing.T) {
		obs := c5Conn(t, addr, "wd1obs")
		obs.subscribe(1, "wd1", 1)
		c := c5Conn(t, addr, "wd1", withExpiry(60), withWill("wd1", "late", 1, false), c5WillDelay(1))
		c.nc.Close()
		obs.expectNothing(500 * time.Millisecond) // not at once
		obs.expectPublish("wd1", "late")
	})

	t.Run("[MQTT-3.1.3-9] no will when the client reconnects within the delay", func(t *testing.T) {
		obs := c5Conn(t, addr, "wd2obs")
		obs.subscribe(1, "wd2", 1)
		c := c5Conn(t, addr, "wd2", withExpiry(60), withWill("wd2", "never", 1, false), c5WillDelay(2))
		c.nc.Close()
		waitOffline(t, b, "wd2")
		// The new connection brings a will of its own, which must not go
		// out either while it is connected.
		c5Conn(t, addr, "wd2", withClean(false), withExpiry(60), withWill("wd2", "second", 1, false), c5WillDelay(1))
		obs.expectNothing(2500 * time.Millisecond)
	})

	t.Run("[MQTT-3.1.2-8] delayed will published when the session ends first", func(t *testing.T) {
		obs := c5Conn(t, addr, "wd3obs")
		obs.subscribe(1, "wd3", 1)
		c := c5Conn(t, addr, "wd3", withExpiry(1), withWill("wd3", "session over", 1, false), c5WillDelay(3600))
		c.nc.Close()
		obs.expectPublish("wd3", "session over") // within expect's 5s, not 3600s
	})

	t.Run("§3.14.2.1 DISCONNECT 0x04 publishes the will", func(t *testing.T) {
		obs := c5Conn(t, addr, "ww4obs")
		obs.subscribe(1, "ww4", 1)
		c := c5Conn(t, addr, "ww4", withWill("ww4", "asked for", 1, false))
		c5Disconnect(c, packet.DisconnectWithWill, nil)
		obs.expectPublish("ww4", "asked for")
	})

	t.Run("[MQTT-3.1.3-10] will properties passed through, user properties in order", func(t *testing.T) {
		obs := c5Conn(t, addr, "wpobs")
		obs.subscribe(1, "wp", 1)
		user := []packet.UserProperty{{Key: "k", Value: "1"}, {Key: "a", Value: "2"}, {Key: "k", Value: "3"}}
		c := c5Conn(t, addr, "wp", withWill("wp", `{"gone":true}`, 1, false), c5WillProps(func(p *packet.Properties) {
			p.ContentType = "application/json"
			p.Set(packet.PropContentType)
			p.PayloadFormat = 1
			p.Set(packet.PropPayloadFormat)
			p.ResponseTopic = "wp/reply"
			p.Set(packet.PropResponseTopic)
			p.CorrelationData = []byte{0, 1, 2}
			p.Set(packet.PropCorrelationData)
			p.User = user
			p.Set(packet.PropUser)
		}))
		c.nc.Close()
		p := obs.expectPublish("wp", `{"gone":true}`)
		pp := &p.Properties
		if pp.ContentType != "application/json" || pp.PayloadFormat != 1 || !pp.Has(packet.PropPayloadFormat) ||
			pp.ResponseTopic != "wp/reply" || !bytes.Equal(pp.CorrelationData, []byte{0, 1, 2}) {
			t.Fatalf("will properties %+v", pp)
		}
		if !slices.Equal(pp.User, user) {
			t.Fatalf("will user properties %v, want %v", pp.User, user)
		}
	})
}

// --- flow control -----------------------------------------------------------

func TestConformance5ReceiveMaximumTowardsClient(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})

	t.Run("[MQTT-3.3.4-9] at most Receive Maximum unacknowledged QoS 1 PUBLISHes", func(t *testing.T) {
		sub := c5Conn(t, addr, "rm1", c5ReceiveMax(2))
		c5Sub(sub, 1, "rm1/t", 1)
		pub := c5Conn(t, addr, "rm1pub")
		for i := range 4 {
			c5Pub(pub, uint16(i+1), "rm1/t", fmt.Sprint(i), 1, false)
		}
		p0, p1 := c5Next(sub), c5Next(sub)
		sub.expectNothing(200 * time.Millisecond)
		// [MQTT-3.3.4-10] other packets are not held back by the full window.
		sub.send(&packet.Pingreq{})
		expect[*packet.Pingresp](sub)
		sub.ack(p0)
		p2 := c5Next(sub)
		sub.expectNothing(100 * time.Millisecond)
		sub.ack(p1)
		p3 := c5Next(sub)
		sub.ack(p2)
		sub.ack(p3)
		for i, p := range []*packet.Publish{p0, p1, p2, p3} {
			if string(p.Payload) != fmt.Sprint(i) {
				t.Fatalf("delivery %d is %q: order not kept", i, p.Payload)
			}
		}
	})

	t.Run("[MQTT-3.3.4-9] a QoS 2 PUBLISH holds its slot until PUBCOMP", func(t *testing.T) {
		sub := c5Conn(t, addr, "rm2", c5ReceiveMax(1))
		c5Sub(sub, 1, "rm2/t", 2)
		pub := c5Conn(t, addr, "rm2pub")
		c5Pub(pub, 1, "rm2/t", "a", 2, false)
		c5Pub(pub, 2, "rm2/t", "b", 2, false)
		p := c5Next(sub)
		sub.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: p.PacketID})
		rel := expect[*packet.Ack](sub)
		if rel.Kind != packet.TypePubrel || rel.PacketID != p.PacketID {
			t.Fatalf("got %s %d, want PUBREL %d", rel.Kind, rel.PacketID, p.PacketID)
		}
		sub.expectNothing(200 * time.Millisecond)
		sub.send(&packet.Ack{Kind: packet.TypePubcomp, PacketID: p.PacketID})
		sub.expectPublish("rm2/t", "b")
	})

	t.Run("[MQTT-4.3.3-4] PUBREC with an error code ends the QoS 2 flow and frees the slot", func(t *testing.T) {
		sub := c5Conn(t, addr, "rm3", c5ReceiveMax(1))
		c5Sub(sub, 1, "rm3/t", 2)
		pub := c5Conn(t, addr, "rm3pub")
		c5Pub(pub, 1, "rm3/t", "refused", 2, false)
		c5Pub(pub, 2, "rm3/t", "next", 2, false)
		p := c5Next(sub)
		if string(p.Payload) != "refused" {
			t.Fatalf("first delivery %q", p.Payload)
		}
		sub.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: p.PacketID, ReasonCode: packet.UnspecifiedError})
		// No PUBREL for the refused message: the next message comes instead.
		sub.expectPublish("rm3/t", "next")
		sub.expectNothing(100 * time.Millisecond)
	})
}

func TestConformance5ReceiveMaximumFromClient(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{ReceiveMaximum: 2})

	t.Run("[MQTT-3.3.4-7] QoS 2 PUBLISHes within Receive Maximum are accepted", func(t *testing.T) {
		c := c5Conn(t, addr, "rmc1")
		for pid := uint16(1); pid <= 2; pid++ {
			c.send(&packet.Publish{Topic: "rmc/t", QoS: 2, PacketID: pid})
			if a := expect[*packet.Ack](c); a.Kind != packet.TypePubrec || a.PacketID != pid || a.ReasonCode.IsError() {
				t.Fatalf("got %s %d %s, want PUBREC %d", a.Kind, a.PacketID, a.ReasonCode, pid)
			}
		}
		c.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: 1})
		if a := expect[*packet.Ack](c); a.Kind != packet.TypePubcomp || a.PacketID != 1 {
			t.Fatalf("got %s %d, want PUBCOMP 1", a.Kind, a.PacketID)
		}
		// One slot is free again.
		c.send(&packet.Publish{Topic: "rmc/t", QoS: 2, PacketID: 3})
		if a := expect[*packet.Ack](c); a.Kind != packet.TypePubrec || a.PacketID != 3 || a.ReasonCode.IsError() {
			t.Fatalf("got %s %d %s, want PUBREC 3", a.Kind, a.PacketID, a.ReasonCode)
		}
	})

	t.Run("[MQTT-3.3.4-7] more than Receive Maximum QoS 2 PUBLISHes gets DISCONNECT 0x93", func(t *testing.T) {
		c := c5Conn(t, addr, "rmc2")
		for pid := uint16(1); pid <= 3; pid++ {
			c.send(&packet.Publish{Topic: "rmc/t", QoS: 2, PacketID: pid})
		}
		for pid := uint16(1); pid <= 2; pid++ {
			if a := expect[*packet.Ack](c); a.Kind != packet.TypePubrec || a.PacketID != pid {
				t.Fatalf("got %s %d, want PUBREC %d", a.Kind, a.PacketID, pid)
			}
		}
		c5ExpectDisconnect(c, packet.ReceiveMaximumExceeded)
	})
}

// --- subscription options ---------------------------------------------------

func TestConformance5RetainHandling(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	pub := c5Conn(t, addr, "rhpub")
	for i, tp := range []string{"rh0/t", "rh1/t", "rh2/t"} {
		c5Pub(pub, uint16(i+1), tp, "kept", 1, true)
	}
	sub := func(c *client, pid uint16, filter string, rh byte) {
		t.Helper()
		if codes := c5Subscribe(c, pid, 0, packet.Subscription{Filter: filter, QoS: 1, RetainHandling: rh}); codes[0] != 1 {
			t.Fatalf("SUBSCRIBE %q: %s", filter, codes[0])
		}
	}

	t.Run("[MQTT-3.3.1-9] Retain Handling 0 sends retained messages at every subscribe", func(t *testing.T) {
		c := c5Conn(t, addr, "rh0")
		sub(c, 1, "rh0/#", 0)
		if p := c.expectPublish("rh0/t", "kept"); !p.Retain {
			t.Fatal("retained message sent without RETAIN")
		}
		sub(c, 2, "rh0/#", 0)
		c.expectPublish("rh0/t", "kept")
	})

	t.Run("[MQTT-3.3.1-10] Retain Handling 1 sends retained messages only for a new subscription", func(t *testing.T) {
		c := c5Conn(t, addr, "rh1")
		sub(c, 1, "rh1/#", 1)
		if p := c.expectPublish("rh1/t", "kept"); !p.Retain {
			t.Fatal("retained message sent without RETAIN")
		}
		sub(c, 2, "rh1/#", 1)
		c.expectNothing(150 * time.Millisecond)
	})

	t.Run("[MQTT-3.3.1-11] Retain Handling 2 sends no retained messages", func(t *testing.T) {
		c := c5Conn(t, addr, "rh2")
		sub(c, 1, "rh2/#", 2)
		c.expectNothing(150 * time.Millisecond)
	})
}

func TestConformance5RetainAsPublished(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	plain := c5Conn(t, addr, "rap0")
	c5Subscribe(plain, 1, 0, packet.Subscription{Filter: "rap/t", QoS: 1})
	asPub := c5Conn(t, addr, "rap1")
	c5Subscribe(asPub, 1, 0, packet.Subscription{Filter: "rap/t", QoS: 1, RetainAsPublished: true})
	pub := c5Conn(t, addr, "rappub")
	c5Pub(pub, 1, "rap/t", "r", 1, true)
	c5Pub(pub, 2, "rap/t", "n", 1, false)

	t.Run("[MQTT-3.3.1-12] Retain As Published 0 forwards with RETAIN 0", func(t *testing.T) {
		if p := plain.expectPublish("rap/t", "r"); p.Retain {
			t.Fatal("RETAIN set on a live delivery without Retain As Published")
		}
		if p := plain.expectPublish("rap/t", "n"); p.Retain {
			t.Fatal("RETAIN set on a non-retained message")
		}
	})
	t.Run("[MQTT-3.3.1-13] Retain As Published 1 forwards the publisher's RETAIN flag", func(t *testing.T) {
		if p := asPub.expectPublish("rap/t", "r"); !p.Retain {
			t.Fatal("RETAIN cleared with Retain As Published")
		}
		if p := asPub.expectPublish("rap/t", "n"); p.Retain {
			t.Fatal("RETAIN set on a message published without it")
		}
	})
}

func TestConformance5NoLocal(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})

	t.Run("[MQTT-3.8.3-3] No Local: own messages are not forwarded back", func(t *testing.T) {
		self := c5Conn(t, addr, "nl")
		c5Subscribe(self, 1, 0, packet.Subscription{Filter: "nl/t", QoS: 1, NoLocal: true})
		other := c5Conn(t, addr, "nlother")
		c5Sub(other, 1, "nl/t", 1)
		c5Pub(self, 2, "nl/t", "mine", 1, false)
		other.expectPublish("nl/t", "mine")
		self.expectNothing(150 * time.Millisecond)
		third := c5Conn(t, addr, "nlthird")
		c5Pub(third, 1, "nl/t", "theirs", 1, false)
		self.expectPublish("nl/t", "theirs")
		other.expectPublish("nl/t", "theirs")
	})

	t.Run("[MQTT-3.8.3-4] No Local on a Shared Subscription is a Protocol Error", func(t *testing.T) {
		c := c5Conn(t, addr, "nlshared")
		c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/g/nl/t", QoS: 1, NoLocal: true}}})
		c5ExpectDisconnect(c, packet.ProtocolError)
	})
}

func TestConformance5SubscriptionIdentifiers(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	pub := c5Conn(t, addr, "sipub")

	t.Run("[MQTT-3.3.4-3] the subscription's identifier is sent with the message", func(t *testing.T) {
		c := c5Conn(t, addr, "si1")
		c5Subscribe(c, 1, 7, packet.Subscription{Filter: "si1/+", QoS: 1})
		c5Subscribe(c, 2, 0, packet.Subscription{Filter: "si1/noid", QoS: 1})
		c5Pub(pub, 1, "si1/x", "m", 1, false)
		p := c.expectPublish("si1/x", "m")
		if !p.Properties.Has(packet.PropSubscriptionID) || !slices.Equal(p.Properties.SubscriptionIDs, []uint32{7}) {
			t.Fatalf("subscription ids %v, want [7]", p.Properties.SubscriptionIDs)
		}
		// A retained message sent at subscribe carries the id too.
		c5Pub(pub, 2, "si1/r", "ret", 1, true)
		c.expectPublish("si1/r", "ret") // live, via si1/+
		c5Subscribe(c, 3, 9, packet.Subscription{Filter: "si1/r", QoS: 1})
		p = c.expectPublish("si1/r", "ret")
		if !p.Retain || !slices.Equal(p.Properties.SubscriptionIDs, []uint32{9}) {
			t.Fatalf("retained delivery retain=%v ids %v, want RETAIN and [9]", p.Retain, p.Properties.SubscriptionIDs)
		}
		// None for a subscription made without one (si1/+ overlaps here,
		// so only its id may appear).
		c5Subscribe(c, 4, 0, packet.Subscription{Filter: "si1/noid", QoS: 1}) // replaces, still no id
		c5Pub(pub, 3, "si1/noid", "n", 1, false)
		p = c.expectPublish("si1/noid", "n")
		if !slices.Equal(p.Properties.SubscriptionIDs, []uint32{7}) {
			t.Fatalf("ids %v, want only [7] from si1/+", p.Properties.SubscriptionIDs)
		}
	})

	t.Run("[MQTT-3.3.4-4] one copy for overlapping subscriptions carries every identifier", func(t *testing.T) {
		c := c5Conn(t, addr, "si2")
		c5Subscribe(c, 1, 1, packet.Subscription{Filter: "si2/+", QoS: 1})
		c5Subscribe(c, 2, 2, packet.Subscription{Filter: "si2/#", QoS: 0})
		c5Subscribe(c, 3, 0, packet.Subscription{Filter: "si2/x", QoS: 1})
		c5Pub(pub, 4, "si2/x", "m", 1, false)
		p := c.expectPublish("si2/x", "m")
		ids := slices.Sorted(slices.Values(p.Properties.SubscriptionIDs))
		if !slices.Equal(ids, []uint32{1, 2}) {
			t.Fatalf("subscription ids %v, want 1 and 2", p.Properties.SubscriptionIDs)
		}
		if p.QoS != 1 {
			t.Fatalf("QoS %d, want the highest granted, 1 [MQTT-3.3.4-2]", p.QoS)
		}
		c.expectNothing(150 * time.Millisecond) // a single copy
	})

	t.Run("no identifier when no subscription has one", func(t *testing.T) {
		c := c5Conn(t, addr, "si3")
		c5Sub(c, 1, "si3/t", 1)
		c5Pub(pub, 5, "si3/t", "m", 1, false)
		if p := c.expectPublish("si3/t", "m"); p.Properties.Has(packet.PropSubscriptionID) || len(p.Properties.SubscriptionIDs) > 0 {
			t.Fatalf("subscription ids %v on a subscription without one", p.Properties.SubscriptionIDs)
		}
	})
}

// --- topic aliases ----------------------------------------------------------

func TestConformance5TopicAliasFromClient(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{TopicAliasMaximum: 4})
	sub := c5Conn(t, addr, "tasub")
	c5Sub(sub, 1, "ta/#", 1)
	aliasPub := func(c *client, pid uint16, tp string, alias uint16, payload string) *packet.Publish {
		p := &packet.Publish{Topic: tp, QoS: 1, PacketID: pid, Payload: []byte(payload)}
		p.Properties.TopicAlias = alias
		p.Properties.Set(packet.PropTopicAlias)
		return p
	}

	t.Run("[MQTT-3.3.2-12] aliases 1 to Topic Alias Maximum are set and used", func(t *testing.T) {
		c := c5Conn(t, addr, "ta1")
		for _, p := range []*packet.Publish{
			aliasPub(c, 1, "ta/one", 4, "set"),
			aliasPub(c, 2, "", 4, "used"),
			aliasPub(c, 3, "ta/two", 4, "remapped"),
			aliasPub(c, 4, "", 4, "used again"),
			aliasPub(c, 5, "ta/three", 1, "low"),
			aliasPub(c, 6, "", 1, "low used"),
		} {
			if code := c5Publish(c, p); code != packet.Success {
				t.Fatalf("PUBLISH alias %d: PUBACK %s", p.Properties.TopicAlias, code)
			}
		}
		for _, want := range [][2]string{{"ta/one", "set"}, {"ta/one", "used"}, {"ta/two", "remapped"},
			{"ta/two", "used again"}, {"ta/three", "low"}, {"ta/three", "low used"}} {
			p := sub.expectPublish(want[0], want[1])
			// [MQTT-3.1.2-27] the subscriber gave no Topic Alias Maximum.
			if p.Properties.Has(packet.PropTopicAlias) {
				t.Fatalf("Topic Alias %d sent to a client that accepts none", p.Properties.TopicAlias)
			}
		}
	})

	t.Run("[MQTT-3.3.2-8] Topic Alias 0 gets DISCONNECT 0x94", func(t *testing.T) {
		c := c5Conn(t, addr, "ta0")
		c.send(aliasPub(c, 1, "ta/zero", 0, "x"))
		c5ExpectDisconnect(c, packet.TopicAliasInvalid)
	})

	t.Run("[MQTT-3.3.2-9] Topic Alias above the maximum gets DISCONNECT 0x94", func(t *testing.T) {
		c := c5Conn(t, addr, "ta5")
		c.send(aliasPub(c, 1, "ta/five", 5, "x"))
		c5ExpectDisconnect(c, packet.TopicAliasInvalid)
	})

	t.Run("§3.3.2.3.4 unknown Topic Alias with an empty topic is a Protocol Error", func(t *testing.T) {
		c := c5Conn(t, addr, "taunk")
		c.send(aliasPub(c, 1, "", 2, "x"))
		c5ExpectDisconnect(c, packet.ProtocolError)
	})

	t.Run("[MQTT-3.3.2-7] aliases do not carry over to a new connection", func(t *testing.T) {
		c := c5Conn(t, addr, "tanew", withExpiry(60))
		c5Publish(c, aliasPub(c, 1, "ta/carry", 3, "set"))
		sub.expectPublish("ta/carry", "set")
		c.disconnect()
		c = c5Conn(t, addr, "tanew", withClean(false), withExpiry(60))
		c.send(aliasPub(c, 2, "", 3, "x"))
		c5ExpectDisconnect(c, packet.ProtocolError)
		sub.expectNothing(100 * time.Millisecond)
	})
}

// --- message expiry ---------------------------------------------------------

func TestConformance5MessageExpiry(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{})
	withExp := func(pid uint16, tp, payload string, secs uint32, retain bool) *packet.Publish {
		p := &packet.Publish{Topic: tp, QoS: 1, PacketID: pid, Payload: []byte(payload), Retain: retain}
		p.Properties.MessageExpiry = secs
		p.Properties.Set(packet.PropMessageExpiry)
		return p
	}

	t.Run("[MQTT-3.3.2-5] expired messages are not delivered to a session that was offline; [MQTT-3.3.2-6] the rest carry the remaining expiry", func(t *testing.T) {
		sub := c5Conn(t, addr, "mx", withExpiry(300))
		c5Sub(sub, 1, "mx/#", 1)
		sub.disconnect()
		waitOffline(t, b, "mx")
		pub := c5Conn(t, addr, "mxpub")
		published := time.Now()
		c5Publish(pub, withExp(1, "mx/short", "gone", 1, false))
		c5Publish(pub, withExp(2, "mx/long", "kept", 100, false))
		c5Pub(pub, 3, "mx/none", "forever", 1, false)
		c5WaitUntil(published.Add(1200 * time.Millisecond))
		sub, ca := connect(t, addr, packet.V5, "mx", withClean(false), withExpiry(300))
		if !ca.SessionPresent {
			t.Fatal("session lost")
		}
		p := sub.expectPublish("mx/long", "kept")
		if !p.Properties.Has(packet.PropMessageExpiry) || p.Properties.MessageExpiry == 0 || p.Properties.MessageExpiry > 99 {
			t.Fatalf("Message Expiry present=%v %d after waiting 1.2s of 100s, want 1..99",
				p.Properties.Has(packet.PropMessageExpiry), p.Properties.MessageExpiry)
		}
		p = sub.expectPublish("mx/none", "forever")
		if p.Properties.Has(packet.PropMessageExpiry) {
			t.Fatalf("Message Expiry %d on a message sent without one", p.Properties.MessageExpiry)
		}
		sub.expectNothing(100 * time.Millisecond)
	})

	t.Run("[MQTT-3.3.2-5] an expired retained message is not sent to a new subscriber", func(t *testing.T) {
		pub := c5Conn(t, addr, "mxrpub")
		published := time.Now()
		c5Publish(pub, withExp(1, "mxr/short", "gone", 1, true))
		c5Publish(pub, withExp(2, "mxr/long", "kept", 10, true))
		c5WaitUntil(published.Add(1200 * time.Millisecond))
		sub := c5Conn(t, addr, "mxr")
		c5Sub(sub, 1, "mxr/#", 1)
		p := sub.expectPublish("mxr/long", "kept")
		// [MQTT-3.3.2-6] 10s minus at least 1.2s waited.
		if e := p.Properties.MessageExpiry; !p.Properties.Has(packet.PropMessageExpiry) || e == 0 || e > 9 {
			t.Fatalf("retained Message Expiry %d, want 1..9", e)
		}
		sub.expectNothing(100 * time.Millisecond)
	})

	t.Run("[MQTT-4.4.0-1] an unacknowledged PUBLISH is resent on resume even past its expiry", func(t *testing.T) {
		// Onward delivery has started, so [MQTT-3.3.2-5] does not apply;
		// the resend must also not leave the message holding a slot of the
		// client's Receive Maximum forever.
		sub := c5Conn(t, addr, "mxi", withExpiry(300), c5ReceiveMax(1))
		c5Sub(sub, 1, "mxi/t", 1)
		pub := c5Conn(t, addr, "mxipub")
		published := time.Now()
		c5Publish(pub, withExp(1, "mxi/t", "inflight", 1, false))
		first := c5Next(sub) // not acknowledged
		sub.nc.Close()
		waitOffline(t, b, "mxi")
		c5WaitUntil(published.Add(1200 * time.Millisecond))
		sub = c5Conn(t, addr, "mxi", withClean(false), withExpiry(300), c5ReceiveMax(1))
		p := c5Next(sub)
		if string(p.Payload) != "inflight" || !p.Dup || p.PacketID != first.PacketID {
			t.Fatalf("resent %q dup=%v id %d, want the in-flight message with DUP and id %d", p.Payload, p.Dup, p.PacketID, first.PacketID)
		}
		sub.ack(p)
		c5Pub(pub, 2, "mxi/t", "after", 1, false)
		sub.expectPublish("mxi/t", "after")
	})
}

// --- maximum packet size ----------------------------------------------------

func TestConformance5MaximumPacketSize(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{MaxPacketSize: 128})
	big := strings.Repeat("x", 100)

	t.Run("[MQTT-3.1.2-25] a PUBLISH larger than the client's Maximum Packet Size is not sent", func(t *testing.T) {
		sub := c5Conn(t, addr, "mps", c5MaxPacket(64), c5ReceiveMax(1))
		c5Sub(sub, 1, "mps/#", 1)
		pub := c5Conn(t, addr, "mpspub")
		for i := range 3 {
			c5Pub(pub, uint16(i+1), "mps/big", big, 1, false)
		}
		c5Pub(pub, 4, "mps/small", "fits", 1, false)
		// Discarded as if sent: the big ones hold no slot of the window.
		sub.expectPublish("mps/small", "fits")
		sub.expectNothing(100 * time.Millisecond)
	})

	t.Run("[MQTT-3.1.2-24] messages queued offline are not sent above the new Maximum Packet Size", func(t *testing.T) {
		sub := c5Conn(t, addr, "mpso", withExpiry(300))
		c5Sub(sub, 1, "mpso/#", 1)
		sub.disconnect()
		waitOffline(t, b, "mpso")
		pub := c5Conn(t, addr, "mpsopub")
		c5Pub(pub, 1, "mpso/big", big, 1, false)
		c5Pub(pub, 2, "mpso/small", "fits", 1, false)
		sub = c5Conn(t, addr, "mpso", withClean(false), withExpiry(300), c5MaxPacket(64))
		sub.expectPublish("mpso/small", "fits")
		sub.expectNothing(100 * time.Millisecond)
	})

	t.Run("§3.2.2.3.6 a packet above the broker's Maximum Packet Size gets DISCONNECT 0x95", func(t *testing.T) {
		c := c5Conn(t, addr, "mpsin")
		c.send(&packet.Publish{Topic: "mps/in", QoS: 1, PacketID: 1, Payload: []byte(strings.Repeat("y", 200))})
		c5ExpectDisconnect(c, packet.PacketTooLarge)
	})
}

// --- properties and PUBLISH reason codes ------------------------------------

func TestConformance5PropertiesPassedThrough(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	sub := c5Conn(t, addr, "ppsub")
	c5Sub(sub, 1, "pp/#", 1)
	pub := c5Conn(t, addr, "pppub")
	user := []packet.UserProperty{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "z", Value: "3"}, {Key: "", Value: ""}}

	p := &packet.Publish{Topic: "pp/full", QoS: 1, PacketID: 1, Payload: []byte("héllo")}
	pp := &p.Properties
	pp.PayloadFormat = 1
	pp.Set(packet.PropPayloadFormat)
	pp.ContentType = "text/plain; charset=utf-8"
	pp.Set(packet.PropContentType)
	pp.ResponseTopic = "pp/reply/1"
	pp.Set(packet.PropResponseTopic)
	pp.CorrelationData = []byte{0xde, 0xad, 0x00, 0xbe, 0xef}
	pp.Set(packet.PropCorrelationData)
	pp.User = user
	pp.Set(packet.PropUser)
	if code := c5Publish(pub, p); code != packet.Success {
		t.Fatalf("PUBACK %s", code)
	}
	got := sub.expectPublish("pp/full", "héllo").Properties

	t.Run("[MQTT-3.3.2-4] Payload Format Indicator unaltered", func(t *testing.T) {
		if !got.Has(packet.PropPayloadFormat) || got.PayloadFormat != 1 {
			t.Fatalf("Payload Format present=%v %d", got.Has(packet.PropPayloadFormat), got.PayloadFormat)
		}
	})
	t.Run("[MQTT-3.3.2-15] Response Topic unaltered", func(t *testing.T) {
		if got.ResponseTopic != "pp/reply/1" {
			t.Fatalf("Response Topic %q", got.ResponseTopic)
		}
	})
	t.Run("[MQTT-3.3.2-16] Correlation Data unaltered", func(t *testing.T) {
		if !bytes.Equal(got.CorrelationData, pp.CorrelationData) {
			t.Fatalf("Correlation Data %x", got.CorrelationData)
		}
	})
	t.Run("[MQTT-3.3.2-17] [MQTT-3.3.2-18] User Properties unaltered and in order", func(t *testing.T) {
		if !slices.Equal(got.User, user) {
			t.Fatalf("User Properties %v, want %v", got.User, user)
		}
	})
	t.Run("[MQTT-3.3.2-20] Content Type unaltered", func(t *testing.T) {
		if got.ContentType != pp.ContentType {
			t.Fatalf("Content Type %q", got.ContentType)
		}
	})
	t.Run("[MQTT-3.3.2-4] Payload Format Indicator 0 stays present", func(t *testing.T) {
		p := &packet.Publish{Topic: "pp/zero", QoS: 1, PacketID: 2, Payload: []byte{0xff}}
		p.Properties.PayloadFormat = 0
		p.Properties.Set(packet.PropPayloadFormat)
		c5Publish(pub, p)
		g := sub.expectPublish("pp/zero", "\xff").Properties
		if !g.Has(packet.PropPayloadFormat) || g.PayloadFormat != 0 {
			t.Fatalf("Payload Format present=%v %d", g.Has(packet.PropPayloadFormat), g.PayloadFormat)
		}
	})
	t.Run("[MQTT-3.3.2-16] [MQTT-3.3.2-20] empty Correlation Data and Content Type stay present", func(t *testing.T) {
		p := &packet.Publish{Topic: "pp/empty", QoS: 1, PacketID: 3, Payload: []byte("e")}
		p.Properties.Set(packet.PropCorrelationData)
		p.Properties.Set(packet.PropContentType)
		c5Publish(pub, p)
		g := sub.expectPublish("pp/empty", "e").Properties
		if !g.Has(packet.PropCorrelationData) || !g.Has(packet.PropContentType) {
			t.Fatalf("empty properties dropped: correlation=%v content type=%v",
				g.Has(packet.PropCorrelationData), g.Has(packet.PropContentType))
		}
	})
	t.Run("no properties added to a message sent without any", func(t *testing.T) {
		c5Pub(pub, 4, "pp/none", "n", 1, false)
		g := sub.expectPublish("pp/none", "n").Properties
		if g.Present != 0 || len(g.User) > 0 {
			t.Fatalf("properties %+v on a message published without any", g)
		}
	})
}

func TestConformance5PublishReasonCodes(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	pub := c5Conn(t, addr, "prcpub")

	t.Run("§3.4.2.1 PUBACK 0x10 when no subscriber matches", func(t *testing.T) {
		if code := c5Publish(pub, &packet.Publish{Topic: "prc/nobody", QoS: 1, PacketID: 1, Payload: []byte("x")}); code != packet.NoMatchingSubscribers {
			t.Fatalf("PUBACK %s, want 0x10", code)
		}
		if code := c5Publish(pub, &packet.Publish{Topic: "prc/nobody", QoS: 2, PacketID: 2, Payload: []byte("x")}); code != packet.NoMatchingSubscribers {
			t.Fatalf("PUBREC %s, want 0x10", code)
		}
	})

	t.Run("§3.3.2.3.2 Payload Format 1 with invalid UTF-8 gets PUBACK 0x99 and is not forwarded", func(t *testing.T) {
		sub := c5Conn(t, addr, "prcsub")
		c5Sub(sub, 1, "prc/utf8", 1)
		p := &packet.Publish{Topic: "prc/utf8", QoS: 1, PacketID: 3, Payload: []byte{'o', 'k', 0xff, 0xfe}}
		p.Properties.PayloadFormat = 1
		p.Properties.Set(packet.PropPayloadFormat)
		if code := c5Publish(pub, p); code != packet.PayloadFormatInvalid {
			t.Fatalf("PUBACK %s, want 0x99", code)
		}
		sub.expectNothing(150 * time.Millisecond)
		// Valid UTF-8 with the same indicator passes.
		p = &packet.Publish{Topic: "prc/utf8", QoS: 1, PacketID: 4, Payload: []byte("ok ✓")}
		p.Properties.PayloadFormat = 1
		p.Properties.Set(packet.PropPayloadFormat)
		if code := c5Publish(pub, p); code != packet.Success {
			t.Fatalf("PUBACK %s for valid UTF-8", code)
		}
		sub.expectPublish("prc/utf8", "ok ✓")
	})

	t.Run("§3.7.2.1 PUBREL for an unknown packet id gets PUBCOMP 0x92", func(t *testing.T) {
		pub.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: 999})
		a := expect[*packet.Ack](pub)
		if a.Kind != packet.TypePubcomp || a.PacketID != 999 || a.ReasonCode != packet.PacketIDNotFound {
			t.Fatalf("got %s %d %s, want PUBCOMP 999 0x92", a.Kind, a.PacketID, a.ReasonCode)
		}
	})
}

func TestConformance5SubscribeReasonCodes(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Options{})
	c := c5Conn(t, addr, "src")

	t.Run("§3.9.3 SUBACK 0x8F for an invalid filter, others in the packet granted", func(t *testing.T) {
		codes := c5Subscribe(c, 1, 0,
			packet.Subscription{Filter: "src/#/x", QoS: 1},
			packet.Subscription{Filter: "src/ok", QoS: 1},
			packet.Subscription{Filter: "src/a+", QoS: 0})
		if !slices.Equal(codes, []packet.ReasonCode{packet.TopicFilterInvalid, packet.GrantedQoS1, packet.TopicFilterInvalid}) {
			t.Fatalf("SUBACK %v", codes)
		}
	})

	t.Run("§3.11.3 UNSUBACK 0x11 when no subscription existed", func(t *testing.T) {
		c.send(&packet.Unsubscribe{PacketID: 2, Filters: []string{"src/never", "src/ok"}})
		ua := expect[*packet.Unsuback](c)
		if ua.PacketID != 2 || !slices.Equal(ua.ReasonCodes, []packet.ReasonCode{packet.NoSubscriptionExisted, packet.Success}) {
			t.Fatalf("UNSUBACK %d %v, want [0x11 0x00]", ua.PacketID, ua.ReasonCodes)
		}
		c.send(&packet.Unsubscribe{PacketID: 3, Filters: []string{"src/ok"}})
		if ua := expect[*packet.Unsuback](c); !slices.Equal(ua.ReasonCodes, []packet.ReasonCode{packet.NoSubscriptionExisted}) {
			t.Fatalf("second UNSUBSCRIBE: %v, want [0x11]", ua.ReasonCodes)
		}
	})
}

func TestConformance5ACLReasonCodes(t *testing.T) {
	t.Parallel()
	acl := c5ACL(t, "topic write a/#\ntopic write secret/#\n\nuser alice\ntopic read a/#\ntopic write w/#\n")
	_, addr := startBroker(t, Options{Listeners: []ListenerOptions{{Name: "tcp", Address: "127.0.0.1:0",
		AllowAnonymous: true, ACLFile: acl}}})
	alice := c5Conn(t, addr, "alice", withUser("alice", "pw"))
	anon := c5Conn(t, addr, "anon")

	t.Run("§3.4.2.1 PUBLISH to a topic the client may not write gets PUBACK 0x87", func(t *testing.T) {
		if code := c5Publish(alice, &packet.Publish{Topic: "a/x", QoS: 1, PacketID: 1, Payload: []byte("x")}); code != packet.NotAuthorized {
			t.Fatalf("PUBACK %s, want 0x87", code)
		}
		if code := c5Publish(alice, &packet.Publish{Topic: "a/x", QoS: 2, PacketID: 2, Payload: []byte("x")}); code != packet.NotAuthorized {
			t.Fatalf("PUBREC %s, want 0x87", code)
		}
		if code := c5Publish(alice, &packet.Publish{Topic: "w/x", QoS: 1, PacketID: 3, Payload: []byte("x")}); code.IsError() {
			t.Fatalf("PUBACK %s for an allowed topic", code)
		}
	})

	t.Run("§3.9.3 SUBSCRIBE to one topic the client may not read gets SUBACK 0x87", func(t *testing.T) {
		codes := c5Subscribe(alice, 4, 0, packet.Subscription{Filter: "secret/x", QoS: 1}, packet.Subscription{Filter: "a/x", QoS: 1})
		if !slices.Equal(codes, []packet.ReasonCode{packet.NotAuthorized, packet.GrantedQoS1}) {
			t.Fatalf("SUBACK %v, want [0x87 0x01]", codes)
		}
		c5Pub(anon, 1, "secret/x", "no", 1, false)
		c5Pub(anon, 2, "a/x", "yes", 1, false)
		alice.expectPublish("a/x", "yes")
		alice.expectNothing(100 * time.Millisecond)
	})

	t.Run("wildcard subscription granted, unreadable messages withheld", func(t *testing.T) {
		if codes := c5Subscribe(alice, 5, 0, packet.Subscription{Filter: "#", QoS: 1}); codes[0] != packet.GrantedQoS1 {
			t.Fatalf("SUBACK %v", codes)
		}
		c5Pub(anon, 3, "secret/y", "no", 1, false)
		c5Pub(anon, 4, "a/y", "yes", 1, false)
		alice.expectPublish("a/y", "yes")
		alice.expectNothing(100 * time.Millisecond)
	})
}

// --- shared subscriptions ---------------------------------------------------

func TestConformance5SharedSubscriptions(t *testing.T) {
	t.Parallel()
	b, addr := startBroker(t, Options{})
	pub := c5Conn(t, addr, "shpub")

	// each reads both members and requires every message exactly once.
	each := func(t *testing.T, members []*client, want []string) {
		t.Helper()
		var got []string
		for _, m := range members {
			for _, p := range c5Drain(m, 200*time.Millisecond) {
				got = append(got, string(p.Payload))
			}
		}
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("members got %v, want each of %v exactly once", got, w)
		}
	}

	t.Run("§4.8.2 each message goes to one member of the group", func(t *testing.T) {
		a := c5Conn(t, addr, "sha")
		bb := c5Conn(t, addr, "shb")
		c5Sub(a, 1, "$share/g1/sh1/t", 1)
		c5Sub(bb, 1, "$share/g1/sh1/t", 1)
		var want []string
		for i := range 6 {
			want = append(want, fmt.Sprint("m", i))
			c5Pub(pub, uint16(i+1), "sh1/t", want[i], 1, false)
		}
		each(t, []*client{a, bb}, want)
	})

	t.Run("§4.8.2 a group name gets its own copy; a plain subscriber its own", func(t *testing.T) {
		a := c5Conn(t, addr, "shga")
		bb := c5Conn(t, addr, "shgb")
		plain := c5Conn(t, addr, "shplain")
		c5Sub(a, 1, "$share/x/sh2/t", 1)
		c5Sub(bb, 1, "$share/y/sh2/t", 1)
		c5Sub(plain, 1, "sh2/t", 1)
		c5Pub(pub, 10, "sh2/t", "all", 1, false)
		a.expectPublish("sh2/t", "all")
		bb.expectPublish("sh2/t", "all")
		plain.expectPublish("sh2/t", "all")
	})

	t.Run("§4.8.2 when a member disconnects the others get the next messages", func(t *testing.T) {
		for _, expiry := range []uint32{0, 300} { // session ends / session stays, offline
			a := c5Conn(t, addr, fmt.Sprint("shda", expiry), withExpiry(expiry))
			bb := c5Conn(t, addr, fmt.Sprint("shdb", expiry), withExpiry(expiry))
			filter := fmt.Sprintf("$share/g3/sh3/%d", expiry)
			c5Sub(a, 1, filter, 1)
			c5Sub(bb, 1, filter, 1)
			a.disconnect()
			waitOffline(t, b, fmt.Sprint("shda", expiry))
			var want []string
			for i := range 4 {
				want = append(want, fmt.Sprint("after", i))
				c5Pub(pub, uint16(20+i), fmt.Sprint("sh3/", expiry), want[i], 1, false)
			}
			each(t, []*client{bb}, want)
		}
	})

	t.Run("§3.3.1.3 retained messages are not sent for a shared subscription", func(t *testing.T) {
		c5Pub(pub, 30, "sh4/t", "ret", 1, true)
		a := c5Conn(t, addr, "shr")
		c5Sub(a, 1, "$share/g4/sh4/t", 1)
		a.expectNothing(150 * time.Millisecond)
	})
}
