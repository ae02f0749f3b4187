//go:build linux

package firmware_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/internal/ptytest"
)

// The Linux example nodes of firmware/examples/linux (the C MQTT-SN client
// library over UDP, and over a serial line in the raw framing) against a
// real outpost: each publishes at QoS -1, 0, 1 and 2, which a real
// mosquitto_sub on the LAN side gets; subscribes to a wildcard and gets what
// mosquitto_pub publishes (through the gateway's REGISTER); sleeps, and gets
// what was published while it slept when it wakes; and leaves a will that
// the gateway publishes when the node dies; and publishes and gets a
// publish with every message wrapped in a forwarder encapsulation.
func TestExampleNodesEndToEnd(t *testing.T) {
	root := bridgeRoot(t)
	bridgePeer(t, "mosquitto_sub")
	pub := bridgePeer(t, "mosquitto_pub")
	mk := bridgePeer(t, "make")
	bridgePeer(t, "cc")
	dir := t.TempDir()

	outpostBin := filepath.Join(dir, "outpost")
	bridgeRun(t, root, "go", "build", "-o", outpostBin, "./cmd/outpost")
	bridgeRun(t, root, mk, "-s", "-C", "firmware", "BUILD="+dir, "examples")

	// The serial line: the node opens one pty, outpost the other, and the
	// test copies the bytes between their masters, as a cable would.
	nodeTTY, gwTTY := ptyCable(t)
	udpPort := freeUDPPort(t)
	port := bridgeFreePort(t)
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

[mqttsn.predefined]
5 = "fw/pre"

[[mqttsn.udp]]
address = "127.0.0.1:%d"
allow_qos_minus1 = true

[[serial]]
name = "uart"
device = %q
framing = "raw"
allow_qos_minus1 = true
`, filepath.Join(dir, "data"), port, udpPort, gwTTY)
	file := filepath.Join(dir, "outpost.toml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := bridgeStart(t, "outpost", nil, outpostBin, "run", "-c", file)
	bridgeWaitTCP(t, gw, fmt.Sprintf("127.0.0.1:%d", port))
	sub := bridgeSubscribe(t, port, "fw/#", "fw/probe")

	links := []struct {
		name, bin string
		args      []string
	}{
		{"udp", filepath.Join(dir, "mqttsn-udp-node"), []string{"-g", fmt.Sprintf("127.0.0.1:%d", udpPort)}},
		{"serial", filepath.Join(dir, "mqttsn-serial-node"), []string{"-d", nodeTTY}},
	}
	for _, l := range links {
		node := func(name string, args ...string) []string {
			return append(append(append([]string(nil), l.args...), "-i", "fw-"+l.name+"-"+name, "-x", "60"), args...)
		}
		t.Run(l.name, func(t *testing.T) {
			t.Run("publish", func(t *testing.T) {
				var want []string
				for q := -1; q <= 2; q++ {
					msg := fmt.Sprintf("%s-qos%d", l.name, q)
					args := node(fmt.Sprintf("q%d", q+1), "-q", strconv.Itoa(q), "-m", msg)
					topic := fmt.Sprintf("fw/%s/q%d", l.name, q)
					if q == -1 {
						// §6.8: QoS -1 needs a pre-defined id (or a short name)
						args, topic = append(args, "-P", "5"), "fw/pre"
					} else {
						args = append(args, "-t", topic)
					}
					p := bridgeStart(t, msg, nil, l.bin, args...)
					if err := p.wait(t); err != nil {
						t.Fatalf("%s: %v", msg, err)
					}
					if !strings.Contains(p.out.String(), "published") {
						t.Fatalf("%s printed no published line", msg)
					}
					// QoS -1 reaches the broker as QoS 0
					want = append(want, fmt.Sprintf("%d %s %s", max(q, 0), topic, msg))
				}
				sub.expect(t, want...)

				// §6.7, §6.8: QoS -1 to a short topic name, whose
				// two characters are the topic at the broker; a
				// second subscriber (its own client id) gets it.
				short := "z" + l.name[:1]
				shortSub := bridgeSubscribe(t, port, short, short)
				msg := l.name + "-short"
				p := bridgeStart(t, msg, nil, l.bin, node("short", "-T", short, "-q", "-1", "-m", msg)...)
				if err := p.wait(t); err != nil {
					t.Fatalf("%s: %v", msg, err)
				}
				shortSub.expect(t, "0 "+short+" "+msg)
			})

			t.Run("subscribe", func(t *testing.T) {
				topic := "cmd/fw-" + l.name + "/led"
				p := bridgeStart(t, "sub", nil, l.bin, node("sub", "-s", "cmd/fw-"+l.name+"/+", "-Q", "1", "-c", "2")...)
				p.waitLine(t, "subscribed", func(s string) bool { return strings.HasPrefix(s, "subscribed ") })
				bridgePublish(t, pub, port, topic, "on", 1)
				bridgePublish(t, pub, port, topic, "off", 2)
				p.waitLine(t, "on", func(s string) bool { return s == "msg "+topic+" on" })
				p.waitLine(t, "off", func(s string) bool { return s == "msg "+topic+" off" })
				if err := p.wait(t); err != nil {
					t.Fatalf("node: %v", err)
				}
			})

			t.Run("sleep", func(t *testing.T) {
				topic := "cmd/fw-" + l.name + "/sleep"
				wake, trigger, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer trigger.Close()
				p := bridgeStart(t, "sleeper", []*os.File{wake}, l.bin,
					node("sleep", "-s", topic, "-Q", "1", "-S", "60", "-W", "0", "-w", "-1", "-I", "3")...)
				wake.Close()
				p.waitLine(t, "asleep", func(s string) bool { return s == "asleep" })
				bridgePublish(t, pub, port, topic, "while-asleep", 1)
				// Wake until the buffered message arrives: the gateway
				// may take it a moment after mosquitto_pub returns.
				deadline := time.Now().Add(bridgeWait)
				for cycles := 1; !contains(p.out.snapshot(), "msg "+topic+" while-asleep"); cycles++ {
					if time.Now().After(deadline) {
						t.Fatal("the node never got the message published while it slept")
					}
					if _, err := io.WriteString(trigger, "\n"); err != nil {
						t.Fatal(err)
					}
					p.waitLine(t, "wake-done", func(string) bool { return count(p.out.snapshot(), "wake-done") >= cycles })
				}
				trigger.Close() // no more wakes: the node disconnects
				if err := p.wait(t); err != nil {
					t.Fatalf("node: %v", err)
				}
				// §6.14: delivered while awake, after sleeping, before the PINGRESP
				lines := p.out.snapshot()
				asleep, msg := index(lines, "asleep"), index(lines, "msg "+topic+" while-asleep")
				done := -1
				for i := msg + 1; i < len(lines); i++ {
					if lines[i] == "wake-done" {
						done = i
						break
					}
				}
				if !(asleep >= 0 && asleep < msg && msg < done) || count(lines, "msg "+topic+" while-asleep") != 1 {
					t.Fatalf("want asleep, then the message once, then wake-done; got %q", lines)
				}
			})

			// §5.5: the node wraps every message in a forwarder
			// encapsulation with its Wireless Node Id, as a node behind
			// a forwarder appears to the gateway; the gateway answers
			// encapsulated, and the publishes go both ways.
			t.Run("encapsulated", func(t *testing.T) {
				topic, cmd := "fw/"+l.name+"/enc", "cmd/fw-"+l.name+"/enc"
				p := bridgeStart(t, "encap", nil, l.bin,
					node("enc", "-E", "0a0b", "-s", cmd, "-Q", "2", "-t", topic, "-q", "2", "-m", "wrapped", "-c", "1")...)
				p.waitLine(t, "published", func(s string) bool { return strings.HasPrefix(s, "published ") })
				sub.expect(t, "2 "+topic+" wrapped")
				bridgePublish(t, pub, port, cmd, "unwrapped", 2)
				p.waitLine(t, "the command", func(s string) bool { return s == "msg "+cmd+" unwrapped" })
				if err := p.wait(t); err != nil {
					t.Fatalf("node: %v", err)
				}
			})

			t.Run("will", func(t *testing.T) {
				topic := "fw/will/" + l.name
				p := bridgeStart(t, "will", nil, l.bin,
					node("will", "-k", "2", "-u", topic, "-U", "gone", "-s", "cmd/fw-"+l.name+"/none", "-c", "1")...)
				p.waitLine(t, "subscribed", func(s string) bool { return strings.HasPrefix(s, "subscribed ") })
				_ = p.cmd.Process.Kill() // the node dies without DISCONNECT
				sub.expect(t, "0 "+topic+" gone")
			})
		})
	}
}

func contains(lines []string, s string) bool { return index(lines, s) >= 0 }

func index(lines []string, s string) int {
	for i, l := range lines {
		if l == s {
			return i
		}
	}
	return -1
}

func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// ptyCable opens two pty pairs and copies between their masters in both
// directions; it returns the two slave paths, the ends of the cable.
func ptyCable(t *testing.T) (string, string) {
	t.Helper()
	am, a := ptytest.Open(t)
	bm, b := ptytest.Open(t)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(bm, am) }()
	go func() { defer wg.Done(); _, _ = io.Copy(am, bm) }()
	t.Cleanup(func() {
		am.Close()
		bm.Close()
		wg.Wait()
	})
	return a, b
}

// The Linux UDP example node finds a real outpost without being told its
// address (MQTT-SN 1.2 §6.1): by a SEARCHGW sent to the address of -B,
// which outpost answers with GWINFO, and by an ADVERTISE that outpost sends
// every second to its transport's broadcast address, here the node's own
// loopback port. On loopback a unicast address stands for the broadcast
// one on both sides. Each node then connects (or, at QoS -1, does not) and
// publishes, and mosquitto_sub gets the messages.
func TestExampleNodeDiscovery(t *testing.T) {
	root := bridgeRoot(t)
	bridgePeer(t, "mosquitto_sub")
	bridgePeer(t, "mosquitto_pub")
	mk := bridgePeer(t, "make")
	bridgePeer(t, "cc")
	dir := t.TempDir()
	bridgeRun(t, root, mk, "-s", "-C", "firmware", "BUILD="+dir, filepath.Join(dir, "mqttsn-udp-node"))
	bin := filepath.Join(dir, "mqttsn-udp-node")

	udpPort, advPort := freeUDPPort(t), freeUDPPort(t)
	port, _, _ := bridgeOutpost(t, root, dir, fmt.Sprintf(`[mqttsn]
gateway_id = 7
advertise_interval = "1s"

[mqttsn.predefined]
5 = "fw/disc/pre"

[[mqttsn.udp]]
address = "127.0.0.1:%d"
broadcast = "127.0.0.1:%d"
allow_qos_minus1 = true
`, udpPort, advPort))
	sub := bridgeSubscribe(t, port, "fw/disc/#", "fw/disc/probe")
	gwAddr := fmt.Sprintf("127.0.0.1:%d", udpPort)

	run := func(t *testing.T, name string, args ...string) *bridgeProc {
		t.Helper()
		p := bridgeStart(t, name, nil, bin, append([]string{"-i", "fw-" + name, "-x", "60"}, args...)...)
		if err := p.wait(t); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, want := range []string{"gateway 7", "published"} {
			if !slices.ContainsFunc(p.out.snapshot(), func(l string) bool { return strings.HasPrefix(l, want) }) {
				t.Fatalf("%s printed no %q line", name, want)
			}
		}
		return p
	}

	t.Run("searchgw", func(t *testing.T) {
		p := run(t, "search", "-D", "-B", gwAddr, "-t", "fw/disc/search", "-q", "1", "-m", "found-by-search")
		if !contains(p.out.snapshot(), "connected") {
			t.Fatalf("the node did not connect: %q", p.out.snapshot())
		}
		sub.expect(t, "1 fw/disc/search found-by-search")
	})

	t.Run("searchgw-qos-1", func(t *testing.T) {
		// §6.8: after the search, a QoS -1 PUBLISH without connecting,
		// to a pre-defined topic id and to a short topic name
		short := bridgeSubscribe(t, port, "zd", "zd")
		p := run(t, "search-pre", "-D", "-B", gwAddr, "-P", "5", "-q", "-1", "-m", "pre-after-search")
		if contains(p.out.snapshot(), "connected") {
			t.Fatalf("a QoS -1 node connected: %q", p.out.snapshot())
		}
		sub.expect(t, "0 fw/disc/pre pre-after-search")
		run(t, "search-short", "-D", "-B", gwAddr, "-T", "zd", "-q", "-1", "-m", "short-after-search")
		short.expect(t, "0 zd short-after-search")
	})

	t.Run("advertise", func(t *testing.T) {
		// The node sends nothing until it has heard an ADVERTISE, so
		// the gateway's address it connects to can only come from one.
		// -a 30: lost only after 30 missed ADVERTISEs, however slow
		// the machine.
		run(t, "adv", "-A", "-L", fmt.Sprint(advPort), "-a", "30", "-t", "fw/disc/adv", "-q", "2", "-m", "found-by-advertise")
		sub.expect(t, "2 fw/disc/adv found-by-advertise")
	})

	t.Run("nothing-to-find", func(t *testing.T) {
		// A search nobody answers finds nothing (the node gives up at
		// its -x deadline): what the other subtests found came from
		// the gateway's answers.
		dead := freeUDPPort(t)
		p := bridgeStart(t, "lonely", nil, bin, "-i", "fw-lonely", "-x", "3", "-D", "-B", fmt.Sprintf("127.0.0.1:%d", dead),
			"-P", "5", "-q", "-1", "-m", "never")
		if err := p.wait(t); err == nil || len(p.out.snapshot()) != 0 {
			t.Fatalf("the node found a gateway where there is none (%v): %q", err, p.out.snapshot())
		}
		if !slices.ContainsFunc(p.errs.snapshot(), func(l string) bool { return strings.HasPrefix(l, "error ") }) {
			t.Fatalf("want an error, got %q", p.errs.snapshot())
		}
	})
}
