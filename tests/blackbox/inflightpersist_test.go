package blackbox

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// QoS 1 messages queued or in flight to a connected client with a
// persistent session survive a kill -9 of outpost: the client (3.1.1,
// clean session off) takes PUBLISHes and acknowledges none of them, so 64
// stay in flight and the rest wait in its queue; after the kill and a
// restart it reconnects to its session and gets all of them again.
func TestInflightToPersistentSessionSurvivesKill9(t *testing.T) {
	const n = 150
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o := runOutpost(t, dir, addr, "")

	subscribe := func() *rawConn {
		c := dialRaw(t, addr)
		_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.nc.Write(connect311Packet("keeper", false)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := subscribe()
	c.expectExact(connack311)
	sub := appendStr([]byte{0x00, 0x01}, "dev/#")
	sub = append(sub, 1)
	if _, err := c.nc.Write(append(appendVarint([]byte{0x82}, len(sub)), sub...)); err != nil {
		t.Fatal(err)
	}
	c.expectExact("90 03 00 01 01")

	publishNumbers(t, addr, 1, "dev/x", n)
	// The window's worth arrives, unacknowledged; the rest is queued.
	for range 10 {
		if first, _, _ := c.expectPacket(); first&0xF6 != 0x32 {
			t.Fatalf("got packet %02X; want a QoS 1 PUBLISH", first)
		}
	}
	o.kill9()
	c.nc.Close()

	o = runOutpost(t, dir, addr, "")
	c = subscribe()
	c.expectExact(connack311Present)
	got := map[int]bool{}
	for len(got) < n {
		first, body, all, err := c.readPacket(10 * time.Second)
		if err != nil {
			t.Fatalf("after the restart %d of %d arrived, then: %v (% X)", len(got), n, err, all)
		}
		if first&0xF6 != 0x32 {
			t.Fatalf("got packet %02X; want a QoS 1 PUBLISH", first)
		}
		tl := int(body[0])<<8 | int(body[1])
		id, payload := body[2+tl:4+tl], body[4+tl:]
		x, err := strconv.Atoi(string(payload))
		if err != nil || x < 1 || x > n {
			t.Fatalf("payload %q", payload)
		}
		got[x] = true
		_, _ = c.nc.Write([]byte{0x40, 0x02, id[0], id[1]})
	}
	o.kill9()
}
