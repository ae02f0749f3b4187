// Command mqttsnload measures MQTT-SN throughput and memory through a
// running outpost. It starts outpost itself on free loopback ports, then:
//
//   - N simulated UDP clients publish at QoS 0 or 1 to an MQTT subscriber on
//     the broker. QoS 1 keeps one message in flight per client; QoS 0 is
//     paced to an offered rate (-rate0, all clients together), since UDP has
//     no flow control: beyond what the gateway sustains, datagrams are lost.
//     It prints the rate offered and the rate delivered, p50/p99 end-to-end
//     latency, the messages lost and those the gateway and broker counted as
//     dropped (from outpost's status file), outpost's resident set, and the
//     CPU seconds outpost spent per 100,000 messages delivered.
//   - -idle clients connect (each from its own UDP socket) and stay idle:
//     it prints outpost's resident set before and after, per client; first
//     with CleanSession=true and nothing else (the least a client costs),
//     then with CleanSession=false, one registered topic and one
//     subscription each (a device's usual state, its session kept in the
//     store).
//
// Run by `make bench-mqttsn`.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

func main() {
	bin := flag.String("outpost", "bin/outpost", "outpost `binary`")
	clients := flag.String("clients", "100,1000", "comma-separated client counts")
	total := flag.Int("msgs", 20000, "messages per run, shared among the clients")
	rate0 := flag.Float64("rate0", 20000, "QoS 0 offered rate, messages/s of all clients together")
	idle := flag.Int("idle", 10000, "idle connected clients for the memory measurement (0: none)")
	flag.Parse()

	fmt.Printf("%-7s %-3s %9s %9s %9s %9s %7s %7s %7s %10s\n",
		"clients", "qos", "offered/s", "msgs/s", "p50", "p99", "lost", "dropped", "RSS MiB", "CPU s/100k")
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			fatalf("-clients: %v", err)
		}
		for _, qos := range []packet.QoS{packet.QoS0, packet.QoS1} {
			r, err := run(*bin, n, qos, *total/n, *rate0)
			if err != nil {
				fatalf("%d clients QoS %d: %v", n, qos, err)
			}
			offered := "-" // QoS 1: as fast as acknowledged
			if qos == packet.QoS0 {
				offered = fmt.Sprintf("%.0f", r.offered)
			}
			fmt.Printf("%-7d %-3d %9s %9.0f %9v %9v %7d %7d %7.1f %10.2f\n",
				n, qos, offered, r.rate, r.p50, r.p99, r.lost, r.dropped, r.rssMiB, r.cpuPer100k)
		}
	}
	fmt.Println("lost: sent but not delivered; dropped: counted by outpost (MQTT-SN inbox, socket and buffers, broker queues)")
	if *idle > 0 {
		for _, persistent := range []bool{false, true} {
			if err := idleRun(*bin, *idle, persistent); err != nil {
				fatalf("idle clients: %v", err)
			}
		}
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mqttsnload: "+format+"\n", args...)
	os.Exit(1)
}

type result struct {
	offered, rate float64 // messages/s sent, delivered
	p50, p99      time.Duration
	rssMiB        float64
	lost          int
	dropped       int64
	cpuPer100k    float64
}

func freeAddr(network string) (string, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer pc.Close()
		return pc.LocalAddr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// outpost is a running outpost process.
type outpost struct {
	cmd      *exec.Cmd
	dir      string
	mqttAddr string
	snAddr   string
}

// start runs outpost on free loopback ports with a data directory of its
// own, for at most maxClients MQTT-SN clients.
func start(bin string, maxClients int) (*outpost, error) {
	dir, err := os.MkdirTemp("", "mqttsnload")
	if err != nil {
		return nil, err
	}
	o := &outpost{dir: dir}
	if o.mqttAddr, err = freeAddr("tcp"); err != nil {
		return nil, err
	}
	if o.snAddr, err = freeAddr("udp"); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "outpost.toml")
	conf := fmt.Sprintf("data_dir = %q\n[log]\nlevel = \"error\"\n[[listener]]\naddress = %q\nallow_anonymous = true\n"+
		"[mqttsn]\nmax_clients = %d\n[[mqttsn.udp]]\naddress = %q\n",
		filepath.Join(dir, "data"), o.mqttAddr, maxClients, o.snAddr)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	o.cmd = exec.Command(bin, "run", "-c", cfg)
	o.cmd.Stderr = os.Stderr
	if err := o.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return o, nil
}

func (o *outpost) stop() {
	o.cmd.Process.Signal(os.Interrupt)
	o.cmd.Wait()
	os.RemoveAll(o.dir)
}

// status is the part of outpost's status file the bench reads.
type status struct {
	Time   time.Time
	Broker struct{ MessagesDropped int64 }
	MQTTSN struct {
		Clients                                      int
		InboxFull, SocketDrops, Dropped, RateLimited int64
	}
}

// statusAfter returns the status as of t or later. The file is written
// every 5 s when something changed: either a file written after t comes
// within that time, or the one there already holds the state at t.
func (o *outpost) statusAfter(t time.Time) (status, error) {
	path := filepath.Join(o.dir, "data", "status.json")
	var st status
	for {
		b, err := os.ReadFile(path)
		ok := err == nil && json.Unmarshal(b, &st) == nil
		if ok && st.Time.After(t) || ok && time.Since(t) > 6*time.Second {
			return st, nil
		}
		if time.Since(t) > 15*time.Second {
			return st, fmt.Errorf("no status file in %s", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func run(bin string, n int, qos packet.QoS, per int, rate0 float64) (result, error) {
	o, err := start(bin, n+100)
	if err != nil {
		return result{}, err
	}
	defer o.stop()

	var sub net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if sub, err = net.Dial("tcp", o.mqttAddr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return result{}, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer sub.Close()
	br := bufio.NewReader(sub)
	// MQTT 3.1.1 CONNECT "bench-sub", then SUBSCRIBE bench/# at QoS 0.
	sub.Write([]byte{0x10, 21, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 9, 'b', 'e', 'n', 'c', 'h', '-', 's', 'u', 'b'})
	sub.Write([]byte{0x82, 12, 0, 1, 0, 7, 'b', 'e', 'n', 'c', 'h', '/', '#', 0})
	for range 2 { // CONNACK, SUBACK
		if _, _, err := readMQTT(br); err != nil {
			return result{}, err
		}
	}

	// Every client connects and registers first, so that the measured part
	// is publishing only.
	pubs := make([]*publisher, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := newPublisher(o.snAddr, i)
			if err != nil {
				errs <- err
				return
			}
			pubs[i] = p
		}()
	}
	wg.Wait()
	defer func() {
		for _, p := range pubs {
			if p != nil {
				p.c.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		return result{}, err
	default:
	}

	want := n * per
	lat := make([]time.Duration, 0, want)
	got := make(chan struct{})
	var last atomic.Int64
	go func() {
		defer close(got)
		for len(lat) < want {
			sub.SetReadDeadline(time.Now().Add(5 * time.Second))
			typ, body, err := readMQTT(br)
			if err != nil {
				return // quiet for 5s: the rest is lost
			}
			if typ>>4 != 3 || len(body) < 2 {
				continue
			}
			tl := int(binary.BigEndian.Uint16(body))
			pl := body[2+tl:]
			if len(pl) >= 8 {
				now := time.Now()
				lat = append(lat, now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(pl)))))
				last.Store(now.UnixNano())
			}
		}
	}()

	// QoS 0: each client sends every n/rate0 seconds, the clients spread
	// evenly over that interval.
	interval := time.Duration(float64(n) / rate0 * float64(time.Second))
	cpu0 := cpuSeconds(o.cmd.Process.Pid)
	start := time.Now()
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := start.Add(interval * time.Duration(i) / time.Duration(n))
			if err := p.publish(qos, per, first, interval); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	sent := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	<-got
	cpu := cpuSeconds(o.cmd.Process.Pid) - cpu0
	end := time.Now()
	elapsed := time.Unix(0, last.Load()).Sub(start)
	slices.Sort(lat)
	r := result{lost: want - len(lat), rssMiB: rss(o.cmd.Process.Pid), offered: float64(want) / sent.Seconds()}
	if len(lat) > 0 {
		r.rate = float64(len(lat)) / elapsed.Seconds()
		r.p50 = lat[len(lat)/2].Round(time.Microsecond)
		r.p99 = lat[len(lat)*99/100].Round(time.Microsecond)
		r.cpuPer100k = cpu / float64(len(lat)) * 100000
	}
	// The kernel tells outpost of the datagrams it dropped with the next
	// one it queues: one more, so that the count is complete.
	if c, err := net.Dial("udp", o.snAddr); err == nil {
		c.Write(packet.Append(nil, &packet.SearchGW{}))
		c.Close()
	}
	st, err := o.statusAfter(end)
	if err != nil {
		return result{}, err
	}
	r.dropped = st.MQTTSN.InboxFull + st.MQTTSN.SocketDrops + st.MQTTSN.Dropped + st.MQTTSN.RateLimited + st.Broker.MessagesDropped
	return r, nil
}

// publisher is one MQTT-SN client with a registered topic.
type publisher struct {
	i   int
	c   net.Conn
	tid uint16
	buf []byte
}

// ask sends m until an answer of type want arrives (5 tries, 2 s apart).
func (p *publisher) ask(m packet.Message, want packet.MsgType) (packet.Message, error) {
	for try := 0; try < 5; try++ {
		if _, err := p.c.Write(packet.Append(nil, m)); err != nil {
			return nil, err
		}
		p.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			k, err := p.c.Read(p.buf)
			if err != nil {
				break
			}
			if a, err := packet.Decode(p.buf[:k]); err == nil && a.Type() == want {
				return a, nil
			}
		}
	}
	return nil, errors.New("client " + strconv.Itoa(p.i) + ": no " + want.String())
}

// newPublisher connects client i and registers its topic bench/<i>.
func newPublisher(addr string, i int) (*publisher, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	p := &publisher{i: i, c: c, buf: make([]byte, 1500)}
	if _, err := p.ask(&packet.Connect{CleanSession: true, KeepAlive: 300, ClientID: []byte("bench-" + strconv.Itoa(i))}, packet.TypeConnack); err != nil {
		c.Close()
		return nil, err
	}
	a, err := p.ask(&packet.Register{MsgID: 1, TopicName: []byte("bench/" + strconv.Itoa(i))}, packet.TypeRegack)
	if err != nil {
		c.Close()
		return nil, err
	}
	p.tid = a.(*packet.Regack).TopicID
	return p, nil
}

// publish sends per PUBLISHes carrying their send time: at QoS 1 each
// acknowledged before the next, at QoS 0 one every interval from first.
func (p *publisher) publish(qos packet.QoS, per int, first time.Time, interval time.Duration) error {
	data := make([]byte, 32)
	var out []byte
	for j := range per {
		if qos == packet.QoS0 {
			if d := time.Until(first.Add(interval * time.Duration(j))); d > 0 {
				time.Sleep(d)
			}
		}
		binary.BigEndian.PutUint64(data, uint64(time.Now().UnixNano()))
		m := &packet.Publish{QoS: qos, TopicID: p.tid, Data: data}
		if qos == packet.QoS0 {
			out = packet.Append(out[:0], m)
			if _, err := p.c.Write(out); err != nil {
				return err
			}
			continue
		}
		m.MsgID = uint16(j%65535 + 2)
		if _, err := p.ask(m, packet.TypePuback); err != nil {
			return err
		}
	}
	return nil
}

// idleRun connects n clients, each from its own UDP socket, that then stay
// idle, and prints outpost's resident set before and after. persistent
// clients connect with CleanSession=false, register a topic and subscribe
// to another.
func idleRun(bin string, n int, persistent bool) error {
	// One socket per client: raise the soft limit of open files.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n)+256 {
		lim.Cur = min(lim.Max, uint64(n)+256)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < uint64(n)+64 {
			return fmt.Errorf("%d sockets need a limit of open files above %d: %v", n, lim.Cur, err)
		}
	}
	o, err := start(bin, n+100)
	if err != nil {
		return err
	}
	defer o.stop()
	// Ready when the UDP port answers SEARCHGW (until then a connected
	// socket's read fails at once: port unreachable).
	probe, err := net.Dial("udp", o.snAddr)
	if err != nil {
		return err
	}
	buf := make([]byte, 64)
	for deadline := time.Now().Add(15 * time.Second); ; {
		probe.Write(packet.Append(nil, &packet.SearchGW{}))
		probe.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if k, err := probe.Read(buf); err == nil {
			if m, err := packet.Decode(buf[:k]); err == nil && m.Type() == packet.TypeGWInfo {
				break
			}
		}
		if time.Now().After(deadline) {
			probe.Close()
			return errors.New("outpost does not answer SEARCHGW")
		}
		time.Sleep(100 * time.Millisecond)
	}
	probe.Close()
	before := rss(o.cmd.Process.Pid)

	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	sem := make(chan struct{}, 200) // CONNECTs in flight at once
	errs := make(chan error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("udp", o.snAddr)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			p := &publisher{i: i, c: c, buf: make([]byte, 64)}
			a, err := p.ask(&packet.Connect{CleanSession: !persistent, KeepAlive: 3600, ClientID: []byte("idle-" + strconv.Itoa(i))}, packet.TypeConnack)
			if err == nil && a.(*packet.Connack).ReturnCode != packet.Accepted {
				err = fmt.Errorf("client %d: CONNACK %v", i, a.(*packet.Connack).ReturnCode)
			}
			if err == nil && persistent {
				err = p.settle(i)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	took := time.Since(t0)
	st, err := o.statusAfter(time.Now())
	if err != nil {
		return err
	}
	after := rss(o.cmd.Process.Pid)
	kind := "CleanSession=true"
	if persistent {
		kind = "CleanSession=false, 1 topic, 1 subscription"
	}
	fmt.Printf("\n%d idle MQTT-SN clients, %s (connected in %v, gateway reports %d): RSS %.1f MiB before, %.1f MiB after: %.2f KiB per client\n",
		n, kind, took.Round(time.Millisecond), st.MQTTSN.Clients, before, after, (after-before)*1024/float64(n))
	return nil
}

// settle registers idle/<i>/t and subscribes to idle/<i>/cmd at QoS 1.
func (p *publisher) settle(i int) error {
	a, err := p.ask(&packet.Register{MsgID: 1, TopicName: []byte("idle/" + strconv.Itoa(i) + "/t")}, packet.TypeRegack)
	if err == nil && a.(*packet.Regack).ReturnCode != packet.Accepted {
		err = fmt.Errorf("client %d: REGACK %v", i, a.(*packet.Regack).ReturnCode)
	}
	if err != nil {
		return err
	}
	a, err = p.ask(&packet.Subscribe{MsgID: 2, QoS: packet.QoS1, TopicName: []byte("idle/" + strconv.Itoa(i) + "/cmd")}, packet.TypeSuback)
	if err == nil && a.(*packet.Suback).ReturnCode != packet.Accepted {
		err = fmt.Errorf("client %d: SUBACK %v", i, a.(*packet.Suback).ReturnCode)
	}
	return err
}

func readMQTT(br *bufio.Reader) (byte, []byte, error) {
	typ, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for range 4 {
		b, err := br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			body := make([]byte, n)
			_, err := io.ReadFull(br, body)
			return typ, body, err
		}
		mult *= 128
	}
	return 0, nil, errors.New("bad remaining length")
}

// rss is pid's resident set in MiB, from /proc (0 where there is none).
func rss(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// cpuSeconds is pid's user and system CPU time so far, from /proc (0 where
// there is none).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th of them, in clock ticks (100 a second
	// on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}
