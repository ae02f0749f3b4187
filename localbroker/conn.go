package localbroker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/localbroker/topic"
)

// conn is one network client: a reader goroutine that owns the connection
// and a writer goroutine started on demand while there is output.
type conn struct {
	b   *Broker
	ln  *listener
	nc  net.Conn
	log *slog.Logger

	// Owned by the reader goroutine.
	ver        packet.Version
	info       ClientInfo
	sess       *session
	acl        atomic.Pointer[auth.ACL] // the listener's; a reload replaces it (setACL)
	keepAlive  time.Duration
	aliases    map[uint16]string
	connExpiry uint32 // session expiry given at CONNECT
	overLimit  bool   // accepted beyond MaxConnections: refuse at CONNECT
	normal     bool   // the client sent a normal DISCONNECT: no will
	certCN     string // TLS client certificate CN, if any

	maxOut uint32 // client's Maximum Packet Size (0 none); set before attach, read-only after

	view     atomic.Pointer[ClientStatus] // set once connected, for Broker.Clients
	lastSeen atomic.Int64                 // unix nanoseconds of the last packet read

	wmu      sync.Mutex
	wq       []wItem
	wbytes   int64
	hold     bool // CONNACK not yet queued: writer waits
	writing  bool // a writer goroutine is running
	wclosed  bool // no more output accepted; close the socket once flushed
	kicked   bool
	sockDone bool // socket closed
}

// wItem is one queued outbound packet: a PUBLISH delivery (m != nil) or
// another packet.
type wItem struct {
	pk     packet.Packet
	m      *Message
	subIDs []uint32
	pid    uint16
	qos    byte
	retain bool
	dup    bool
	size   int64
}

func newConn(b *Broker, ln *listener, nc net.Conn) *conn {
	return &conn{b: b, ln: ln, nc: nc, hold: true,
		log: b.log.With("listener", ln.opts.Name, "remote", nc.RemoteAddr().String())}
}

// serve runs the reader loop; it returns when the connection is closed.
func (c *conn) serve() {
	defer func() {
		if r := recover(); r != nil {
			// A bug must cost one connection, never the broker.
			c.log.Error("connection handler panic", "panic", fmt.Sprint(r))
			c.kick(packet.ImplementationSpecificError)
		}
		c.finish()
	}()
	rd := packet.NewReader(c.nc, 1024)
	if err := c.nc.SetReadDeadline(time.Now().Add(c.b.opts.ConnectTimeout)); err != nil {
		return
	}
	h, body, err := rd.ReadPacket(c.b.opts.MaxPacketSize)
	if err != nil {
		c.readError(err)
		return
	}
	if h.Type != packet.TypeConnect {
		// [MQTT-3.1.0-1] the first packet must be CONNECT: close, no CONNACK.
		c.log.Debug("first packet is not CONNECT", "type", h.Type)
		c.closeNow()
		return
	}
	c.received(int64(len(body)) + 2)
	if !c.handleConnect(h, body) {
		return
	}
	for {
		if c.keepAlive > 0 {
			// [MQTT-3.1.2-24] one and a half times the keep alive.
			if err := c.nc.SetReadDeadline(time.Now().Add(c.keepAlive * 3 / 2)); err != nil {
				return
			}
		} else if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
			return
		}
		h, body, err := rd.ReadPacket(c.b.opts.MaxPacketSize)
		if err != nil {
			c.readError(err)
			return
		}
		c.received(int64(len(body)) + 2)
		full := c.b.outboundFull.Load()
		if err := c.handle(h, body); err != nil {
			if errors.Is(err, errNormalClose) {
				return
			}
			c.protocolError(err)
			return
		}
		if c.b.outboundFull.Load() != full {
			// A subscriber's outbound queue refused a message: its writer
			// is behind. Readers whose sockets always have input would
			// otherwise keep the CPU for whole time slices and starve it,
			// so that most of what they read is dropped; let it run.
			runtime.Gosched()
		}
	}
}

var errNormalClose = errors.New("normal disconnect")

// finish runs when the reader loop ends: the session is detached (with its
// will unless the client sent a normal DISCONNECT) and the socket closed once
// the writer has flushed.
func (c *conn) finish() {
	if c.sess != nil {
		c.b.detach(c.sess, c, !c.normal)
	}
	c.closeWrite()
	c.b.mu.Lock()
	delete(c.b.conns, c)
	c.b.mu.Unlock()
	if c.sess != nil {
		c.b.stats.connected.Add(-1)
		c.ln.st.connected.Add(-1)
	}
}

func (c *conn) readError(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("connection closed by peer")
		c.closeNow()
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		if c.sess == nil {
			c.log.Debug("no CONNECT in time")
			c.closeNow()
			return
		}
		c.log.Info("keep alive timeout")
		c.kick(packet.KeepAliveTimeout)
	default:
		var pe *packet.Error
		if errors.As(err, &pe) {
			c.protocolError(err)
			return
		}
		c.log.Debug("read error", "err", err)
		c.closeNow()
	}
}

// protocolError closes the connection for a bad packet: 5.0 clients get a
// DISCONNECT with the reason code [MQTT-4.13.1-1]; 3.1.1 clients are just
// disconnected [MQTT-4.8.0-1].
func (c *conn) protocolError(err error) {
	code := packet.ProtocolError
	var pe *packet.Error
	if errors.As(err, &pe) {
		code = pe.Code
	}
	c.log.Info("protocol error, closing connection", "err", err)
	c.kickWith(code, err.Error())
}

// --- writer ---------------------------------------------------------------

func (c *conn) version() packet.Version { return c.ver }
func (c *conn) maxPacketSize() uint32   { return c.maxOut }

// enqueue adds an item to the outbound queue. QoS 0 publishes are refused
// when the queue is over MaxOutboundBytes; past twice that the client is a
// slow consumer and is disconnected.
func (c *conn) enqueue(it wItem) bool {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return false
	}
	limit := c.b.opts.MaxOutboundBytes
	if c.wbytes+it.size > limit {
		if it.m != nil && it.qos == 0 {
			c.wmu.Unlock()
			c.b.outboundFull.Add(1)
			return false
		}
		if c.wbytes+it.size > 2*limit {
			queued := c.wbytes
			c.wmu.Unlock()
			c.log.Warn("slow consumer, disconnecting", "queued_bytes", queued)
			c.kick(packet.QuotaExceeded)
			return false
		}
	}
	c.wq = append(c.wq, it)
	c.wbytes += it.size
	c.startWriterLocked()
	c.wmu.Unlock()
	return true
}

// startWriterLocked starts a writer goroutine if output is pending. c.wmu held.
func (c *conn) startWriterLocked() {
	if c.writing || c.hold || c.sockDone || (len(c.wq) == 0 && !c.wclosed) {
		return
	}
	c.writing = true
	c.b.connWG.Add(1)
	go c.writeLoop()
}

// writeScratch is what a writer goroutine reuses, pooled across writer runs:
// the output buffer, and the PUBLISH that encode fills for each delivery
// (one value per run, not one heap allocation per delivery, since
// packet.Append takes it as an interface).
type writeScratch struct {
	buf []byte
	pub packet.Publish
}

var scratchPool = sync.Pool{New: func() any { return &writeScratch{buf: make([]byte, 0, 4096)} }}

const maxBatch = 64 << 10

func (c *conn) writeLoop() {
	defer c.b.connWG.Done()
	ws := scratchPool.Get().(*writeScratch)
	buf := ws.buf[:0]
	defer func() {
		if cap(buf) <= maxBatch*2 {
			ws.buf = buf[:0]
			ws.pub = packet.Publish{} // keep no message alive in the pool
			scratchPool.Put(ws)
		}
	}()
	var batch []wItem
	for {
		c.wmu.Lock()
		if len(c.wq) == 0 {
			c.writing = false
			if c.wclosed && !c.sockDone {
				c.sockDone = true
				c.wmu.Unlock()
				c.nc.Close()
				return
			}
			c.wmu.Unlock()
			return
		}
		batch, c.wq = c.wq, batch[:0]
		c.wmu.Unlock()

		for i := range batch {
			buf = c.encode(buf, &batch[i], &ws.pub)
			if len(buf) >= maxBatch || i == len(batch)-1 {
				if err := c.flush(buf); err != nil {
					c.writeFailed(err)
					return
				}
				buf = buf[:0]
			}
		}
		var sz int64
		for i := range batch {
			sz += batch[i].size
		}
		clear(batch)
		c.wmu.Lock()
		c.wbytes -= sz
		c.wmu.Unlock()
	}
}

func (c *conn) flush(buf []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.b.opts.WriteTimeout)); err != nil {
		return err
	}
	n, err := c.nc.Write(buf)
	c.b.stats.bytesOut.Add(int64(n))
	c.ln.st.bytesOut.Add(int64(n))
	return err
}

func (c *conn) writeFailed(err error) {
	c.wmu.Lock()
	c.writing = false
	c.wclosed = true
	c.sockDone = true
	c.wq = nil
	c.wmu.Unlock()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.log.Warn("slow consumer: write timed out, disconnecting")
	} else {
		c.log.Debug("write error", "err", err)
	}
	c.nc.Close()
}

// encode appends the packet of it to dst; p is scratch space for a PUBLISH.
func (c *conn) encode(dst []byte, it *wItem, p *packet.Publish) []byte {
	if it.m == nil {
		return packet.Append(dst, it.pk, c.ver)
	}
	m := it.m
	c.ln.st.msgsOut.Add(1)
	*p = packet.Publish{Dup: it.dup, QoS: it.qos, Retain: it.retain, Topic: m.Topic, PacketID: it.pid, Payload: m.Payload}
	if c.ver == packet.V5 {
		p.Properties = m.Props
		if !m.ExpiresAt.IsZero() {
			// [MQTT-3.3.2-6] the expiry sent is what remains.
			left := time.Until(m.ExpiresAt)
			secs := uint32(1)
			if left > time.Second {
				secs = uint32(left / time.Second)
			}
			p.Properties.MessageExpiry = secs
			p.Properties.Set(packet.PropMessageExpiry)
		}
		if len(it.subIDs) > 0 {
			p.Properties.SubscriptionIDs = it.subIDs
			p.Properties.Set(packet.PropSubscriptionID)
		}
	}
	return packet.Append(dst, p, c.ver)
}

func (c *conn) sendPublish(m *Message, qos byte, retain, dup bool, pid uint16, subIDs []uint32) bool {
	return c.enqueue(wItem{m: m, qos: qos, retain: retain, dup: dup, pid: pid, subIDs: subIDs,
		size: int64(len(m.Topic) + len(m.Payload) + 16)})
}

func (c *conn) sendPubrel(pid uint16) {
	c.enqueue(wItem{pk: &packet.Ack{Kind: packet.TypePubrel, PacketID: pid}, size: 4})
}

func (c *conn) send(pk packet.Packet) {
	c.enqueue(wItem{pk: pk, size: 8})
}

// sendConnack puts CONNACK first in the queue and releases the writer.
func (c *conn) sendConnack(ca *packet.Connack) {
	c.wmu.Lock()
	c.wq = append([]wItem{{pk: ca, size: 8}}, c.wq...)
	c.wbytes += 8
	c.hold = false
	c.startWriterLocked()
	c.wmu.Unlock()
}

// kick closes the connection from the broker's side: a 5.0 client that
// completed CONNECT gets DISCONNECT with code [MQTT-3.14.0-1]; queued output
// is flushed first (bounded by a short write deadline).
func (c *conn) kick(code packet.ReasonCode) { c.kickWith(code, "") }

// maxReasonString bounds the reason strings we send, to stay well inside
// any Maximum Packet Size a client may set.
const maxReasonString = 100

// reasonProps returns properties carrying a short reason string (5.0).
func reasonProps(reason string) packet.Properties {
	var p packet.Properties
	if reason != "" {
		if len(reason) > maxReasonString {
			reason = reason[:maxReasonString]
			for !utf8.ValidString(reason) {
				reason = reason[:len(reason)-1]
			}
		}
		p.ReasonString = reason
		p.Set(packet.PropReasonString)
	}
	return p
}

// kickWith is kick with a reason string for the DISCONNECT, which
// [MQTT-3.1.2-29] allows whatever the client's Request Problem Information.
func (c *conn) kickWith(code packet.ReasonCode, reason string) {
	c.wmu.Lock()
	if c.kicked || c.wclosed {
		c.wmu.Unlock()
		return
	}
	c.kicked = true
	if c.ver == packet.V5 && !c.hold {
		c.wq = append(c.wq, wItem{pk: &packet.Disconnect{ReasonCode: code, Properties: reasonProps(reason)},
			size: int64(4 + len(reason))})
	}
	c.wclosed = true
	c.hold = false
	if !c.writing && len(c.wq) == 0 {
		c.sockDone = true
		c.wmu.Unlock()
		c.nc.Close()
		return
	}
	c.startWriterLocked()
	c.wmu.Unlock()
	// Do not let a stuck client hold the close; also wakes the reader.
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
}

// closeWrite accepts no more output and closes the socket once flushed.
func (c *conn) closeWrite() {
	c.wmu.Lock()
	c.wclosed = true
	c.hold = false
	if !c.writing && !c.sockDone {
		if len(c.wq) > 0 {
			c.startWriterLocked()
			c.wmu.Unlock()
			_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			return
		}
		c.sockDone = true
		c.wmu.Unlock()
		c.nc.Close()
		return
	}
	c.wmu.Unlock()
}

// closeNow drops pending output and closes the socket.
func (c *conn) closeNow() {
	c.wmu.Lock()
	c.wclosed = true
	c.kicked = true
	c.wq = nil
	done := c.sockDone
	c.sockDone = true
	c.wmu.Unlock()
	if !done {
		c.nc.Close()
	}
}

// --- CONNECT --------------------------------------------------------------

// refuse sends a failing CONNACK and closes [MQTT-3.2.2-6] [MQTT-3.2.2-7].
func (c *conn) refuse(code5, code311 packet.ReasonCode, reason string) bool {
	c.b.stats.refused.Add(1)
	code := code5
	if c.ver != packet.V5 {
		code = code311
	}
	c.log.Info("connection refused", "client_id", c.info.ClientID, "code", code.String(), "why", reason)
	ca := &packet.Connack{ReasonCode: code}
	if c.ver == packet.V5 {
		ca.Properties = reasonProps(reason)
	}
	c.sendConnack(ca)
	c.closeWrite()
	return false
}

// setVersion records the protocol version; under the write lock because
// kick (shutdown, another goroutine) reads it.
func (c *conn) setVersion(v packet.Version) {
	c.wmu.Lock()
	c.ver = v
	c.wmu.Unlock()
}

func (c *conn) handleConnect(h packet.FixedHeader, body []byte) bool {
	b := c.b
	o := &b.opts
	cp, err := packet.DecodeConnect(h.Flags, body)
	if err != nil {
		var pe *packet.Error
		if errors.As(err, &pe) && pe.Code == packet.UnsupportedProtocolVersion &&
			cp != nil && (cp.ProtocolName == "MQTT" || cp.ProtocolName == "MQIsdp") {
			// [MQTT-3.1.2-2] answer with 0x01 (a 3.1.1 CONNACK every version can read).
			c.setVersion(packet.V311)
			return c.refuse(0, packet.ConnRefusedVersion, err.Error())
		}
		if cp != nil && cp.ProtocolVersion == packet.V5 {
			// [MQTT-4.13.1-1] a 5.0 client learns why in the CONNACK.
			c.setVersion(packet.V5)
			code := packet.MalformedPacket
			if pe != nil {
				code = pe.Code
			}
			return c.refuse(code, 0, err.Error())
		}
		// Includes an unknown protocol name: not MQTT, so no CONNACK [MQTT-3.1.2-1].
		c.log.Info("malformed CONNECT", "err", err)
		c.closeNow()
		return false
	}
	c.setVersion(cp.ProtocolVersion)
	if c.ver == packet.V31 {
		return c.refuse(0, packet.ConnRefusedVersion, "MQTT 3.1 is not supported")
	}
	c.info = ClientInfo{ClientID: cp.ClientID, Username: cp.Username, Listener: c.ln.opts.Name,
		Remote: c.nc.RemoteAddr().String(), Version: c.ver, CertCN: c.certCN}
	var ack packet.Connack
	v5 := c.ver == packet.V5

	if c.overLimit {
		return c.refuse(packet.ServerBusy, packet.ConnRefusedUnavailable, "too many connections")
	}
	if v5 && cp.Properties.Has(packet.PropAuthMethod) {
		// No extended authentication method is supported [MQTT-4.12.0-1].
		return c.refuse(packet.BadAuthenticationMethod, packet.ConnRefusedNotAuthorized, "unsupported auth method")
	}
	if cp.ClientID == "" {
		if !v5 && !cp.CleanStart {
			return c.refuse(0, packet.ConnRefusedIdentifier, "empty client id without clean session") // [MQTT-3.1.3-8]
		}
		c.info.ClientID = assignClientID()
		if v5 {
			ack.Properties.AssignedClientID = c.info.ClientID // [MQTT-3.2.2-16]
			ack.Properties.Set(packet.PropAssignedClientID)
		}
	}
	authed := c.ln.authState() // what a reload before attach has not seen
	if code := c.authenticate(cp); code != packet.Success {
		c311 := packet.ConnRefusedNotAuthorized
		if code == packet.BadUsernameOrPassword {
			c311 = packet.ConnRefusedBadCredentials
		}
		return c.refuse(code, c311, "authentication failed")
	}

	req := connectReq{info: c.info, cleanStart: cp.CleanStart, acl: c.ln.acl.Load()}
	c.acl.Store(req.acl)
	if cp.WillFlag {
		if err := topic.ValidName(cp.WillTopic, o.MaxTopicLength, o.MaxTopicLevels); err != nil {
			return c.refuse(packet.TopicNameInvalid, packet.ConnRefusedNotAuthorized, "invalid will topic")
		}
		if cp.WillRetain && !b.retainAvailable() {
			return c.refuse(packet.RetainNotSupported, packet.ConnRefusedNotAuthorized, "retain not available") // [MQTT-3.2.2-12]
		}
		if !b.allowed(&c.info, c.acl.Load(), cp.WillTopic, AccessWrite) {
			return c.refuse(packet.NotAuthorized, packet.ConnRefusedNotAuthorized, "will topic not authorized")
		}
		if v5 && cp.WillProperties.PayloadFormat == 1 && !utf8.Valid(cp.WillPayload) {
			return c.refuse(packet.PayloadFormatInvalid, packet.ConnRefusedNotAuthorized, "will payload not UTF-8")
		}
		w := &Will{Message: Message{Topic: cp.WillTopic, Payload: cp.WillPayload, QoS: cp.WillQoS,
			Retain: cp.WillRetain, Origin: c.info.ClientID, Props: passThrough(&cp.WillProperties)}}
		if v5 {
			w.Delay = time.Duration(cp.WillProperties.WillDelay) * time.Second
			if cp.WillProperties.Has(packet.PropMessageExpiry) {
				// The expiry counts from when the will is published.
				w.Expiry = time.Duration(cp.WillProperties.MessageExpiry) * time.Second
			}
		}
		req.will = w
	}

	// Keep alive [MQTT-3.1.2-21] [MQTT-3.2.2-21].
	ka := cp.KeepAlive
	if v5 && (ka > o.MaxKeepAlive || (ka == 0 && o.MaxKeepAlive < 65535)) {
		ka = o.MaxKeepAlive
		ack.Properties.ServerKeepAlive = ka
		ack.Properties.Set(packet.PropServerKeepAlive)
	}
	c.keepAlive = time.Duration(ka) * time.Second

	// Session expiry [MQTT-3.1.2-23].
	if v5 {
		req.expiry = cp.Properties.SessionExpiry
	} else if !cp.CleanStart {
		req.expiry = neverExpire
	}
	if o.MaxSessionExpiry > 0 && req.expiry > 0 {
		if capSecs := uint32(o.MaxSessionExpiry / time.Second); req.expiry > capSecs {
			req.expiry = capSecs
			if v5 {
				ack.Properties.SessionExpiry = capSecs
				ack.Properties.Set(packet.PropSessionExpiry)
			}
		}
	}
	c.connExpiry = req.expiry
	req.receiveMax = o.MaxInflight
	if v5 {
		if cp.Properties.Has(packet.PropReceiveMaximum) {
			req.receiveMax = cp.Properties.ReceiveMaximum // [MQTT-3.3.4-7]
		}
		if cp.Properties.Has(packet.PropMaximumPacketSize) {
			c.maxOut = cp.Properties.MaximumPacketSize
		}
		ack.Properties.ReceiveMaximum = o.ReceiveMaximum
		ack.Properties.Set(packet.PropReceiveMaximum)
		ack.Properties.MaximumPacketSize = uint32(o.MaxPacketSize)
		ack.Properties.Set(packet.PropMaximumPacketSize)
		ack.Properties.TopicAliasMaximum = o.TopicAliasMaximum
		ack.Properties.Set(packet.PropTopicAliasMaximum)
		if !b.retainAvailable() {
			ack.Properties.RetainAvailable = 0
			ack.Properties.Set(packet.PropRetainAvailable)
		}
	}

	// Before attach: from then on other goroutines log through c.log.
	c.log = c.log.With("client_id", c.info.ClientID)
	s, present, err := b.attach(c, &req)
	if err != nil {
		return c.refuse(packet.ServerUnavailable, packet.ConnRefusedUnavailable, "shutting down")
	}
	c.sess = s
	// A reload between reading the listener's ACL and attach has not
	// seen this session: take the listener's ACL again.
	c.setACL(c.ln.acl.Load())
	b.storeListener(s)
	b.stats.connected.Add(1)
	b.stats.total.Add(1)
	c.connected()
	ack.SessionPresent = present // [MQTT-3.2.2-2] [MQTT-3.2.2-3]
	c.sendConnack(&ack)
	if !c.stillAdmitted(authed) {
		c.kickWith(packet.AdministrativeAction, reloadReason)
		return true
	}
	s.resume()
	c.log.Debug("client connected", "version", c.ver.String(), "clean_start", cp.CleanStart,
		"keepalive", ka, "session_present", present)
	return true
}

// authenticate applies the listener's anonymous rule, password file and
// the Authenticate hook.
func (c *conn) authenticate(cp *packet.Connect) packet.ReasonCode {
	l := c.ln
	certUser := l.opts.UseCNAsUsername && c.info.CertCN != ""
	if certUser {
		c.info.Username = c.info.CertCN
	}
	if !certUser {
		if !cp.UsernameFlag {
			if !l.anon.Load() {
				return packet.NotAuthorized
			}
		} else if pw := l.pw.Load(); pw != nil && !pw.Check(cp.Username, cp.Password) {
			return packet.BadUsernameOrPassword
		}
	}
	if h := c.b.deps.Hooks.Authenticate; h != nil {
		if code := h(&c.info, cp.Password); code != packet.Success {
			return code
		}
	}
	return packet.Success
}

// --- packets after CONNECT ------------------------------------------------

func (c *conn) handle(h packet.FixedHeader, body []byte) error {
	if h.Type == packet.TypePublish {
		c.ln.st.msgsIn.Add(1)
		return c.handlePublish(h, body)
	}
	if h.Type == packet.TypeConnect {
		return packet.Errorf(packet.ProtocolError, "second CONNECT") // [MQTT-3.1.0-2]
	}
	pk, err := packet.Decode(h, body, c.ver)
	if err != nil {
		return err
	}
	s := c.sess
	switch p := pk.(type) {
	case *packet.Ack:
		switch p.Kind {
		case packet.TypePuback:
			s.onPuback(p.PacketID)
		case packet.TypePubrec:
			if !s.onPubrec(p.PacketID, p.ReasonCode) {
				c.send(&packet.Ack{Kind: packet.TypePubrel, PacketID: p.PacketID, ReasonCode: packet.PacketIDNotFound})
			}
		case packet.TypePubrel:
			s.mu.Lock()
			_, ok := s.inQoS2[p.PacketID]
			delete(s.inQoS2, p.PacketID)
			s.mu.Unlock()
			code := packet.Success
			if !ok {
				code = packet.PacketIDNotFound // [MQTT-3.7.2-?] 5.0 §3.7.2.1
			}
			c.send(&packet.Ack{Kind: packet.TypePubcomp, PacketID: p.PacketID, ReasonCode: code})
		case packet.TypePubcomp:
			s.onPubcomp(p.PacketID)
		}
	case *packet.Subscribe:
		return c.handleSubscribe(p)
	case *packet.Unsubscribe:
		codes := c.b.unsubscribe(s, p.Filters)
		for i, f := range p.Filters {
			if !c.b.validFilter(f) {
				codes[i] = packet.TopicFilterInvalid
			}
		}
		ua := &packet.Unsuback{PacketID: p.PacketID}
		if c.ver == packet.V5 {
			ua.ReasonCodes = codes
		}
		c.send(ua)
	case *packet.Pingreq:
		c.send(&packet.Pingresp{}) // [MQTT-3.12.4-1]
	case *packet.Disconnect:
		return c.handleDisconnect(p)
	case *packet.Auth:
		// No authentication exchange was started [MQTT-4.12.0-2]... (5.0 §4.12).
		return packet.Errorf(packet.ProtocolError, "AUTH without an authentication method")
	default:
		return packet.Errorf(packet.ProtocolError, "unexpected %s from a client", h.Type)
	}
	return nil
}

func (c *conn) handleDisconnect(p *packet.Disconnect) error {
	if c.ver == packet.V5 {
		if p.Properties.Has(packet.PropSessionExpiry) {
			if c.connExpiry == 0 && p.Properties.SessionExpiry != 0 {
				return packet.Errorf(packet.ProtocolError, "session expiry set on DISCONNECT after 0 at CONNECT") // 5.0 §3.14.2.2.2
			}
			exp := p.Properties.SessionExpiry
			if m := c.b.opts.MaxSessionExpiry; m > 0 {
				exp = min(exp, uint32(m/time.Second)) // the cap applied at CONNECT holds here too
			}
			c.sess.mu.Lock()
			c.sess.expiry = exp
			c.sess.mu.Unlock()
		}
		if p.ReasonCode == packet.DisconnectWithWill {
			c.closeNow()
			return errNormalClose // finish publishes the will (normal stays false)
		}
	}
	c.normal = true // [MQTT-3.1.2-10] the will is discarded
	c.closeNow()
	return errNormalClose
}

func (c *conn) handleSubscribe(p *packet.Subscribe) error {
	var subID uint32
	if c.ver == packet.V5 && len(p.Properties.SubscriptionIDs) > 0 {
		subID = p.Properties.SubscriptionIDs[0]
	}
	for _, sp := range p.Subscriptions {
		if _, _, shared, _ := topic.ParseShared(sp.Filter); shared && sp.NoLocal {
			return packet.Errorf(packet.ProtocolError, "no local on a shared subscription") // [MQTT-3.8.3-4]
		}
	}
	c.b.retainMu.Lock()
	defer c.b.retainMu.Unlock()
	codes, rds := c.b.subscribe(c.sess, &c.info, p.Subscriptions, subID)
	c.send(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes}) // [MQTT-3.8.4-1]
	c.b.sendRetained(c.sess, rds)
	return nil
}

func (c *conn) handlePublish(h packet.FixedHeader, body []byte) error {
	b := c.b
	o := &b.opts
	var p packet.Publish
	if err := packet.DecodePublish(&p, h.Flags, body, c.ver); err != nil {
		return err
	}
	v5 := c.ver == packet.V5
	if v5 && p.Properties.Has(packet.PropSubscriptionID) {
		return packet.Errorf(packet.ProtocolError, "subscription identifier in a PUBLISH from a client") // [MQTT-3.3.4-6]
	}
	if v5 && p.Properties.Has(packet.PropTopicAlias) {
		a := p.Properties.TopicAlias
		if a == 0 || a > o.TopicAliasMaximum {
			return packet.Errorf(packet.TopicAliasInvalid, "topic alias %d", a) // [MQTT-3.3.2-8] [MQTT-3.3.2-9]
		}
		if p.Topic == "" {
			t, ok := c.aliases[a]
			if !ok {
				return packet.Errorf(packet.ProtocolError, "unknown topic alias %d", a)
			}
			p.Topic = t
		} else {
			if c.aliases == nil {
				c.aliases = make(map[uint16]string)
			}
			c.aliases[a] = p.Topic
		}
	}
	if err := topic.ValidName(p.Topic, o.MaxTopicLength, o.MaxTopicLevels); err != nil {
		if v5 {
			return packet.Errorf(packet.TopicNameInvalid, "%v", err)
		}
		return packet.Errorf(packet.MalformedPacket, "%v", err)
	}
	s := c.sess
	if p.QoS == 2 {
		s.mu.Lock()
		_, dup := s.inQoS2[p.PacketID]
		n := len(s.inQoS2)
		s.mu.Unlock()
		if dup {
			// Already received, PUBREL pending: acknowledge again without
			// delivering twice [MQTT-4.3.3-?] (method B).
			c.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: p.PacketID})
			return nil
		}
		if n >= int(o.ReceiveMaximum) {
			return packet.Errorf(packet.ReceiveMaximumExceeded, "more than %d QoS 2 messages unacknowledged", o.ReceiveMaximum) // [MQTT-3.3.4-9]
		}
	}
	m := &Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain,
		Origin: c.info.ClientID, Created: time.Now()}
	if v5 {
		m.Props = passThrough(&p.Properties)
		if p.Properties.Has(packet.PropMessageExpiry) {
			m.ExpiresAt = m.Created.Add(time.Duration(p.Properties.MessageExpiry) * time.Second)
		}
	}
	var code packet.ReasonCode
	var err error
	if v5 && p.Properties.PayloadFormat == 1 && !utf8.Valid(p.Payload) {
		code = packet.PayloadFormatInvalid // [MQTT-3.3.2-?] 5.0 §3.3.2.3.2
	} else {
		code, err = b.publish(&c.info, c.acl.Load(), m)
	}
	if err != nil {
		c.log.Warn("publish not acknowledged as safe: the spool or the persistence did not take it", "topic", p.Topic, "err", err)
		if !v5 {
			return nil // 3.1.1: withhold the acknowledgement; the client retries
		}
	}
	if code == packet.NotAuthorized {
		c.log.Debug("publish not authorized", "topic", p.Topic)
	}
	if !v5 && code.IsError() {
		code = packet.Success // 3.1.1 acknowledges a refused message (no reason codes)
	}
	switch p.QoS {
	case 1:
		c.send(&packet.Ack{Kind: packet.TypePuback, PacketID: p.PacketID, ReasonCode: code})
	case 2:
		if !code.IsError() {
			s.mu.Lock()
			if s.inQoS2 == nil {
				s.inQoS2 = make(map[uint16]struct{}, 1)
			}
			s.inQoS2[p.PacketID] = struct{}{}
			s.mu.Unlock()
		}
		c.send(&packet.Ack{Kind: packet.TypePubrec, PacketID: p.PacketID, ReasonCode: code})
	}
	return nil
}
