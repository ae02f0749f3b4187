package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Raw MQTT 3.1.1, just what the benchmark needs: QoS 1 publishers that
// keep a window of PUBLISHes unacknowledged, and a subscriber with a
// persistent session that counts distinct messages.

func appendVarint(b []byte, n int) []byte {
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func appendStr(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

func connectPacket(clientID string, clean bool) []byte {
	var flags byte
	if clean {
		flags = 0x02
	}
	body := appendStr(nil, "MQTT")
	body = append(body, 4, flags, 0, 60)
	body = appendStr(body, clientID)
	return append(appendVarint([]byte{0x10}, len(body)), body...)
}

func readPacket(br *bufio.Reader) (byte, []byte, error) {
	first, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, errors.New("remaining length longer than 4 bytes")
		}
		c, err := br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(c&0x7f) * mult
		mult <<= 7
		if c&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, nil, err
	}
	return first, body, nil
}

// dialMQTT connects and checks the CONNACK; present reports the session
// present flag.
func dialMQTT(addr, clientID string, clean bool) (net.Conn, *bufio.Reader, bool, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, false, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(connectPacket(clientID, clean)); err != nil {
		nc.Close()
		return nil, nil, false, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	first, body, err := readPacket(br)
	if err != nil {
		nc.Close()
		return nil, nil, false, fmt.Errorf("%s: CONNACK: %w", clientID, err)
	}
	if first != 0x20 || len(body) != 2 || body[1] != 0 {
		nc.Close()
		return nil, nil, false, fmt.Errorf("%s: CONNACK % X % X", clientID, first, body)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br, body[0]&1 == 1, nil
}

// payloadSize is the size of every message: a 10-digit message number and
// random letters, which do not compress much more than sensor readings do.
const payloadSize = 100

func payload(dst []byte, id int, rng *rand.Rand) []byte {
	dst = fmt.Appendf(dst, "%010d", id)
	for len(dst) < payloadSize {
		dst = append(dst, byte('a'+rng.IntN(26)), byte('A'+rng.IntN(26)))
	}
	return dst[:payloadSize]
}

// publishers are P connections that publish QoS 1 messages to topic,
// each keeping window PUBLISHes unacknowledged. Publisher p publishes the
// messages p+1, p+1+P, ... up to n (n 0: without end, until stop).
type publishers struct {
	acked   atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error
	conns   []net.Conn
	stopped sync.Once
}

func startPublishers(addr, prefix, topic string, P, window, n int) (*publishers, error) {
	ps := &publishers{stop: make(chan struct{})}
	for p := range P {
		nc, br, _, err := dialMQTT(addr, fmt.Sprintf("%s-%d", prefix, p), true)
		if err != nil {
			ps.close()
			return nil, err
		}
		ps.conns = append(ps.conns, nc)
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			if err := ps.run(nc, br, topic, p, P, window, n); err != nil {
				ps.fail(err)
			}
		}()
	}
	return ps, nil
}

func (ps *publishers) fail(err error) {
	ps.errMu.Lock()
	if ps.err == nil {
		ps.err = err
	}
	ps.errMu.Unlock()
}

func (ps *publishers) firstErr() error {
	ps.errMu.Lock()
	defer ps.errMu.Unlock()
	return ps.err
}

// run publishes one publisher's messages; it returns nil when all of them
// were acknowledged or stop was closed.
func (ps *publishers) run(nc net.Conn, br *bufio.Reader, topic string, p, P, window, n int) error {
	free := make(chan uint16, window)
	for id := 1; id <= window; id++ {
		free <- uint16(id)
	}
	total := -1
	if n > 0 {
		total = 0
		for x := p + 1; x <= n; x += P {
			total++
		}
	}
	readErr := make(chan error, 1)
	go func() {
		got := 0
		for total < 0 || got < total {
			first, body, err := readPacket(br)
			if err != nil {
				readErr <- err
				return
			}
			if first != 0x40 || len(body) < 2 {
				readErr <- fmt.Errorf("publisher got % X % X; want PUBACK", first, body)
				return
			}
			got++
			ps.acked.Add(1)
			free <- uint16(body[0])<<8 | uint16(body[1])
		}
		readErr <- nil
	}()
	bw := bufio.NewWriterSize(nc, 64<<10)
	rng := rand.New(rand.NewPCG(uint64(p), 1))
	var buf, pl []byte
	for x := p + 1; n == 0 || x <= n; x += P {
		var id uint16
		select {
		case id = <-free:
		default:
			if err := bw.Flush(); err != nil {
				return err
			}
			select {
			case id = <-free:
			case err := <-readErr:
				if err == nil {
					err = errors.New("acknowledged more than published")
				}
				return err
			case <-ps.stop:
				return nil
			}
		}
		pl = payload(pl[:0], x, rng)
		buf = appendVarint(append(buf[:0], 0x32), 2+len(topic)+2+len(pl))
		buf = appendStr(buf, topic)
		buf = append(buf, byte(id>>8), byte(id))
		buf = append(buf, pl...)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	select {
	case err := <-readErr:
		return err
	case <-ps.stop:
		return nil
	}
}

// wait waits for the publishers to end (all acknowledged), up to d.
func (ps *publishers) wait(d time.Duration) error {
	done := make(chan struct{})
	go func() {
		ps.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return ps.firstErr()
	case <-time.After(d):
		return fmt.Errorf("publishers not done after %v (%d acknowledged)", d, ps.acked.Load())
	}
}

// close stops the publishers and closes their connections.
func (ps *publishers) close() {
	ps.stopped.Do(func() { close(ps.stop) })
	for _, nc := range ps.conns {
		nc.Close()
	}
	ps.wg.Wait()
}

// subscriber is a persistent session at the cloud that acknowledges every
// message and counts the distinct message numbers 1..n.
type subscriber struct {
	nc       net.Conn
	mu       sync.Mutex
	seen     []bool
	distinct int
	total    int
	last     time.Time // arrival of the last new message
	done     chan struct{}
	err      error
}

// createSession makes the subscriber's session at the cloud (clean session
// off, filter at QoS 1) and disconnects.
func createSession(addr, clientID, filter string) error {
	nc, br, _, err := dialMQTT(addr, clientID, false)
	if err != nil {
		return err
	}
	defer nc.Close()
	sub := appendStr([]byte{0, 1}, filter)
	sub = append(sub, 1)
	if _, err := nc.Write(append(appendVarint([]byte{0x82}, len(sub)), sub...)); err != nil {
		return err
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	first, body, err := readPacket(br)
	if err != nil {
		return fmt.Errorf("SUBACK: %w", err)
	}
	if first != 0x90 || len(body) != 3 || body[2] != 1 {
		return fmt.Errorf("SUBACK % X % X", first, body)
	}
	_, err = nc.Write([]byte{0xE0, 0})
	return err
}

// resumeSession connects the subscriber to its session.
func resumeSession(addr, clientID string, n int) (*subscriber, error) {
	nc, br, present, err := dialMQTT(addr, clientID, false)
	if err != nil {
		return nil, err
	}
	if !present {
		nc.Close()
		return nil, errors.New("the cloud lost the subscriber's session")
	}
	s := &subscriber{nc: nc, seen: make([]bool, n+1), done: make(chan struct{})}
	go s.read(br)
	return s, nil
}

func (s *subscriber) read(br *bufio.Reader) {
	defer close(s.done)
	bw := bufio.NewWriterSize(s.nc, 16<<10)
	for {
		first, body, err := readPacket(br)
		if err != nil {
			s.err = err
			return
		}
		if first&0xF0 != 0x30 || len(body) < 2 {
			continue
		}
		tl := int(body[0])<<8 | int(body[1])
		qos := (first >> 1) & 3
		off := 2 + tl
		if qos > 0 {
			if len(body) < off+2 {
				continue
			}
			_, _ = bw.Write([]byte{0x40, 2, body[off], body[off+1]})
			off += 2
		}
		if len(body) >= off+10 {
			if x, err := strconv.Atoi(string(body[off : off+10])); err == nil {
				s.mu.Lock()
				s.total++
				if x >= 1 && x < len(s.seen) && !s.seen[x] {
					s.seen[x] = true
					s.distinct++
					s.last = time.Now()
				}
				s.mu.Unlock()
			}
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				s.err = err
				return
			}
		}
	}
}

func (s *subscriber) counts() (distinct, total int, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.distinct, s.total, s.last
}

// waitAll waits until all n arrived, or until nothing new arrived for
// quiet (counting from the start while nothing came at all), or for d in
// all. It returns the distinct count and the time of the last new message.
func (s *subscriber) waitAll(n int, quiet, d time.Duration) (int, time.Time) {
	start := time.Now()
	for {
		got, _, last := s.counts()
		if got >= n {
			return got, last
		}
		now := time.Now()
		since := last
		if since.IsZero() {
			since = start
		}
		if now.Sub(since) > quiet || now.Sub(start) > d {
			return got, last
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *subscriber) close() {
	s.nc.Close()
	<-s.done
}
