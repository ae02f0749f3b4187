package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/outpost-gw/outpost/uplink"
)

// The spool's limits seen from the gateway: a full uplink queue drops its
// oldest messages or refuses new ones as configured, a nearly full file
// system refuses new messages until space returns, and each of these is
// counted where the status shows it.

// startCloudOn runs mosquitto as the cloud on addr (a loopback address that
// was free), anonymous and without persistence, until the test ends.
func startCloudOn(t *testing.T, addr string) *cloud {
	t.Helper()
	bin := tool(t, "mosquitto")
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "cloud.conf")
	cfg := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type all\n", port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &cloud{addr: addr, log: make(chan string, 1024)}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case c.log <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-readDone
		_ = cmd.Wait()
	})
	c.waitLog(t, "mosquitto version", "running")
	return c
}

// limitsConfig is a gateway with one uplink "u" whose out-rule exports
// sensors/# to a cloud at cloudAddr (down for now).
func limitsConfig(t *testing.T, cloudAddr string, edit func(*UplinkConfig)) *Config {
	t.Helper()
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	u := DefaultUplink()
	u.Name, u.URL, u.ClientID = "u", "mqtt://"+cloudAddr, "outpost-u"
	u.ReconnectMin, u.ReconnectMax = Duration(20*time.Millisecond), Duration(200*time.Millisecond)
	r := DefaultRule()
	r.Direction, r.Local, r.Remote = RuleOut, "sensors/#", "site/sensors/#"
	u.Rules = []RuleConfig{r}
	if edit != nil {
		edit(&u)
	}
	cfg.Uplinks = []UplinkConfig{u}
	return cfg
}

// uplinkQueueStatus returns the status of the uplink's queue of class 0 and the
// uplink's own status.
func uplinkQueueStatus(t *testing.T, g *Gateway) (QueueStatus, UplinkStatus) {
	t.Helper()
	st := g.Status()
	name := uplink.QueueName("u", 0)
	var q QueueStatus
	found := false
	for _, qs := range st.Spool.Queues {
		if qs.Name == name {
			q, found = qs, true
		}
	}
	if !found || len(st.Uplinks) != 1 {
		t.Fatalf("status has no queue %s or not one uplink: %+v", name, st)
	}
	return q, st.Uplinks[0]
}

// publishCode publishes at QoS 1 and returns the PUBACK's reason code.
func publishCode(t *testing.T, m *mqttClient, topic, payload string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := m.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
	if resp == nil {
		t.Fatalf("publish %s: no PUBACK: %v", topic, err)
	}
	return resp.ReasonCode
}

// With on_full = "drop_oldest" a queue at max_messages makes room for each
// new message by dropping its oldest: every publisher is acknowledged, the
// drops are counted, and the cloud gets the newest messages in order.
func TestGatewaySpoolDropOldest(t *testing.T) {
	cloudAddr := freeAddr(t)
	cfg := limitsConfig(t, cloudAddr, func(u *UplinkConfig) {
		u.MaxMessages, u.OnFull = 10, OnFullDropHead
	})
	g, stop := startGateway(t, cfg)
	pub := dialMQTT(t, g.Addrs()["default"], "pub", true, 0)
	for i := range 25 {
		pub.publish("sensors/a", fmt.Sprintf("m%02d", i), false)
	}
	q, u := uplinkQueueStatus(t, g)
	if q.Depth != 10 || q.Appended != 25 || q.Dropped != 15 || q.Rejected != 0 {
		t.Errorf("queue: depth %d, appended %d, dropped %d, rejected %d; want 10, 25, 15, 0", q.Depth, q.Appended, q.Dropped, q.Rejected)
	}
	if u.Refused != 0 || len(u.Classes) != 1 || u.Classes[0].Depth != 10 {
		t.Errorf("uplink: refused %d, classes %+v; want 0 refused and a class of depth 10", u.Refused, u.Classes)
	}

	c := startCloudOn(t, cloudAddr)
	sub := dialCloud(t, c, "watcher")
	sub.subscribe("site/#", 1)
	var want []string
	for i := 15; i < 25; i++ {
		want = append(want, fmt.Sprintf("site/sensors/a=m%02d", i))
	}
	sub.expect(want...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, u = uplinkQueueStatus(t, g)
		if q.Depth == 0 && u.Out == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the drain: depth %d, out %d; want 0 and 10", q.Depth, u.Out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if q.Acked != 10 || q.Dropped != 15 {
		t.Errorf("after the drain: acked %d, dropped %d; want 10 and 15", q.Acked, q.Dropped)
	}
	sub.expectNothing(100 * time.Millisecond)
	sub.close()
	pub.close()
	stop()
}

// With on_full = "reject_new" a queue at max_messages refuses new
// messages: a 5.0 publisher gets Quota exceeded (0x97), the refusals are
// counted by the queue and the uplink, nothing stored is lost, and once the
// cloud took the backlog new messages are taken again.
func TestGatewaySpoolRejectNew(t *testing.T) {
	cloudAddr := freeAddr(t)
	cfg := limitsConfig(t, cloudAddr, func(u *UplinkConfig) {
		u.MaxMessages, u.OnFull = 10, OnFullReject
	})
	g, stop := startGateway(t, cfg)
	pub := dialMQTT(t, g.Addrs()["default"], "pub", true, 0)
	for i := range 10 {
		pub.publish("sensors/a", fmt.Sprintf("m%02d", i), false)
	}
	for i := 10; i < 15; i++ {
		if code := publishCode(t, pub, "sensors/a", fmt.Sprintf("m%02d", i)); code != 0x97 {
			t.Fatalf("publish %d to a full queue: PUBACK %#x; want 0x97 (quota exceeded)", i, code)
		}
	}
	q, u := uplinkQueueStatus(t, g)
	if q.Depth != 10 || q.Appended != 10 || q.Rejected != 5 || q.Dropped != 0 {
		t.Errorf("queue: depth %d, appended %d, rejected %d, dropped %d; want 10, 10, 5, 0", q.Depth, q.Appended, q.Rejected, q.Dropped)
	}
	if u.Refused != 5 {
		t.Errorf("uplink refused %d; want 5", u.Refused)
	}

	c := startCloudOn(t, cloudAddr)
	sub := dialCloud(t, c, "watcher")
	sub.subscribe("site/#", 1)
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("site/sensors/a=m%02d", i))
	}
	sub.expect(want...)
	deadline := time.Now().Add(10 * time.Second)
	for q.Depth != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue depth %d after the drain; want 0", q.Depth)
		}
		time.Sleep(10 * time.Millisecond)
		q, _ = uplinkQueueStatus(t, g)
	}
	pub.publish("sensors/a", "again", false)
	sub.expect("site/sensors/a=again")
	if q, u = uplinkQueueStatus(t, g); q.Rejected != 5 || u.Refused != 5 {
		t.Errorf("after the drain: rejected %d, refused %d; want 5 and 5", q.Rejected, u.Refused)
	}
	sub.close()
	pub.close()
	stop()
}

// tinyFS mounts an 8 MiB tmpfs on a new folder and unmounts it when the
// test ends. It reports false where mounting is not possible (not root, no
// CAP_SYS_ADMIN).
func tinyFS(t *testing.T) (string, bool) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		return dir, false
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Logf("mount -t tmpfs: %v: %s", err, strings.TrimSpace(string(out)))
		return dir, false
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir, true
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// A nearly full file system: on an 8 MiB tmpfs, with min_free 3 MiB, a
// file that leaves 2 MiB free makes the spool refuse new messages (0x97 to
// a 5.0 publisher, counted, the spool says NoSpace) without losing what it
// holds; when the file is removed it takes messages again by itself, and
// the cloud gets exactly what was acknowledged. Where a tmpfs cannot be
// mounted (not root), min_free above the free space simulates the full
// disk, and a restart with the check off stands for the space returning.
func TestGatewaySpoolNoSpace(t *testing.T) {
	cloudAddr := freeAddr(t)
	dir, mounted := tinyFS(t) // before the gateway: unmounted after it stopped
	cfg := limitsConfig(t, cloudAddr, nil)
	cfg.DataDir = dir
	cfg.Spool.MemTableSize = 1 << 20
	cfg.Spool.ValueLogFileSize = 1 << 20
	cfg.Spool.BlockCacheSize = 1 << 20
	cfg.Spool.IndexCacheSize = 1 << 20
	cfg.Spool.MinFree = 3 << 20
	if !mounted {
		t.Log("no tmpfs: simulating a full disk with min_free above the free space")
		cfg.Spool.MinFree = Size(freeBytes(t, dir) + 1<<40)
	}
	g, stop := startGateway(t, cfg)
	pub := dialMQTT(t, g.Addrs()["default"], "pub", true, 0)
	var accepted []string
	if mounted {
		for i := range 5 {
			p := fmt.Sprintf("before%d", i)
			pub.publish("sensors/a", p, false)
			accepted = append(accepted, p)
		}
		// Leave 2 MiB free: below min_free, above what badger needs.
		filler := filepath.Join(dir, "filler")
		fillTo(t, filler, freeBytes(t, dir)-2<<20)
		defer os.Remove(filler)
	}

	for i := range 3 {
		if code := publishCode(t, pub, "sensors/a", fmt.Sprintf("refused%d", i)); code != 0x97 {
			t.Fatalf("publish on a full disk: PUBACK %#x; want 0x97 (quota exceeded)", code)
		}
	}
	q, u := uplinkQueueStatus(t, g)
	if st := g.Status(); !st.Spool.NoSpace {
		t.Error("the spool does not say NoSpace")
	}
	if q.Rejected != 3 || u.Refused != 3 || q.Depth != int64(len(accepted)) {
		t.Errorf("rejected %d, refused %d, depth %d; want 3, 3, %d", q.Rejected, u.Refused, q.Depth, len(accepted))
	}

	if mounted {
		if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
			t.Fatal(err)
		}
	} else {
		pub.close()
		stop()
		cfg.Spool.MinFree = 0 // the check off
		g, stop = startGateway(t, cfg)
		pub = dialMQTT(t, g.Addrs()["default"], "pub", true, 0)
	}
	for i := range 5 {
		p := fmt.Sprintf("after%d", i)
		pub.publish("sensors/a", p, false)
		accepted = append(accepted, p)
	}
	if st := g.Status(); st.Spool.NoSpace {
		t.Error("the spool still says NoSpace after space returned")
	}

	c := startCloudOn(t, cloudAddr)
	sub := dialCloud(t, c, "watcher")
	sub.subscribe("site/#", 1)
	var want []string
	for _, p := range accepted {
		want = append(want, "site/sensors/a="+p)
	}
	sub.expect(want...)
	sub.expectNothing(100 * time.Millisecond)
	sub.close()
	pub.close()
	stop()
}

// fillTo writes a file of n bytes (rounded down to 64 KiB) into a file
// system that has room for it.
func fillTo(t *testing.T, path string, n int64) {
	t.Helper()
	if n <= 0 {
		t.Fatalf("no room to fill (%d bytes)", n)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for left := n; left >= int64(len(chunk)); left -= int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("the file system filled up before %d bytes", n)
			}
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
