//go:build linux

package firmware_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// bridgeWait bounds every wait of the bridge end-to-end tests. The machines
// are shared and slow: it is a deadline for "never", not a speed goal.
const bridgeWait = 60 * time.Second

// bridgePeer returns the path of a program the test needs; it skips the
// test when the program is missing, and fails it under CI=true.
func bridgePeer(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	// Debian installs mosquitto in /usr/sbin, which a user's PATH may lack.
	if p := filepath.Join("/usr/sbin", name); bridgeIsFile(p) {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is needed (CI=true): %v", name, err)
	}
	t.Skipf("%s is missing: %v", name, err)
	return ""
}

func bridgeIsFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// bridgeRoot returns the module's root folder.
func bridgeRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside a Go module")
	}
	return filepath.Dir(gomod)
}

// bridgeRun runs a build command in dir and fails the test with its output.
func bridgeRun(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// bridgeLines collects a process's output line by line.
type bridgeLines struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{} // closed at EOF
}

func newBridgeLines(r io.Reader) *bridgeLines {
	l := &bridgeLines{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			l.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return l
}

func (l *bridgeLines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *bridgeLines) String() string { return strings.Join(l.snapshot(), "\n") }

// bridgeProc is a process the test started; it is killed at the end of
// the test if it still runs, and its output is logged when the test failed.
type bridgeProc struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser // stdin
	out  *bridgeLines   // stdout
	errs *bridgeLines   // stderr
	done chan struct{}
	err  error // of Wait, set before done is closed
}

// bridgeChildEnv is the environment of the programs the tests start. The
// C programs built with AddressSanitizer (bridge-host) run without its leak
// check: LeakSanitizer stops the process with ptrace at exit, which a CI
// container may forbid, and then fails a clean run; the firmware does not
// allocate, and the host unit tests (make -C firmware test) keep the leak
// check.
func bridgeChildEnv() []string {
	opts := "detect_leaks=0"
	if o := os.Getenv("ASAN_OPTIONS"); o != "" {
		opts = o + ":" + opts
	}
	return append(os.Environ(), "ASAN_OPTIONS="+opts)
}

// bridgeCommand is exec.Command for a program that should end by itself
// (a node, mosquitto_pub): it is killed when it still runs after
// bridgeWait, or when the test ends, so that a hung peer fails the test
// instead of hanging it.
func bridgeCommand(t *testing.T, path string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bridgeWait)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = bridgeChildEnv()
	return cmd
}

func bridgeStart(t *testing.T, name string, extra []*os.File, path string, args ...string) *bridgeProc {
	t.Helper()
	p := &bridgeProc{name: name, cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.ExtraFiles = extra
	p.cmd.Env = bridgeChildEnv()
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.out, p.errs = newBridgeLines(stdout), newBridgeLines(stderr)
	go func() {
		<-p.out.done
		<-p.errs.done
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.out, name, p.errs)
		}
	})
	return p
}

// waitLine waits until the process printed a line on stdout for which ok
// is true, and returns its index.
func (p *bridgeProc) waitLine(t *testing.T, what string, ok func(string) bool) int {
	t.Helper()
	deadline := time.Now().Add(bridgeWait)
	seen := 0
	for {
		lines := p.out.snapshot()
		for ; seen < len(lines); seen++ {
			if ok(lines[seen]) {
				return seen
			}
		}
		select {
		case <-p.done:
			if len(p.out.snapshot()) == seen {
				t.Fatalf("%s exited (%v) without printing %s", p.name, p.err, what)
			}
			continue
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %s within %v", p.name, what, bridgeWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bridgeIs returns a line matcher for exactly want.
func bridgeIs(want string) func(string) bool { return func(l string) bool { return l == want } }

// wait waits for the process to exit and returns Wait's error.
func (p *bridgeProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(bridgeWait):
		t.Fatalf("%s still runs after %v", p.name, bridgeWait)
		return nil
	}
}

// stop ends the process with SIGTERM and returns Wait's error.
func (p *bridgeProc) stop(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t)
}

// bridgeOutpost builds outpost into dir, writes a config there with an
// anonymous LAN listener on a free loopback port, the data directory
// dir/data and the TOML of extra (the [mqttsn...] and [[serial]] tables),
// runs it and waits until it listens. It returns the LAN port, the data
// directory (where outpost writes status.json), and a function that stops
// outpost with SIGTERM and starts it again on the same config and data.
func bridgeOutpost(t *testing.T, root, dir, extra string) (int, string, func()) {
	t.Helper()
	bin := filepath.Join(dir, "outpost")
	bridgeRun(t, root, "go", "build", "-o", bin, "./cmd/outpost")
	port := bridgeFreePort(t)
	dataDir := filepath.Join(dir, "data")
	cfg := fmt.Sprintf(`data_dir = %q

[log]
level = "debug"

[broker]
sys_interval = "0s"

[[listener]]
name = "lan"
type = "tcp"
address = "127.0.0.1:%d"
allow_anonymous = true

`, dataDir, port) + extra
	file := filepath.Join(dir, "outpost.toml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := bridgeStart(t, "outpost", nil, bin, "run", "-c", file)
	bridgeWaitTCP(t, p, fmt.Sprintf("127.0.0.1:%d", port))
	restart := func() {
		t.Helper()
		if err := p.stop(t); err != nil {
			t.Fatalf("outpost stopped with %v", err)
		}
		p = bridgeStart(t, "outpost (restarted)", nil, bin, "run", "-c", file)
		bridgeWaitTCP(t, p, fmt.Sprintf("127.0.0.1:%d", port))
	}
	return port, dataDir, restart
}

// bridgeFreePort returns a loopback TCP port that was free a moment ago.
func bridgeFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// bridgeWaitTCP waits until addr accepts connections while p runs.
func bridgeWaitTCP(t *testing.T, p *bridgeProc, addr string) {
	t.Helper()
	deadline := time.Now().Add(bridgeWait)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before listening on %s (%v)", p.name, addr, p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections on %s: %v", p.name, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bridgeStatus is the part of outpost's status.json the tests read.
type bridgeStatus struct {
	PID    int
	Serial []struct {
		Name       string
		State      int
		FramesIn   uint64
		FramesOut  uint64
		TxFailures uint64
		Nodes      map[string]struct {
			RSSI   int16
			SNR    int8
			Frames uint64
		}
		Bridge *struct {
			Version     byte
			MaxDatagram uint16
			Firmware    string
		}
	}
}

// bridgeWaitStatus reads status.json in dataDir until ok accepts it.
func bridgeWaitStatus(t *testing.T, dataDir string, ok func(*bridgeStatus) error) {
	t.Helper()
	deadline := time.Now().Add(bridgeWait)
	var last error
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(dataDir, "status.json"))
		if err == nil {
			var st bridgeStatus
			if err = json.Unmarshal(b, &st); err == nil {
				if err = ok(&st); err == nil {
					return
				}
			}
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("status.json: %v", last)
}

// bridgeSub is a running mosquitto_sub printing "QOS TOPIC PAYLOAD".
type bridgeSub struct {
	p    *bridgeProc
	pub  string
	port int
	seen int
}

// bridgeSubs numbers the subscribers: each has a client id of its own, so
// that a second one does not take over the first one's session.
var bridgeSubs atomic.Int64

// bridgeSubscribe starts mosquitto_sub on filter at QoS 2 and waits until
// it is subscribed (it prints a probe published with mosquitto_pub).
func bridgeSubscribe(t *testing.T, port int, filter, probeTopic string) *bridgeSub {
	t.Helper()
	s := &bridgeSub{pub: bridgePeer(t, "mosquitto_pub"), port: port}
	id := fmt.Sprintf("lan-sub-%d", bridgeSubs.Add(1))
	s.p = bridgeStart(t, "mosquitto_sub "+id, nil, bridgePeer(t, "mosquitto_sub"),
		"-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "2", "-t", filter, "-F", "%q %t %p", "-i", id)
	deadline := time.Now().Add(bridgeWait)
	for {
		bridgePublish(t, s.pub, port, probeTopic, "probe", 0)
		select {
		case <-s.p.done:
			t.Fatalf("mosquitto_sub exited (%v)", s.p.err)
		default:
		}
		lines := s.p.out.snapshot()
		for i, l := range lines {
			if strings.HasSuffix(l, " "+probeTopic+" probe") {
				s.seen = i + 1
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub never got the probe on %s", probeTopic)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bridgePublish publishes one message with mosquitto_pub.
func bridgePublish(t *testing.T, pub string, port int, topic, msg string, qos int) {
	t.Helper()
	out, err := bridgeCommand(t, pub, "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", fmt.Sprint(qos),
		"-t", topic, "-m", msg).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %s: %v\n%s", topic, err, out)
	}
}

// expect waits until the subscriber printed every line of want, in any
// order, and nothing else that is not a probe.
func (s *bridgeSub) expect(t *testing.T, want ...string) {
	t.Helper()
	missing := map[string]int{}
	for _, w := range want {
		missing[w]++
	}
	deadline := time.Now().Add(bridgeWait)
	for len(missing) > 0 {
		lines := s.p.out.snapshot()
		for ; s.seen < len(lines); s.seen++ {
			l := lines[s.seen]
			if strings.HasSuffix(l, " probe") {
				continue
			}
			if missing[l] == 0 {
				t.Fatalf("mosquitto_sub got %q; still waiting for %v", l, missing)
			}
			if missing[l]--; missing[l] == 0 {
				delete(missing, l)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub is still missing %v", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
