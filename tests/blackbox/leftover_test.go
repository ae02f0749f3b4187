package blackbox

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Messages spooled for an out-rule of priority 5 while the cloud is down
// were acknowledged to their publisher; a restart whose config moves the
// rule to another priority must still send them: the real outpost drains
// the queue of the removed class after the configured one, in order and
// under the topic they were spooled with, then drops it, and does not
// call it an orphan.
func TestRemovedPriorityClassDrainsAfterRestart(t *testing.T) {
	const n = 500
	c := newSFCloud(t) // down while the messages are spooled
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	uplinkCfg := func(remote string, prio int) string {
		return fmt.Sprintf(`
[[uplink]]
name = "site7"
url = "mqtt://127.0.0.1:%d"
client_id = "outpost-leftover"
reconnect_min = "50ms"
reconnect_max = "200ms"

[[uplink.rule]]
direction = "out"
local = "sensors/#"
remote = %q
priority = %d
`, c.port, remote, prio)
	}
	o := runOutpost(t, dir, addr, uplinkCfg("site7/sensors/#", 5))
	publishNumbers(t, addr, 1, "sensors/t", n)
	o.signal(syscall.SIGTERM)
	if code := o.waitExit(30 * time.Second); code != 0 {
		t.Fatalf("outpost exited %d", code)
	}

	c.start()
	t.Cleanup(c.stop)
	sub := startProc(t, peer(t, "mosquitto_sub"), "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-V", "mqttv5",
		"-q", "1", "-t", "#", "-F", "%t %p")
	c.p.waitLine(10*time.Second, "New client connected")
	o = runOutpost(t, dir, addr, uplinkCfg("v2/sensors/#", 1))
	dropped := time.Now().Add(60 * time.Second)
	for !strings.Contains(o.logs.String(), "sent every message of a leftover spool queue") {
		if time.Now().After(dropped) {
			t.Fatal("outpost did not drop the drained queue of the removed class within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("site7/sensors/t %08d", i+1)
	}
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n {
		got = got[:0]
		seen := map[string]bool{}
		for _, l := range strings.Split(sub.output(), "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "site7/") && !seen[l] {
				seen[l] = true
				got = append(got, l)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d leftover messages at the cloud", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d at the cloud is %q; want %q (all in order, under the topic they were spooled with)", i, got[i], want[i])
		}
	}
	if logs := o.logs.String(); strings.Contains(logs, "removed uplink") {
		t.Errorf("the queue of the removed class was reported as an orphan:\n%s", logs)
	}
}
