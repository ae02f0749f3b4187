// Command mqttsnload measures MQTT-SN throughput through a running outpost:
// N simulated UDP clients publish at QoS 0 or 1 (one message in flight per
// client) to an MQTT subscriber on the broker. It starts outpost itself on
// free loopback ports and prints msgs/s, p50/p99 end-to-end latency and
// outpost's resident set. Run by `make bench-mqttsn`.
package main

import (
	"bufio"
	"encoding/binary"
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
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

func main() {
	bin := flag.String("outpost", "bin/outpost", "outpost `binary`")
	clients := flag.String("clients", "100,1000", "comma-separated client counts")
	total := flag.Int("msgs", 20000, "messages per run, shared among the clients")
	flag.Parse()
	fmt.Printf("%-8s %-4s %10s %10s %10s %10s %8s\n", "clients", "qos", "msgs/s", "p50", "p99", "RSS MiB", "lost")
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			fatalf("-clients: %v", err)
		}
		for _, qos := range []packet.QoS{packet.QoS0, packet.QoS1} {
			r, err := run(*bin, n, qos, *total/n)
			if err != nil {
				fatalf("%d clients QoS %d: %v", n, qos, err)
			}
			fmt.Printf("%-8d %-4d %10.0f %10v %10v %10.1f %8d\n", n, qos, r.rate, r.p50, r.p99, r.rssMiB, r.lost)
		}
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mqttsnload: "+format+"\n", args...)
	os.Exit(1)
}

type result struct {
	rate     float64
	p50, p99 time.Duration
	rssMiB   float64
	lost     int
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

func run(bin string, n int, qos packet.QoS, per int) (result, error) {
	dir, err := os.MkdirTemp("", "mqttsnload")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	mqttAddr, err := freeAddr("tcp")
	if err != nil {
		return result{}, err
	}
	snAddr, err := freeAddr("udp")
	if err != nil {
		return result{}, err
	}
	cfg := filepath.Join(dir, "outpost.toml")
	conf := fmt.Sprintf("data_dir = %q\n[log]\nlevel = \"warn\"\n[[listener]]\naddress = %q\nallow_anonymous = true\n[[mqttsn.udp]]\naddress = %q\n",
		filepath.Join(dir, "data"), mqttAddr, snAddr)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return result{}, err
	}
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()

	var sub net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if sub, err = net.Dial("tcp", mqttAddr); err == nil {
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

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := publisher(snAddr, i, qos, per); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	<-got
	elapsed := time.Unix(0, last.Load()).Sub(start)
	slices.Sort(lat)
	r := result{lost: want - len(lat), rssMiB: rss(cmd.Process.Pid)}
	if len(lat) > 0 {
		r.rate = float64(len(lat)) / elapsed.Seconds()
		r.p50 = lat[len(lat)/2].Round(time.Microsecond)
		r.p99 = lat[len(lat)*99/100].Round(time.Microsecond)
	}
	return r, nil
}

// publisher is one MQTT-SN client: CONNECT, REGISTER, then per PUBLISHes
// carrying their send time, each acknowledged before the next at QoS 1.
func publisher(addr string, i int, qos packet.QoS, per int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 1500)
	ask := func(m packet.Message, want packet.MsgType) (packet.Message, error) {
		for try := 0; try < 5; try++ {
			if _, err := c.Write(packet.Append(nil, m)); err != nil {
				return nil, err
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			for {
				k, err := c.Read(buf)
				if err != nil {
					break
				}
				if a, err := packet.Decode(buf[:k]); err == nil && a.Type() == want {
					return a, nil
				}
			}
		}
		return nil, errors.New("client " + strconv.Itoa(i) + ": no " + want.String())
	}
	if _, err := ask(&packet.Connect{CleanSession: true, KeepAlive: 300, ClientID: []byte("bench-" + strconv.Itoa(i))}, packet.TypeConnack); err != nil {
		return err
	}
	a, err := ask(&packet.Register{MsgID: 1, TopicName: []byte("bench/" + strconv.Itoa(i))}, packet.TypeRegack)
	if err != nil {
		return err
	}
	tid := a.(*packet.Regack).TopicID
	data := make([]byte, 32)
	for j := range per {
		binary.BigEndian.PutUint64(data, uint64(time.Now().UnixNano()))
		p := &packet.Publish{QoS: qos, TopicID: tid, Data: data}
		if qos == packet.QoS0 {
			if _, err := c.Write(packet.Append(nil, p)); err != nil {
				return err
			}
			continue
		}
		p.MsgID = uint16(j%65535 + 2)
		if _, err := ask(p, packet.TypePuback); err != nil {
			return err
		}
	}
	return nil
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
