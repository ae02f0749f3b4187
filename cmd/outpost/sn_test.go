package main

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// started is a command running in the background; wait returns its exit
// status and output.
type started struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
}

// syncBuffer is a bytes.Buffer that the test reads while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitLine polls s's output until it holds line, for up to 10s.
func (s *started) waitLine(t *testing.T, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stdout.String(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("%v printed no %q within 10s; stdout:\n%s\nstderr:\n%s", s.cmd.Args, line, s.stdout.String(), s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends s with SIGTERM and returns its exit status.
func (s *started) stop(t *testing.T) int {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	return s.wait(t, 10*time.Second)
}

func start(t *testing.T, name string, args ...string) *started {
	t.Helper()
	s := &started{cmd: exec.Command(name, args...)}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill() })
	return s
}

func (s *started) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(within):
		s.cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not exit within %v; stdout:\n%s\nstderr:\n%s", s.cmd.Args, within, &s.stdout, &s.stderr)
	}
	return 0
}

// waitSubscribed waits until subscriber s gets messages on topic: it
// publishes probes over MQTT until s prints one.
func waitSubscribed(t *testing.T, mqttAddr, topic string, s *started) {
	waitSubscribedAs(t, mqttAddr, topic, topic, s)
}

// waitSubscribedAs is waitSubscribed for a subscriber that prints topic as
// printed (a pre-defined topic id).
func waitSubscribedAs(t *testing.T, mqttAddr, topic, printed string, s *started) {
	t.Helper()
	host, port, _ := net.SplitHostPort(mqttAddr)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stdout.String(), printed+" probe\n") {
		if time.Now().After(deadline) {
			t.Fatalf("subscriber %v saw no probe within 10s; stderr:\n%s", s.cmd.Args, &s.stderr)
		}
		if out, err := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-t", topic, "-m", "probe").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond) // pacing of the probes, not a wait for a condition
	}
}

func TestSNPubSub(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Fatal("mosquitto_sub is needed (Debian package mosquitto-clients)")
	}
	mqttAddr, snAddr := freeAddr(t, "tcp"), freeAddr(t, "udp")
	cfg := writeFile(t, "sn.toml", fmt.Sprintf(`data_dir = %q
[[listener]]
address = %q
allow_anonymous = true
[mqttsn]
predefined = { 7 = "pre/seven" }
[[mqttsn.udp]]
address = %q
allow_qos_minus1 = true
`, t.TempDir(), mqttAddr, snAddr))
	run, lines := startRun(t, cfg)
	defer func() {
		run.Process.Signal(syscall.SIGTERM)
		if code, _ := waitExit(t, run, lines, 10*time.Second); code != 0 {
			t.Errorf("outpost run exit status %d; want 0", code)
		}
	}()
	go func() { // drain the log so that the gateway never blocks on it
		for range lines {
		}
	}()
	host, port, _ := net.SplitHostPort(mqttAddr)

	t.Run("pub to sn sub and mosquitto_sub", func(t *testing.T) {
		for _, q := range []string{"0", "1", "2"} {
			topic := "pub/q" + q
			sub := start(t, binary, "sn", "sub", "-gw", snAddr, "-t", topic, "-q", q, "-W", "60s")
			mq := start(t, "mosquitto_sub", "-h", host, "-p", port, "-t", topic, "-q", q, "-v")
			waitSubscribed(t, mqttAddr, topic, sub)
			waitSubscribed(t, mqttAddr, topic, mq)
			if code, out, errOut := outpostCmd(t, "sn", "pub", "-gw", snAddr, "-t", topic, "-q", q, "-m", "hello "+q); code != 0 {
				t.Fatalf("sn pub -q %s = %d\n%s%s", q, code, out, errOut)
			}
			want := topic + " hello " + q + "\n"
			sub.waitLine(t, want)
			mq.waitLine(t, want)
			if code := sub.stop(t); code != 0 {
				t.Errorf("sn sub stopped by SIGTERM = %d; want 0; stderr:\n%s", code, sub.stderr.String())
			}
		}
	})

	t.Run("mosquitto_pub to sn sub", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			pub  string // topic mosquitto_pub publishes to
			want string // line sn sub prints
		}{
			{"by name", []string{"-t", "lan/a"}, "lan/a", "lan/a from lan\n"},
			{"wildcard", []string{"-t", "wild/+/x", "-q", "1"}, "wild/b/x", "wild/b/x from lan\n"},
			{"predefined", []string{"-p", "7"}, "pre/seven", "7 from lan\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"sn", "sub", "-gw", snAddr, "-W", "60s"}, tc.args...)
				sub := start(t, binary, args...)
				waitSubscribedAs(t, mqttAddr, tc.pub, strings.Fields(tc.want)[0], sub)
				if out, err := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-t", tc.pub, "-q", "1", "-m", "from lan").CombinedOutput(); err != nil {
					t.Fatalf("mosquitto_pub: %v\n%s", err, out)
				}
				sub.waitLine(t, tc.want)
				if code := sub.stop(t); code != 0 {
					t.Errorf("sn sub %v stopped by SIGTERM = %d; want 0; stderr:\n%s", tc.args, code, sub.stderr.String())
				}
			})
		}
	})

	t.Run("QoS -1 and short names", func(t *testing.T) {
		mq := start(t, "mosquitto_sub", "-h", host, "-p", port, "-t", "pre/seven", "-t", "ab", "-v")
		waitSubscribed(t, mqttAddr, "pre/seven", mq)
		waitSubscribed(t, mqttAddr, "ab", mq)
		for _, args := range [][]string{{"-p", "7", "-q", "-1", "-m", "minus one"}, {"-s", "ab", "-q", "-1", "-m", "short"}, {"-s", "ab", "-q", "1", "-m", "short q1"}} {
			if code, out, errOut := outpostCmd(t, append([]string{"sn", "pub", "-gw", snAddr}, args...)...); code != 0 {
				t.Fatalf("sn pub %v = %d\n%s%s", args, code, out, errOut)
			}
		}
		mq.waitLine(t, "pre/seven minus one\n")
		mq.waitLine(t, "ab short\n")
		mq.waitLine(t, "ab short q1\n")
	})

	t.Run("sleeping sub gets buffered messages", func(t *testing.T) {
		sub := start(t, binary, "sn", "sub", "-gw", snAddr, "-id", "sleepy", "-t", "nap/t", "-q", "1", "-sleep", "1s", "-n", "1", "-W", "20s")
		// The sleeping client's subscription is on before the first wake;
		// a probe over MQTT shows when it is, and is the one message.
		waitSubscribed(t, mqttAddr, "nap/t", sub)
		if code := sub.wait(t, 20*time.Second); code != 0 {
			t.Errorf("sleeping sn sub -n 1 = %d; want 0; stderr:\n%s", code, sub.stderr.String())
		}
	})

	t.Run("will", func(t *testing.T) {
		mq := start(t, "mosquitto_sub", "-h", host, "-p", port, "-t", "wills/#", "-v")
		waitSubscribed(t, mqttAddr, "wills/probe", mq)
		sub := start(t, binary, "sn", "sub", "-gw", snAddr, "-id", "willing", "-t", "w/t", "-k", "2s", "-will-topic", "wills/willing", "-will-msg", "gone", "-W", "60s")
		waitSubscribed(t, mqttAddr, "w/t", sub)
		sub.cmd.Process.Kill() // no DISCONNECT: the gateway publishes the will after the keep alive
		sub.cmd.Wait()
		mq.waitLine(t, "wills/willing gone\n")
	})

	t.Run("sub timeout exits 1", func(t *testing.T) {
		code, _, errOut := outpostCmd(t, "sn", "sub", "-gw", snAddr, "-t", "nothing/here", "-W", "500ms")
		if code != 1 || !strings.Contains(errOut, "timeout") {
			t.Errorf("sn sub -W 500ms on a silent topic = %d, stderr %q; want 1 and a timeout", code, errOut)
		}
	})
}
