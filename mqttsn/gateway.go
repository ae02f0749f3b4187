package mqttsn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	bpacket "github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// Gateway is an MQTT-SN 1.2 gateway: it serves MQTT-SN clients on datagram
// transports and makes each of them an in-process client of the local
// broker (a transparent gateway, MQTT-SN 1.2 §3.1).
//
// Goroutines: one reader per transport decodes datagrams and hands each to
// its client's inbox; a fixed pool of workers (numWorkers) runs the clients (one
// worker at a time per client, so a client's messages are handled in
// order, and a reader never waits for the broker's durable handoff); one
// timer goroutine holds every client's deadline (keep-alive, sleep, Tretry)
// in a heap and sends ADVERTISE. There is no goroutine per client.
type Gateway struct {
	opts    Options
	broker  Broker
	store   Store // nil: sessions are kept in memory only
	log     *slog.Logger
	trs     []*transport
	pre     *predefined
	clPre   map[string]*predefined
	workers int
	acc     atomic.Pointer[Access] // the ACL and usernames in force (SetAccess)
	limit   *rateLimiter

	ready   chan struct{}
	running atomic.Bool
	runCtx  context.Context
	timers  *timers
	rq      runQueue
	warn    limiter

	mu     sync.Mutex
	byPeer map[peerKey]*client
	byID   map[string]*client // by broker client id (prefix + ClientId)
	saved  map[string]*savedSession

	st       counters
	nAsleep  atomic.Int64
	attached atomic.Int64
}

// transport is one served datagram socket.
type transport struct {
	idx      int
	opts     Transport
	conn     net.PacketConn
	owned    bool
	listener string // ClientInfo.Listener of its clients
	mtuOf    interface{ MTU() int }
	bcast    net.Addr
	// minus1 publishes QoS -1 messages (§7.1); nil when they are not
	// allowed. Attached again when a LAN client took its id over.
	minus1 atomic.Pointer[localbroker.Client]
	st     trCounters
	ids    *idMatcher   // nil: every ClientId
	addrs  *addrMatcher // nil: every address
}

// mtu returns the largest datagram to send now.
func (t *transport) mtu() int {
	if t.opts.MTU > 0 {
		return min(t.opts.MTU, packet.MaxLen+3+packet.MaxNodeIDLen)
	}
	if t.mtuOf != nil {
		if m := t.mtuOf.MTU(); m > 0 {
			return m
		}
	}
	return maxUDP
}

// peer is where a client's datagrams come from and where answers go.
type peer struct {
	tr   *transport
	addr net.Addr
	// fwd: the client is behind a forwarder (MQTT-SN 1.2 §5.5); answers
	// are encapsulated with its Wireless Node Id.
	fwd    bool
	node   string
	radius uint8
}

type peerKey struct {
	tr   int
	addr string
	fwd  bool
	node string
}

func (p peer) key() peerKey {
	return peerKey{tr: p.tr.idx, addr: p.addr.String(), fwd: p.fwd, node: p.node}
}

func (p peer) String() string {
	if p.fwd {
		return fmt.Sprintf("%s/%x", p.addr, p.node)
	}
	return p.addr.String()
}

// savedSession is what the gateway keeps of a client that connected with
// CleanSession=false while it is away (MQTT-SN 1.2 §6.3): its topic ids,
// will data and the QoS 2 message ids awaiting PUBREL. The broker keeps the
// subscriptions and queued messages.
type savedSession struct {
	topics  *topicTable
	will    *willData
	inQoS2  []uint16
	expires time.Time // zero: never
	stored  bool      // Deps.Store holds a record of it
}

type counters struct {
	datagramsIn, datagramsOut, malformed, unknown, inboxFull atomic.Int64
	publishIn, publishOut, qosMinus1, retransmissions, lost  atomic.Int64
	dropped, tooLarge, sendErrors, refused                   atomic.Int64
	denied, rateLimited, notAuthorized, storeErrors          atomic.Int64
	socketDrops, inboxLen                                    atomic.Int64
}

// Stats is a snapshot of the gateway's counters.
type Stats struct {
	Clients       int // connecting, active, asleep or awake
	Asleep        int // asleep or awake (MQTT-SN 1.2 §6.14)
	SavedSessions int // clients away with CleanSession=false

	DatagramsIn  int64
	DatagramsOut int64
	Malformed    int64 // datagrams that failed to decode, dropped
	Unknown      int64 // messages from an address without a session
	InboxFull    int64 // datagrams dropped because their client was too far behind
	SocketDrops  int64 // datagrams the kernel dropped: a UDP socket's receive buffer was full (Linux; told with the next datagram)

	PublishIn       int64 // PUBLISH from clients taken by the broker (QoS -1 included)
	PublishOut      int64 // PUBLISH to clients done (QoS 0 sent, QoS 1 acknowledged, QoS 2 received)
	QoSMinus1       int64 // QoS -1 PUBLISH taken by the broker
	Retransmissions int64
	Lost            int64 // clients lost: keep-alive, sleep or retransmissions ran out
	Dropped         int64 // messages not delivered to a client: buffer full, too large, no topic id, refused
	TooLarge        int64 // messages not sent because they exceed the transport MTU
	SendErrors      int64
	Refused         int64 // CONNECTs refused (Denied ones included)
	Denied          int64 // datagrams from an address not allowed, and CONNECTs of a ClientId not allowed
	RateLimited     int64 // messages from addresses without a session over the UnconnectedRate, dropped
	NotAuthorized   int64 // publishes, subscriptions and wills the ACL refused
	StoreErrors     int64 // failed writes of sessions to Deps.Store (logged)
}

// New validates opts and returns a gateway that is not yet running.
func New(opts Options, deps Deps) (*Gateway, error) {
	if deps.Broker == nil {
		return nil, errors.New("mqttsn: Deps.Broker is required")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	g := &Gateway{
		opts:    opts,
		broker:  deps.Broker,
		store:   deps.Store,
		log:     opts.Logger.With("component", "mqttsn"),
		pre:     newPredefined(opts.Predefined),
		clPre:   map[string]*predefined{},
		workers: numWorkers,
		ready:   make(chan struct{}),
		timers:  newTimers(),
		rq:      runQueue{signal: make(chan struct{}, 1)},
		byPeer:  map[peerKey]*client{},
		byID:    map[string]*client{},
		saved:   map[string]*savedSession{},
	}
	g.warn.last = map[string]time.Time{}
	g.warn.suppressed = map[string]int{}
	for id, m := range opts.ClientPredefined {
		g.clPre[id] = newPredefined(m)
	}
	acc, err := LoadAccess(opts.ACLFile, opts.Usernames)
	if err != nil {
		return nil, err
	}
	g.acc.Store(acc)
	g.limit = newRateLimiter(opts.UnconnectedRate, opts.UnconnectedBurst, opts.UnconnectedSources)
	for i, t := range opts.Transports {
		tr := &transport{idx: i, opts: t, conn: t.Conn, listener: "mqttsn/" + t.Name, bcast: t.Broadcast}
		tr.ids, _ = newIDMatcher(t.AllowClientIDs)
		tr.addrs, _ = newAddrMatcher(t.AllowAddrs)
		g.trs = append(g.trs, tr)
	}
	return g, nil
}

// Name is the component name used by the gateway package.
func (g *Gateway) Name() string { return "mqttsn" }

// Ready is closed once every transport is open.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Addrs returns each transport's local address by name (after Ready).
func (g *Gateway) Addrs() map[string]net.Addr {
	m := make(map[string]net.Addr, len(g.trs))
	for _, t := range g.trs {
		if t.conn != nil {
			m[t.opts.Name] = t.conn.LocalAddr()
		}
	}
	return m
}

// Stats returns the current counters.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	clients, saved := len(g.byID), len(g.saved)
	g.mu.Unlock()
	return Stats{
		Clients:         clients,
		Asleep:          int(g.nAsleep.Load()),
		SavedSessions:   saved,
		DatagramsIn:     g.st.datagramsIn.Load(),
		DatagramsOut:    g.st.datagramsOut.Load(),
		Malformed:       g.st.malformed.Load(),
		Unknown:         g.st.unknown.Load(),
		InboxFull:       g.st.inboxFull.Load(),
		SocketDrops:     g.st.socketDrops.Load(),
		PublishIn:       g.st.publishIn.Load(),
		PublishOut:      g.st.publishOut.Load(),
		QoSMinus1:       g.st.qosMinus1.Load(),
		Retransmissions: g.st.retransmissions.Load(),
		Lost:            g.st.lost.Load(),
		Dropped:         g.st.dropped.Load(),
		TooLarge:        g.st.tooLarge.Load(),
		SendErrors:      g.st.sendErrors.Load(),
		Refused:         g.st.refused.Load(),
		Denied:          g.st.denied.Load(),
		RateLimited:     g.st.rateLimited.Load(),
		NotAuthorized:   g.st.notAuthorized.Load(),
		StoreErrors:     g.st.storeErrors.Load(),
	}
}

// Run opens the transports and serves them until ctx is done, then closes
// every client's broker session as a lost connection (wills are published,
// as the broker does for its own clients at shutdown; sessions with an
// expiry stay) and returns after every goroutine it started has exited. It
// returns an error at once when a transport cannot be opened.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("mqttsn: Run called twice")
	}
	if err := g.open(ctx); err != nil {
		g.closeTransports()
		return err
	}
	if err := g.load(); err != nil {
		g.closeTransports()
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.runCtx = runCtx

	var readers, others sync.WaitGroup
	for _, tr := range g.trs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			g.read(runCtx, tr)
		}()
		g.log.Info("listening", "transport", tr.opts.Name, "address", tr.conn.LocalAddr().String(), "mtu", tr.mtu())
	}
	others.Add(1 + g.workers)
	go func() {
		defer others.Done()
		g.timerLoop(runCtx)
	}()
	for range g.workers {
		go func() {
			defer others.Done()
			g.work(runCtx)
		}()
	}
	close(g.ready)
	<-ctx.Done()

	// Stop reading (a past deadline unblocks ReadFrom on sockets we do not
	// own), then the workers and the timer goroutine.
	for _, tr := range g.trs {
		_ = tr.conn.SetReadDeadline(time.Unix(1, 0))
	}
	readers.Wait()
	cancel()
	others.Wait()

	g.mu.Lock()
	cs := make([]*client, 0, len(g.byID))
	for _, c := range g.byID {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	// Many clients at once: each waits for synced writes (the broker's
	// session, the gateway's record), which the spool commits together
	// when they wait together; one after the other, 10,000 clients with
	// CleanSession=false took longer than the process's stop may.
	var stopping sync.WaitGroup
	sem := make(chan struct{}, stopWriters)
	for _, c := range cs {
		sem <- struct{}{}
		stopping.Add(1)
		go func() {
			defer func() { <-sem; stopping.Done() }()
			g.stopClient(c)
		}()
	}
	stopping.Wait()
	for _, tr := range g.trs {
		if c := tr.minus1.Load(); c != nil {
			c.Close(false)
		}
	}
	g.closeTransports()
	g.log.Info("stopped", "clients", len(cs))
	return nil
}

// stopWriters bounds the clients Run stops at once.
const stopWriters = 64

// stopClient closes a client's broker session as a lost connection and
// stores what the gateway keeps of it. Called by Run once the workers have
// stopped.
func (g *Gateway) stopClient(c *client) {
	if c.bc != nil {
		c.bc.Close(true)
		c.setBroker(nil, nil)
		g.attached.Add(-1)
	}
	if c.persist {
		// Its session at the gateway outlives the process, as the
		// broker's does.
		g.storeSaved(c.bid, c.savedSession())
	}
}

// open opens the UDP sockets and attaches the QoS -1 publishers.
func (g *Gateway) open(ctx context.Context) error {
	for _, tr := range g.trs {
		if tr.conn == nil {
			lc := net.ListenConfig{Control: setSockopts}
			c, err := lc.ListenPacket(ctx, "udp", tr.opts.Addr)
			if err != nil {
				return fmt.Errorf("mqttsn: transport %q: %w", tr.opts.Name, err)
			}
			tr.conn, tr.owned = c, true
		}
		if m, ok := tr.conn.(interface{ MTU() int }); ok {
			tr.mtuOf = m
		}
		if tr.bcast == nil {
			if b, ok := tr.conn.(interface{ Broadcast() net.Addr }); ok {
				tr.bcast = b.Broadcast()
			}
		}
		if tr.opts.AllowQoSMinus1 {
			if err := g.attachMinus1(tr); err != nil {
				return fmt.Errorf("mqttsn: transport %q: QoS -1 publisher: %w", tr.opts.Name, err)
			}
		}
	}
	return nil
}

// attachMinus1 attaches the transport's broker client for QoS -1 (§7.1),
// checked by the ACL as the anonymous block. Its id is longer than any
// ClientId (23 octets), so no device can take it over; a LAN client that
// does is taken over in turn at the next QoS -1 message.
func (g *Gateway) attachMinus1(tr *transport) error {
	acc := g.access()
	c, _, err := g.broker.Attach(localbroker.ClientOptions{
		ClientID:   tr.opts.ClientIDPrefix + "~mqttsn-qos-minus-1-publisher/" + tr.opts.Name,
		Listener:   tr.listener,
		CleanStart: true,
		ACL:        acc.acl,
	})
	if err != nil {
		return err
	}
	tr.minus1.Store(c)
	if cur := g.access(); cur != acc {
		// SetAccess stores the access before it looks at tr.minus1: it ran
		// meanwhile and may not have seen c.
		c.SetACL(cur.acl)
	}
	return nil
}

func (g *Gateway) closeTransports() {
	for _, tr := range g.trs {
		if tr.owned && tr.conn != nil {
			tr.conn.Close()
		}
	}
}

// read is a transport's reader goroutine.
func (g *Gateway) read(ctx context.Context, tr *transport) {
	buf := make([]byte, packet.MaxLen+3+packet.MaxNodeIDLen)
	readFrom := tr.conn.ReadFrom
	if u, ok := tr.conn.(*net.UDPConn); ok && tr.owned && oobSize > 0 {
		// With the kernel's count of the datagrams it dropped for lack of
		// room in the socket's buffer.
		oob := make([]byte, oobSize)
		var last uint32
		readFrom = func(b []byte) (int, net.Addr, error) {
			n, oobn, _, ap, err := u.ReadMsgUDPAddrPort(b, oob)
			if err != nil {
				return n, nil, err
			}
			if c, ok := dropCount(oob[:oobn]); ok && c != last {
				g.st.socketDrops.Add(int64(c - last))
				last = c
				g.warnLimited("socketdrops", "datagrams dropped by the kernel: the socket's receive buffer was full",
					"transport", tr.opts.Name, "dropped_total", c)
			}
			// An IPv4 client of a dual-stack socket is written as
			// IPv4, as ReadFrom does.
			return n, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())), nil
		}
	}
	for {
		n, addr, err := readFrom(buf)
		if err == nil && addr != nil {
			g.dispatch(tr, addr, buf[:n])
			continue
		}
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return
		}
		if errors.Is(err, io.ErrShortBuffer) {
			g.st.malformed.Add(1)
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			g.warnLimited("read", "transport read failed", "transport", tr.opts.Name, "err", err)
		}
		// Not in a tight loop on a failing socket (or a deadline someone
		// else set).
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// dispatch decodes one datagram and hands it on: connectionless messages
// are answered here, the others go to their client's inbox.
func (g *Gateway) dispatch(tr *transport, addr net.Addr, b []byte) {
	g.st.datagramsIn.Add(1)
	tr.st.datagramsIn.Add(1)
	tr.st.bytesIn.Add(int64(len(b)))
	verdict := tr.addrs.check(addr)
	if verdict == addrDenied {
		g.denyAddr(tr, addr.String())
		return
	}
	// The message is kept past the next read: copy it (the decoded message
	// aliases its datagram).
	data := bytes.Clone(b)
	p := peer{tr: tr, addr: addr}
	inner := data
	if _, t, _, _ := packet.DecodeHeader(data); t == packet.TypeEncapsulated {
		radius, node, in, err := packet.SplitEncapsulated(data)
		if err != nil {
			g.malformed(p, err)
			return
		}
		p.fwd, p.node, p.radius, inner = true, string(node), radius, in
	}
	if verdict == addrNodesOnly && (!p.fwd || !tr.addrs.allowsNode(addr, p.node)) {
		g.denyAddr(tr, p.String())
		return
	}
	m, err := packet.Decode(inner)
	if err != nil {
		g.malformed(p, err)
		return
	}
	g.route(p, m)
}

// denyAddr counts and logs (rate-limited) a datagram that the transport's
// address allowlist does not allow.
func (g *Gateway) denyAddr(tr *transport, remote string) {
	g.st.denied.Add(1)
	g.warnLimited("deny-addr", "datagram from an address not allowed dropped", "transport", tr.opts.Name, "remote", remote)
}

func (g *Gateway) malformed(p peer, err error) {
	g.st.malformed.Add(1)
	g.debugLimited("malformed", "malformed datagram dropped", "transport", p.tr.opts.Name, "remote", p.String(), "err", err)
}

// route hands a decoded message to its client, or answers it.
func (g *Gateway) route(p peer, m packet.Message) {
	switch m := m.(type) {
	case *packet.SearchGW:
		// MQTT-SN 1.2 §6.1: answered with GWINFO (to the searching client;
		// through a forwarder with the radius of the search).
		if !g.allowUnconnected(p) {
			return
		}
		rp := p
		rp.radius = min(m.Radius, 3)
		_ = g.sendTo(rp, &packet.GWInfo{GwID: g.opts.GatewayID})
		return
	case *packet.Advertise, *packet.GWInfo:
		return // other gateways, or clients answering for one
	case *packet.Connect:
		g.routeConnect(p, m)
		return
	case *packet.Publish:
		if m.QoS == packet.QoSMinus1 {
			if g.allowUnconnected(p) {
				g.publishMinus1(p, m)
			}
			return
		}
	case *packet.Pingreq:
		if len(m.ClientID) > 0 {
			g.routeWake(p, m)
			return
		}
	}
	g.mu.Lock()
	c := g.byPeer[p.key()]
	if c != nil {
		c.enqueue(inItem{m: m, from: p})
	}
	g.mu.Unlock()
	if c == nil {
		g.unknown(p, m)
	}
}

// unknown answers a message from an address without a session. MQTT-SN 1.2
// §6.12: a gateway that cannot map a message to a client may send
// DISCONNECT, upon which the client connects again. A PUBREL is answered
// with PUBCOMP: its message was published when PUBREC was sent. Nothing
// answers a DISCONNECT, a PUBCOMP or an acknowledgement, so that two
// gateways fed a spoofed address cannot keep answering each other.
func (g *Gateway) unknown(p peer, m packet.Message) {
	g.st.unknown.Add(1)
	switch m.(type) {
	case *packet.Publish, *packet.Register, *packet.Subscribe, *packet.Unsubscribe, *packet.Pingreq,
		*packet.WillTopic, *packet.WillMsg, *packet.WillTopicUpd, *packet.WillMsgUpd, *packet.Pubrel:
		if !g.allowUnconnected(p) {
			return
		}
	}
	switch m := m.(type) {
	case *packet.Publish, *packet.Register, *packet.Subscribe, *packet.Unsubscribe, *packet.Pingreq,
		*packet.WillTopic, *packet.WillMsg, *packet.WillTopicUpd, *packet.WillMsgUpd:
		_ = g.sendTo(p, &packet.Disconnect{})
	case *packet.Pubrel:
		_ = g.sendTo(p, &packet.Pubcomp{MsgID: m.MsgID})
	}
}

// allowUnconnected applies the rate limit of traffic from an address
// without a session (Options.UnconnectedRate), counting and logging what it
// drops.
func (g *Gateway) allowUnconnected(p peer) bool {
	key := p.String()
	if p.tr.idx > 0 {
		key = p.tr.opts.Name + " " + key
	}
	if g.limit.allow(key, time.Now()) {
		return true
	}
	g.st.rateLimited.Add(1)
	g.warnLimited("ratelimit", "message from an address without a session over the rate limit dropped",
		"transport", p.tr.opts.Name, "remote", p.String())
	return false
}

// routeConnect finds or makes the client of a CONNECT. A ClientId known at
// another address moves to this one (the session is taken over); a client
// that held this address before, under another ClientId, is lost.
func (g *Gateway) routeConnect(p peer, m *packet.Connect) {
	id := string(m.ClientID)
	bid := p.tr.opts.ClientIDPrefix + id
	key := p.key()
	if !p.tr.ids.match(id) {
		g.st.denied.Add(1)
		g.st.refused.Add(1)
		g.warnLimited("deny-id", "CONNECT refused: client id not allowed", "transport", p.tr.opts.Name,
			"remote", p.String(), "client_id", id)
		if g.allowUnconnected(p) { // an answer to anyone: limited as the others
			_ = g.sendTo(p, &packet.Connack{ReturnCode: packet.RejectedNotSupported})
		}
		return
	}
	g.mu.Lock()
	if prev := g.byPeer[key]; prev == nil || prev.bid != bid {
		// A CONNECT that makes a client or moves one to this address is
		// limited as other traffic without a session is, so that a flood
		// from ever new (spoofed) addresses or ClientIds cannot churn
		// sessions or draw CONNACKs at line rate. A client connecting again
		// from its address is not.
		g.mu.Unlock()
		if !g.allowUnconnected(p) {
			return
		}
		g.mu.Lock()
	}
	c := g.byID[bid]
	if c == nil {
		if len(g.byID) >= g.opts.MaxClients {
			g.mu.Unlock()
			g.st.refused.Add(1)
			g.warnLimited("maxclients", "CONNECT refused: too many clients", "max_clients", g.opts.MaxClients)
			_ = g.sendTo(p, &packet.Connack{ReturnCode: packet.RejectedCongestion})
			return
		}
		c = g.newClient(p, id, bid)
		g.byID[bid] = c
	}
	g.mapPeer(key, c, p)
	c.enqueue(inItem{m: m, from: p})
	g.mu.Unlock()
}

// routeWake hands a PINGREQ with a ClientId (a sleeping client waking up,
// MQTT-SN 1.2 §6.14) to its client, from whatever address it comes.
func (g *Gateway) routeWake(p peer, m *packet.Pingreq) {
	bid := p.tr.opts.ClientIDPrefix + string(m.ClientID)
	g.mu.Lock()
	c := g.byID[bid]
	if c != nil {
		g.mapPeer(p.key(), c, p)
		c.enqueue(inItem{m: m, from: p})
	}
	g.mu.Unlock()
	if c == nil {
		g.unknown(p, m)
	}
}

// mapPeer points key at c; a client that held it before is told. Called
// with g.mu held.
func (g *Gateway) mapPeer(key peerKey, c *client, p peer) {
	old := g.byPeer[key]
	if old == c {
		return
	}
	if old != nil {
		old.enqueue(inItem{superseded: true, from: p})
	}
	g.byPeer[key] = c
	c.keys = append(c.keys, key)
}

// publishMinus1 publishes a QoS -1 PUBLISH (MQTT-SN 1.2 §6.8) through the
// transport's own broker client, at QoS 0.
func (g *Gateway) publishMinus1(p peer, m *packet.Publish) {
	tr := p.tr
	if tr.minus1.Load() == nil {
		g.st.dropped.Add(1)
		g.debugLimited("qos-1", "QoS -1 PUBLISH dropped: not allowed on this transport", "transport", tr.opts.Name, "remote", p.String())
		return
	}
	var name string
	switch m.TopicIDType {
	case packet.TopicIDPredefined:
		name = g.pre.names[m.TopicID]
	case packet.TopicIDShort:
		name = shortName(m.TopicID)
	}
	if !validTopicName(name) {
		g.st.dropped.Add(1)
		g.debugLimited("qos-1", "QoS -1 PUBLISH dropped: unknown topic", "transport", tr.opts.Name, "remote", p.String(), "topic_id", m.TopicID)
		return
	}
	msg := &localbroker.Message{Topic: name, Payload: m.Data, Retain: m.Retain}
	code, err := tr.minus1.Load().Publish(g.runCtx, msg)
	if errors.Is(err, localbroker.ErrClosed) && g.runCtx.Err() == nil {
		// A LAN client connected with the publisher's client id and took
		// its session: every QoS -1 message would be dropped from now on.
		g.warnLimited("qos-1-takeover", "the QoS -1 publisher's client id was taken over by another client: attached again",
			"transport", tr.opts.Name)
		if aerr := g.attachMinus1(tr); aerr == nil {
			code, err = tr.minus1.Load().Publish(g.runCtx, msg)
		}
	}
	if code == bpacket.NotAuthorized {
		g.st.notAuthorized.Add(1)
		g.warnLimited("acl", "not authorized", "access", "publish QoS -1", "transport", tr.opts.Name, "remote", p.String(), "topic", name)
		return
	}
	if err != nil || code.IsError() {
		g.st.dropped.Add(1)
		g.debugLimited("qos-1", "QoS -1 PUBLISH refused by the broker", "topic", name, "code", code, "err", err)
		return
	}
	g.st.qosMinus1.Add(1)
	g.st.publishIn.Add(1)
	tr.st.publishIn.Add(1)
}

// shortName returns the topic name a short topic id carries (§6.7).
func shortName(id uint16) string {
	n := packet.ShortTopicName(id)
	return string(n[:])
}

var errTooLarge = errors.New("mqttsn: message larger than the transport MTU")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// sendTo encodes m (encapsulated when p is behind a forwarder) and sends it,
// unless it exceeds the transport's MTU (errTooLarge, counted and logged).
func (g *Gateway) sendTo(p peer, m packet.Message) error {
	size := packet.Size(m)
	if p.fwd {
		size += 3 + len(p.node)
	}
	if mtu := p.tr.mtu(); size > mtu {
		g.st.tooLarge.Add(1)
		g.warnLimited("mtu", "message larger than the transport MTU not sent", "transport", p.tr.opts.Name,
			"remote", p.String(), "type", m.Type().String(), "size", size, "mtu", mtu)
		return errTooLarge
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if p.fwd {
		b = packet.AppendEncapsulationHeader(b, p.radius, []byte(p.node))
	}
	b = packet.Append(b, m)
	n, err := p.tr.conn.WriteTo(b, p.addr)
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	if err != nil {
		g.st.sendErrors.Add(1)
		g.warnLimited("send", "send failed", "transport", p.tr.opts.Name, "remote", p.String(), "type", m.Type().String(), "err", err)
		return err
	}
	g.st.datagramsOut.Add(1)
	p.tr.st.datagramsOut.Add(1)
	p.tr.st.bytesOut.Add(int64(n))
	return nil
}

// --- run queue and workers ----------------------------------------------

// numWorkers is the size of the worker pool. A worker mostly waits: for a
// session store write (a REGISTER, a SUBSCRIBE by name, a will of a client
// with CleanSession=false is on disk before its answer) or for the broker's
// durable handoff of a QoS 1/2 PUBLISH. The spool commits the writes that
// wait together with one sync, so the workers bound how many share it: with
// one per core (two on a Pi Zero 2 or on a 2-core board) each write took a
// sync of its own, and both workers waited on the disk while every other
// client waited for them. A waiting goroutine costs a few KiB.
const numWorkers = 32

// runQueue holds the clients with work (a datagram, a delivery, a passed
// deadline); each is in it at most once (client.queued).
type runQueue struct {
	mu     sync.Mutex
	q      []*client
	signal chan struct{}
}

func (r *runQueue) push(c *client) {
	r.mu.Lock()
	r.q = append(r.q, c)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// pop returns the next client and whether more are waiting.
func (r *runQueue) pop() (*client, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.q) == 0 {
		return nil, false
	}
	c := r.q[0]
	r.q[0] = nil
	r.q = r.q[1:]
	if len(r.q) == 0 {
		r.q = nil
	}
	return c, len(r.q) > 0
}

func (g *Gateway) work(ctx context.Context) {
	for {
		c, more := g.rq.pop()
		if c == nil {
			select {
			case <-ctx.Done():
				return
			case <-g.rq.signal:
			}
			continue
		}
		if more {
			select {
			case g.rq.signal <- struct{}{}:
			default:
			}
		}
		c.run()
		if ctx.Err() != nil {
			return
		}
	}
}

// schedule queues c for a worker unless it is queued already.
func (g *Gateway) schedule(c *client) {
	c.qmu.Lock()
	if c.queued || c.dead {
		c.qmu.Unlock()
		return
	}
	c.queued = true
	c.qmu.Unlock()
	g.rq.push(c)
}

// --- timers -------------------------------------------------------------

// sweepEvery is the period of the expiry check of saved sessions.
const sweepEvery = time.Minute

// timerLoop wakes clients whose deadline passed, sends ADVERTISE and
// forgets expired saved sessions.
func (g *Gateway) timerLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	adv := g.opts.AdvertiseInterval
	now := time.Now()
	nextAdv := now
	nextSweep := now.Add(sweepEvery)
	var due []*client
	for {
		now = time.Now()
		var next time.Time
		due, next = g.timers.due(now, due[:0])
		for _, c := range due {
			g.schedule(c)
		}
		clear(due)
		if adv > 0 && !now.Before(nextAdv) {
			g.advertise()
			nextAdv = now.Add(adv)
		}
		if !now.Before(nextSweep) {
			g.sweepSaved(now)
			nextSweep = now.Add(sweepEvery)
		}
		wake := nextSweep
		if adv > 0 && nextAdv.Before(wake) {
			wake = nextAdv
		}
		if !next.IsZero() && next.Before(wake) {
			wake = next
		}
		t.Reset(wake.Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.timers.wake:
		}
	}
}

// advertise broadcasts ADVERTISE on every transport with a broadcast
// address (MQTT-SN 1.2 §6.1); Duration is the time to the next one.
func (g *Gateway) advertise() {
	secs := min(g.opts.AdvertiseInterval/time.Second, 0xFFFF)
	for _, tr := range g.trs {
		if tr.bcast == nil {
			continue
		}
		_ = g.sendTo(peer{tr: tr, addr: tr.bcast}, &packet.Advertise{GwID: g.opts.GatewayID, Duration: packet.Seconds(secs)})
	}
}

// sweepSaved forgets saved sessions past their expiry.
func (g *Gateway) sweepSaved(now time.Time) {
	var gone []string
	g.mu.Lock()
	for id, s := range g.saved {
		if !s.expires.IsZero() && !now.Before(s.expires) {
			delete(g.saved, id)
			if s.stored {
				gone = append(gone, id)
			}
		}
	}
	g.mu.Unlock()
	for _, id := range gone {
		_ = g.unstore(id) // counted and logged
	}
}

// saveSession keeps s for bid, within MaxClients saved sessions (the one
// closest to expiry goes first), and returns the client id of a stored
// session it forgot for that, for the caller to unstore. Called with g.mu
// held.
func (g *Gateway) saveSession(bid string, s *savedSession) (evicted string) {
	if _, ok := g.saved[bid]; !ok && len(g.saved) >= g.opts.MaxClients {
		var victim string
		var soonest time.Time
		for id, o := range g.saved {
			if victim == "" || (!o.expires.IsZero() && (soonest.IsZero() || o.expires.Before(soonest))) {
				victim, soonest = id, o.expires
			}
		}
		if g.saved[victim].stored {
			evicted = victim
		}
		delete(g.saved, victim)
	}
	g.saved[bid] = s
	return evicted
}

// --- logging ------------------------------------------------------------

// limiter lets one message of a kind through every logEvery.
type limiter struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

const logEvery = 10 * time.Second

func (l *limiter) allow(key string) (bool, int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < logEvery {
		l.suppressed[key]++
		return false, 0
	}
	n := l.suppressed[key]
	l.last[key] = now
	l.suppressed[key] = 0
	return true, n
}

func (g *Gateway) warnLimited(key, msg string, args ...any) {
	if ok, n := g.warn.allow(key); ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		g.log.Warn(msg, args...)
	}
}

func (g *Gateway) debugLimited(key, msg string, args ...any) {
	if !g.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if ok, n := g.warn.allow("debug:" + key); ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		g.log.Debug(msg, args...)
	}
}
