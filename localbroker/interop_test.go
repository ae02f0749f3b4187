package localbroker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// Interop tests: real MQTT clients (Debian's mosquitto_pub / mosquitto_sub,
// paho.golang, a coder/websocket client) against the in-process broker.
//
// A missing peer binary skips the test, except under CI=true where it fails:
// CI must run these.

// mosqVersions are the -V values the mosquitto clients are run with.
var mosqVersions = []string{"mqttv311", "mqttv5"}

// needTool returns the path of a peer binary, skipping the test when it is
// missing (failing under CI=true).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed (CI=true): %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// peerProc is a peer process bounded by a context timeout and killed when the
// test ends.
type peerProc struct {
	name   string
	cmd    *exec.Cmd
	stdout bytes.Buffer // read only after done
	stderr bytes.Buffer
	done   chan struct{}
	err    error // Wait's result, set before done is closed
}

// procTimeout bounds every peer process; a healthy one ends far sooner.
const procTimeout = 20 * time.Second

// startPeer starts name with args; stdin "" means no standard input.
func startPeer(t testing.TB, stdin string, name string, args ...string) *peerProc {
	t.Helper()
	path := needTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	p := &peerProc{name: name, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, path, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.WaitDelay = 2 * time.Second
	if stdin != "" {
		p.cmd.Stdin = strings.NewReader(stdin)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		<-p.done
	})
	return p
}

// kill sends SIGKILL (a no-op once the process has exited).
func (p *peerProc) kill() { _ = p.cmd.Process.Kill() }

// wait waits for the process to exit and returns stdout, stderr and the
// exit error (nil for status 0).
func (p *peerProc) wait(t testing.TB) (string, string, error) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(procTimeout + 5*time.Second):
		t.Fatalf("%s did not exit", p.name)
	}
	return p.stdout.String(), p.stderr.String(), p.err
}

// exitCode is the process's exit status, -1 if it was killed by a signal.
func (p *peerProc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// mustSucceed waits for p and fails the test unless it exited with 0.
func (p *peerProc) mustSucceed(t testing.TB) string {
	t.Helper()
	out, errOut, err := p.wait(t)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", p.name, strings.Join(p.cmd.Args[1:], " "), err, out, errOut)
	}
	return out
}

// runPeer starts a process and waits for it.
func runPeer(t testing.TB, stdin string, name string, args ...string) *peerProc {
	t.Helper()
	p := startPeer(t, stdin, name, args...)
	p.wait(t)
	return p
}

// mosq holds the connection arguments shared by mosquitto_pub/_sub calls.
type mosq struct {
	host, port string
	version    string // "mqttv311" or "mqttv5"
	extra      []string
}

func newMosq(t testing.TB, addr, version string, extra ...string) mosq {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return mosq{host: host, port: port, version: version, extra: extra}
}

func (m mosq) args(more ...string) []string {
	a := []string{"-h", m.host, "-p", m.port, "-V", m.version}
	a = append(a, m.extra...)
	return append(a, more...)
}

// sub starts mosquitto_sub.
func (m mosq) sub(t testing.TB, more ...string) *peerProc {
	t.Helper()
	return startPeer(t, "", "mosquitto_sub", m.args(more...)...)
}

// pub runs mosquitto_pub to completion and returns it.
func (m mosq) pub(t testing.TB, more ...string) *peerProc {
	t.Helper()
	return runPeer(t, "", "mosquitto_pub", m.args(more...)...)
}

// outLines splits process output into outLines, dropping the final newline.
func outLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func expectLines(t testing.TB, what, got string, want ...string) {
	t.Helper()
	if g := outLines(got); !slices.Equal(g, want) {
		t.Fatalf("%s printed %q, want %q", what, g, want)
	}
}

// waitSubscribed polls until the client id holds filter in the topic tree
// with a connection attached, so that a publish made now reaches it.
func waitSubscribed(t testing.TB, b *Broker, p *peerProc, id, filter string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := b.subs.Get(filter, subKey{client: id}); ok && brokerSessionOnline(b, id) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s %q exited before subscribing to %q: %v\nstdout: %s\nstderr: %s",
				p.name, id, filter, p.err, p.stdout.String(), p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q did not subscribe to %q", id, filter)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func brokerSessionOnline(b *Broker, id string) bool {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	return s != nil && s.online.Load()
}

func brokerHasSession(b *Broker, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[id] != nil
}

// makePasswd writes a password file with the real mosquitto_passwd.
func makePasswd(t testing.TB, users ...[2]string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "passwd")
	for i, u := range users {
		args := []string{"-b", f, u[0], u[1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		runPeer(t, "", "mosquitto_passwd", args...).mustSucceed(t)
	}
	return f
}

func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// --- mosquitto_pub / mosquitto_sub ------------------------------------------

func TestInteropMosquittoPubSub(t *testing.T) {
	b, addr := startBroker(t, Options{})
	cases := []struct{ pubQoS, subQoS, want byte }{
		{0, 0, 0}, {1, 1, 1}, {2, 2, 2},
		{2, 1, 1}, {1, 2, 1}, {2, 0, 0}, // delivered at min(publish, granted) [MQTT-3.8.4-8]
	}
	for _, sv := range mosqVersions {
		for _, pv := range mosqVersions {
			for _, c := range cases {
				name := fmt.Sprintf("sub-%s/pub-%s/pub%d-sub%d", sv, pv, c.pubQoS, c.subQoS)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					tp := "interop/" + name
					id := strings.ReplaceAll(name, "/", "-")
					sub := newMosq(t, addr, sv).sub(t, "-i", id, "-t", tp, "-q", fmt.Sprint(c.subQoS),
						"-C", "3", "-W", "10", "-F", "%t %q %r %p")
					waitSubscribed(t, b, sub, id, tp)
					// -l publishes one message per stdin line, in order.
					startPeer(t, "one\ntwo words\nthree\n", "mosquitto_pub",
						newMosq(t, addr, pv).args("-t", tp, "-q", fmt.Sprint(c.pubQoS), "-l")...).mustSucceed(t)
					q := c.want
					expectLines(t, "mosquitto_sub", sub.mustSucceed(t),
						fmt.Sprintf("%s %d 0 one", tp, q),
						fmt.Sprintf("%s %d 0 two words", tp, q),
						fmt.Sprintf("%s %d 0 three", tp, q))
				})
			}
		}
	}
}

func TestInteropMosquittoLargePayload(t *testing.T) {
	b, addr := startBroker(t, Options{})
	// 600 KiB of non-repeating bytes: many TCP segments, a 3-byte
	// remaining length, below the 1 MiB default packet limit.
	payload := make([]byte, 600<<10)
	for i := range payload {
		payload[i] = byte('a' + (i*7+i/251)%26)
	}
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			m := newMosq(t, addr, v)
			tp, id := "large/"+v, "large-"+v
			sub := m.sub(t, "-i", id, "-t", tp, "-q", "1", "-C", "1", "-W", "10", "-N", "-F", "%p")
			waitSubscribed(t, b, sub, id, tp)
			// -s reads the whole of stdin as one message.
			startPeer(t, string(payload), "mosquitto_pub", m.args("-t", tp, "-q", "1", "-s")...).mustSucceed(t)
			if out := sub.mustSucceed(t); out != string(payload) {
				t.Fatalf("mosquitto_sub printed %d bytes, want the %d bytes published", len(out), len(payload))
			}
		})
	}
}

// Many QoS 1 and 2 messages through the inflight windows of both sides
// arrive complete and in order.
func TestInteropMosquittoManyMessages(t *testing.T) {
	b, addr := startBroker(t, Options{})
	const n = 500
	var in strings.Builder
	var want []string
	for i := range n {
		fmt.Fprintf(&in, "msg %04d\n", i)
		want = append(want, fmt.Sprintf("msg %04d", i))
	}
	for _, v := range mosqVersions {
		for _, q := range []string{"1", "2"} {
			t.Run(v+"/qos"+q, func(t *testing.T) {
				t.Parallel()
				m := newMosq(t, addr, v)
				tp, id := "many/"+v+"/"+q, "many-"+v+"-"+q
				sub := m.sub(t, "-i", id, "-t", tp, "-q", q, "-C", fmt.Sprint(n), "-W", "15", "-F", "%p")
				waitSubscribed(t, b, sub, id, tp)
				startPeer(t, in.String(), "mosquitto_pub", m.args("-t", tp, "-q", q, "-l")...).mustSucceed(t)
				expectLines(t, "mosquitto_sub", sub.mustSucceed(t), want...)
			})
		}
	}
}

func TestInteropMosquittoV5Properties(t *testing.T) {
	b, addr := startBroker(t, Options{})
	m := newMosq(t, addr, "mqttv5")
	old := newMosq(t, addr, "mqttv311")
	tp := "props/v5"
	sub := m.sub(t, "-i", "props-sub", "-t", tp, "-q", "1", "-C", "1", "-W", "10",
		"-D", "subscribe", "subscription-identifier", "42",
		"-F", "%t|%C|%R|%D|%P|%S|%F|%p")
	waitSubscribed(t, b, sub, "props-sub", tp)
	sub311 := old.sub(t, "-i", "props-sub311", "-t", tp, "-q", "1", "-C", "1", "-W", "10", "-F", "%t|%p")
	waitSubscribed(t, b, sub311, "props-sub311", tp)
	m.pub(t, "-t", tp, "-q", "1", "-m", "body",
		"-D", "publish", "content-type", "text/plain",
		"-D", "publish", "response-topic", "props/reply",
		"-D", "publish", "correlation-data", "req-7",
		"-D", "publish", "payload-format-indicator", "1",
		"-D", "publish", "user-property", "site", "north",
		"-D", "publish", "user-property", "site", "south",
	).mustSucceed(t)
	// Content type, response topic, correlation data, payload format and
	// user properties (in order, duplicates kept) pass through; the
	// subscription identifier is the subscriber's own [MQTT-3.3.4-3].
	expectLines(t, "v5 mosquitto_sub", sub.mustSucceed(t),
		tp+"|text/plain|props/reply|req-7|site:north site:south|42|1|body")
	// A 3.1.1 subscriber gets the same message without properties.
	expectLines(t, "3.1.1 mosquitto_sub", sub311.mustSucceed(t), tp+"|body")
}

func TestInteropMosquittoRetained(t *testing.T) {
	b, addr := startBroker(t, Options{})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			m := newMosq(t, addr, v)
			tp := "retained/" + v + "/t"
			m.pub(t, "-t", tp, "-q", "1", "-r", "-m", "first").mustSucceed(t)
			m.pub(t, "-t", tp, "-q", "1", "-r", "-m", "kept").mustSucceed(t)
			m.pub(t, "-t", tp, "-q", "1", "-m", "not retained").mustSucceed(t)

			// A late subscriber gets the last retained message, retain flag set.
			late := m.sub(t, "-t", "retained/"+v+"/#", "-q", "1", "-C", "1", "-W", "10", "-F", "%t %q %r %p")
			expectLines(t, "late mosquitto_sub", late.mustSucceed(t), tp+" 1 1 kept")

			// -r -n (empty retained payload) clears the topic.
			m.pub(t, "-t", tp, "-q", "1", "-r", "-n").mustSucceed(t)
			if _, ok := b.retained.Get(tp); ok {
				t.Fatalf("%s still retained after an empty retained publish", tp)
			}
			after := m.sub(t, "-t", tp, "-q", "1", "-C", "1", "-W", "1", "-F", "%t %r %p")
			out, errOut, _ := after.wait(t)
			if after.exitCode() != exitTimedOut || out != "" {
				t.Fatalf("a subscriber after the clear got %q (exit %d, stderr %q), want nothing until -W ends it",
					out, after.exitCode(), errOut)
			}
		})
	}
}

func TestInteropMosquittoWill(t *testing.T) {
	b, addr := startBroker(t, Options{})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			m := newMosq(t, addr, v)
			wt := "will/" + v
			watcher := m.sub(t, "-i", "watch-"+v, "-t", wt, "-q", "1", "-C", "1", "-W", "10", "-F", "%t %q %p")
			waitSubscribed(t, b, watcher, "watch-"+v, wt)

			// A client that leaves with DISCONNECT (-C 1 reached) has its
			// will discarded [MQTT-3.1.2-10].
			politeID := "polite-" + v
			polite := m.sub(t, "-i", politeID, "-t", "poke/"+v, "-C", "1", "-W", "10",
				"--will-topic", wt, "--will-payload", "polite will", "--will-qos", "1")
			waitSubscribed(t, b, polite, politeID, "poke/"+v)
			m.pub(t, "-t", "poke/"+v, "-m", "bye").mustSucceed(t)
			polite.mustSucceed(t)
			eventually(t, 5*time.Second, "the polite session to end", func() bool { return !brokerHasSession(b, politeID) })

			// A client killed with SIGKILL never sends DISCONNECT: its will
			// goes out [MQTT-3.1.2-8].
			victimID := "victim-" + v
			victim := m.sub(t, "-i", victimID, "-t", "idle/"+v, "-W", "15",
				"--will-topic", wt, "--will-payload", "victim lost", "--will-qos", "1", "--will-retain")
			waitSubscribed(t, b, victim, victimID, "idle/"+v)
			victim.kill()
			victim.wait(t)
			if c := victim.exitCode(); c != -1 {
				t.Fatalf("victim exited with %d, want killed by a signal", c)
			}
			expectLines(t, "watcher", watcher.mustSucceed(t), wt+" 1 victim lost")
			// The will was retained (--will-retain): a late subscriber gets it.
			late := m.sub(t, "-t", wt, "-q", "1", "-C", "1", "-W", "10", "-F", "%t %r %p")
			expectLines(t, "late subscriber", late.mustSucceed(t), wt+" 1 victim lost")
		})
	}
}

// MQTT 5 will delay: a client that comes back within the delay cancels
// its will [MQTT-3.1.3-9]; a session that expires before the delay ends
// publishes it at once.
func TestInteropMosquittoWillDelay(t *testing.T) {
	b, addr := startBroker(t, Options{})
	m := newMosq(t, addr, "mqttv5")
	wt := "willdelay/v5"
	watcher := m.sub(t, "-i", "wd-watch", "-t", wt, "-q", "1", "-C", "1", "-W", "15", "-F", "%t %p")
	waitSubscribed(t, b, watcher, "wd-watch", wt)

	// back: will delay 1s, comes back at once with the same session.
	back := m.sub(t, "-c", "-x", "60", "-i", "wd-back", "-t", "idle/back", "-W", "15",
		"--will-topic", wt, "--will-payload", "back should be cancelled", "--will-qos", "1",
		"-D", "will", "will-delay-interval", "1")
	// expiring: will delay 60s, but its session expires after 2s.
	expiring := m.sub(t, "-c", "-x", "2", "-i", "wd-exp", "-t", "idle/exp", "-W", "15",
		"--will-topic", wt, "--will-payload", "session expired", "--will-qos", "1",
		"-D", "will", "will-delay-interval", "60")
	waitSubscribed(t, b, back, "wd-back", "idle/back")
	waitSubscribed(t, b, expiring, "wd-exp", "idle/exp")
	back.kill()
	expiring.kill()
	back.wait(t)
	expiring.wait(t)
	eventually(t, 5*time.Second, "both sessions to go offline", func() bool {
		return !brokerSessionOnline(b, "wd-back") && !brokerSessionOnline(b, "wd-exp")
	})
	again := m.sub(t, "-c", "-x", "60", "-i", "wd-back", "-t", "idle/back", "-W", "15")
	waitSubscribed(t, b, again, "wd-back", "idle/back")

	// Had the first will not been cancelled it would arrive about a
	// second before the expired session's.
	expectLines(t, "watcher", watcher.mustSucceed(t), wt+" session expired")
}

// Shared subscriptions from mosquitto_sub, in both versions: each message
// goes to one member of the group.
func TestInteropMosquittoSharedSubscription(t *testing.T) {
	b, addr := startBroker(t, Options{})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			m := newMosq(t, addr, v)
			tp := "shared/" + v
			filter := "$share/workers/" + tp
			var subs []*peerProc
			for _, id := range []string{"w1-" + v, "w2-" + v} {
				p := m.sub(t, "-i", id, "-t", filter, "-q", "1", "-C", "2", "-W", "10", "-F", "%p")
				waitShared(t, b, p, id, "workers", tp)
				subs = append(subs, p)
			}
			startPeer(t, "m1\nm2\nm3\nm4\n", "mosquitto_pub", m.args("-t", tp, "-q", "1", "-l")...).mustSucceed(t)
			var got []string
			for _, p := range subs {
				got = append(got, outLines(p.mustSucceed(t))...)
			}
			slices.Sort(got)
			if !slices.Equal(got, []string{"m1", "m2", "m3", "m4"}) {
				t.Fatalf("the group received %q, want each of m1..m4 once", got)
			}
		})
	}
}

// waitShared polls until id is a member of the shared group on filter.
func waitShared(t testing.TB, b *Broker, p *peerProc, id, group, filter string) {
	t.Helper()
	eventually(t, 10*time.Second, id+" to join $share/"+group+"/"+filter, func() bool {
		b.mu.Lock()
		g := b.groups[group+"\x00"+filter]
		b.mu.Unlock()
		if g == nil {
			return false
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, m := range g.members {
			if m.s.id == id && m.s.online.Load() {
				return true
			}
		}
		return false
	})
}

func TestInteropMosquittoPersistentSession(t *testing.T) {
	b, addr := startBroker(t, Options{})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			m := newMosq(t, addr, v)
			id := "persist-" + v
			tp := "persist/" + v
			first := m.sub(t, "-c", "-i", id, "-q", "1", "-t", tp, "-W", "15", "-F", "%t %q %p")
			waitSubscribed(t, b, first, id, tp)
			first.kill()
			first.wait(t)
			eventually(t, 5*time.Second, "the session to go offline", func() bool {
				return brokerHasSession(b, id) && !brokerSessionOnline(b, id)
			})

			m.pub(t, "-t", tp, "-q", "1", "-m", "while away").mustSucceed(t)
			m.pub(t, "-t", tp, "-q", "0", "-m", "qos0 not queued").mustSucceed(t)

			// Same id, no clean start: the session (with its subscription)
			// resumes and the queued QoS 1 message is delivered.
			again := m.sub(t, "-c", "-i", id, "-q", "1", "-t", tp, "-C", "1", "-W", "10", "-F", "%t %q %p")
			expectLines(t, "resumed mosquitto_sub", again.mustSucceed(t), tp+" 1 while away")
		})
	}
}

func TestInteropMosquittoPasswordFile(t *testing.T) {
	pw := makePasswd(t, [2]string{"alice", "s3cret pass"}, [2]string{"bob", "hunter2"})
	b, addr := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "pw", Address: "127.0.0.1:0", PasswordFile: pw},
	}})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			m := newMosq(t, addr, v)
			tp := "pw/" + v
			id := "alice-sub-" + v
			sub := m.sub(t, "-u", "alice", "-P", "s3cret pass", "-i", id, "-t", tp, "-q", "1",
				"-C", "1", "-W", "10", "-F", "%t %p")
			waitSubscribed(t, b, sub, id, tp)

			for _, bad := range []struct {
				name string
				args []string
				why  int
			}{
				{"wrong password", []string{"-u", "alice", "-P", "s3cret"}, exitBadCredentials},
				{"unknown user", []string{"-u", "mallory", "-P", "hunter2"}, exitBadCredentials},
				{"anonymous", nil, exitNotAuthorized},
			} {
				// Refused at CONNECT: mosquitto_sub exits with the CONNACK
				// code (not -W's timeout) and the publisher sends nothing.
				s := m.sub(t, append(bad.args, "-t", tp, "-C", "1", "-W", "10")...)
				expectRefused(t, s, bad.name, refusedExit(v, bad.why))
				p := m.pub(t, append(bad.args, "-t", tp, "-q", "1", "-m", "from "+bad.name)...)
				expectRefused(t, p, bad.name, refusedExit(v, bad.why))
			}
			m.pub(t, "-u", "bob", "-P", "hunter2", "-t", tp, "-q", "1", "-m", "from bob").mustSucceed(t)
			expectLines(t, "alice's mosquitto_sub", sub.mustSucceed(t), tp+" from bob")
		})
	}
}

// Exit statuses of mosquitto_pub/_sub: a refused CONNECT exits with the
// CONNACK's return code (3.1.1) or reason code (5.0); -W ending the wait
// exits with 27.
const (
	exitBadCredentials = iota // index into refusedExit
	exitNotAuthorized
	exitTimedOut = 27
)

// refusedExit is the exit status for a refusal under version v.
func refusedExit(v string, why int) int {
	if v == "mqttv5" {
		return [...]int{int(packet.BadUsernameOrPassword), int(packet.NotAuthorized)}[why]
	}
	return [...]int{int(packet.ConnRefusedBadCredentials), int(packet.ConnRefusedNotAuthorized)}[why]
}

// expectRefused waits for p and requires it to have exited with the
// refusal status want, having printed nothing.
func expectRefused(t testing.TB, p *peerProc, what string, want int) {
	t.Helper()
	out, errOut, _ := p.wait(t)
	if got := p.exitCode(); got != want || out != "" {
		t.Fatalf("%s: %s exited %d with output %q (stderr %q), want exit %d and no output",
			what, p.name, got, out, errOut, want)
	}
}

func TestInteropMosquittoACL(t *testing.T) {
	pw := makePasswd(t, [2]string{"alice", "apw"}, [2]string{"bob", "bpw"})
	acl := writeTemp(t, "acl", `# alice may write only under her own tree; everyone reads acl/#
user alice
topic write acl/alice/#
topic read acl/#

user bob
topic read acl/#
`)
	b, addr := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "acl", Address: "127.0.0.1:0", PasswordFile: pw, ACLFile: acl},
	}})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			m := newMosq(t, addr, v)
			id := "bob-" + v
			sub := m.sub(t, "-u", "bob", "-P", "bpw", "-i", id, "-t", "acl/+/"+v, "-q", "1",
				"-C", "1", "-W", "10", "-F", "%t %p")
			waitSubscribed(t, b, sub, id, "acl/+/"+v)
			// Not allowed: alice may not write acl/bob/... The broker
			// acknowledges (3.1.1 has no refusal code; 5.0 says 0x87) and
			// drops it. It is published first, so if it leaked it would be
			// the line bob prints.
			denied := m.pub(t, "-u", "alice", "-P", "apw", "-t", "acl/bob/"+v, "-q", "1", "-m", "forged")
			_, deniedErr, _ := denied.wait(t)
			if v == "mqttv5" && !strings.Contains(strings.ToLower(deniedErr), "not authori") {
				t.Errorf("mosquitto_pub v5 stderr %q, want the PUBACK's not authorized reported", deniedErr)
			}
			// bob has no write rule at all.
			m.pub(t, "-u", "bob", "-P", "bpw", "-t", "acl/alice/"+v, "-q", "1", "-m", "bob forged").wait(t)
			m.pub(t, "-u", "alice", "-P", "apw", "-t", "acl/alice/"+v, "-q", "1", "-m", "genuine").mustSucceed(t)
			expectLines(t, "bob's mosquitto_sub", sub.mustSucceed(t), "acl/alice/"+v+" genuine")
		})
	}
}

// --- TLS ---------------------------------------------------------------------

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and
// localhost and client certificates, written as PEM files to a temp dir.
type testPKI struct {
	dir        string
	caFile     string
	pool       *x509.CertPool
	serverCert string
	serverKey  string
	caCert     *x509.Certificate
	caKey      *ecdsa.PrivateKey
	serial     int64
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), pool: x509.NewCertPool()}
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Outpost test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p.caKey, p.serial = key, 1
	p.pool.AddCert(p.caCert)
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", der)
	p.serverCert, p.serverKey = p.issue(t, "server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return p
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *testPKI) writePEM(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue signs tmpl with the CA and writes name.pem and name.key.
func (p *testPKI) issue(t testing.TB, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newECKey(t)
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.writePEM(t, name+".pem", "CERTIFICATE", der), p.writePEM(t, name+".key", "PRIVATE KEY", kder)
}

// clientCert issues a client certificate with subject CN cn.
func (p *testPKI) clientCert(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	return p.issue(t, "client-"+cn, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func TestInteropMosquittoTLS(t *testing.T) {
	pki := newTestPKI(t)
	b, addr := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "tls", Kind: KindTLS, Address: "127.0.0.1:0", CertFile: pki.serverCert, KeyFile: pki.serverKey,
			AllowAnonymous: true},
	}})
	other := newTestPKI(t) // a CA the server certificate does not chain to
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			m := newMosq(t, addr, v, "--cafile", pki.caFile)
			id := "tls-sub-" + v
			tp := "tls/" + v
			sub := m.sub(t, "-i", id, "-t", tp, "-q", "2", "-C", "2", "-W", "10", "-F", "%t %q %p")
			waitSubscribed(t, b, sub, id, tp)
			m.pub(t, "-t", tp, "-q", "1", "-m", "over tls").mustSucceed(t)
			m.pub(t, "-t", tp, "-q", "2", "-m", "qos 2 over tls").mustSucceed(t)
			expectLines(t, "mosquitto_sub over TLS", sub.mustSucceed(t), tp+" 1 over tls", tp+" 2 qos 2 over tls")

			// A client that does not trust the server's CA does not get through.
			bad := newMosq(t, addr, v, "--cafile", other.caFile)
			if _, errOut, err := bad.pub(t, "-t", tp, "-m", "x").wait(t); err == nil {
				t.Fatalf("mosquitto_pub trusting another CA connected (stderr %q)", errOut)
			}
			// Plain MQTT on the TLS port gets no CONNACK.
			plain := newMosq(t, addr, v)
			if _, errOut, err := plain.pub(t, "-t", tp, "-m", "x").wait(t); err == nil {
				t.Fatalf("plain mosquitto_pub connected to the TLS listener (stderr %q)", errOut)
			}
		})
	}
}

func TestInteropMosquittoMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	cert42, key42 := pki.clientCert(t, "device42")
	acl := writeTemp(t, "acl", `user device42
topic write devices/device42/#
topic read devices/device42/#
`)
	b, _ := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "plain", Address: "127.0.0.1:0", AllowAnonymous: true},
		{Name: "mtls", Kind: KindTLS, Address: "127.0.0.1:0", CertFile: pki.serverCert, KeyFile: pki.serverKey,
			CAFile: pki.caFile, RequireClientCert: true, UseCNAsUsername: true, ACLFile: acl},
	}})
	addrs := b.Addrs()
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			plain := newMosq(t, addrs["plain"].String(), v)
			id := "monitor-" + v
			sub := plain.sub(t, "-i", id, "-t", "devices/+/"+v, "-q", "1", "-C", "1", "-W", "10", "-F", "%t %p")
			waitSubscribed(t, b, sub, id, "devices/+/"+v)

			dev := newMosq(t, addrs["mtls"].String(), v, "--cafile", pki.caFile, "--cert", cert42, "--key", key42)
			// No client certificate: the handshake is refused.
			nocert := newMosq(t, addrs["mtls"].String(), v, "--cafile", pki.caFile)
			if _, errOut, err := nocert.pub(t, "-t", "devices/device42/"+v, "-q", "1", "-m", "no cert").wait(t); err == nil {
				t.Fatalf("mosquitto_pub without a client certificate connected (stderr %q)", errOut)
			}
			// The CN is the username: device42's ACL keeps it out of
			// another device's tree.
			dev.pub(t, "-t", "devices/device7/"+v, "-q", "1", "-m", "forged").wait(t)
			dev.pub(t, "-t", "devices/device42/"+v, "-q", "1", "-m", "reading").mustSucceed(t)
			expectLines(t, "monitor", sub.mustSucceed(t), "devices/device42/"+v+" reading")

			// A subscription that reads under the device's own tree is
			// granted over mTLS and gets what the device publishes.
			did := "device42-" + v
			dsub := dev.sub(t, "-i", did, "-t", "devices/device42/"+v+"/cmd", "-q", "1", "-C", "1", "-W", "10", "-F", "%t %p")
			waitSubscribed(t, b, dsub, did, "devices/device42/"+v+"/cmd")
			b.mu.Lock()
			user := b.sessions[did].info.Username
			b.mu.Unlock()
			if user != "device42" {
				t.Fatalf("session username %q, want the certificate CN device42", user)
			}
			dev.pub(t, "-t", "devices/device42/"+v+"/cmd", "-q", "1", "-m", "reboot").mustSucceed(t)
			expectLines(t, "device42's mosquitto_sub", dsub.mustSucceed(t), "devices/device42/"+v+"/cmd reboot")
		})
	}
}

// --- paho.golang -------------------------------------------------------------

// pahoClient connects a paho.golang MQTT 5 client over nc and forwards
// what it receives to the returned channel.
func pahoClient(t testing.TB, nc net.Conn, id string) (*paho.Client, <-chan *paho.Publish) {
	t.Helper()
	recv := make(chan *paho.Publish, 16)
	errs := make(chan error, 4)
	var closing atomic.Bool
	c := paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     packets.NewThreadSafeConn(nc),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				select {
				case recv <- pr.Packet:
				default:
					select {
					case errs <- fmt.Errorf("receive buffer full, dropped %q", pr.Packet.Topic):
					default:
					}
				}
				return true, nil
			},
		},
		OnClientError: func(err error) {
			if closing.Load() {
				return // paho reports the socket it closed itself
			}
			select {
			case errs <- err:
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
	if err != nil {
		nc.Close()
		t.Fatalf("paho connect %s: %v (connack %+v)", id, err, ca)
	}
	if ca.ReasonCode != 0 {
		t.Fatalf("paho CONNACK %d", ca.ReasonCode)
	}
	t.Cleanup(func() {
		closing.Store(true)
		_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("paho client %s did not stop", id)
		}
		select {
		case err := <-errs:
			t.Errorf("paho client %s: %v", id, err)
		default:
		}
	})
	return c, recv
}

func dialPlain(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

func pahoRecv(t testing.TB, ch <-chan *paho.Publish) *paho.Publish {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no PUBLISH received")
		return nil
	}
}

func TestInteropPaho(t *testing.T) {
	_, addr := startBroker(t, Options{})
	sub, recv := pahoClient(t, dialPlain(t, addr), "paho-sub")
	pub, _ := pahoClient(t, dialPlain(t, addr), "paho-pub")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "paho/#", QoS: 2}}})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if !bytes.Equal(sa.Reasons, []byte{2}) {
		t.Fatalf("SUBACK reasons %v, want granted QoS 2", sa.Reasons)
	}
	for qos := byte(0); qos <= 2; qos++ {
		tp := fmt.Sprintf("paho/q%d", qos)
		corr := []byte{0, qos, 0xff, 'c'}
		users := paho.UserProperties{{Key: "site", Value: "north"}, {Key: "dup", Value: "a"},
			{Key: "dup", Value: "b"}, {Key: "qos", Value: fmt.Sprint(qos)}}
		resp, err := pub.Publish(ctx, &paho.Publish{Topic: tp, QoS: qos, Payload: []byte("payload " + tp),
			Properties: &paho.PublishProperties{CorrelationData: corr, ResponseTopic: "paho/reply",
				ContentType: "text/plain", User: users}})
		if err != nil {
			t.Fatalf("publish QoS %d: %v", qos, err)
		}
		if qos > 0 && resp.ReasonCode != 0 {
			t.Fatalf("publish QoS %d: reason 0x%02x", qos, resp.ReasonCode)
		}
		p := pahoRecv(t, recv)
		if p.Topic != tp || string(p.Payload) != "payload "+tp || p.QoS != qos || p.Retain {
			t.Fatalf("received %q %q QoS %d retain %v, want %q at QoS %d", p.Topic, p.Payload, p.QoS, p.Retain, tp, qos)
		}
		pp := p.Properties
		if pp == nil {
			t.Fatal("received no properties")
		}
		if !bytes.Equal(pp.CorrelationData, corr) || pp.ResponseTopic != "paho/reply" || pp.ContentType != "text/plain" {
			t.Fatalf("QoS %d: correlation %x response %q content %q, want %x paho/reply text/plain",
				qos, pp.CorrelationData, pp.ResponseTopic, pp.ContentType, corr)
		}
		// User properties keep their order and repeated keys [MQTT-3.3.2-17] [MQTT-3.3.2-18].
		if !slices.Equal(pp.User, users) {
			t.Fatalf("QoS %d: user properties %v, want %v", qos, pp.User, users)
		}
	}
}

// --- websockets --------------------------------------------------------------

// wsDial opens a websocket to url offering subprotocols.
func wsDial(t testing.TB, url string, hc *http.Client, subprotocols ...string) (*websocket.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wc, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, Subprotocols: subprotocols})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return wc, err
}

// wsClient dials url with the "mqtt" subprotocol and wraps it as a raw
// MQTT test client.
func wsClient(t testing.TB, url string, hc *http.Client, v packet.Version) *client {
	t.Helper()
	wc, err := wsDial(t, url, hc, "mqtt")
	if err != nil {
		t.Fatalf("websocket dial %s: %v", url, err)
	}
	if wc.Subprotocol() != "mqtt" {
		t.Fatalf("subprotocol %q, want mqtt", wc.Subprotocol())
	}
	ctx, cancel := context.WithCancel(context.Background())
	nc := websocket.NetConn(ctx, wc, websocket.MessageBinary)
	t.Cleanup(func() {
		nc.Close()
		cancel()
	})
	return &client{t: t, nc: nc, rd: packet.NewReader(nc, 4096), ver: v}
}

// wsConnect sends CONNECT over a websocket client and requires success.
func wsConnect(t testing.TB, c *client, id string) {
	t.Helper()
	c.send(&packet.Connect{ProtocolName: "MQTT", ProtocolVersion: c.ver, ClientID: id, CleanStart: true, KeepAlive: 60})
	if ca := expect[*packet.Connack](c); ca.ReasonCode != 0 {
		t.Fatalf("CONNACK %s over websocket", ca.ReasonCode)
	}
}

// tlsHTTPClient trusts pool only; its idle connections are closed at the end.
func tlsHTTPClient(t testing.TB, pool *x509.CertPool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestInteropWebsocket(t *testing.T) {
	pki := newTestPKI(t)
	b, tcpAddr := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "tcp", Address: "127.0.0.1:0", AllowAnonymous: true},
		{Name: "ws", Kind: KindWS, Address: "127.0.0.1:0", AllowAnonymous: true},
		{Name: "wss", Kind: KindWSS, Address: "127.0.0.1:0", CertFile: pki.serverCert, KeyFile: pki.serverKey,
			AllowAnonymous: true},
		{Name: "wssm", Kind: KindWSS, Address: "127.0.0.1:0", CertFile: pki.serverCert, KeyFile: pki.serverKey,
			CAFile: pki.caFile, RequireClientCert: true, UseCNAsUsername: true},
	}})
	addrs := b.Addrs()
	hc := tlsHTTPClient(t, pki.pool)
	urls := map[string]string{
		"ws":  "ws://" + addrs["ws"].String() + "/mqtt",
		"wss": "wss://" + addrs["wss"].String() + "/mqtt",
	}
	for _, kind := range []string{"ws", "wss"} {
		for _, v := range versions() {
			t.Run(kind+"/"+vname(v), func(t *testing.T) {
				id := kind + vname(v)
				ws := wsClient(t, urls[kind], hc, v)
				wsConnect(t, ws, "web-"+id)
				ws.subscribe(1, "web/"+id+"/down", 2)
				tcp := mustConnect(t, tcpAddr, v, "tcp-"+id)
				tcp.subscribe(1, "web/"+id+"/up", 2)

				// tcp -> websocket, every QoS.
				for q := byte(0); q <= 2; q++ {
					tcp.publish(uint16(10+q), "web/"+id+"/down", fmt.Sprintf("to browser q%d", q), q, false)
					if p := ws.expectPublish("web/"+id+"/down", fmt.Sprintf("to browser q%d", q)); p.QoS != q {
						t.Fatalf("websocket client got QoS %d, want %d", p.QoS, q)
					}
				}
				// websocket -> tcp, every QoS.
				for q := byte(0); q <= 2; q++ {
					ws.publish(uint16(20+q), "web/"+id+"/up", fmt.Sprintf("from browser q%d", q), q, false)
					if p := tcp.expectPublish("web/"+id+"/up", fmt.Sprintf("from browser q%d", q)); p.QoS != q {
						t.Fatalf("tcp client got QoS %d, want %d", p.QoS, q)
					}
				}
				// A large message spans several TCP segments inside one
				// websocket message.
				big := strings.Repeat("0123456789abcdef", 8192)
				tcp.publish(30, "web/"+id+"/down", big, 1, false)
				ws.expectPublish("web/"+id+"/down", big)
				ws.disconnect()
				tcp.disconnect()
			})
		}
	}

	t.Run("mtls over wss", func(t *testing.T) {
		// The client certificate's CN is the username on a wss listener too.
		certFile, keyFile := pki.clientCert(t, "device42")
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{cert},
			MinVersion: tls.VersionTLS12}}
		t.Cleanup(tr.CloseIdleConnections)
		url := "wss://" + addrs["wssm"].String() + "/mqtt"
		for _, v := range versions() {
			ws := wsClient(t, url, &http.Client{Transport: tr}, v)
			id := "wssm-" + vname(v)
			wsConnect(t, ws, id)
			b.mu.Lock()
			user := b.sessions[id].info.Username
			b.mu.Unlock()
			if user != "device42" {
				t.Fatalf("%s: username %q, want the certificate CN device42", vname(v), user)
			}
			ws.disconnect()
		}
		// Without a certificate the TLS handshake, and so the dial, fails.
		if wc, err := wsDial(t, url, hc, "mqtt"); err == nil {
			wc.CloseNow()
			t.Fatal("wss dial without a client certificate succeeded on a listener that requires one")
		}
	})

	t.Run("paho over wss", func(t *testing.T) {
		wc, err := wsDial(t, urls["wss"], hc, "mqtt")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel) // after the paho client's own cleanup has disconnected
		nc := websocket.NetConn(ctx, wc, websocket.MessageBinary)
		pc, recv := pahoClient(t, nc, "paho-wss")
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if _, err := pc.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "web/paho", QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
		tcp := mustConnect(t, tcpAddr, packet.V5, "tcp-for-paho")
		tcp.send(&packet.Publish{Topic: "web/paho", Payload: []byte("hi paho"), QoS: 1, PacketID: 5,
			Properties: userPropsV5("via", "tcp")})
		if a := expect[*packet.Ack](tcp); a.Kind != packet.TypePuback || a.ReasonCode != 0 {
			t.Fatalf("got %s 0x%02x, want PUBACK success", a.Kind, byte(a.ReasonCode))
		}
		p := pahoRecv(t, recv)
		if p.Topic != "web/paho" || string(p.Payload) != "hi paho" || p.QoS != 1 ||
			p.Properties == nil || p.Properties.User.Get("via") != "tcp" {
			t.Fatalf("paho over wss received %+v", p)
		}
	})
}

func userPropsV5(kv ...string) packet.Properties {
	var p packet.Properties
	for i := 0; i+1 < len(kv); i += 2 {
		p.User = append(p.User, packet.UserProperty{Key: kv[i], Value: kv[i+1]})
	}
	p.Set(packet.PropUser)
	return p
}

func TestInteropWebsocketNeedsSubprotocol(t *testing.T) {
	b, _ := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "ws", Kind: KindWS, Address: "127.0.0.1:0", AllowAnonymous: true},
	}})
	url := "ws://" + b.Addrs()["ws"].String() + "/mqtt"
	for _, offer := range [][]string{nil, {"chat"}} {
		t.Run(fmt.Sprintf("offer %v", offer), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			wc, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: offer})
			if resp != nil && resp.Body != nil {
				resp.Body.Close()
			}
			if err != nil {
				// Refused at the handshake: that must be an HTTP answer,
				// not a dead listener.
				if resp == nil || resp.StatusCode < 400 {
					t.Fatalf("dial failed without an HTTP refusal: %v", err)
				}
				return
			}
			defer wc.CloseNow()
			// Accepted at the HTTP level: the broker must close it with
			// 1002 before any MQTT is spoken.
			connect := packet.Append(nil, &packet.Connect{ProtocolName: "MQTT", ProtocolVersion: packet.V311,
				ClientID: "nosub", CleanStart: true}, packet.V311)
			_ = wc.Write(ctx, websocket.MessageBinary, connect)
			typ, data, err := wc.Read(ctx)
			if err == nil {
				t.Fatalf("got a %v message %x without the mqtt subprotocol", typ, data)
			}
			if st := websocket.CloseStatus(err); st != websocket.StatusProtocolError {
				t.Fatalf("read error %v (close status %d), want a close with %d",
					err, st, websocket.StatusProtocolError)
			}
			if brokerHasSession(b, "nosub") {
				t.Fatal("a session was created without the mqtt subprotocol")
			}
		})
	}
	// Wrong path: not a websocket endpoint.
	if wc, err := wsDial(t, "ws://"+b.Addrs()["ws"].String()+"/other", nil, "mqtt"); err == nil {
		wc.CloseNow()
		t.Fatal("websocket accepted on a path other than WSPath")
	}
}

// --- per-listener authentication ---------------------------------------------

func TestInteropListenerAuth(t *testing.T) {
	pw := makePasswd(t, [2]string{"carol", "c4rol"})
	b, _ := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "open", Address: "127.0.0.1:0", AllowAnonymous: true},
		{Name: "locked", Address: "127.0.0.1:0", PasswordFile: pw},
	}})
	addrs := b.Addrs()
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			open := newMosq(t, addrs["open"].String(), v)
			locked := newMosq(t, addrs["locked"].String(), v)
			tp := "listeners/" + v
			id := "anon-" + v
			sub := open.sub(t, "-i", id, "-t", tp, "-q", "1", "-C", "2", "-W", "10", "-F", "%t %p")
			waitSubscribed(t, b, sub, id, tp)

			// The locked listener refuses anonymous and wrong passwords.
			p := locked.pub(t, "-t", tp, "-q", "1", "-m", "anonymous")
			expectRefused(t, p, "anonymous on the locked listener", refusedExit(v, exitNotAuthorized))
			p = locked.pub(t, "-u", "carol", "-P", "wrong", "-t", tp, "-q", "1", "-m", "wrong password")
			expectRefused(t, p, "wrong password on the locked listener", refusedExit(v, exitBadCredentials))
			locked.pub(t, "-u", "carol", "-P", "c4rol", "-t", tp, "-q", "1", "-m", "from locked").mustSucceed(t)
			// The open listener has no password file: anonymous and any
			// username are accepted there.
			open.pub(t, "-u", "carol", "-P", "anything", "-t", tp, "-q", "1", "-m", "from open").mustSucceed(t)
			expectLines(t, "open listener's mosquitto_sub", sub.mustSucceed(t), tp+" from locked", tp+" from open")
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
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

// A failed wss handshake is reported through the broker's slog logger,
// never through the standard library's global log package.
func TestInteropWSSHandshakeErrorLoggedBySlog(t *testing.T) {
	var std lockedBuffer
	prev := log.Writer()
	log.SetOutput(&std)
	t.Cleanup(func() { log.SetOutput(prev) })

	var brokerLog lockedBuffer
	pki := newTestPKI(t)
	b, _ := startBroker(t, Options{
		Logger: slog.New(slog.NewTextHandler(&brokerLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Listeners: []ListenerOptions{{Name: "wssm", Kind: KindWSS, Address: "127.0.0.1:0",
			CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.caFile, RequireClientCert: true}},
	})
	url := "wss://" + b.Addrs()["wssm"].String() + "/mqtt"
	if wc, err := wsDial(t, url, tlsHTTPClient(t, pki.pool), "mqtt"); err == nil {
		wc.CloseNow()
		t.Fatal("wss dial without a client certificate succeeded")
	}
	eventually(t, 5*time.Second, "the handshake failure in the broker's log", func() bool {
		return strings.Contains(brokerLog.String(), "certificate")
	})
	if s := std.String(); s != "" {
		t.Fatalf("the wss listener wrote to the global log package: %q", s)
	}
}
