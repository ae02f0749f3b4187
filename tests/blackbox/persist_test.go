package blackbox

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// Packets of the persistence tests. Topics are under "bb/k/".
const (
	// 3.1.1 CONNECT, clean session 0 (a persistent session), keep alive 60,
	// client id "bbk".
	connect311bbkKeep = "10 0F 00 04 4D 51 54 54 04 00 00 3C 00 03 62 62 6B"
	// 3.1.1 CONNACK with session present 1.
	connack311Present = "20 02 01 00"
	// SUBSCRIBE id 1, "bb/k/#" at QoS 1, and its SUBACK.
	subscribeBBK = "82 0B 00 01 00 06 62 62 2F 6B 2F 23 01"
	subackBBK    = "90 03 00 01 01"
	// PUBLISH QoS 1, retain, id 1, "bb/k/r" "on", and its PUBACK.
	publishRetainedBBK = "33 0C 00 06 62 62 2F 6B 2F 72 00 01 6F 6E"
	pubackID1          = "40 02 00 01"
	disconnect         = "E0 00"
)

// What outpost acknowledged is on disk: after a kill -9 and a restart on the
// same data_dir, a retained message (stored before its PUBACK), a persistent
// session with its subscription (stored when it subscribed) and the message
// queued for it while it was offline (stored before the publisher's PUBACK)
// are still there.
func TestRetainedAndSessionSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := runOutpost(t, dir, addr, "")

	keeper := connect311(t, o.addr, connect311bbkKeep) // CONNACK session present 0
	keeper.write(subscribeBBK)
	keeper.expectExact(subackBBK)
	keeper.write(disconnect)
	keeper.expectClosed(5 * time.Second)

	pub := connect311(t, o.addr, connect311bb1)
	pub.write(publishRetainedBBK)
	pub.expectExact(pubackID1)
	o.kill9()

	o = runOutpost(t, dir, addr, "")
	keeper = dialRaw(t, o.addr)
	keeper.write(connect311bbkKeep)
	keeper.expectExact(connack311Present)

	// The subscription was restored: a new message on bb/k/x reaches it.
	// PUBLISH QoS 1 id 2 "bb/k/x" "go".
	pub = connect311(t, o.addr, connect311bb1)
	pub.write("32 0C 00 06 62 62 2F 6B 2F 78 00 02 67 6F")
	pub.expectExact("40 02 00 02")
	// First the message queued for the offline session before the kill
	// (durable before its PUBACK), then the new one, in that order.
	for _, want := range []struct{ topic, payload string }{{"bb/k/r", "on"}, {"bb/k/x", "go"}} {
		first, body, all := keeper.expectPacket()
		if first&0xF6 != 0x32 || len(body) < 10 {
			t.Fatalf("keeper got % X, want a QoS 1 PUBLISH of %s", all, want.topic)
		}
		keeper.write("40 02 " + hexOf(body[8:10]))
		if string(body[2:8]) != want.topic || string(body[10:]) != want.payload {
			t.Fatalf("keeper got % X, want %s %q: a message queued for an offline session must survive kill -9",
				all, want.topic, want.payload)
		}
	}

	// The retained message is there for a new subscriber: SUBSCRIBE id 1
	// "bb/k/r" QoS 1 -> the retained PUBLISH (QoS 1, retain flag set).
	fresh := connect311(t, o.addr, connect311bb2)
	fresh.write("82 0B 00 01 00 06 62 62 2F 6B 2F 72 01")
	fresh.expectExact("90 03 00 01 01")
	first, body, all := fresh.expectPacket()
	if first != 0x33 || len(body) != 12 || !bytes.Equal(body[:8], hx("00 06 62 62 2F 6B 2F 72")) ||
		!bytes.Equal(body[10:], []byte("on")) {
		t.Fatalf("retained delivery % X, want 33 0C 00 06 62 62 2F 6B 2F 72 <id> 6F 6E", all)
	}
}
