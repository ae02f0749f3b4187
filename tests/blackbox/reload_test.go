package blackbox

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadConfig is the config of the reload test: a listener that wants a
// password and checks an ACL, and an uplink to the cloud with one in-rule
// and one out-rule, whose remote prefixes (and max_connections, which
// needs a restart) the test changes.
func reloadConfig(dir, addr string, cloudPort int, inRemote, outRemote string, maxConns int) string {
	return fmt.Sprintf(`data_dir = %q

[log]
level = "debug"

[broker]
sys_interval = "0s"
max_connections = %d

[[listener]]
name = "lan"
address = %q
allow_anonymous = false
password_file = "passwd"
acl_file = "acl"

[[mqttsn.udp]]
address = "127.0.0.1:0"

[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:%d"
reconnect_min = "50ms"
reconnect_max = "500ms"

[[uplink.rule]]
direction = "in"
local = "cmd/#"
remote = %q
max_qos = 1

[[uplink.rule]]
direction = "out"
local = "data/#"
remote = %q
max_qos = 1
`, filepath.Join(dir, "data"), maxConns, addr, cloudPort, inRemote, outRemote)
}

// notifySocket stands in for systemd's notify socket.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
	path string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{t: t, conn: conn, path: path}
}

// next returns the next notification that contains want, skipping others
// (STATUS refreshes), or fails after d.
func (n *notifySocket) next(d time.Duration, want string) string {
	n.t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 4096)
	for {
		_ = n.conn.SetReadDeadline(deadline)
		k, err := n.conn.Read(buf)
		if err != nil {
			n.t.Fatalf("no notification with %q within %v: %v", want, d, err)
		}
		if msg := string(buf[:k]); strings.Contains(msg, want) {
			return msg
		}
	}
}

// lineOf waits for a mosquitto_sub line "MSG topic payload" and returns
// the topic and payload of each one until the one with payload want.
func lineOf(p *proc, d time.Duration, want string) []string {
	p.t.Helper()
	var got []string
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s exited while waiting for %q; got %q", p.name, want, got)
			}
			msg, found := strings.CutPrefix(l, "MSG ")
			if !found {
				continue
			}
			got = append(got, msg)
			if strings.HasSuffix(msg, " "+want) {
				return got
			}
		case <-deadline:
			p.t.Fatalf("%s printed no message %q within %v; got %q", p.name, want, d, got)
		}
	}
}

// SIGHUP applies a changed ACL file and changed bridge rules to a running
// outpost, and says so to systemd (RELOADING=1, then READY=1 with STATUS=),
// while the connected clients stay connected: a subscription the new ACL
// forbids stops receiving, the old in-rule's cloud topic no longer comes in
// and the new one does, out-rule messages take the new remote prefix, and a
// message on an unchanged topic flows over the same connections. A broken
// config on the next SIGHUP changes nothing and is logged with its line.
func TestSIGHUPReloadsACLAndRulesWithoutDroppingClients(t *testing.T) {
	subBin, pubBin := peer(t, "mosquitto_sub"), peer(t, "mosquitto_pub")
	passwd, stdbuf := peer(t, "mosquitto_passwd"), peer(t, "stdbuf")
	dir := t.TempDir()
	cloudPort, port := freePort(t), freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pwFile := filepath.Join(dir, "passwd")
	for i, up := range [][2]string{{"alice", "a-pass"}, {"bob", "b-pass"}} {
		args := []string{"-b", pwFile, up[0], up[1]}
		if i == 0 {
			args = []string{"-b", "-c", pwFile, up[0], up[1]}
		}
		if out, err := runCmd(passwd, args...); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	write("acl", "user alice\ntopic read secret/#\ntopic read chat/#\ntopic read cmd/#\n\nuser bob\ntopic readwrite #\n")
	file := filepath.Join(dir, "outpost.toml")
	write("outpost.toml", reloadConfig(dir, addr, cloudPort, "old/cmd/#", "v1/data/#", 1000))

	cloud := startCloud(t, dir, cloudPort)
	notify := newNotifySocket(t)
	o := execOutpost(t, file, addr, "NOTIFY_SOCKET="+notify.path)
	notify.next(15*time.Second, "READY=1")
	cloud.waitLine(15*time.Second, "Sending SUBACK to outpost-cloud")

	cloudSub := startProc(t, stdbuf, "-oL", subBin, "-h", "127.0.0.1", "-p", fmt.Sprint(cloudPort),
		"-i", "cloud-sub", "-q", "1", "-t", "v1/#", "-t", "v2/#", "-F", "MSG %t %p")
	cloud.waitLine(10*time.Second, "Sending SUBACK to cloud-sub")
	// The connected clients: alice subscribes, bob publishes chat lines
	// from its standard input, both over one connection each (-d shows
	// every CONNECT they send).
	alice := startProc(t, stdbuf, "-oL", subBin, "-d", "-V", "mqttv5", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
		"-i", "alice", "-u", "alice", "-P", "a-pass", "-q", "1", "-t", "secret/#", "-t", "chat/#", "-t", "cmd/#", "-F", "MSG %t %p")
	alice.waitLine(10*time.Second, "received SUBACK")
	chatR, chatW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer chatW.Close()
	bob := startProcStdin(t, chatR, stdbuf, "-oL", pubBin, "-d", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
		"-i", "bob-chat", "-u", "bob", "-P", "b-pass", "-q", "1", "-t", "chat/x", "-l")
	chatR.Close()
	bob.waitLine(10*time.Second, "received CONNACK")
	chat := func(line string) {
		t.Helper()
		if _, err := fmt.Fprintln(chatW, line); err != nil {
			t.Fatal(err)
		}
	}
	pub := func(port int, user, topic, payload string) {
		t.Helper()
		args := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-t", topic, "-m", payload}
		if user != "" {
			args = append(args, "-u", user, "-P", user[:1]+"-pass")
		}
		if out, err := runCmd(pubBin, args...); err != nil {
			t.Fatalf("mosquitto_pub %s: %v\n%s", topic, err, out)
		}
	}

	// Before the reload.
	pub(port, "bob", "secret/a", "s1")
	chat("c1")
	if got := lineOf(alice, 10*time.Second, "c1"); len(got) != 2 || got[0] != "secret/a s1" {
		t.Fatalf("alice got %q before the reload, want secret/a s1 then chat/x c1", got)
	}
	pub(cloudPort, "", "old/cmd/x", "o1")
	lineOf(alice, 10*time.Second, "o1")
	pub(port, "bob", "data/1", "d1")
	if got := lineOf(cloudSub, 10*time.Second, "d1"); got[len(got)-1] != "v1/data/1 d1" {
		t.Fatalf("cloud got %q", got)
	}

	// The reload: alice may no longer read secret/#, the in-rule listens
	// to new/cmd/#, the out-rule publishes to v2/, and max_connections
	// changes, which needs a restart.
	write("acl", "user alice\ntopic read chat/#\ntopic read cmd/#\n\nuser bob\ntopic readwrite #\n")
	write("outpost.toml", reloadConfig(dir, addr, cloudPort, "new/cmd/#", "v2/data/#", 999))
	o.signal(syscall.SIGHUP)
	reloading := notify.next(10*time.Second, "RELOADING=1")
	if !strings.Contains(reloading, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", reloading)
	}
	ready := notify.next(10*time.Second, "READY=1")
	for _, want := range []string{"STATUS=reloaded", "uplink[0].rule[0].remote", "uplink[0].rule[1].remote", "auth files", "restart needed for broker.max_connections"} {
		if !strings.Contains(ready, want) {
			t.Errorf("READY=1 after the reload lacks %q: %q", want, ready)
		}
	}

	pub(port, "bob", "secret/a", "s2")
	chat("c2")
	if got := lineOf(alice, 10*time.Second, "c2"); len(got) != 1 {
		t.Fatalf("alice got %q after the reload, want only chat/x c2 (not secret/a s2)", got)
	}
	pub(cloudPort, "", "old/cmd/y", "o2")
	pub(cloudPort, "", "new/cmd/z", "n1")
	if got := lineOf(alice, 10*time.Second, "n1"); len(got) != 1 || got[0] != "cmd/z n1" {
		t.Fatalf("alice got %q from the cloud, want only cmd/z n1 (not the old in-rule's o2)", got)
	}
	pub(port, "bob", "data/2", "d2")
	if got := lineOf(cloudSub, 10*time.Second, "d2"); got[len(got)-1] != "v2/data/2 d2" {
		t.Fatalf("cloud got %q, want v2/data/2 d2", got)
	}

	// A broken config: nothing changes, and the error names its line.
	write("outpost.toml", reloadConfig(dir, addr, cloudPort, "new/cmd/#", "v3/data/#", 999)+"\n[spool]\nsync = \"sometimes\"\n")
	o.signal(syscall.SIGHUP)
	notify.next(10*time.Second, "RELOADING=1")
	failed := notify.next(10*time.Second, "READY=1")
	if !strings.Contains(failed, "STATUS=reload failed, running on the previous config") || !strings.Contains(failed, "spool.sync") {
		t.Errorf("READY=1 after the broken config: %q", failed)
	}
	waitLog(t, o, 10*time.Second, "reload failed", file+":", "spool.sync")
	chat("c3")
	lineOf(alice, 10*time.Second, "c3")
	pub(port, "bob", "data/3", "d3")
	if got := lineOf(cloudSub, 10*time.Second, "d3"); got[len(got)-1] != "v2/data/3 d3" {
		t.Fatalf("cloud got %q, want the rules of the last good config (v2/data/3 d3)", got)
	}

	// Both clients kept their one connection throughout.
	for _, p := range []*proc{alice, bob} {
		if n := strings.Count(p.output(), "sending CONNECT"); n != 1 {
			t.Errorf("%s sent CONNECT %d times, want once", p.name, n)
		}
	}
}

// runCmd runs a peer command to its end and returns its output.
func runCmd(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// waitLog waits until one line of outpost's log holds every one of parts.
func waitLog(t *testing.T, o *outpost, d time.Duration, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, l := range strings.Split(o.logs.String(), "\n") {
			if containsAll(l, parts) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within %v", parts, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
