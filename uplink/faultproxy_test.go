package uplink

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// faultProxy forwards TCP connections from the bridge to a cloud broker,
// both on 127.0.0.1, and injects faults into them:
//
//   - cut closes both sides of every connection it carries;
//   - blackHole makes the connections it carries drop every byte, both
//     ways, without closing anything, until the bridge gives up on them
//     (its keep alive) — new connections forward again;
//   - slow throttles every connection, present and future, to a number of
//     bytes per second each way, until slow(0);
//   - resetMidPacket forwards the first half of the next PUBLISH the
//     bridge sends and then resets both sides (SO_LINGER 0, so an RST, not
//     a FIN);
//   - refuse closes new connections at once, as a cloud that is down.
//
// It carries at most maxProxyConns connections at once, and everything it
// started ends when the test does.
type faultProxy struct {
	t        testing.TB
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup

	mu       sync.Mutex
	conns    map[*proxyConn]bool
	accepted int // connections forwarded so far
	rate     int // bytes per second each way; 0: no limit
	refusing bool
	reset    chan struct{} // armed by resetMidPacket; closed when done
	closed   bool
}

const maxProxyConns = 16

// proxyConn is one forwarded connection.
type proxyConn struct {
	p              *faultProxy
	client, server *net.TCPConn
	mu             sync.Mutex
	dropping       bool // black hole
}

func newFaultProxy(t testing.TB, upstream string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, upstream: upstream, conns: make(map[*proxyConn]bool)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) url() string { return "mqtt://" + p.ln.Addr().String() }

func (p *faultProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.closeBoth(false)
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refusing || p.closed || len(p.conns) >= maxProxyConns
		p.mu.Unlock()
		if refuse {
			nc.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			nc.Close()
			continue
		}
		c := &proxyConn{p: p, client: nc.(*net.TCPConn), server: up.(*net.TCPConn)}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.closeBoth(false)
			continue
		}
		p.conns[c] = true
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			c.pumpPackets()
		}()
		go func() {
			defer p.wg.Done()
			c.pumpBytes()
		}()
	}
}

// connections returns how many connections the proxy has forwarded.
func (p *faultProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// open returns how many connections the proxy carries now.
func (p *faultProxy) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *faultProxy) refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = on
}

func (p *faultProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.closeBoth(false)
	}
}

func (p *faultProxy) blackHole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.mu.Lock()
		c.dropping = true
		c.mu.Unlock()
	}
}

func (p *faultProxy) slow(bytesPerSecond int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = bytesPerSecond
}

// resetMidPacket arms the reset of the next PUBLISH; the channel is closed
// once it happened.
func (p *faultProxy) resetMidPacket() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset = make(chan struct{})
	return p.reset
}

func (p *faultProxy) currentRate() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

// takeReset disarms an armed reset and returns its channel, or nil.
func (p *faultProxy) takeReset() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := p.reset
	p.reset = nil
	return ch
}

func (c *proxyConn) isDropping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropping
}

// closeBoth closes both sides; with rst, as a reset (SO_LINGER 0).
func (c *proxyConn) closeBoth(rst bool) {
	if rst {
		_ = c.client.SetLinger(0)
		_ = c.server.SetLinger(0)
	}
	c.client.Close()
	c.server.Close()
}

func (c *proxyConn) done() {
	c.closeBoth(false)
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
}

// write forwards b to w at the proxy's rate, in slices of at most a
// twentieth of a second's worth; a black-holed connection drops it.
func (c *proxyConn) write(w net.Conn, b []byte) error {
	for len(b) > 0 {
		if c.isDropping() {
			return nil
		}
		n := len(b)
		rate := c.p.currentRate()
		if rate > 0 {
			n = min(n, max(1, rate/20))
		}
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		if rate > 0 {
			time.Sleep(time.Duration(n) * time.Second / time.Duration(rate)) // pacing, not waiting for a condition
		}
	}
	return nil
}

// pumpPackets forwards the bridge's bytes to the cloud packet by packet,
// so that a reset can cut one in the middle.
func (c *proxyConn) pumpPackets() {
	defer c.done()
	br := bufio.NewReader(c.client)
	for {
		pkt, err := readMQTTPacket(br)
		if err != nil {
			return
		}
		if pkt[0]>>4 == 3 { // PUBLISH
			if ch := c.p.takeReset(); ch != nil {
				_, _ = c.server.Write(pkt[:len(pkt)/2])
				c.closeBoth(true)
				close(ch)
				return
			}
		}
		if err := c.write(c.server, pkt); err != nil {
			return
		}
	}
}

// pumpBytes forwards the cloud's bytes to the bridge.
func (c *proxyConn) pumpBytes() {
	defer c.done()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			if werr := c.write(c.client, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readMQTTPacket reads one MQTT packet, whole, of at most 1 MiB.
func readMQTTPacket(br *bufio.Reader) ([]byte, error) {
	first, err := br.ReadByte()
	if err != nil {
		return nil, err
	}
	pkt := []byte{first}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return nil, errors.New("remaining length longer than 4 bytes")
		}
		b, err := br.ReadByte()
		if err != nil {
			return nil, err
		}
		pkt = append(pkt, b)
		n += int(b&0x7f) * mult
		mult <<= 7
		if b&0x80 == 0 {
			break
		}
	}
	if n > 1<<20 {
		return nil, errors.New("packet larger than 1 MiB")
	}
	start := len(pkt)
	pkt = append(pkt, make([]byte, n)...)
	if _, err := io.ReadFull(br, pkt[start:]); err != nil {
		return nil, err
	}
	return pkt, nil
}
