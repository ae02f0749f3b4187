package blackbox

import (
	"bytes"
	"net"
	"syscall"
	"testing"
	"time"
)

// Hand-written packets. Client ids are "bb" and a digit (62 62 3X); topic
// "bb/t" is 00 04 62 62 2F 74.
const (
	// 3.1.1 CONNECT, clean session, keep alive 60.
	connect311bb1 = "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 62 62 31"
	connect311bb2 = "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 62 62 32"
	connect311bb3 = "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 62 62 33"
	// 3.1.1 CONNACK: session present 0, return code 0.
	connack311 = "20 02 00 00"
	// 5.0 CONNECT, clean start, keep alive 60, no properties.
	connect5bb6 = "10 10 00 04 4D 51 54 54 05 02 00 3C 00 00 03 62 62 36"
	connect5bb7 = "10 10 00 04 4D 51 54 54 05 02 00 3C 00 00 03 62 62 37"
	pingreq     = "C0 00"
	pingresp    = "D0 00"
)

// connect311 connects a 3.1.1 client with the given CONNECT bytes and
// requires the CONNACK to be exactly 20 02 00 00.
func connect311(t *testing.T, addr, connect string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	c.write(connect)
	c.expectExact(connack311)
	return c
}

// connect5 connects a 5.0 client and requires a successful CONNACK.
func connect5(t *testing.T, addr, connect string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	c.write(connect)
	first, body, all := c.expectPacket()
	if first != 0x20 || len(body) < 3 || body[0] != 0 || body[1] != 0 {
		t.Fatalf("CONNACK % X, want 20 .. 00 00 (success)", all)
	}
	if _, ok := parseProps(body[2:]); !ok {
		t.Fatalf("CONNACK with malformed properties: % X", all)
	}
	return c
}

func TestConnect311ConnackBytes(t *testing.T) {
	o := startOutpost(t)
	c := connect311(t, o.addr, connect311bb1)
	c.write(pingreq) // [MQTT-3.12.4-1]
	c.expectExact(pingresp)
}

func TestSubscribePublishQoS1RoundTrip311(t *testing.T) {
	o := startOutpost(t)
	sub := connect311(t, o.addr, connect311bb1)
	// SUBSCRIBE id 1, "bb/t" at QoS 1 -> SUBACK id 1, granted QoS 1 [MQTT-3.8.4-1].
	sub.write("82 09 00 01 00 04 62 62 2F 74 01")
	sub.expectExact("90 03 00 01 01")

	pub := connect311(t, o.addr, connect311bb2)
	// PUBLISH QoS 1 id 7 "bb/t" "hi!" -> PUBACK id 7 [MQTT-4.3.2-2].
	pub.write("32 0B 00 04 62 62 2F 74 00 07 68 69 21")
	pub.expectExact("40 02 00 07")

	// The subscriber gets it at QoS 1 with an id the broker chose.
	first, body, all := sub.expectPacket()
	if first != 0x32 || len(body) != 11 || !bytes.Equal(body[:6], hx("00 04 62 62 2F 74")) ||
		!bytes.Equal(body[8:], []byte("hi!")) {
		t.Fatalf("delivery % X, want 32 0B 00 04 62 62 2F 74 <id> 68 69 21", all)
	}
	if body[6] == 0 && body[7] == 0 {
		t.Fatalf("delivery with packet id 0 [MQTT-2.3.1-1]: % X", all)
	}
	sub.write("40 02 " + hexOf(body[6:8])) // PUBACK it
	sub.write(pingreq)
	sub.expectExact(pingresp) // acknowledged: nothing is sent again before the PINGRESP

	// QoS 0 is delivered at QoS 0, byte for byte [MQTT-3.8.4-8].
	pub.write("30 09 00 04 62 62 2F 74 68 69 21")
	sub.expectExact("30 09 00 04 62 62 2F 74 68 69 21")
	pub.write(pingreq)
	pub.expectExact(pingresp) // the publisher got nothing but its PUBACK and PINGRESPs
}

func TestConnect5WithProperties(t *testing.T) {
	o := startOutpost(t)
	c := dialRaw(t, o.addr)
	// 5.0 CONNECT, clean start, keep alive 60, Session Expiry 60 (11 00 00 00 3C),
	// Receive Maximum 10 (21 00 0A), empty client id.
	c.write("10 15 00 04 4D 51 54 54 05 02 00 3C 08 11 00 00 00 3C 21 00 0A 00 00")
	first, body, all := c.expectPacket()
	if first != 0x20 || len(body) < 3 {
		t.Fatalf("got % X, want a 5.0 CONNACK", all)
	}
	if body[0] != 0 || body[1] != 0 {
		t.Fatalf("CONNACK flags %#02x reason %#02x, want 0 and 0: % X", body[0], body[1], all)
	}
	props, ok := parseProps(body[2:])
	if !ok {
		t.Fatalf("CONNACK properties malformed: % X", all)
	}
	for id, ps := range props {
		if len(ps) > 1 && id != 0x26 {
			t.Errorf("CONNACK property %#02x included %d times", id, len(ps))
		}
	}
	if ids := props[0x12]; len(ids) != 1 || len(ids[0].strs[0]) == 0 {
		t.Errorf("no Assigned Client Identifier for an empty client id [MQTT-3.2.2-16]: % X", all)
	}
	want := map[byte]uint32{
		0x21: 64,      // Receive Maximum: receive_maximum's default
		0x22: 64,      // Topic Alias Maximum: topic_alias_maximum's default
		0x27: 1 << 20, // Maximum Packet Size: max_packet_size = "1MiB"
	}
	for id, v := range want {
		if ps := props[id]; len(ps) != 1 || ps[0].num != v {
			t.Errorf("CONNACK property %#02x = %v, want %d: % X", id, ps, v, all)
		}
	}

	// SUBSCRIBE id 1 with Subscription Identifier 5 (0B 05) to "bb/5" at QoS 1
	// -> SUBACK id 1, no properties, granted QoS 1.
	c.write("82 0C 00 01 02 0B 05 00 04 62 62 2F 35 01")
	c.expectExact("90 04 00 01 00 01")
	// PUBLISH QoS 0 "bb/5" with User Property ("k", "v"), payload "hi".
	c.write("30 10 00 04 62 62 2F 35 07 26 00 01 6B 00 01 76 68 69")
	first, body, all = c.expectPacket()
	if first != 0x30 || len(body) < 7 || !bytes.Equal(body[:6], hx("00 04 62 62 2F 35")) {
		t.Fatalf("got % X, want a QoS 0 PUBLISH to bb/5", all)
	}
	plen, used, ok := varint(body[6:])
	if !ok || 6+used+plen > len(body) {
		t.Fatalf("delivery with a bad property length: % X", all)
	}
	dprops, ok := parseProps(body[6 : 6+used+plen])
	if !ok {
		t.Fatalf("delivery with malformed properties: % X", all)
	}
	if up := dprops[0x26]; len(up) != 1 || string(up[0].strs[0]) != "k" || string(up[0].strs[1]) != "v" {
		t.Errorf("user property not forwarded unchanged [MQTT-3.3.2-17]: % X", all)
	}
	if si := dprops[0x0B]; len(si) != 1 || si[0].num != 5 {
		t.Errorf("subscription identifier 5 missing [MQTT-3.3.4-3]: % X", all)
	}
	if payload := body[6+used+plen:]; string(payload) != "hi" {
		t.Errorf("payload %q, want \"hi\"", payload)
	}
}

func TestMalformedPacketClosesConnection(t *testing.T) {
	o := startOutpost(t)
	bystander := connect311(t, o.addr, connect311bb3)

	// 5.0: PUBLISH with QoS 3 [MQTT-3.3.1-4] -> DISCONNECT 0x81, then close.
	c5 := connect5(t, o.addr, connect5bb6)
	c5.write("36 06 00 01 61 00 01 00")
	if code := c5.expectDisconnect5(); code != 0x81 {
		t.Fatalf("DISCONNECT reason %#02x, want 0x81 (malformed packet)", code)
	}
	c5.expectClosed(5 * time.Second)

	// 3.1.1: PINGREQ with a non-minimal remaining length (80 00) [MQTT-1.5.5-1]
	// -> closed without a word [MQTT-4.8.0-1].
	c3 := connect311(t, o.addr, connect311bb1)
	c3.write("C0 80 00")
	c3.expectClosed(5 * time.Second)

	// Bytes that are not MQTT instead of CONNECT: closed, no CONNACK [MQTT-3.1.0-1].
	g := dialRaw(t, o.addr)
	g.write("FF FF FF FF FF FF")
	g.expectClosed(5 * time.Second)

	// Only the offenders were closed.
	bystander.write(pingreq)
	bystander.expectExact(pingresp)
}

func TestSigtermDisconnectsClientsAndExitsZero(t *testing.T) {
	o := startOutpost(t)
	c5 := connect5(t, o.addr, connect5bb7)
	c3 := connect311(t, o.addr, connect311bb1)
	c5.write(pingreq)
	c5.expectExact(pingresp)

	start := time.Now()
	o.signal(syscall.SIGTERM)
	if code := c5.expectDisconnect5(); code != 0x8B {
		t.Fatalf("DISCONNECT reason %#02x, want 0x8B (server shutting down)", code)
	}
	c5.expectClosed(5 * time.Second)
	c3.expectClosed(5 * time.Second) // 3.1.1 has no DISCONNECT from the server
	if code := o.waitExit(max(0, 5*time.Second-time.Since(start))); code != 0 {
		t.Fatalf("outpost exited %d after SIGTERM, want 0", code)
	}
	if nc, err := net.DialTimeout("tcp", o.addr, time.Second); err == nil {
		nc.Close()
		t.Fatal("the port still accepts connections after outpost exited")
	}
}

// hexOf writes b as spaced hex, as hx reads it.
func hexOf(b []byte) string {
	var s []byte
	for i, c := range b {
		if i > 0 {
			s = append(s, ' ')
		}
		s = append(s, "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
	}
	return string(s)
}
