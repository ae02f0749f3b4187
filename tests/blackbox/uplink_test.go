package blackbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// peer returns the path of a program the test talks to. A missing one skips
// the test, except under CI=true, where it fails: CI must run these tests.
func peer(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		// Debian installs mosquitto in /usr/sbin, which a user's PATH may lack.
		if p := filepath.Join("/usr/sbin", name); fileExists(p) {
			return p
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed (CI=true): %v", name, err)
		}
		t.Skipf("%s is not installed: %v", name, err)
	}
	return path
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// proc is a peer process whose output lines the test reads.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	lines chan string   // stdout and stderr, line by line; closed at exit
	done  chan struct{} // closed when the process has exited
	mu    sync.Mutex
	all   []string // every line so far, for failure reports
}

// startProc starts name with args and reads its output. It is killed when
// the test ends if it is still running.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startProcStdin(t, nil, name, args...)
}

// startProcStdin is startProc with the process's standard input (nil: none).
func startProcStdin(t *testing.T, stdin io.Reader, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: filepath.Base(name), lines: make(chan string, 4096), done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdin = stdin
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(p.done)
		defer close(p.lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.all = append(p.all, sc.Text())
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.all, "\n")
}

// waitLine waits up to d for an output line that contains every one of
// parts, and returns it.
func (p *proc) waitLine(d time.Duration, parts ...string) string {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s exited before printing a line with %q", p.name, parts)
			}
			if containsAll(l, parts) {
				return l
			}
		case <-deadline:
			p.t.Fatalf("%s printed no line with %q within %v", p.name, parts, d)
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, x := range parts {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// stop sends sig and waits until the process has exited.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s still running 10s after %v", p.name, sig)
	}
}

// startCloud runs Debian's mosquitto as the cloud broker on 127.0.0.1:port,
// anonymous, without persistence, and waits until it listens.
func startCloud(t *testing.T, dir string, port int) *proc {
	t.Helper()
	bin := peer(t, "mosquitto")
	conf := filepath.Join(dir, "cloud.conf")
	cfg := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type all\nmax_queued_messages 10000\n", port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, "-c", conf)
	p.waitLine(10*time.Second, "mosquitto version", "running")
	return p
}

// The durable handoff end to end: QoS 1 messages that outpost acknowledged
// while the cloud was down survive a kill -9 of outpost, and reach the cloud,
// all of them and in order, once both are back.
func TestUplinkSpoolsThroughCloudOutageAndKill9(t *testing.T) {
	subBin := peer(t, "mosquitto_sub")
	dir := t.TempDir()
	cloudPort := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	uplinkCfg := fmt.Sprintf(`
[[uplink]]
name = "site7"
url = "mqtt://127.0.0.1:%d"
client_id = "outpost-site7"
reconnect_min = "50ms"
reconnect_max = "500ms"

[[uplink.rule]]
direction = "out"
local = "sensors/#"
remote = "site7/sensors/#"
max_qos = 1
`, cloudPort)

	cloud := startCloud(t, dir, cloudPort)
	o := runOutpost(t, dir, addr, uplinkCfg)
	cloud.waitLine(15*time.Second, "New client connected", "as outpost-site7")

	// The cloud goes away; outpost keeps acknowledging into its spool.
	cloud.stop(syscall.SIGTERM)
	pub := connect311(t, o.addr, connect311bb1)
	const n = 100
	for i := 1; i <= n; i++ {
		// PUBLISH QoS 1, id i, "sensors/t" (00 09 ...), payload "m001".."m100".
		payload := fmt.Sprintf("m%03d", i)
		body := "00 09 73 65 6E 73 6F 72 73 2F 74 " + hexOf([]byte{byte(i >> 8), byte(i)}) + " " + hexOf([]byte(payload))
		pub.write(fmt.Sprintf("32 %02X %s", 2+9+2+len(payload), body))
		pub.expectExact("40 02 " + hexOf([]byte{byte(i >> 8), byte(i)}))
	}
	o.kill9()

	// The cloud comes back with a subscriber, then outpost.
	cloud = startCloud(t, dir, cloudPort)
	// stdbuf makes mosquitto_sub's stdout, a pipe here, line-buffered.
	sub := startProc(t, peer(t, "stdbuf"), "-oL", subBin, "-V", "mqttv5", "-q", "1", "-h", "127.0.0.1",
		"-p", fmt.Sprint(cloudPort), "-i", "cloud-sub", "-t", "site7/sensors/#", "-F", "MSG %t %p")
	cloud.waitLine(10*time.Second, "Sending SUBACK to cloud-sub")
	o = runOutpost(t, dir, addr, uplinkCfg)

	seen := map[string]bool{}
	var order []string
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case l, ok := <-sub.lines:
			if !ok {
				t.Fatalf("mosquitto_sub exited after %d of %d messages", len(seen), n)
			}
			msg, isMsg := strings.CutPrefix(l, "MSG ")
			if !isMsg {
				continue
			}
			topic, payload, _ := strings.Cut(msg, " ")
			if topic != "site7/sensors/t" {
				t.Fatalf("cloud got a message on %q; want site7/sensors/t", topic)
			}
			if !seen[payload] { // duplicates are allowed
				seen[payload] = true
				order = append(order, payload)
			}
		case <-deadline:
			t.Fatalf("the cloud got %d of %d messages within 30s: %v", len(seen), n, order)
		}
	}
	for i, p := range order {
		if want := fmt.Sprintf("m%03d", i+1); p != want {
			t.Fatalf("message %d to reach the cloud first was %s; want %s (order %v)", i+1, p, want, order)
		}
	}
	o.signal(syscall.SIGTERM)
	if code := o.waitExit(10 * time.Second); code != 0 {
		t.Errorf("outpost exited %d after SIGTERM; want 0", code)
	}
}
