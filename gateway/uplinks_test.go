package gateway

import (
	"bufio"
	"context"
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
)

// tool returns the path of a peer program. A missing one skips the test,
// except under CI=true, where it fails: CI must run these tests.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); fileExists(p) { // Debian's mosquitto
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is needed (CI=true)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cloud is Debian's mosquitto standing in for a cloud broker.
type cloud struct {
	addr string
	log  chan string // mosquitto's log lines
}

// startCloudBroker runs mosquitto on a free loopback port, anonymous and
// without persistence, until the test ends.
func startCloudBroker(t *testing.T) *cloud {
	t.Helper()
	return startCloudBrokerAt(t, freeAddr(t))
}

// startCloudBrokerAt is startCloudBroker on addr (a free loopback address).
func startCloudBrokerAt(t *testing.T, addr string) *cloud {
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
			default: // nobody waits for more
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

// waitLog waits for a log line of the cloud that contains every one of parts.
func (c *cloud) waitLog(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-c.log:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return
			}
		case <-deadline:
			t.Fatalf("mosquitto logged no line with %q within 10s", parts)
		}
	}
}

// dialCloud connects a paho client to the cloud.
func dialCloud(t *testing.T, c *cloud, id string) *mqttClient {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	return dialMQTT(t, a, id, true, 0)
}

// Two uplinks to one cloud: a QoS 1 message matching both out-rules reaches
// the cloud under both mapped topics, and an in-rule brings a cloud message
// to the LAN under its local topic.
func TestGatewayBridgesBothWays(t *testing.T) {
	cl := startCloudBroker(t)
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	for _, name := range []string{"east", "west"} {
		u := DefaultUplink()
		u.Name, u.URL = name, "mqtt://"+cl.addr
		out := DefaultRule()
		out.Direction, out.Local, out.Remote = RuleOut, "sensors/#", name+"/sensors/#"
		u.Rules = append(u.Rules, out)
		if name == "east" {
			in := DefaultRule()
			in.Direction, in.Local, in.Remote, in.MaxQoS = RuleIn, "cmd/#", "cmd/site7/#", 1
			u.Rules = append(u.Rules, in)
		}
		cfg.Uplinks = append(cfg.Uplinks, u)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	watcher := dialCloud(t, cl, "watcher")
	watcher.subscribe("+/sensors/#", 1)
	g, stop := startGateway(t, cfg)
	cl.waitLog(t, "Sending SUBACK to outpost-east") // the in-rule's subscription
	addr := g.Addrs()["default"]

	local := dialMQTT(t, addr, "lan", true, 0)
	local.subscribe("cmd/#", 1)
	local.publish("sensors/room1/temp", "21.5", false)
	got := map[string]bool{}
	for range 2 {
		select {
		case p := <-watcher.recv:
			got[p.Topic+"="+string(p.Payload)] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("the cloud got %v; want the message from both uplinks", got)
		}
	}
	if !got["east/sensors/room1/temp=21.5"] || !got["west/sensors/room1/temp=21.5"] {
		t.Errorf("the cloud got %v; want east/ and west/sensors/room1/temp", got)
	}

	ctl := dialCloud(t, cl, "control")
	ctl.publish("cmd/site7/valve/3", "open", false)
	if p := local.expect("cmd/valve/3=open")[0]; p.QoS != 1 {
		t.Errorf("command delivered at QoS %d; want 1", p.QoS)
	}
	watcher.expectNothing(100 * time.Millisecond) // nothing twice
	local.close()
	ctl.close()
	watcher.close()
	stop()
}

// When one uplink's spool queue is full (on_full = "reject_new"), the broker
// refuses the message although another uplink took it: a 5.0 publisher gets
// Quota exceeded (0x97) and keeps the message to send again.
func TestGatewayRefusesWhatAnUplinkSpoolCannotTake(t *testing.T) {
	down := "mqtt://" + freeAddr(t) // nothing listens: the messages stay in the spool
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	for _, lim := range []int64{0, 2} {
		u := DefaultUplink()
		u.Name, u.URL, u.MaxMessages = fmt.Sprintf("max%d", lim), down, lim
		u.ClientID = u.Name
		r := DefaultRule()
		r.Direction, r.Local = RuleOut, "sensors/#"
		u.Rules = []RuleConfig{r}
		cfg.Uplinks = append(cfg.Uplinks, u)
	}
	g, stop := startGateway(t, cfg)
	pub := dialMQTT(t, g.Addrs()["default"], "pub", true, 0)
	pub.publish("sensors/a", "1", false)
	pub.publish("sensors/a", "2", false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := pub.c.Publish(ctx, &paho.Publish{Topic: "sensors/a", QoS: 1, Payload: []byte("3")})
	if resp == nil || resp.ReasonCode != 0x97 {
		t.Errorf("third publish: response %+v, err %v; want PUBACK 0x97 (quota exceeded)", resp, err)
	}
	// Topics no out-rule exports are not held back by the full spool.
	pub.publish("other/a", "x", false)
	pub.close()
	stop()
}
