package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a broker process (outpost or mosquitto) started by the
// benchmark. Its output is read line by line: the time of the first line
// containing each watched string is kept, and the last lines for errors.
type proc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time
	done  chan struct{}

	mu    sync.Mutex
	seen  map[string]time.Time
	watch []string
	tail  []string
}

func startProc(name string, watch []string, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{}), seen: make(map[string]time.Time), watch: watch}
	p.cmd = exec.Command(bin, args...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			now := time.Now()
			line := sc.Text()
			p.mu.Lock()
			for _, w := range p.watch {
				if _, ok := p.seen[w]; !ok && strings.Contains(line, w) {
					p.seen[w] = now
				}
			}
			p.tail = append(p.tail, line)
			if len(p.tail) > 40 {
				p.tail = p.tail[len(p.tail)-40:]
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// when returns when a watched string was first seen.
func (p *proc) when(w string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.seen[w]
	return t, ok
}

// waitSeen waits up to d for a watched string.
func (p *proc) waitSeen(w string, d time.Duration) (time.Time, error) {
	deadline := time.Now().Add(d)
	for {
		if t, ok := p.when(w); ok {
			return t, nil
		}
		select {
		case <-p.done:
			return time.Time{}, fmt.Errorf("%s exited before printing %q:\n%s", p.name, w, p.lastLines())
		default:
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s printed no %q within %v:\n%s", p.name, w, d, p.lastLines())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (p *proc) lastLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "  " + strings.Join(p.tail, "\n  ")
}

// stop sends sig and waits up to 60s for the exit; it returns how long
// the process took to exit.
func (p *proc) stop(sig syscall.Signal) time.Duration {
	start := time.Now()
	select {
	case <-p.done:
		return 0
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return time.Since(start)
}

// mem is a process's memory from /proc/PID/status, in bytes.
type mem struct {
	rss, peak  int64 // VmRSS, VmHWM
	anon, file int64 // RssAnon (heap, stacks), RssFile (mapped files: badger's tables and logs)
}

func memory(pid int) mem {
	var m mem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = kb << 10
		case "VmHWM:":
			m.peak = kb << 10
		case "RssAnon:":
			m.anon = kb << 10
		case "RssFile:":
			m.file = kb << 10
		}
	}
	return m
}

// diskUsage returns the bytes the files under dir take on disk (their
// blocks: badger's preallocated, sparse files count for what was written)
// and their apparent size.
func diskUsage(dir string) (allocated, apparent int64) {
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
		return nil
	})
	return allocated, apparent
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits up to d until addr accepts connections.
func waitListening(addr string, d time.Duration) (time.Time, error) {
	deadline := time.Now().Add(d)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s does not accept connections after %v: %w", addr, d, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// --- outpost -----------------------------------------------------------------

// outpostConf is the config of an outpost under test: one listener, one
// uplink whose out-rule spools sensors/# for the cloud, no size limits.
type outpostConf struct {
	dir       string // config and data
	port      int
	cloudPort int
	sync      string // "always" or "never"
	window    int
}

func (c outpostConf) addr() string    { return fmt.Sprintf("127.0.0.1:%d", c.port) }
func (c outpostConf) dataDir() string { return filepath.Join(c.dir, "data") }

func (c outpostConf) write() (string, error) {
	cfg := fmt.Sprintf(`data_dir = %q

[log]
level = "info"

[spool]
sync = %q

[broker]
sys_interval = "0s"

[[listener]]
name = "bench"
type = "tcp"
address = %q
allow_anonymous = true

[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:%d"
client_id = "outpost-cloud"
reconnect_min = "50ms"
reconnect_max = "250ms"
window = %d
max_bytes = 0

[[uplink.rule]]
direction = "out"
local = "sensors/#"
remote = "site7/sensors/#"
max_qos = 1
`, c.dataDir(), c.sync, c.addr(), c.cloudPort, c.window)
	file := filepath.Join(c.dir, "outpost.toml")
	return file, os.WriteFile(file, []byte(cfg), 0o600)
}

// readyLine is what outpost logs once every component is ready.
const readyLine = `msg="gateway ready"`

// startOutpost starts outpost and waits until it is ready; ready is the
// time from the start of the process to the "gateway ready" line.
func startOutpost(bin string, c outpostConf) (p *proc, ready time.Duration, err error) {
	file, err := c.write()
	if err != nil {
		return nil, 0, err
	}
	p, err = startProc("outpost", []string{readyLine}, bin, "run", "-c", file)
	if err != nil {
		return nil, 0, err
	}
	t, err := p.waitSeen(readyLine, 120*time.Second)
	if err != nil {
		p.stop(syscall.SIGKILL)
		return nil, 0, err
	}
	if _, err := waitListening(c.addr(), 10*time.Second); err != nil {
		p.stop(syscall.SIGKILL)
		return nil, 0, err
	}
	return p, t.Sub(p.start), nil
}

// spooledDepth reads the depth of the uplink's queue from the status file
// of a running outpost, waiting up to d for a status written after since.
func spooledDepth(dataDir string, since time.Time, d time.Duration) (int64, error) {
	deadline := time.Now().Add(d)
	for {
		depth, at, err := readDepth(dataDir)
		if err == nil && at.After(since) {
			return depth, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("no status written since")
			}
			return 0, fmt.Errorf("status file: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readDepth(dataDir string) (int64, time.Time, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "status.json"))
	if err != nil {
		return 0, time.Time{}, err
	}
	var st struct {
		Time  time.Time
		Spool struct {
			Queues []struct {
				Name  string
				Depth int64
			}
		}
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, time.Time{}, err
	}
	for _, q := range st.Spool.Queues {
		if q.Name == "uplink.cloud.p0" {
			return q.Depth, st.Time, nil
		}
	}
	return 0, st.Time, errors.New("no queue uplink.cloud.p0")
}

// --- mosquitto ---------------------------------------------------------------

// mosquittoConf is a mosquitto under test: the cloud, or an edge broker
// that bridges sensors/# to the cloud (persistence on, queues unbounded).
type mosquittoConf struct {
	dir       string
	port      int
	bridgeTo  int // cloud port, for an edge broker; 0 for the cloud
	inflight  int // max_inflight_messages; 0: mosquitto's default (20)
	persisted bool
}

func (c mosquittoConf) addr() string { return fmt.Sprintf("127.0.0.1:%d", c.port) }

// bridgeID is the client id of mosquitto's bridge at the cloud.
const bridgeID = "mosq-bridge"

func startMosquitto(bin string, c mosquittoConf) (*proc, error) {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n", c.port)
	fmt.Fprintf(&b, "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	if c.persisted {
		fmt.Fprintf(&b, "persistence true\npersistence_location %s/\n", c.dir)
	} else {
		b.WriteString("persistence false\n")
	}
	if c.inflight > 0 {
		fmt.Fprintf(&b, "max_inflight_messages %d\n", c.inflight)
	}
	if os.Geteuid() == 0 {
		b.WriteString("user root\n")
	}
	if c.bridgeTo > 0 {
		fmt.Fprintf(&b, "\nconnection cloud\naddress 127.0.0.1:%d\nclientid %s\ncleansession false\n", c.bridgeTo, bridgeID)
		b.WriteString("restart_timeout 1 1\ntopic # out 1 sensors/ site7/sensors/\n")
	}
	file := filepath.Join(c.dir, "mosquitto.conf")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc("mosquitto", []string{" running", "as " + bridgeID, "as outpost-cloud"}, bin, "-c", file)
	if err != nil {
		return nil, err
	}
	if _, err := p.waitSeen(" running", 10*time.Second); err != nil {
		p.stop(syscall.SIGKILL)
		return nil, err
	}
	if _, err := waitListening(c.addr(), 10*time.Second); err != nil {
		p.stop(syscall.SIGKILL)
		return nil, err
	}
	return p, nil
}
