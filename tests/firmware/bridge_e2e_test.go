//go:build linux

package firmware_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/outpost-gw/outpost/internal/ptytest"
	"github.com/outpost-gw/outpost/mqttsn/client"
	"github.com/outpost-gw/outpost/mqttsn/packet"
	"github.com/outpost-gw/outpost/serialbus"
)

// The bridge board's firmware core, run on the host as bridge-host between
// a pty to a real outpost (framing "bridge") and one pty per node (framing
// "raw"), carries three nodes at once: two firmware example nodes
// (firmware/examples/linux, the C MQTT-SN client) and the Go MQTT-SN client.
// Every node publishes at QoS -1, 0, 1 and 2, which a real mosquitto_sub on
// the LAN side gets; every node subscribes, and gets what mosquitto_pub
// publishes; outpost's status.json shows the board's STATUS and each node's
// RSSI and SNR as bridge-host reported them.
func TestBridgeBoardEndToEnd(t *testing.T) {
	b := bridgeSetup(t)
	root, dir, pub, hostBin, nodeBin := b.root, b.dir, b.pub, b.hostBin, b.nodeBin
	usbMaster, usbPath := ptytest.Open(t)
	aMaster, aPath := ptytest.Open(t)
	bMaster, bPath := ptytest.Open(t)
	gMaster, gPath := ptytest.Open(t)
	port, dataDir, _ := bridgeOutpost(t, root, dir, bridgeLoraConfig(usbPath))

	// The board: its USB line and the nodes' ptys are the masters this
	// test opened, passed as descriptors 3 to 6.
	host := bridgeStart(t, "bridge-host", []*os.File{usbMaster, aMaster, bMaster, gMaster}, hostBin,
		"--usb", "fd:3",
		"--node", "0a0b=fd:4,rssi=-87,snr=25",
		"--node", "0x0C0D=fd:5,rssi=-101,snr=-20",
		"--node", "0e0f=fd:6,rssi=-60,snr=40",
		"-v")

	bridgeWaitBoard(t, dataDir, 0)

	sub := bridgeSubscribe(t, port, "sensors/#", "sensors/probe")

	// Uplink: both example nodes at once, each at QoS -1, 0, 1 and 2.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for _, n := range []struct{ id, path string }{{"nodeA", aPath}, {"nodeB", bPath}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, q := range []int{-1, 0, 1, 2} {
				msg := fmt.Sprintf("%s-q%d", n.id, q)
				out, err := bridgeCommand(t, nodeBin, "-d", n.path, "-i", n.id, "-P", "5", "-q", strconv.Itoa(q), "-m", msg, "-x", "60").CombinedOutput()
				if err != nil || !strings.Contains(string(out), "published") {
					errs <- fmt.Errorf("%s at QoS %d: %v\n%s", n.id, q, err, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	// QoS -1 arrives as QoS 0; the subscriber asked for 2, so each message
	// comes at the QoS it was published at.
	sub.expect(t,
		"0 sensors/temp nodeA-q-1", "0 sensors/temp nodeA-q0", "1 sensors/temp nodeA-q1", "2 sensors/temp nodeA-q2",
		"0 sensors/temp nodeB-q-1", "0 sensors/temp nodeB-q0", "1 sensors/temp nodeB-q1", "2 sensors/temp nodeB-q2")

	// Downlink: both nodes subscribe (a wildcard, and a name) and get what
	// mosquitto_pub publishes, at QoS 0, 1 and 2.
	na := bridgeStart(t, "nodeA", nil, nodeBin, "-d", aPath, "-i", "nodeA", "-s", "cmd/nodeA/#", "-Q", "1", "-c", "2", "-x", "60")
	nb := bridgeStart(t, "nodeB", nil, nodeBin, "-d", bPath, "-i", "nodeB", "-s", "cmd/nodeB/led", "-Q", "2", "-c", "1", "-x", "60")
	isSubscribed := func(l string) bool { return strings.HasPrefix(l, "subscribed ") }
	na.waitLine(t, "subscribed", isSubscribed)
	nb.waitLine(t, "subscribed", isSubscribed)
	bridgePublish(t, pub, port, "cmd/nodeA/led", "on", 1)
	bridgePublish(t, pub, port, "cmd/nodeA/fan", "off", 0)
	bridgePublish(t, pub, port, "cmd/nodeB/led", "blink", 2)
	for _, c := range []struct {
		p    *bridgeProc
		want string
	}{{na, "msg cmd/nodeA/led on"}, {na, "msg cmd/nodeA/fan off"}, {nb, "msg cmd/nodeB/led blink"}} {
		c.p.waitLine(t, c.want, bridgeIs(c.want))
	}
	for _, p := range []*bridgeProc{na, nb} {
		p.waitLine(t, "disconnected", bridgeIs("disconnected"))
		if err := p.wait(t); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}

	// Sleep (MQTT-SN 1.2 §6.14): node B sleeps; a message for it waits in
	// outpost and comes over the board when the node wakes with PINGREQ,
	// before the PINGRESP.
	ns := bridgeStart(t, "nodeB-sleep", nil, nodeBin, "-d", bPath, "-i", "nodeB", "-s", "cmd/nodeB/wake", "-Q", "1",
		"-S", "300", "-W", "1", "-w", "-1", "-x", "60")
	ns.waitLine(t, "asleep", bridgeIs("asleep"))
	bridgePublish(t, pub, port, "cmd/nodeB/wake", "while-asleep", 1)
	if n := len(ns.out.snapshot()); ns.out.snapshot()[n-1] != "asleep" {
		t.Fatalf("the sleeping node printed %q", ns.out.snapshot()[n-1])
	}
	if _, err := ns.in.Write([]byte("wake\n")); err != nil {
		t.Fatal(err)
	}
	got := ns.waitLine(t, "the buffered message", bridgeIs("msg cmd/nodeB/wake while-asleep"))
	if woke := ns.waitLine(t, "wake-done", bridgeIs("wake-done")); woke < got {
		t.Fatalf("PINGRESP came before the buffered message: %q", ns.out.snapshot())
	}
	ns.waitLine(t, "disconnected", bridgeIs("disconnected"))
	if err := ns.wait(t); err != nil {
		t.Fatalf("%s: %v", ns.name, err)
	}

	// The Go MQTT-SN client as a third node, over its raw pty.
	bridgeGoNode(t, gPath, sub, pub, port)

	// Each node's RSSI and SNR, as the board measured them, in outpost's status.
	want := map[string][2]int{"0a0b": {-87, 25}, "0c0d": {-101, -20}, "0e0f": {-60, 40}}
	bridgeWaitStatus(t, dataDir, func(st *bridgeStatus) error {
		nodes := st.Serial[0].Nodes
		for id, w := range want {
			n, ok := nodes[id]
			if !ok || int(n.RSSI) != w[0] || int(n.SNR) != w[1] || n.Frames == 0 {
				return fmt.Errorf("node %s: %+v (present %v); want RSSI %d SNR %d", id, n, ok, w[0], w[1])
			}
		}
		return nil
	})

	// The board lost nothing and saw no damaged frame; it exits cleanly
	// (a sanitizer report would make the exit status 1).
	if err := host.stop(t); err != nil {
		t.Fatalf("bridge-host: %v", err)
	}
	counters := host.errs.String()
	t.Logf("bridge-host: %s", counters[strings.LastIndex(counters, "bridge-host: usb"):])
	for _, re := range []string{`errors checksum 0 framing 0 unknown 0`, `rx \d+ dropped 0`, `failed 0 \(`} {
		if !regexp.MustCompile(re).MatchString(counters) {
			t.Errorf("bridge-host counters do not match %q:\n%s", re, counters)
		}
	}
	if m := regexp.MustCompile(`tx data (\d+) sent (\d+)`).FindStringSubmatch(counters); m == nil || m[1] != m[2] || m[1] == "0" {
		t.Errorf("bridge-host did not send every TX_DATA: %v", m)
	}
}

// The gateway restarts while the board stays: the new outpost asks the
// board for its STATUS when it opens the port, and a node's messages go
// through the board to the new process as they went to the old one.
func TestBridgeBoardGatewayRestart(t *testing.T) {
	b := bridgeSetup(t)
	root, dir, hostBin, nodeBin := b.root, b.dir, b.hostBin, b.nodeBin
	usbMaster, usbPath := ptytest.Open(t)
	aMaster, aPath := ptytest.Open(t)
	port, dataDir, restart := bridgeOutpost(t, root, dir, bridgeLoraConfig(usbPath))
	host := bridgeStart(t, "bridge-host", []*os.File{usbMaster, aMaster}, hostBin, "--usb", "fd:3", "--node", "0a0b=fd:4")
	first := bridgeWaitBoard(t, dataDir, 0)

	publish := func(qos int, msg string) {
		t.Helper()
		out, err := bridgeCommand(t, nodeBin, "-d", aPath, "-i", "nodeA", "-P", "5", "-q", strconv.Itoa(qos), "-m", msg, "-x", "60").CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
	}
	sub := bridgeSubscribe(t, port, "sensors/#", "sensors/probe")
	publish(1, "before")
	sub.expect(t, "1 sensors/temp before")
	_ = sub.p.stop(t) // it may have gone with the broker already

	restart()
	bridgeWaitBoard(t, dataDir, first)
	sub = bridgeSubscribe(t, port, "sensors/#", "sensors/probe")
	publish(2, "after")
	sub.expect(t, "2 sensors/temp after")

	if err := host.stop(t); err != nil {
		t.Fatalf("bridge-host: %v", err)
	}
	if c := host.errs.String(); !strings.Contains(c, "status requests 2 ") || !strings.Contains(c, "errors checksum 0 framing 0 unknown 0") {
		t.Fatalf("bridge-host should have answered one STATUS_REQUEST per gateway start and seen no damaged frame:\n%s", c)
	}
}

// A board whose own duty-cycle budget is smaller than any packet's time on
// air refuses every TX_DATA with a failed TX_STATUS (reason 2), which
// outpost counts; the node's uplink still reaches outpost, and the node,
// never answered, gives up.
func TestBridgeBoardDutyCycleRefusal(t *testing.T) {
	b := bridgeSetup(t)
	root, dir, hostBin, nodeBin := b.root, b.dir, b.hostBin, b.nodeBin
	usbMaster, usbPath := ptytest.Open(t)
	aMaster, aPath := ptytest.Open(t)
	_, dataDir, _ := bridgeOutpost(t, root, dir, bridgeLoraConfig(usbPath))
	// 5 ppm of an hour is 18 ms on air; a 3-byte CONNACK at 1000 bit/s takes 24 ms.
	host := bridgeStart(t, "bridge-host", []*os.File{usbMaster, aMaster}, hostBin, "--usb", "fd:3", "--node", "0a0b=fd:4",
		"--duty-cycle", "5", "--bit-rate", "1000")
	bridgeWaitBoard(t, dataDir, 0)

	out, err := bridgeCommand(t, nodeBin, "-d", aPath, "-i", "nodeA", "-P", "5", "-q", "1", "-m", "x", "-x", "5").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "error") {
		t.Fatalf("the node connected through a board that may not send: %v\n%s", err, out)
	}
	bridgeWaitStatus(t, dataDir, func(st *bridgeStatus) error {
		s := st.Serial[0]
		if s.TxFailures == 0 || s.Nodes["0a0b"].Frames == 0 {
			return fmt.Errorf("tx failures %d, frames from 0a0b %d", s.TxFailures, s.Nodes["0a0b"].Frames)
		}
		return nil
	})
	if err := host.stop(t); err != nil {
		t.Fatalf("bridge-host: %v", err)
	}
	c := host.errs.String()
	if m := regexp.MustCompile(`sent (\d+) failed (\d+) \(queue full 0, duty cycle (\d+)\)`).FindStringSubmatch(c); m == nil || m[1] != "0" || m[2] == "0" || m[2] != m[3] {
		t.Fatalf("bridge-host should have refused every TX_DATA for its duty cycle: %v\n%s", m, c)
	}
}

// Many nodes at once: 24 nodes, each an MQTT-SN client written by hand on
// its own raw tty, connect, publish at QoS 1 and disconnect at the same
// time through one board; mosquitto_sub gets every message, status.json
// shows every node with its own RSSI and SNR, and the board dropped nothing.
func TestBridgeBoardManyNodes(t *testing.T) {
	b := bridgeSetup(t)
	root, dir, hostBin := b.root, b.dir, b.hostBin
	usbMaster, usbPath := ptytest.Open(t)
	const n = 24
	files, args := []*os.File{usbMaster}, []string{"--usb", "fd:3"}
	paths := make([]string, n)
	for i := range n {
		m, p := ptytest.Open(t)
		files, paths[i] = append(files, m), p
		args = append(args, "--node", fmt.Sprintf("%04x=fd:%d,rssi=%d,snr=%d", 0x1000+i, 4+i, -40-i, i-12))
	}
	port, dataDir, _ := bridgeOutpost(t, root, dir, bridgeLoraConfig(usbPath))
	host := bridgeStart(t, "bridge-host", files, hostBin, args...)
	bridgeWaitBoard(t, dataDir, 0)
	sub := bridgeSubscribe(t, port, "sensors/#", "sensors/probe")

	var wg sync.WaitGroup
	errs := make(chan error, n)
	var want []string
	for i := range n {
		msg := fmt.Sprintf("m%02d", i)
		want = append(want, "1 sensors/temp "+msg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := bridgeRawNode(paths[i], fmt.Sprintf("many%02d", i), msg); err != nil {
				errs <- fmt.Errorf("node %04x: %w", 0x1000+i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	sub.expect(t, want...)
	bridgeWaitStatus(t, dataDir, func(st *bridgeStatus) error {
		for i := range n {
			id := fmt.Sprintf("%04x", 0x1000+i)
			nd, ok := st.Serial[0].Nodes[id]
			if !ok || int(nd.RSSI) != -40-i || int(nd.SNR) != i-12 || nd.Frames < 3 {
				return fmt.Errorf("node %s: %+v (present %v)", id, nd, ok)
			}
		}
		return nil
	})
	if err := host.stop(t); err != nil {
		t.Fatalf("bridge-host: %v", err)
	}
	c := host.errs.String()
	if m := regexp.MustCompile(`; rx (\d+) dropped 0 `).FindStringSubmatch(c); m == nil || m[1] != strconv.Itoa(3*n) {
		t.Fatalf("bridge-host should have passed on %d packets and dropped none: %v\n%s", 3*n, m, c)
	}
}

// bridgeRawNode is an MQTT-SN node written by hand (CONNECT, PUBLISH at
// QoS 1 to the pre-defined topic id 5, DISCONNECT) on the node's tty, in
// the raw framing: the packets' own bytes.
func bridgeRawNode(path, clientID, msg string) error {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var dec serialbus.RawDecoder
	var got [][]byte
	buf := make([]byte, 512)
	exchange := func(m packet.Message, want packet.MsgType) (packet.Message, error) {
		if _, err := f.Write(packet.Append(nil, m)); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(bridgeWait)
		for {
			for len(got) > 0 {
				r, err := packet.Decode(got[0])
				got = got[1:]
				if err != nil {
					return nil, err
				}
				if r.Type() == want {
					return r, nil
				}
			}
			if err := f.SetReadDeadline(deadline); err != nil {
				return nil, err
			}
			k, err := f.Read(buf)
			if err != nil {
				return nil, fmt.Errorf("waiting for %v: %w", want, err)
			}
			for p := buf[:k]; len(p) > 0; {
				pkt, used, err := dec.Next(p)
				p = p[used:]
				if err != nil {
					return nil, err
				}
				if pkt != nil {
					got = append(got, append([]byte(nil), pkt...))
				}
			}
		}
	}
	r, err := exchange(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte(clientID)}, packet.TypeConnack)
	if err != nil {
		return err
	}
	if ack := r.(*packet.Connack); ack.ReturnCode != packet.Accepted {
		return fmt.Errorf("CONNACK %v", ack.ReturnCode)
	}
	r, err = exchange(&packet.Publish{QoS: packet.QoS1, TopicIDType: packet.TopicIDPredefined, TopicID: 5, MsgID: 1, Data: []byte(msg)}, packet.TypePuback)
	if err != nil {
		return err
	}
	if ack := r.(*packet.Puback); ack.ReturnCode != packet.Accepted || ack.MsgID != 1 {
		return fmt.Errorf("PUBACK %+v", ack)
	}
	_, err = exchange(&packet.Disconnect{}, packet.TypeDisconnect)
	return err
}

// bridgeBoard is what every bridge board test starts from.
type bridgeBoard struct {
	root    string // the module's folder
	dir     string // the test's folder
	pub     string // mosquitto_pub
	hostBin string // bridge-host, built with the sanitizers: a memory error ends it with a failure
	nodeBin string // the firmware's serial example node
}

// bridgeSetup checks the peers of the bridge board tests (mosquitto_sub and
// _pub, make, cc) and builds bridge-host and the serial example node.
func bridgeSetup(t *testing.T) bridgeBoard {
	t.Helper()
	b := bridgeBoard{root: bridgeRoot(t), dir: t.TempDir(), pub: bridgePeer(t, "mosquitto_pub")}
	bridgePeer(t, "mosquitto_sub")
	mk := bridgePeer(t, "make")
	bridgePeer(t, "cc")
	bridgeRun(t, b.root, mk, "-s", "-C", "firmware/bridge", "-f", "bridge.mk", "bridge-host",
		"BRIDGE_BUILD="+b.dir, "BRIDGE_HOST_CFLAGS=-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all")
	b.hostBin = filepath.Join(b.dir, "bridge-host")
	b.nodeBin = filepath.Join(b.dir, "mqttsn-serial-node")
	bridgeRun(t, b.root, mk, "-s", "-C", "firmware", "BUILD="+b.dir, b.nodeBin)
	return b
}

// bridgeLoraConfig is outpost's config for a bridge board on the tty dev,
// with the pre-defined topic id 5.
func bridgeLoraConfig(dev string) string {
	return fmt.Sprintf(`[mqttsn.predefined]
5 = "sensors/temp"

[[mqttsn.udp]]
address = "127.0.0.1:0"

[[serial]]
name = "lora"
device = %q
framing = "bridge"
allow_qos_minus1 = true
`, dev)
}

// bridgeWaitBoard waits until an outpost other than the one with PID
// notPID shows bridge-host's STATUS in status.json, and returns its PID.
func bridgeWaitBoard(t *testing.T, dataDir string, notPID int) int {
	t.Helper()
	var pid int
	bridgeWaitStatus(t, dataDir, func(st *bridgeStatus) error {
		if st.PID == notPID {
			return fmt.Errorf("status.json is still the old outpost's (pid %d)", notPID)
		}
		if len(st.Serial) != 1 || st.Serial[0].Bridge == nil {
			return fmt.Errorf("no STATUS from the board yet: %+v", st.Serial)
		}
		if b := st.Serial[0].Bridge; b.Firmware != "outpost-bridge-host 0.1.0" || b.Version != 1 || b.MaxDatagram != 255 {
			return fmt.Errorf("board STATUS %+v", *b)
		}
		pid = st.PID
		return nil
	})
	return pid
}

// bridgeGoNode runs the Go MQTT-SN client (which speaks UDP) as node 0e0f: a relay
// carries its datagrams to the node's pty in the raw framing and back.
func bridgeGoNode(t *testing.T, path string, sub *bridgeSub, pub string, port int) {
	t.Helper()
	tty, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var peer struct {
		sync.Mutex
		addr net.Addr
	}
	var wg sync.WaitGroup
	relayErrs := make(chan error, 2)
	wg.Add(2)
	go func() { // client -> pty
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := relay.ReadFrom(buf)
			if err != nil {
				return
			}
			peer.Lock()
			peer.addr = from
			peer.Unlock()
			if _, err := tty.Write(buf[:n]); err != nil {
				relayErrs <- fmt.Errorf("node pty write: %w", err)
				return
			}
		}
	}()
	go func() { // pty -> client
		defer wg.Done()
		var dec serialbus.RawDecoder
		buf := make([]byte, 2048)
		for {
			n, err := tty.Read(buf)
			if err != nil {
				return
			}
			for p := buf[:n]; len(p) > 0; {
				pkt, k, err := dec.Next(p)
				p = p[k:]
				if err != nil {
					relayErrs <- fmt.Errorf("raw framing from the board: %w", err)
					continue
				}
				if pkt == nil {
					continue
				}
				peer.Lock()
				to := peer.addr
				peer.Unlock()
				if to != nil {
					_, _ = relay.WriteTo(pkt, to)
				}
			}
		}
	}()
	defer func() {
		relay.Close()
		tty.Close()
		wg.Wait()
		select {
		case err := <-relayErrs:
			t.Error(err)
		default:
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), bridgeWait)
	defer cancel()
	c, err := client.New(client.Options{Addr: relay.LocalAddr().String(), ClientID: "gonode", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	temp := client.Topic{Predefined: 5}
	if err := c.Publish(ctx, temp, packet.QoSMinus1, false, []byte("gonode-q-1")); err != nil {
		t.Fatalf("QoS -1: %v", err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	for _, q := range []packet.QoS{packet.QoS0, packet.QoS1, packet.QoS2} {
		if err := c.Publish(ctx, temp, q, false, []byte(fmt.Sprintf("gonode-q%d", q))); err != nil {
			t.Fatalf("QoS %d: %v", q, err)
		}
	}
	sub.expect(t, "0 sensors/temp gonode-q-1", "0 sensors/temp gonode-q0", "1 sensors/temp gonode-q1", "2 sensors/temp gonode-q2")
	if err := c.Subscribe(ctx, client.Topic{Name: "cmd/gonode/+"}, packet.QoS2); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	bridgePublish(t, pub, port, "cmd/gonode/led", "green", 2)
	m, err := c.Receive(ctx)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if m.Topic != "cmd/gonode/led" || string(m.Payload) != "green" || m.QoS != packet.QoS2 {
		t.Fatalf("got %s=%s at QoS %d; want cmd/gonode/led=green at QoS 2", m.Topic, m.Payload, m.QoS)
	}
	if err := c.Disconnect(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("disconnect: %v", err)
	}
}

// A node's tty that nobody holds between the node's runs: bridge-host sees
// the pty hang up each time a node program exits (or is killed in the
// middle of its session) and serves the next program that opens the port,
// as a board keeps serving a node that resets. Every message gets through
// and no frame on the USB line is damaged.
func TestBridgeBoardNodeHangup(t *testing.T) {
	b := bridgeSetup(t)
	root, dir, hostBin, nodeBin := b.root, b.dir, b.hostBin, b.nodeBin
	usbMaster, usbPath := ptytest.Open(t)
	nodeMaster, nodePath := hangupPty(t)
	port, dataDir, _ := bridgeOutpost(t, root, dir, bridgeLoraConfig(usbPath))
	host := bridgeStart(t, "bridge-host", []*os.File{usbMaster, nodeMaster}, hostBin, "--usb", "fd:3", "--node", "0a0b=fd:4")
	bridgeWaitBoard(t, dataDir, 0)
	sub := bridgeSubscribe(t, port, "sensors/#", "sensors/probe")

	publish := func(qos int, msg string) {
		t.Helper()
		out, err := bridgeCommand(t, nodeBin, "-d", nodePath, "-i", "nodeR", "-P", "5", "-q", strconv.Itoa(qos), "-m", msg, "-x", "60").CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
	}
	publish(1, "first")
	publish(2, "second")
	// Killed in the middle of its session: the gateway still thinks it is
	// connected, and may still send to it.
	p := bridgeStart(t, "nodeR-killed", nil, nodeBin, "-d", nodePath, "-i", "nodeR", "-s", "cmd/nodeR/x", "-Q", "1", "-c", "1", "-x", "60")
	p.waitLine(t, "subscribed", func(l string) bool { return strings.HasPrefix(l, "subscribed ") })
	_ = p.cmd.Process.Kill()
	_ = p.wait(t)
	publish(1, "third")
	sub.expect(t, "1 sensors/temp first", "2 sensors/temp second", "1 sensors/temp third")

	if err := host.stop(t); err != nil {
		t.Fatalf("bridge-host: %v", err)
	}
	if c := host.errs.String(); !strings.Contains(c, "errors checksum 0 framing 0 unknown 0") {
		t.Fatalf("bridge-host saw damaged frames:\n%s", c)
	}
}

// hangupPty opens a pty pair and returns the master and the slave's path,
// with no slave descriptor held open (unlike ptytest.Open): whenever the
// program that opened the slave exits, the master sees the hang-up. The
// slave is put in raw mode once, so that nothing written to it while
// nobody holds it is echoed back to the master.
func hangupPty(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	ioctl := func(f *os.File, req uintptr, arg unsafe.Pointer) error {
		rc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		var e syscall.Errno
		if err := rc.Control(func(fd uintptr) {
			_, _, e = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
		}); err != nil {
			return err
		}
		if e != 0 {
			return e
		}
		return nil
	}
	var n uint32
	var unlock int32
	if err := ioctl(m, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatalf("TIOCGPTN: %v", err)
	}
	if err := ioctl(m, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatalf("TIOCSPTLCK: %v", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer s.Close()
	var tio syscall.Termios
	if err := ioctl(s, syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatalf("TCGETS: %v", err)
	}
	// cfmakeraw
	tio.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
	tio.Oflag &^= syscall.OPOST
	tio.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	tio.Cflag &^= syscall.CSIZE | syscall.PARENB
	tio.Cflag |= syscall.CS8
	if err := ioctl(s, syscall.TCSETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatalf("TCSETS: %v", err)
	}
	return m, path
}
