package main

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

// peer returns the path of a mosquitto program. A missing one skips the
// test, except under CI=true, where it fails: CI must run these tests.
func peer(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/usr/bin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is needed (CI=true: apt-get install mosquitto mosquitto-clients)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// strictCloud runs mosquitto on a free loopback port with an ACL that lets
// anonymous clients publish to "allowed/#" only, so that it refuses other
// topics with PUBACK 0x87 (not authorized). It returns the port.
func strictCloud(t *testing.T) int {
	t.Helper()
	bin := peer(t, "mosquitto")
	dir := t.TempDir()
	port := freePort(t)
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("topic readwrite allowed/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nacl_file %s\npersistence false\n", port, acl)
	if os.Geteuid() == 0 {
		conf += "user root\n" // else mosquitto drops to "mosquitto", which cannot read t.TempDir()
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not accept connections: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publishQoS1 publishes with mosquitto_pub at QoS 1 (MQTT 5), which waits
// for the PUBACK: the gateway has the message in its spool when it returns.
func publishQoS1(t *testing.T, port int, topic, payload string) {
	t.Helper()
	out, err := exec.Command(peer(t, "mosquitto_pub"), "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-V", "mqttv5",
		"-q", "1", "-i", "lan-pub", "-t", topic, "-m", payload).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %s: %v\n%s", topic, err, out)
	}
}

// queueLine returns the fields of the line of queue name in the output of
// `outpost spool`, or nil.
func queueLine(out, name string) []string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}

// wantQueue checks a queue line: uplink, class, depth and sequence range.
func wantQueue(t *testing.T, out, name, uplink, class, depth, seqs string) {
	t.Helper()
	f := queueLine(out, name)
	// QUEUE UPLINK CLASS... DEPTH BYTES(2 fields) OLDEST SEQUENCE
	if len(f) < 7 {
		t.Errorf("no line for %s in:\n%s", name, out)
		return
	}
	got := strings.Join([]string{f[1], strings.Join(f[2:len(f)-5], " "), f[len(f)-5], f[len(f)-1]}, "|")
	if want := strings.Join([]string{uplink, class, depth, seqs}, "|"); got != want {
		t.Errorf("queue %s: %s; want %s, in:\n%s", name, got, want, out)
	}
}

// `outpost spool` on a gateway's data directory: while it runs, the status
// it writes; once stopped, the spool read from disk, the same backlog; after
// kill -9, only with -recover. A cloud refusal shows in the quarantine with
// -v, never with its payload.
func TestSpoolCommand(t *testing.T) {
	strict := strictCloud(t)
	lan := freePort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "outpost.toml")
	err := os.WriteFile(cfg, fmt.Appendf(nil, `
data_dir = "data"
[[listener]]
name = "lan"
address = "127.0.0.1:%d"
allow_anonymous = true
[[mqttsn.udp]]
address = "127.0.0.1:0"

# Unreachable: what it exports waits in the spool.
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1"
reconnect_min = "1h"
reconnect_max = "1h"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
[[uplink.rule]]
direction = "out"
local = "alarms/#"
priority = 9

# Refuses what is not under allowed/.
[[uplink]]
name = "strict"
url = "mqtt://127.0.0.1:%d"
[[uplink.rule]]
direction = "out"
local = "denied/#"
`, lan, strict), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	code, _, errOut := outpostCmd(t, "spool", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "no spool in") {
		t.Errorf("outpost spool before any run = %d; stderr:\n%s", code, errOut)
	}

	cmd, lines := startRun(t, cfg)
	for i := range 3 {
		publishQoS1(t, lan, "sensors/room1", fmt.Sprint(i))
	}
	publishQoS1(t, lan, "alarms/fire", "smoke")
	publishQoS1(t, lan, "alarms/door", "open")
	publishQoS1(t, lan, "denied/x", "TOPSECRET")

	// The running gateway writes its status every few seconds.
	var out string
	deadline := time.Now().Add(20 * time.Second)
	for {
		var errOut string
		code, out, errOut = outpostCmd(t, "spool", "-c", cfg, "-v")
		if f := queueLine(out, "uplink.strict.quarantine"); code == 0 && len(f) > 3 && f[3] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outpost spool on the running gateway = %d, never showed the backlog and the quarantine:\n%s%s", code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("running:\n%s", out)
	for _, want := range []string{
		"in use by a running gateway (pid ",
		"Uplink cloud: offline since",
		"waiting 5 ",
		"Uplink strict: connected since",
		"Quarantine of uplink strict: 1 message (",
		"denied/x",
		"0x87",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("running: no %q in:\n%s", want, out)
		}
	}
	wantQueue(t, out, "uplink.cloud.p9", "cloud", "priority 9", "2", "1-2")
	wantQueue(t, out, "uplink.cloud.p0", "cloud", "priority 0", "3", "1-3")
	if strings.Contains(out, "TOPSECRET") {
		t.Errorf("running: the output shows a payload:\n%s", out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, logs := waitExit(t, cmd, lines, 10*time.Second); code != 0 {
		t.Fatalf("outpost run exited %d:\n%s", code, logs)
	}

	for _, args := range [][]string{{"-c", cfg, "-v"}, {"-data", filepath.Join(dir, "data"), "-v", "-n", "5"}} {
		code, out, errOut := outpostCmd(t, append([]string{"spool"}, args...)...)
		if code != 0 {
			t.Fatalf("outpost spool %v on the stopped gateway = %d:\n%s", args, code, errOut)
		}
		t.Logf("stopped:\n%s", out)
		wantQueue(t, out, "uplink.cloud.p9", "cloud", "priority 9", "2", "1-2")
		wantQueue(t, out, "uplink.cloud.p0", "cloud", "priority 0", "3", "1-3")
		wantQueue(t, out, "uplink.strict.quarantine", "strict", "quarantine", "1", "1-1")
		for _, want := range []string{"no gateway runs on it; read from disk", "denied/x", "0x87"} {
			if !strings.Contains(out, want) {
				t.Errorf("stopped: no %q in:\n%s", want, out)
			}
		}
		if strings.Contains(out, "TOPSECRET") || strings.Contains(out, "Uplink cloud") {
			t.Errorf("stopped: a payload, or uplink state of a stopped gateway:\n%s", out)
		}
	}
	// Without -v the quarantine is counted, not listed.
	if _, out, _ := outpostCmd(t, "spool", "-c", cfg); strings.Contains(out, "denied/x") || !strings.Contains(out, "-v lists them") {
		t.Errorf("without -v:\n%s", out)
	}

	// Killed: the spool needs its logs replayed, which -recover does.
	cmd, lines = startRun(t, cfg)
	publishQoS1(t, lan, "sensors/room1", "after restart")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, lines, 10*time.Second)
	code, _, errOut = outpostCmd(t, "spool", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "not closed cleanly") || !strings.Contains(errOut, "-recover") {
		t.Errorf("outpost spool after kill -9 = %d; want 1 and advice to use -recover:\n%s", code, errOut)
	}
	code, out, errOut = outpostCmd(t, "spool", "-c", cfg, "-recover")
	if code != 0 || !strings.Contains(out, "after replaying what a crash left") {
		t.Fatalf("outpost spool -recover = %d:\n%s%s", code, out, errOut)
	}
	wantQueue(t, out, "uplink.cloud.p0", "cloud", "priority 0", "4", "1-4")
}

func TestSpoolUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"spool", "-n", "0"}, 2, "-n must be at least 1"},
		{[]string{"spool", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"spool", "-c", filepath.Join(t.TempDir(), "missing.toml")}, 2, "no such file or directory"},
		{[]string{"spool", "-data", t.TempDir()}, 1, "no spool in"},
		{[]string{"spool", "-h"}, 0, "never the payload"},
	} {
		code, out, errOut := outpostCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("outpost %q = %d, %q; want %d and a message with %q", tc.args, code, out+errOut, tc.code, tc.want)
		}
	}
}
