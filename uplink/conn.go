package uplink

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
)

// packetConn is the connection that paho reads and writes. paho reads a
// packet in several small Reads (its type, each length byte, the body) and
// writes one in several Writes under the connection's lock (it takes a
// net.Conn that is a sync.Locker for that): on a bare socket each is a
// system call, and with TCP_NODELAY each write is a segment of its own.
// packetConn reads through a buffer, and gathers the writes of a packet to
// send them in one write when paho releases the lock. While the drain loop
// holds it (hold), packets gather until release, so that the PUBLISHes
// that fill the window go out together.
//
// A send that fails closes the connection, which paho's reader notices,
// and fails every later Write: what was written but not sent is in the
// session or the spool, and goes again on the next connection.
type packetConn struct {
	net.Conn
	r *bufio.Reader

	mu   sync.Mutex // taken by paho around the writes of one packet
	buf  []byte     // written, not sent yet; guarded by mu
	err  error      // the failed send; guarded by mu
	held atomic.Bool
}

// maxGatherBytes is the most packetConn gathers before it sends anyway.
const maxGatherBytes = 64 << 10

func newPacketConn(c net.Conn) *packetConn {
	return &packetConn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}
}

// Read reads through the buffer; paho reads from one goroutine at a time.
func (c *packetConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Lock is taken by paho before it writes a packet.
func (c *packetConn) Lock() { c.mu.Lock() }

// Unlock sends what was written, unless the drain loop holds the
// connection.
func (c *packetConn) Unlock() {
	if !c.held.Load() || len(c.buf) >= maxGatherBytes {
		c.send()
	}
	c.mu.Unlock()
}

// Write gathers p. The caller holds the lock: paho writes every packet
// under it (packets.ControlPacket.WriteTo).
func (c *packetConn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// send writes what was gathered; c.mu is held.
func (c *packetConn) send() {
	if len(c.buf) == 0 || c.err != nil {
		return
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	if cap(c.buf) > 2*maxGatherBytes {
		c.buf = nil
	}
	if err != nil {
		c.err = err
		_ = c.Conn.Close()
	}
}

// hold keeps the packets written from now on until release.
func (c *packetConn) hold() { c.held.Store(true) }

// release sends what gathered since hold.
func (c *packetConn) release() {
	c.held.Store(false)
	c.mu.Lock()
	c.send()
	c.mu.Unlock()
}
