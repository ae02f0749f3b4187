package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the outpost command built once for the tests, with a version and
// commit stamped in as the release build does.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "outpost")
	build := exec.Command("go", "build", "-o", binary,
		"-ldflags", "-X main.version=v1.2.3-test -X main.commit=abc123", ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building outpost:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// outpostCmd runs the binary to completion and returns its exit status,
// standard output and standard error.
func outpostCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("outpost %s: %v", strings.Join(args, " "), err)
		return 0, "", ""
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	code, out, _ := outpostCmd(t, "version")
	want := fmt.Sprintf("outpost v1.2.3-test (commit abc123, %s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if code != 0 || out != want {
		t.Errorf("outpost version = %d, %q; want 0, %q", code, out, want)
	}
}

func TestCheckPrintsTheEffectiveConfig(t *testing.T) {
	ref := filepath.Join("..", "..", "configs", "outpost.toml")
	code, out, errOut := outpostCmd(t, "check", "-c", ref)
	if code != 0 {
		t.Fatalf("outpost check -c %s = %d; stderr:\n%s", ref, code, errOut)
	}
	for _, want := range []string{"[broker]\nmax_connections = 10000\n", `max_packet_size = "1MiB"`, "[[listener]]\nname = \"default\"\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// The printed config is itself a valid config that prints the same.
	again := writeFile(t, "effective.toml", out)
	code, out2, errOut := outpostCmd(t, "check", "-c", again)
	if code != 0 {
		t.Fatalf("checking the printed config = %d; stderr:\n%s", code, errOut)
	}
	if strip := func(s string) string { _, body, _ := strings.Cut(s, "\n"); return body }; strip(out2) != strip(out) {
		t.Errorf("the printed config prints differently:\n%s\nvs\n%s", out2, out)
	}
}

func TestCheckReportsKeyAndLine(t *testing.T) {
	path := writeFile(t, "broken.toml", "[broker]\nmax_connections = 10\nmax_packet_sise = \"1MiB\"\n\n[[listener]]\naddress = \":99999\"\n")
	code, out, errOut := outpostCmd(t, "check", "-c", path)
	if code != 2 {
		t.Errorf("exit status %d; want 2", code)
	}
	if out != "" {
		t.Errorf("check printed a config for a broken file:\n%s", out)
	}
	for _, want := range []string{
		path + ":3: broker.max_packet_sise: unknown key",
		path + `:6: listener[0].address: port "99999" is out of range`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	cfg := writeFile(t, "ok.toml", "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: outpost <command>"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"check"}, 2, "-c FILE is required"},
		{[]string{"check", "-x"}, 2, "flag provided but not defined: -x"},
		{[]string{"check", "-c", cfg, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", "-c", filepath.Join(t.TempDir(), "missing.toml")}, 2, "no such file or directory"},
		{[]string{"version", "now"}, 2, `unexpected argument "now"`},
		{[]string{"run", "-h"}, 0, "their wills are published"},
		{[]string{"help"}, 0, "Usage: outpost <command>"},
	} {
		code, out, errOut := outpostCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("outpost %q = %d, %q; want %d and a message with %q", tc.args, code, out+errOut, tc.code, tc.want)
		}
	}
}

// startRun starts `outpost run -c cfg` and waits until it logs that the
// gateway is ready. It returns the process and the channel of its log lines
// (closed at exit).
func startRun(t *testing.T, cfg string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(binary, "run", "-c", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // harmless once it has exited
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("outpost run exited before it was ready")
			}
			t.Log(l)
			if strings.Contains(l, `msg="gateway ready"`) {
				return cmd, lines
			}
		case <-deadline:
			t.Fatal("outpost run did not log \"gateway ready\" within 10s")
		}
	}
}

// waitExit reads the remaining log lines and waits for the process to exit,
// with a deadline; it returns the exit status and the lines.
func waitExit(t *testing.T, cmd *exec.Cmd, lines <-chan string, within time.Duration) (int, string) {
	t.Helper()
	var logs strings.Builder
	deadline := time.After(within)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			t.Log(l)
			logs.WriteString(l + "\n")
		case <-deadline:
			t.Fatalf("outpost run did not exit within %v", within)
		}
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, logs.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), logs.String()
	default:
		t.Fatal(err)
		return 0, ""
	}
}

func TestRunStopsGracefullyOnSignal(t *testing.T) {
	cfg := writeFile(t, "run.toml", `
data_dir = "data"
[[listener]]
name = "test"
address = "127.0.0.1:0"
allow_anonymous = true
[[mqttsn.udp]]
address = "127.0.0.1:0"
`)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, lines := startRun(t, cfg)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code, logs := waitExit(t, cmd, lines, 5*time.Second)
			if code != 0 {
				t.Errorf("exit status %d; want 0", code)
			}
			if !strings.Contains(logs, `msg="outpost stopped"`) {
				t.Errorf("no \"outpost stopped\" in the logs:\n%s", logs)
			}
		})
	}
}

// cmd/outpost imports nothing of the module but gateway (ARCHITECTURE.md).
func TestImportsOnlyGateway(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && imp != "github.com/outpost-gw/outpost/gateway" {
			t.Errorf("cmd/outpost imports %s; it may import only the standard library and gateway", imp)
		}
	}
}

func TestRunFailsOnAnAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := writeFile(t, "busy.toml", fmt.Sprintf("[[listener]]\naddress = %q\n", ln.Addr().String()))
	code, _, errOut := outpostCmd(t, "run", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "address already in use") {
		t.Errorf("outpost run on a busy address = %d; want 1 and the bind error in:\n%s", code, errOut)
	}
}

// MQTT-SN on a busy UDP port stops the start, naming the transport.
func TestRunFailsOnABusyMQTTSNPort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := writeFile(t, "busy-sn.toml", fmt.Sprintf(`data_dir = "data"
[[listener]]
address = "127.0.0.1:0"
[[mqttsn.udp]]
name = "sensors"
address = %q
`, pc.LocalAddr().String()))
	code, _, errOut := outpostCmd(t, "run", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "address already in use") || !strings.Contains(errOut, `transport \"sensors\"`) {
		t.Errorf("outpost run on a busy MQTT-SN port = %d; want 1 and the bind error of \"sensors\" in:\n%s", code, errOut)
	}
}

func TestAwaitStop(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	sig := func(n int) <-chan os.Signal {
		ch := make(chan os.Signal, n)
		for range n {
			ch <- syscall.SIGTERM
		}
		return ch
	}
	closed := make(chan time.Time)
	close(closed)
	result := func(err error) <-chan error {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	for _, tc := range []struct {
		name    string
		done    <-chan error
		sigs    <-chan os.Signal
		timeout <-chan time.Time
		want    int
	}{
		{"clean stop", result(nil), sig(1), nil, exitOK},
		{"stop with errors", result(errors.New("flush failed")), sig(1), nil, exitFailure},
		{"second signal", nil, sig(2), nil, exitFailure},
		{"timeout", nil, sig(1), closed, exitFailure},
	} {
		if got := awaitStop(log, tc.done, tc.sigs, tc.timeout); got != tc.want {
			t.Errorf("%s: awaitStop = %d; want %d", tc.name, got, tc.want)
		}
	}

	// The first signal, already seen, does not force an exit: the gateway
	// stops after awaitStop has taken it.
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGINT
	done := make(chan error, 1)
	go func() {
		for deadline := time.Now().Add(5 * time.Second); len(sigs) > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		done <- nil
	}()
	if got := awaitStop(log, done, sigs, time.After(10*time.Second)); got != exitOK {
		t.Errorf("one signal, then a clean stop: awaitStop = %d; want %d", got, exitOK)
	}
}
