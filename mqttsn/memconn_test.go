package mqttsn

import (
	"net"
	"os"
	"sync"
	"time"
)

// memNet is an in-memory datagram network for tests under testing/synctest,
// where a goroutine blocked on a real socket would keep the fake clock from
// moving: its conns block on channels only. Create it inside the bubble.
type memNet struct {
	mu    sync.Mutex
	conns map[string]*memConn
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

type memDgram struct {
	from memAddr
	data []byte
}

func newMemNet() *memNet { return &memNet{conns: map[string]*memConn{}} }

func (n *memNet) listen(name string) *memConn {
	c := &memConn{n: n, addr: memAddr(name), in: make(chan memDgram, 256), closed: make(chan struct{}), dl: newDeadline()}
	n.mu.Lock()
	n.conns[name] = c
	n.mu.Unlock()
	return c
}

// memConn is one endpoint: a net.PacketConn.
type memConn struct {
	n         *memNet
	addr      memAddr
	in        chan memDgram
	closed    chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	dl    *deadline
	timer *time.Timer
}

// deadline is closed once when a read deadline passes.
type deadline struct {
	ch   chan struct{}
	once sync.Once
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }
func (d *deadline) fire()    { d.once.Do(func() { close(d.ch) }) }
func (d *deadline) passed() bool {
	select {
	case <-d.ch:
		return true
	default:
		return false
	}
}

func (c *memConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.mu.Lock()
	dl := c.dl
	c.mu.Unlock()
	select {
	case d := <-c.in:
		return copy(p, d.data), d.from, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-dl.ch:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (c *memConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.n.mu.Lock()
	to := c.n.conns[addr.String()]
	c.n.mu.Unlock()
	if to == nil {
		return len(p), nil // nobody there: lost, as UDP
	}
	select {
	case to.in <- memDgram{from: c.addr, data: append([]byte(nil), p...)}:
	default: // queue full: lost
	}
	return len(p), nil
}

func (c *memConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) LocalAddr() net.Addr { return c.addr }

func (c *memConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		if !c.timer.Stop() {
			c.dl = newDeadline() // the old one fired: a new one
		}
		c.timer = nil
	} else if c.dl.passed() {
		c.dl = newDeadline()
	}
	if t.IsZero() {
		return nil
	}
	dl := c.dl
	if d := time.Until(t); d > 0 {
		c.timer = time.AfterFunc(d, dl.fire)
	} else {
		dl.fire()
	}
	return nil
}

func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
