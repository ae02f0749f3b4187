package blackbox

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// QoS 2 exactly once across restarts of outpost: messages published at
// QoS 2 drain to mosquitto (a persistent cloud session with a session
// expiry) over a QoS 2 out-rule, paced so that outpost is killed with
// SIGKILL twice in the middle of the flow. outpost records each QoS 2
// flight (packet identifier, PUBLISH sent or PUBREC received) before the
// packet goes out, and a restarted outpost resumes the flights with their
// packet identifiers over the resumed cloud session: a subscriber at the
// cloud, connected all along at QoS 2, gets every message exactly once.
func TestQoS2ExactlyOnceAcrossKill9(t *testing.T) {
	const n = 1500
	c := newSFCloud(t)
	c.start()
	t.Cleanup(c.stop)

	// The cloud subscriber: a paho.golang client in this process with a
	// 5.0 session at QoS 2, connected all along, counting each payload.
	// (mosquitto_sub 2.0.11 at QoS 2 sometimes drops the connection with a
	// protocol error when the broker is busy; a subscriber that reconnects
	// loses its receive state, and its duplicates would be blamed on
	// outpost.)
	var mu sync.Mutex
	counts := map[int]int{}
	distinct := 0
	subErr := make(chan error, 1)
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.port), 5*time.Second)
	if err != nil {
		t.Fatalf("subscriber dial: %v", err)
	}
	sub := paho.NewClient(paho.ClientConfig{
		Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			x, err := strconv.Atoi(strings.TrimSpace(string(pr.Packet.Payload)))
			if err != nil {
				select {
				case subErr <- fmt.Errorf("payload %q is not a number", pr.Packet.Payload):
				default:
				}
				return true, nil
			}
			mu.Lock()
			if counts[x] == 0 {
				distinct++
			}
			counts[x]++
			mu.Unlock()
			return true, nil
		}},
		OnClientError: func(err error) {
			select {
			case subErr <- fmt.Errorf("subscriber: %w", err):
			default:
			}
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case subErr <- fmt.Errorf("subscriber disconnected by the cloud: reason %d", d.ReasonCode):
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sub.Connect(ctx, &paho.Connect{ClientID: "q2-sub", CleanStart: true, KeepAlive: 60}); err != nil {
		t.Fatalf("subscriber connect: %v", err)
	}
	t.Cleanup(func() { _ = sub.Disconnect(&paho.Disconnect{}) })
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "site7/#", QoS: 2}}}); err != nil {
		t.Fatalf("subscriber subscribe: %v", err)
	}
	checkSub := func() {
		t.Helper()
		select {
		case err := <-subErr:
			t.Fatalf("%v", err)
		default:
		}
	}
	got := func() int {
		mu.Lock()
		defer mu.Unlock()
		return distinct
	}

	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`
[[uplink]]
name = "site7"
url = "mqtt://127.0.0.1:%d"
client_id = "outpost-q2"
session_expiry = "1h"
reconnect_min = "50ms"
reconnect_max = "200ms"
rate_limit = 400
rate_burst = 20

[[uplink.rule]]
direction = "out"
local = "sensors/#"
remote = "site7/sensors/#"
max_qos = 2
`, c.port)
	o := runOutpost(t, dir, addr, cfg)

	publishNumbers(t, addr, 2, sfTopic, n)

	// Kill twice while the flow runs, each time after some more arrived.
	for _, at := range []int{n / 4, n / 2} {
		deadline := time.Now().Add(60 * time.Second)
		for got() < at {
			checkSub()
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d at the cloud after 60s", got(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		o.kill9()
		if got() >= n {
			t.Fatalf("the drain was over before the kill")
		}
		t.Logf("killed with %d of %d at the cloud", got(), n)
		o = runOutpost(t, dir, addr, cfg)
	}

	deadline := time.Now().Add(2 * time.Minute)
	for got() < n {
		checkSub()
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d at the cloud after the restarts", got(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Anything still in flight would come now: give it a moment.
	quiet := time.Now().Add(time.Second)
	for time.Now().Before(quiet) {
		time.Sleep(50 * time.Millisecond)
	}
	checkSub()
	mu.Lock()
	var dups []string
	for x, k := range counts {
		if k > 1 {
			dups = append(dups, fmt.Sprintf("%d×%d", x, k))
		}
		if x < 1 || x > n {
			t.Errorf("unexpected message %d", x)
		}
	}
	mu.Unlock()
	if len(dups) > 0 {
		t.Fatalf("messages that arrived more than once: %v", dups)
	}
	if !strings.Contains(o.logs.String(), "resuming QoS 2 flights") {
		t.Log("the last restart found no QoS 2 flight in progress")
	}
	o.signal(syscall.SIGTERM)
	if code := o.waitExit(10 * time.Second); code != 0 {
		t.Errorf("outpost exited %d after SIGTERM; want 0", code)
	}
}

// publishNumbers publishes the numbers 1 to n (8 digits) to topic at
// outpost's addr with mosquitto_pub at qos, and waits until it is done:
// outpost acknowledged every one.
func publishNumbers(t *testing.T, addr string, qos int, topic string, n int) {
	t.Helper()
	bin := peer(t, "mosquitto_pub")
	var lines strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&lines, "%08d\n", i)
	}
	host, port, _ := strings.Cut(addr, ":")
	pub := startProcStdin(t, strings.NewReader(lines.String()), bin, "-h", host, "-p", port,
		"-q", strconv.Itoa(qos), "-t", topic, "-l")
	select {
	case <-pub.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("mosquitto_pub did not finish")
	}
	if code := pub.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("mosquitto_pub exited %d: %s", code, pub.output())
	}
}
