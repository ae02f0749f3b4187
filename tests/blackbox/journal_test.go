package blackbox

import (
	"bytes"
	"encoding/binary"
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

// parseJournal decodes one datagram of journald's native protocol: lines
// KEY=value, or KEY, a newline, a 64-bit little-endian length and that
// many bytes of value, then a newline.
func parseJournal(b []byte) (map[string]string, error) {
	fields := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("unterminated field %q", b)
		}
		line := b[:nl]
		b = b[nl+1:]
		if k, v, ok := bytes.Cut(line, []byte("=")); ok {
			fields[string(k)] = string(v)
			continue
		}
		if len(b) < 8 {
			return nil, fmt.Errorf("field %s without its length", line)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			return nil, fmt.Errorf("field %s: bad length %d", line, n)
		}
		fields[string(line)] = string(b[:n])
		b = b[n+1:]
	}
	return fields, nil
}

// Under systemd (the standard error is the stream JOURNAL_STREAM names),
// outpost sends its log to journald as structured entries: a binary built
// with go-systemd's socket path pointed at a socket of the test shows
// MESSAGE, PRIORITY from the level, SYSLOG_IDENTIFIER and the attributes
// as uppercase fields, and writes nothing to the standard error.
func TestLogsGoToJournaldUnderSystemd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "journal.sock")
	journald, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer journald.Close()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "outpost")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X github.com/coreos/go-systemd/v22/journal.journalSocket="+sock, "./cmd/outpost")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	file := filepath.Join(dir, "outpost.toml")
	cfg := fmt.Sprintf("data_dir = %q\n[log]\nlevel = \"debug\"\n[broker]\nsys_interval = \"0s\"\n[[listener]]\nname = \"lan\"\naddress = %q\nallow_anonymous = true\n[mqttsn]\nenabled = false\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	st, err := stderr.Stat()
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	cmd := exec.Command(bin, "run", "-c", file)
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", sys.Dev, sys.Ino), "NOTIFY_SOCKET=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("outpost exited with %v", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("outpost still running 15s after SIGTERM")
		}
	}()

	// journald reads every datagram until the end, as the real one does:
	// a unix datagram socket that nobody reads blocks its senders.
	type entry struct {
		fields map[string]string
		err    error
	}
	entries := make(chan entry, 4096)
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, err := journald.Read(buf)
			if err != nil {
				close(entries)
				return
			}
			f, err := parseJournal(buf[:n])
			if err != nil {
				err = fmt.Errorf("journal datagram %q: %w", buf[:n], err)
			}
			select {
			case entries <- entry{f, err}:
			default: // the test no longer looks
			}
		}
	}()
	// next returns the next entry whose MESSAGE is msg.
	next := func(msg string) map[string]string {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case e, ok := <-entries:
				if !ok {
					t.Fatalf("journal socket closed before %q", msg)
				}
				if e.err != nil {
					t.Fatal(e.err)
				}
				if e.fields["MESSAGE"] == msg {
					return e.fields
				}
			case <-timeout:
				t.Fatalf("no journal entry %q within 20s", msg)
			}
		}
	}
	start := next("outpost starting")
	if start["PRIORITY"] != "6" || start["SYSLOG_IDENTIFIER"] != "outpost" || start["CONFIG"] != file || start["JOURNALD"] != "true" {
		t.Errorf("start entry %v", start)
	}
	next("gateway ready")
	c := connect311(t, addr, connect311bb1)
	conn := next("client connected")
	for k, v := range map[string]string{"PRIORITY": "7", "COMPONENT": "broker", "CLIENT_ID": "bb1", "LISTENER": "lan", "VERSION": "3.1.1"} {
		if conn[k] != v {
			t.Errorf("client entry %s = %q, want %q (entry %v)", k, conn[k], v, conn)
		}
	}
	if !strings.HasPrefix(conn["REMOTE"], "127.0.0.1:") {
		t.Errorf("client entry REMOTE = %q", conn["REMOTE"])
	}
	c.write("E0 00") // DISCONNECT
	if out, err := os.ReadFile(stderr.Name()); err != nil || len(out) != 0 {
		t.Errorf("standard error %q (%v), want nothing: the journal took every entry", out, err)
	}
}
