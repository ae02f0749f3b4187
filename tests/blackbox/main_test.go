// Package blackbox runs the real outpost binary and speaks raw MQTT bytes to
// it, written by hand in hex: no part of the module's own code is used on the
// client side, so an encoder bug and the matching decoder bug cannot cancel
// out.
package blackbox

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// outpostBin is the binary built once by TestMain.
var outpostBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outpost-blackbox-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "blackbox:", err)
		return 1
	}
	outpostBin = filepath.Join(dir, "outpost")
	build := exec.Command("go", "build", "-o", outpostBin, "./cmd/outpost")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "blackbox: go build ./cmd/outpost: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot returns the folder that holds go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// lockedBuffer collects the process's log output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// outpost is one running outpost process.
type outpost struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	logs *lockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, set before done is closed
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startOutpost writes a config with one anonymous tcp listener on a free
// loopback port, runs `outpost run -c FILE`, and waits until the port
// accepts connections. The process is killed when the test ends if it is
// still running.
func startOutpost(t *testing.T) *outpost {
	t.Helper()
	return runOutpost(t, t.TempDir(), fmt.Sprintf("127.0.0.1:%d", freePort(t)), "")
}

// runOutpost is startOutpost with the folder of the config and of the data
// (dir/data), the listener's address, and more TOML appended to the config
// (tables after the [[listener]]). Running it again with the same dir and
// addr restarts outpost on the same data.
func runOutpost(t *testing.T, dir, addr, extra string) *outpost {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir = %q

[log]
level = "debug"

[broker]
max_packet_size = "1MiB"
sys_interval = "0s"

[[listener]]
name = "blackbox"
type = "tcp"
address = %q
allow_anonymous = true

# MQTT-SN on a free port, not the default :1885 another outpost may hold.
[[mqttsn.udp]]
address = "127.0.0.1:0"
`, filepath.Join(dir, "data"), addr) + extra
	file := filepath.Join(dir, "outpost.toml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return execOutpost(t, file, addr)
}

// execOutpost runs `outpost run -c file`, with env added to the test's
// environment, and waits until addr accepts connections.
func execOutpost(t *testing.T, file, addr string, env ...string) *outpost {
	t.Helper()
	o := &outpost{t: t, addr: addr, logs: &lockedBuffer{}, done: make(chan struct{})}
	o.cmd = exec.Command(outpostBin, "run", "-c", file)
	if len(env) > 0 {
		o.cmd.Env = append(os.Environ(), env...)
	}
	o.cmd.Stdout = o.logs
	o.cmd.Stderr = o.logs
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		o.err = o.cmd.Wait()
		close(o.done)
	}()
	t.Cleanup(func() {
		select {
		case <-o.done:
		default:
			_ = o.cmd.Process.Kill()
			<-o.done
		}
		if t.Failed() {
			t.Logf("outpost output:\n%s", o.logs.String())
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return o
		}
		select {
		case <-o.done:
			t.Fatalf("outpost exited before listening (%v)", o.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("outpost does not accept connections on %s after 15s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig to the process.
func (o *outpost) signal(sig os.Signal) {
	o.t.Helper()
	if err := o.cmd.Process.Signal(sig); err != nil {
		o.t.Fatalf("signal %v: %v", sig, err)
	}
}

// kill9 kills the process with SIGKILL, as a crash or the OOM killer would,
// and waits until it has exited.
func (o *outpost) kill9() {
	o.t.Helper()
	o.signal(syscall.SIGKILL)
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		o.t.Fatal("outpost still running 10s after SIGKILL")
	}
}

// waitExit waits up to d for the process to exit and returns its exit code.
func (o *outpost) waitExit(d time.Duration) int {
	o.t.Helper()
	select {
	case <-o.done:
	case <-time.After(d):
		o.t.Fatalf("outpost still running %v after the signal", d)
	}
	if o.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(o.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.t.Fatalf("outpost was killed by %v", ws.Signal())
		}
		return ee.ExitCode()
	}
	o.t.Fatalf("waiting for outpost: %v", o.err)
	return -1
}

// --- raw MQTT --------------------------------------------------------------

// hx decodes hex written with spaces between the bytes.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// rawConn is a TCP connection that writes and reads MQTT bytes as they are.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// write sends the bytes written in hex.
func (c *rawConn) write(hexs string) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(hx(hexs)); err != nil {
		c.t.Fatalf("write %s: %v", hexs, err)
	}
}

// readPacket reads one whole packet within d and returns its first byte
// (type and flags), its body, and all its bytes.
func (c *rawConn) readPacket(d time.Duration) (first byte, body, all []byte, err error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	first, err = c.br.ReadByte()
	if err != nil {
		return 0, nil, nil, err
	}
	all = []byte{first}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, all, fmt.Errorf("remaining length longer than 4 bytes: % x", all)
		}
		b, err := c.br.ReadByte()
		if err != nil {
			return 0, nil, all, err
		}
		all = append(all, b)
		n += int(b&0x7f) * mult
		mult <<= 7
		if b&0x80 == 0 {
			break
		}
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, nil, all, err
	}
	return first, body, append(all, body...), nil
}

// expectPacket reads one packet and fails the test on an error.
func (c *rawConn) expectPacket() (first byte, body, all []byte) {
	c.t.Helper()
	first, body, all, err := c.readPacket(5 * time.Second)
	if err != nil {
		c.t.Fatalf("reading a packet: %v (bytes so far: % x)", err, all)
	}
	return first, body, all
}

// expectExact reads one packet and requires exactly these bytes.
func (c *rawConn) expectExact(hexs string) {
	c.t.Helper()
	_, _, all := c.expectPacket()
	if want := hx(hexs); !bytes.Equal(all, want) {
		c.t.Fatalf("got % X, want % X", all, want)
	}
}

// expectClosed requires the server to close the connection within d with
// no further bytes.
func (c *rawConn) expectClosed(d time.Duration) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	rest, err := io.ReadAll(c.br)
	if len(rest) > 0 {
		c.t.Fatalf("expected the connection to close, got % X", rest)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open after %v", d)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) { // a reset counts as closed
			c.t.Fatalf("expected the connection to close, got %v", err)
		}
	}
}

// expectQuiet requires that nothing arrives within d.
func (c *rawConn) expectQuiet(d time.Duration) {
	c.t.Helper()
	_, _, all, err := c.readPacket(d)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() || len(all) > 0 {
		c.t.Fatalf("expected nothing, got % X (%v)", all, err)
	}
}

// expectDisconnect5 reads a 5.0 DISCONNECT and returns its reason code.
func (c *rawConn) expectDisconnect5() byte {
	c.t.Helper()
	first, body, all := c.expectPacket()
	if first != 0xE0 {
		c.t.Fatalf("got % X, want a DISCONNECT (E0 ...)", all)
	}
	if len(body) == 0 {
		return 0 // §3.14.2.1: no reason code means 0x00
	}
	if len(body) > 1 {
		props, ok := parseProps(body[1:])
		if !ok || props == nil {
			c.t.Fatalf("DISCONNECT with malformed properties: % X", all)
		}
	}
	return body[0]
}

// prop is one MQTT 5.0 property as read from the wire.
type prop struct {
	id   byte
	num  uint32   // byte, two byte and four byte integers, variable byte integers
	strs [][]byte // a UTF-8 string or binary data; a user property's name and value
}

// propKinds gives the wire type of every MQTT 5.0 property (§2.2.2.2):
// 1, 2, 4 byte integer, 'v' variable byte integer, 's' string or binary,
// 'p' string pair.
var propKinds = map[byte]byte{
	0x01: 1, 0x02: 4, 0x03: 's', 0x08: 's', 0x09: 's', 0x0B: 'v', 0x11: 4, 0x12: 's', 0x13: 2,
	0x15: 's', 0x16: 's', 0x17: 1, 0x18: 4, 0x19: 1, 0x1A: 's', 0x1C: 's', 0x1F: 's', 0x21: 2,
	0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1, 0x26: 'p', 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1,
}

// parseProps parses a property length and the properties after it, which
// must fill b exactly. It returns the properties by identifier.
func parseProps(b []byte) (map[byte][]prop, bool) {
	n, used, ok := varint(b)
	if !ok || used+n != len(b) {
		return nil, false
	}
	b = b[used:]
	out := map[byte][]prop{}
	for len(b) > 0 {
		id := b[0]
		b = b[1:]
		p := prop{id: id}
		switch propKinds[id] {
		case 1:
			if len(b) < 1 {
				return nil, false
			}
			p.num, b = uint32(b[0]), b[1:]
		case 2:
			if len(b) < 2 {
				return nil, false
			}
			p.num, b = uint32(b[0])<<8|uint32(b[1]), b[2:]
		case 4:
			if len(b) < 4 {
				return nil, false
			}
			p.num, b = uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]), b[4:]
		case 'v':
			x, u, ok := varint(b)
			if !ok {
				return nil, false
			}
			p.num, b = uint32(x), b[u:]
		case 's', 'p':
			count := 1
			if propKinds[id] == 'p' {
				count = 2
			}
			for range count {
				if len(b) < 2 {
					return nil, false
				}
				l := int(b[0])<<8 | int(b[1])
				if len(b) < 2+l {
					return nil, false
				}
				p.strs = append(p.strs, b[2:2+l])
				b = b[2+l:]
			}
		default:
			return nil, false
		}
		out[id] = append(out[id], p)
	}
	return out, true
}

// varint decodes a variable byte integer (minimal, at most 4 bytes).
func varint(b []byte) (x, n int, ok bool) {
	mult := 1
	for i := 0; i < 4 && i < len(b); i++ {
		x += int(b[i]&0x7f) * mult
		mult <<= 7
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0, false
			}
			return x, i + 1, true
		}
	}
	return 0, 0, false
}
