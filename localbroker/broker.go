// Package localbroker is Outpost's MQTT 3.1.1 / 5.0 broker core: listeners,
// sessions, the topic tree, retained messages, wills, QoS flows, auth/ACL and
// limits, plus an in-process client API for the gateway's other components.
package localbroker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/localbroker/topic"
)

// Version is reported in $SYS/broker/version.
var Version = "outpost dev"

// ErrClosed is returned by in-process client calls after the client or the
// broker closed.
var ErrClosed = errors.New("localbroker: closed")

// Persistence stores retained messages and persistent sessions so that they
// survive a restart. The spool implements it; nil keeps everything in memory.
type Persistence interface {
	// LoadRetained returns every stored retained message.
	LoadRetained() ([]*Message, error)
	// StoreRetained stores m, or deletes the topic's entry when m.Payload is empty.
	StoreRetained(m *Message) error
	// LoadSessions returns every stored persistent session.
	LoadSessions() ([]*SessionState, error)
	// StoreSession stores the state of a persistent session that went offline
	// or changed its subscriptions.
	StoreSession(st *SessionState) error
	// DeleteSession forgets a session that ended, with its queued messages.
	DeleteSession(clientID string) error
	// StoreQueued durably stores one QoS 1/2 message queued for an offline
	// persistent session, before its publisher is acknowledged. LoadSessions
	// returns such messages in Pending, after the snapshot's own, in Seq
	// order, without those the snapshot already holds (same Seq).
	StoreQueued(clientID string, pm *PendingMessage) error
	// DeleteQueued forgets the messages stored by StoreQueued for a session
	// (they are in memory again once the client is back).
	DeleteQueued(clientID string) error
}

// SessionState is the persistable part of a session.
type SessionState struct {
	ClientID      string
	Username      string
	Expiry        uint32 // seconds; 0xFFFFFFFF never
	Disconnected  time.Time
	Subscriptions []SubscriptionState
	Pending       []PendingMessage // in-flight and queued QoS 1/2 deliveries, in order
}

// SubscriptionState is one persisted subscription.
type SubscriptionState struct {
	Filter string // as subscribed, including $share/group/
	Opts   packet.Subscription
	ID     uint32
}

// PendingMessage is one persisted outbound delivery.
type PendingMessage struct {
	Message  *Message
	QoS      byte
	Retain   bool
	PacketID uint16 // 0 when it was still queued
	Released bool   // PUBREL was sent (QoS 2)
	SubIDs   []uint32
	Seq      uint64 // per-session number given when it was queued offline; 0 none
}

// Deps are the broker's collaborators; every field may be nil.
type Deps struct {
	Hooks       Hooks
	Persistence Persistence
}

type subKey struct {
	client string // session id, for a normal subscription
	group  string // share name, for a shared subscription
}

type subValue struct {
	s     *session
	sub   *subscription
	group *sharedGroup
}

type sharedGroup struct {
	mu      sync.Mutex
	name    string
	inner   string
	members []*sharedMember
	next    int
}

type sharedMember struct {
	s   *session
	sub *subscription
}

type stats struct {
	received, sent, dropped, expired atomic.Int64
	bytesIn, bytesOut                atomic.Int64
	connected, total                 atomic.Int64
	refused                          atomic.Int64
}

// Broker is the MQTT broker core.
type Broker struct {
	opts  Options
	deps  Deps
	log   *slog.Logger
	start time.Time

	subs     *topic.Tree[subKey, subValue]
	retained *topic.Retained[*Message]
	stats    stats

	// retainMu orders retained publishes against subscribes: a publish of a
	// retained message holds it shared while it updates the store and
	// routes; a subscribe holds it exclusively from adding the
	// subscription until its retained messages are queued. Either the
	// publish comes first (the subscriber gets the new value as retained) or
	// after (it gets the old value retained, then the new one live).
	retainMu sync.RWMutex

	mu       sync.Mutex
	lnMu     sync.Mutex // serializes storeListener's writes
	sessions map[string]*session
	groups   map[string]*sharedGroup // "name\x00inner"
	conns    map[*conn]struct{}
	closing  bool

	listeners []*listener
	ready     chan struct{}
	connWG    sync.WaitGroup
	timerWG   sync.WaitGroup
	runCtx    context.Context
	running   atomic.Bool

	// checkRead: a listener has an ACL or there is an Authorize hook, so
	// every delivery is checked for read access.
	checkRead atomic.Bool
	// inprocACL: an in-process client was attached with an ACL, so
	// deliveries are checked for read access from then on.
	inprocACL atomic.Bool

	// outboundFull counts QoS 0 deliveries refused by a full outbound
	// queue; connection readers yield the CPU when it moves.
	outboundFull atomic.Uint64
}

// New validates opts and returns a broker that is not yet running.
func New(opts Options, deps Deps) (*Broker, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	b := &Broker{
		opts:     opts,
		start:    time.Now(),
		deps:     deps,
		log:      opts.Logger.With("component", "broker"),
		subs:     &topic.Tree[subKey, subValue]{},
		retained: &topic.Retained[*Message]{},
		sessions: make(map[string]*session),
		groups:   make(map[string]*sharedGroup),
		conns:    make(map[*conn]struct{}),
		ready:    make(chan struct{}),
		runCtx:   context.Background(),
	}
	for i := range opts.Listeners {
		l, err := newListener(b, &b.opts.Listeners[i])
		if err != nil {
			return nil, err
		}
		b.listeners = append(b.listeners, l)
		if l.acl.Load() != nil {
			b.checkRead.Store(true)
		}
	}
	if deps.Hooks.Authorize != nil {
		b.checkRead.Store(true)
	}
	return b, nil
}

func (o *Options) setDefaults() error {
	o.MaxConnections = cmp.Or(o.MaxConnections, 10000)
	o.MaxPacketSize = cmp.Or(o.MaxPacketSize, 1<<20)
	if o.MaxPacketSize < 64 || o.MaxPacketSize > packet.MaxRemainingLength+5 {
		return fmt.Errorf("localbroker: max packet size %d out of range", o.MaxPacketSize)
	}
	o.ConnectTimeout = cmp.Or(o.ConnectTimeout, 10*time.Second)
	o.ReceiveMaximum = cmp.Or(o.ReceiveMaximum, 64)
	o.MaxInflight = cmp.Or(o.MaxInflight, 64)
	o.MaxQueuedMessages = cmp.Or(o.MaxQueuedMessages, 1000)
	o.MaxQueuedBytes = cmp.Or(o.MaxQueuedBytes, 16<<20)
	o.MaxOutboundBytes = cmp.Or(o.MaxOutboundBytes, 4<<20)
	o.WriteTimeout = cmp.Or(o.WriteTimeout, 30*time.Second)
	if o.MaxTopicLength == 0 || o.MaxTopicLength > 65535 {
		o.MaxTopicLength = 65535
	}
	o.MaxTopicLevels = cmp.Or(o.MaxTopicLevels, 128)
	o.MaxKeepAlive = cmp.Or(o.MaxKeepAlive, 65535)
	o.TopicAliasMaximum = cmp.Or(o.TopicAliasMaximum, 64)
	o.SysInterval = cmp.Or(o.SysInterval, 10*time.Second)
	o.MaxRetainedMessages = cmp.Or(o.MaxRetainedMessages, 100000)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConnections < 0 || o.MaxQueuedMessages < 0 || o.MaxQueuedBytes < 0 || o.MaxOutboundBytes < 0 ||
		o.ConnectTimeout < 0 || o.WriteTimeout < 0 || o.MaxTopicLength < 0 || o.MaxTopicLevels < 0 ||
		o.MaxRetainedMessages < 0 || o.MaxSessionExpiry < 0 {
		return errors.New("localbroker: negative limit in options")
	}
	names := map[string]bool{}
	for i := range o.Listeners {
		l := &o.Listeners[i]
		if l.Kind == "" {
			l.Kind = KindTCP
		}
		if l.Name == "" {
			l.Name = l.Kind + "@" + l.Address
		}
		if names[l.Name] {
			return fmt.Errorf("localbroker: duplicate listener name %q", l.Name)
		}
		names[l.Name] = true
		if l.WSPath == "" {
			l.WSPath = "/mqtt"
		}
	}
	return nil
}

func (b *Broker) retainAvailable() bool {
	return b.opts.RetainAvailable == nil || *b.opts.RetainAvailable
}

// Run binds the listeners, serves until ctx is done, then shuts down
// gracefully and returns after every goroutine it started has exited.
// It returns a listen error at once if a listener cannot be bound.
//
// On shutdown every client is disconnected with reason 0x8B (server
// shutting down); the broker closing a connection is not a normal
// DISCONNECT, so each client's will is published at once (will delay is not
// waited for, since the session does not outlive the process unless a
// Persistence keeps it) [MQTT-3.1.2-8].
func (b *Broker) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("localbroker: Run called twice")
	}
	if err := b.loadPersisted(); err != nil {
		return err
	}
	for i, l := range b.listeners {
		if err := l.listen(); err != nil {
			for _, o := range b.listeners[:i] {
				o.close()
			}
			return err
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.runCtx = runCtx
	var wg sync.WaitGroup
	for _, l := range b.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.serve(runCtx)
		}()
		b.log.Info("listening", "listener", l.opts.Name, "kind", l.opts.Kind, "address", l.addr().String())
	}
	if b.opts.SysInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.sysLoop(runCtx)
		}()
	}
	close(b.ready)
	<-ctx.Done()

	// Graceful stop: stop accepting, disconnect clients (writers flush what
	// they hold), wait for every connection goroutine.
	for _, l := range b.listeners {
		l.close()
	}
	b.mu.Lock()
	b.closing = true
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	var inproc []*Client
	for _, s := range b.sessions {
		s.mu.Lock()
		if cl, ok := s.link.(*Client); ok {
			inproc = append(inproc, cl)
		}
		s.mu.Unlock()
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.kick(packet.ServerShuttingDown)
	}
	// In-process clients are closed like lost connections: Next returns
	// ErrClosed and their wills go out as the network clients' do.
	for _, cl := range inproc {
		cl.Close(true)
	}
	done := make(chan struct{})
	go func() { b.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		for _, c := range conns {
			c.nc.Close()
		}
		<-done
	}
	wg.Wait()
	b.stopTimers()
	b.persistAll()
	b.log.Info("stopped")
	return nil
}

// Ready is closed once every listener is bound.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// Addrs returns the bound address of each listener by name (after Ready).
func (b *Broker) Addrs() map[string]net.Addr {
	m := make(map[string]net.Addr, len(b.listeners))
	for _, l := range b.listeners {
		if a := l.addr(); a != nil {
			m[l.opts.Name] = a
		}
	}
	return m
}

// Name is the component name used by the gateway.
func (b *Broker) Name() string { return "broker" }

func (b *Broker) stopTimers() {
	b.mu.Lock()
	for _, s := range b.sessions {
		s.mu.Lock()
		if s.expiryTimer != nil {
			s.expiryTimer.Stop()
		}
		if s.willTimer != nil {
			s.willTimer.Stop()
		}
		s.mu.Unlock()
	}
	b.mu.Unlock()
}

func (b *Broker) loadPersisted() error {
	p := b.deps.Persistence
	if p == nil {
		return nil
	}
	rms, err := p.LoadRetained()
	if err != nil {
		return fmt.Errorf("localbroker: load retained: %w", err)
	}
	for _, m := range rms {
		b.retained.Set(m.Topic, m)
	}
	sts, err := p.LoadSessions()
	if err != nil {
		return fmt.Errorf("localbroker: load sessions: %w", err)
	}
	for _, st := range sts {
		s := newSession(b, st.ClientID)
		s.expiry = st.Expiry
		s.info = ClientInfo{ClientID: st.ClientID, Username: st.Username}
		s.sendMax = int(b.opts.MaxInflight)
		for _, ss := range st.Subscriptions {
			b.addSubscription(s, ss.Filter, ss.Opts, ss.ID)
		}
		for _, pm := range st.Pending {
			s.qseq = max(s.qseq, pm.Seq)
			om := &outMsg{msg: pm.Message, qos: pm.QoS, retain: pm.Retain, subIDs: pm.SubIDs, pid: pm.PacketID, seq: pm.Seq}
			if pm.PacketID != 0 {
				om.state = outPublished
				if pm.Released {
					om.state = outReleased
				}
				s.inflight = append(s.inflight, om)
			} else {
				s.queue = append(s.queue, om)
				s.queuedBytes += int64(len(om.msg.Payload) + len(om.msg.Topic))
			}
		}
		b.sessions[s.id] = s
		since := st.Disconnected
		if since.IsZero() {
			since = time.Now() // stored while online: the restart disconnected it
		}
		b.scheduleExpiry(s, since)
	}
	return b.restoreListeners()
}

// --- sessions -------------------------------------------------------------

// connectReq is a validated CONNECT, from the network or in-process.
type connectReq struct {
	info       ClientInfo
	cleanStart bool
	expiry     uint32
	will       *Will
	receiveMax uint16
	acl        *auth.ACL
}

// attach binds l to the session of req.info.ClientID, taking over any
// connection that holds it [MQTT-3.1.4-3], and reports whether an existing
// session was resumed [MQTT-3.2.2-2]. The caller sends CONNACK and then
// calls resume.
func (b *Broker) attach(l link, req *connectReq) (*session, bool, error) {
	var wills []*Will
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil, false, ErrClosed
	}
	id := req.info.ClientID
	old := b.sessions[id]
	var s *session
	present := false
	if old != nil {
		old.mu.Lock()
		if old.link != nil {
			old.link.kick(packet.SessionTakenOver)
			old.link = nil
			old.online.Store(false)
			// The old connection ended without DISCONNECT: its will goes
			// out unless a delay lets the resumed session cancel it
			// [MQTT-3.1.3-9].
			if w := old.will; w != nil && (w.Delay == 0 || req.cleanStart) {
				wills = append(wills, w)
			}
			old.will = nil
		} else if old.will != nil && old.willTimer != nil {
			// A delayed will still pending: a new connection cancels it
			// [MQTT-3.1.3-9], unless the session is being discarded, which
			// ends it and so publishes it.
			old.willTimer.Stop()
			old.willTimer = nil
			if req.cleanStart {
				wills = append(wills, old.will)
			}
			old.will = nil
		}
		if old.expiryTimer != nil {
			old.expiryTimer.Stop()
			old.expiryTimer = nil
		}
		if req.cleanStart {
			old.mu.Unlock()
			b.endSessionLocked(old)
		} else {
			s = old
			present = true
			old.mu.Unlock()
		}
	}
	if s == nil {
		s = newSession(b, id)
		b.sessions[id] = s
	}
	s.mu.Lock()
	s.link = l
	s.online.Store(true)
	s.gen++
	s.info = req.info
	s.acl = req.acl
	s.netListener = sessionListener(l)
	s.expiry = req.expiry
	s.will = req.will
	s.sendMax = int(min(req.receiveMax, b.opts.MaxInflight))
	if s.sendMax == 0 {
		s.sendMax = int(b.opts.MaxInflight)
	}
	s.mu.Unlock()
	b.mu.Unlock()
	for _, w := range wills {
		b.publishWill(w)
	}
	if dp, ok := b.deps.Persistence.(deliveryPersistence); present && ok {
		// The stored deliveries stay until the client acknowledges them;
		// those of messages the session no longer holds go. A delivery
		// numbered after this look (a publisher may be acknowledged
		// while the prune runs) is kept.
		s.mu.Lock()
		last := s.qseq
		keep := make(map[uint64]bool, len(s.inflight)+len(s.queue))
		for _, om := range s.inflight {
			keep[om.seq] = true
		}
		for _, om := range s.queue {
			keep[om.seq] = true
		}
		s.mu.Unlock()
		if err := dp.PruneQueued(id, func(seq uint64) bool { return keep[seq] || seq > last }); err != nil {
			b.log.Error("persistence: prune queued", "client_id", id, "err", err)
		}
	} else if present && b.deps.Persistence != nil {
		// The offline queue is in memory again and goes out now; the next
		// snapshot (when the client leaves, or at shutdown) stores what is
		// still pending.
		if err := b.deps.Persistence.DeleteQueued(id); err != nil {
			b.log.Error("persistence: delete queued", "client_id", id, "err", err)
		}
	}
	return s, present, nil
}

// resume re-sends what the session had in flight and queued; called after
// CONNACK was queued.
func (s *session) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != nil {
		s.resend()
	}
}

// detach unbinds l from s after its connection ended. publishWill says the
// connection ended abnormally (no DISCONNECT, or DISCONNECT 0x04).
func (b *Broker) detach(s *session, l link, publishWill bool) {
	var will *Will
	b.mu.Lock()
	s.mu.Lock()
	if s.link != l || s.ended {
		s.mu.Unlock()
		b.mu.Unlock()
		return // taken over: the new owner already dealt with the session
	}
	s.link = nil
	s.online.Store(false)
	s.dropQueuedQoS0All()
	shutdown := b.closing
	w := s.will
	s.will = nil
	if !publishWill {
		w = nil // [MQTT-3.1.2-10] normal DISCONNECT deletes the will
	}
	endNow := s.expiry == 0
	if w != nil {
		if w.Delay == 0 || endNow || shutdown {
			will = w
		} else {
			s.will = w
			gen := s.gen
			s.willTimer = time.AfterFunc(w.Delay, func() { b.fireWill(s, gen) })
		}
	}
	st := b.snapshotLocked(s)
	s.mu.Unlock()
	if endNow {
		b.endSessionLocked(s)
	} else {
		b.scheduleExpiry(s, time.Now())
	}
	b.mu.Unlock()
	if will != nil {
		b.publishWill(will)
	}
	if !endNow && st != nil && b.deps.Persistence != nil {
		if err := b.deps.Persistence.StoreSession(st); err != nil {
			b.log.Error("persistence: store session", "client_id", s.id, "err", err)
		}
		b.storeListener(s)
	}
}

// fireWill publishes a delayed will if the session is still offline.
func (b *Broker) fireWill(s *session, gen uint64) {
	s.mu.Lock()
	w := s.will
	if s.gen != gen || s.link != nil || w == nil {
		s.mu.Unlock()
		return
	}
	s.will = nil
	s.willTimer = nil
	s.mu.Unlock()
	b.publishWill(w)
}

// scheduleExpiry arms the session expiry timer from the disconnect time.
// Called with b.mu held.
func (b *Broker) scheduleExpiry(s *session, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry == neverExpire {
		return
	}
	d := time.Duration(s.expiry)*time.Second - time.Since(since)
	if d < 0 {
		d = 0
	}
	gen := s.gen
	s.expiryTimer = time.AfterFunc(d, func() { b.expire(s, gen) })
}

func (b *Broker) expire(s *session, gen uint64) {
	b.mu.Lock()
	s.mu.Lock()
	if s.gen != gen || s.link != nil || s.ended {
		s.mu.Unlock()
		b.mu.Unlock()
		return
	}
	w := s.will
	s.will = nil
	if s.willTimer != nil {
		s.willTimer.Stop()
	}
	s.mu.Unlock()
	b.endSessionLocked(s)
	b.mu.Unlock()
	if w != nil {
		b.publishWill(w) // the session ended before the will delay [MQTT-3.1.3-9]
	}
}

// endSessionLocked discards s and its subscriptions. Called with b.mu held
// and s.mu not held.
func (b *Broker) endSessionLocked(s *session) {
	s.mu.Lock()
	s.ended = true
	subs := make([]*subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	clear(s.subs)
	s.inflight, s.queue, s.queuedBytes = nil, nil, 0
	if s.expiryTimer != nil {
		s.expiryTimer.Stop()
	}
	s.mu.Unlock()
	for _, sub := range subs {
		b.removeFromTree(s, sub)
	}
	if b.sessions[s.id] == s {
		delete(b.sessions, s.id)
	}
	if b.deps.Persistence != nil {
		if err := b.deps.Persistence.DeleteSession(s.id); err != nil {
			b.log.Error("persistence: delete session", "client_id", s.id, "err", err)
		}
		b.forgetListener(s)
	}
}

// snapshotLocked captures a persistent session's state (s.mu held).
func (b *Broker) snapshotLocked(s *session) *SessionState {
	if b.deps.Persistence == nil || s.expiry == 0 {
		return nil
	}
	st := &SessionState{ClientID: s.id, Username: s.info.Username, Expiry: s.expiry}
	if s.link == nil {
		st.Disconnected = time.Now()
	}
	for _, sub := range s.subs {
		st.Subscriptions = append(st.Subscriptions, SubscriptionState{Filter: sub.filter, Opts: sub.opts, ID: sub.id})
	}
	for _, om := range s.inflight {
		st.Pending = append(st.Pending, PendingMessage{Message: om.msg, QoS: om.qos, Retain: om.retain,
			PacketID: om.pid, Released: om.state == outReleased, SubIDs: om.subIDs, Seq: om.seq})
	}
	for _, om := range s.queue {
		if om.qos > 0 {
			st.Pending = append(st.Pending, PendingMessage{Message: om.msg, QoS: om.qos, Retain: om.retain,
				SubIDs: om.subIDs, Seq: om.seq})
		}
	}
	return st
}

func (b *Broker) publishWill(w *Will) {
	m := w.Message
	m.Created = time.Now()
	if w.Expiry > 0 {
		m.ExpiresAt = m.Created.Add(w.Expiry)
	}
	if _, err := b.publish(nil, nil, &m); err != nil {
		b.log.Warn("will refused, or not stored for every persistent session", "topic", m.Topic, "err", err)
	}
}

// assignClientID makes a unique id for a client that sent none [MQTT-3.1.3-6].
func assignClientID() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return "outpost-" + hex.EncodeToString(r[:])
}

// --- subscriptions --------------------------------------------------------

// subscribe applies SUBSCRIBE filters for s and returns the reason codes
// and the retained messages to send after the SUBACK [MQTT-3.8.4-4].
func (b *Broker) subscribe(s *session, info *ClientInfo, subs []packet.Subscription, subID uint32) ([]packet.ReasonCode, []retainedDelivery) {
	v := info.Version
	codes := make([]packet.ReasonCode, len(subs))
	var rds []retainedDelivery
	for i, sp := range subs {
		code, existed, sub := b.subscribeOne(s, info, sp, subID)
		codes[i] = code
		if code.IsError() {
			if v != packet.V5 {
				codes[i] = packet.SubackFailure311
			}
			continue
		}
		if sub.group != "" {
			continue // no retained messages for shared subscriptions [MQTT-3.8.4-?] (5.0 §4.8.2)
		}
		if sp.RetainHandling == 2 || (sp.RetainHandling == 1 && existed) {
			continue // [MQTT-3.3.1-10] [MQTT-3.3.1-11]
		}
		rds = append(rds, retainedDelivery{sub: sub})
	}
	b.persistSession(s)
	return codes, rds
}

type retainedDelivery struct{ sub *subscription }

// validFilter checks a subscription filter, shared or not.
func (b *Broker) validFilter(f string) bool {
	_, inner, shared, err := topic.ParseShared(f)
	if err != nil {
		return false
	}
	if !shared {
		inner = f
	}
	return topic.ValidFilter(inner, b.opts.MaxTopicLength, b.opts.MaxTopicLevels) == nil
}

func (b *Broker) subscribeOne(s *session, info *ClientInfo, sp packet.Subscription, subID uint32) (packet.ReasonCode, bool, *subscription) {
	if !b.validFilter(sp.Filter) {
		return packet.TopicFilterInvalid, false, nil
	}
	if _, acl := s.authz(); !b.allowed(info, acl, sp.Filter, AccessSubscribe) {
		return packet.NotAuthorized, false, nil
	}
	s.mu.Lock()
	_, existed := s.subs[sp.Filter]
	s.mu.Unlock()
	sub := b.addSubscription(s, sp.Filter, sp, subID)
	return packet.ReasonCode(sp.QoS), existed, sub
}

// addSubscription records a (validated) subscription in the session and the
// topic tree, replacing one with the same filter [MQTT-3.8.4-3].
func (b *Broker) addSubscription(s *session, filter string, opts packet.Subscription, id uint32) *subscription {
	group, inner, shared, _ := topic.ParseShared(filter)
	if !shared {
		inner, group = filter, ""
	}
	opts.Filter = filter
	sub := &subscription{filter: filter, inner: inner, group: group, opts: opts, id: id}
	s.mu.Lock()
	if s.subs == nil {
		s.subs = make(map[string]*subscription, 1)
	}
	s.subs[filter] = sub
	s.mu.Unlock()
	if group == "" {
		b.subs.Add(inner, subKey{client: s.id}, subValue{s: s, sub: sub})
		return sub
	}
	key := group + "\x00" + inner
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[key]
	if g == nil {
		g = &sharedGroup{name: group, inner: inner}
		b.groups[key] = g
		b.subs.Add(inner, subKey{group: group}, subValue{group: g})
	}
	g.mu.Lock()
	replaced := false
	for _, m := range g.members {
		if m.s == s {
			m.sub = sub
			replaced = true
		}
	}
	if !replaced {
		g.members = append(g.members, &sharedMember{s: s, sub: sub})
	}
	g.mu.Unlock()
	return sub
}

// persistAll stores every persistent session at shutdown: messages queued
// for offline sessions since they went offline are kept for the restart.
func (b *Broker) persistAll() {
	if b.deps.Persistence == nil {
		return
	}
	b.mu.Lock()
	ss := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		ss = append(ss, s)
	}
	b.mu.Unlock()
	for _, s := range ss {
		b.persistSession(s)
	}
}

// persistSession stores a persistent session's state after its
// subscriptions changed, so that they survive a crash while it is online.
func (b *Broker) persistSession(s *session) {
	p := b.deps.Persistence
	if p == nil {
		return
	}
	s.mu.Lock()
	st := b.snapshotLocked(s)
	s.mu.Unlock()
	if st == nil {
		return
	}
	if err := p.StoreSession(st); err != nil {
		b.log.Error("persistence: store session", "client_id", s.id, "err", err)
	}
}

// unsubscribe removes filters from s [MQTT-3.10.4].
func (b *Broker) unsubscribe(s *session, filters []string) []packet.ReasonCode {
	codes := make([]packet.ReasonCode, len(filters))
	for i, f := range filters {
		s.mu.Lock()
		sub := s.subs[f]
		delete(s.subs, f)
		s.mu.Unlock()
		if sub == nil {
			codes[i] = packet.NoSubscriptionExisted
			continue
		}
		b.mu.Lock()
		b.removeFromTree(s, sub)
		b.mu.Unlock()
	}
	b.persistSession(s)
	return codes
}

// removeFromTree drops sub of s from the tree. Called with b.mu held.
func (b *Broker) removeFromTree(s *session, sub *subscription) {
	if sub.group == "" {
		b.subs.Remove(sub.inner, subKey{client: s.id})
		return
	}
	key := sub.group + "\x00" + sub.inner
	g := b.groups[key]
	if g == nil {
		return
	}
	g.mu.Lock()
	g.members = slices.DeleteFunc(g.members, func(m *sharedMember) bool { return m.s == s })
	empty := len(g.members) == 0
	g.mu.Unlock()
	if empty {
		delete(b.groups, key)
		b.subs.Remove(sub.inner, subKey{group: sub.group})
	}
}

// authz returns the identity and ACL that s's accesses are checked with,
// under s.mu: a connection taking the session over replaces both.
func (s *session) authz() (ClientInfo, *auth.ACL) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info, s.acl
}

// sendRetained delivers the retained messages matching each new
// subscription to s, with the retain flag set [MQTT-3.3.1-9].
func (b *Broker) sendRetained(s *session, rds []retainedDelivery) {
	now := time.Now()
	info, acl := s.authz()
	for _, rd := range rds {
		sub := rd.sub
		b.retained.Walk(sub.inner, func(_ string, m *Message) bool {
			if m.expired(now) {
				return true
			}
			if !b.allowed(&info, acl, m.Topic, AccessRead) {
				return true
			}
			var ids []uint32
			if sub.id != 0 {
				ids = []uint32{sub.id}
			}
			// No publisher waits on a retained copy; a failure to store
			// it is logged by deliver.
			_ = s.deliver(m, min(m.QoS, sub.opts.QoS), true, ids)
			return true
		})
	}
}

// --- publish path ---------------------------------------------------------

// allowed checks the listener ACL and the Authorize hook.
func (b *Broker) allowed(info *ClientInfo, acl *auth.ACL, t string, a Access) bool {
	if info == nil {
		return true // the broker itself (wills are checked when set)
	}
	if acl != nil && a == AccessSubscribe && !strings.ContainsAny(t, "+#") {
		// The ACL file never refuses a wildcard SUBSCRIBE (as mosquitto:
		// each message is checked for Read at delivery), but a filter that
		// names one topic the client may not read is refused at once, so
		// the client learns of it (0x87 / 0x80) instead of hearing nothing.
		a = AccessRead
	}
	if acl != nil {
		var aa auth.Access
		switch a {
		case AccessRead:
			aa = auth.Read
		case AccessWrite:
			aa = auth.Write
		default:
			aa = auth.Subscribe
		}
		if !acl.Check(info.ClientID, info.Username, t, aa) {
			return false
		}
	}
	if h := b.deps.Hooks.Authorize; h != nil {
		return h(info, t, a)
	}
	return true
}

// publish runs one application message through authorization, the
// before-acknowledge hook, the retained store and routing. It returns
// Success or NoMatchingSubscribers, or a refusal code with a nil error
// (NotAuthorized, QuotaExceeded, ...), or an error from BeforeAck.
func (b *Broker) publish(info *ClientInfo, acl *auth.ACL, m *Message) (packet.ReasonCode, error) {
	if info != nil {
		if strings.HasPrefix(m.Topic, "$SYS/") || m.Topic == "$SYS" {
			return packet.NotAuthorized, nil // $SYS belongs to the broker
		}
		if !b.allowed(info, acl, m.Topic, AccessWrite) {
			return packet.NotAuthorized, nil
		}
	}
	if m.Retain && !b.retainAvailable() {
		return packet.RetainNotSupported, nil
	}
	if m.QoS > 0 {
		if h := b.deps.Hooks.BeforeAck; h != nil {
			if err := h(info, m); err != nil {
				var pe *packet.Error
				if errors.As(err, &pe) {
					return pe.Code, err
				}
				return packet.ImplementationSpecificError, err
			}
		}
	}
	b.stats.received.Add(1)
	b.stats.bytesIn.Add(int64(len(m.Payload)))
	var n int
	var err error
	if m.Retain {
		// Store and route as one step against concurrent subscribes, so a
		// new subscriber never ends up with an older retained value after
		// a newer live one (see retainMu).
		b.retainMu.RLock()
		b.storeRetained(m)
		n, err = b.route(m)
		b.retainMu.RUnlock()
	} else {
		n, err = b.route(m)
	}
	if err != nil {
		// A persistent session's copy is not on disk (a full disk, say):
		// refuse the acknowledgement rather than promise what a kill -9
		// would lose. The 3.1.1 publisher sends it again; subscribers
		// that got it may get it twice (at least once).
		var pe *packet.Error
		if errors.As(err, &pe) {
			return pe.Code, err
		}
		return packet.ImplementationSpecificError, err
	}
	if n == 0 {
		return packet.NoMatchingSubscribers, nil
	}
	return packet.Success, nil
}

func (b *Broker) storeRetained(m *Message) {
	if len(m.Payload) == 0 {
		// [MQTT-3.3.1-6] [MQTT-3.3.1-7] an empty retained message clears the topic.
		if !b.retained.Delete(m.Topic) {
			return
		}
	} else {
		if _, ok := b.retained.Get(m.Topic); !ok && b.retained.Len() >= b.opts.MaxRetainedMessages {
			b.stats.dropped.Add(1)
			b.log.Warn("retained store full, message not retained", "topic", m.Topic)
			return
		}
		b.retained.Set(m.Topic, m)
	}
	if p := b.deps.Persistence; p != nil {
		if err := p.StoreRetained(m); err != nil {
			b.log.Error("persistence: store retained", "topic", m.Topic, "err", err)
		}
	}
}

type match struct {
	s      *session
	qos    byte
	retain bool
	ids    []uint32
	id     uint32 // single id before merging
}

var matchPool = sync.Pool{New: func() any { s := make([]match, 0, 32); return &s }}

// route delivers m to every matching subscription and returns how many
// sessions it reached. A session with several matching subscriptions gets
// one copy at the highest QoS, with every subscription identifier
// [MQTT-3.3.4-2] [MQTT-3.3.4-3] [MQTT-3.3.4-5]. The error is the first
// failure to store a persistent session's copy; every session still gets
// the message.
func (b *Broker) route(m *Message) (int, error) {
	var firstErr error
	mp := matchPool.Get().(*[]match)
	ms := (*mp)[:0]
	b.subs.Match(m.Topic, func(_ subKey, v subValue) {
		s, sub := v.s, v.sub
		if v.group != nil {
			s, sub = v.group.pick()
			if s == nil {
				return
			}
		} else if sub.opts.NoLocal && m.Origin != "" && m.Origin == s.id {
			return // [MQTT-3.8.3-3]
		}
		retain := false
		if sub.opts.RetainAsPublished {
			retain = m.Retain // [MQTT-3.3.1-13]
		}
		ms = append(ms, match{s: s, qos: min(m.QoS, sub.opts.QoS), retain: retain, id: sub.id})
	})
	if len(ms) > 1 {
		slices.SortFunc(ms, func(a, b match) int {
			switch {
			case a.s.seq < b.s.seq:
				return -1
			case a.s.seq > b.s.seq:
				return 1
			}
			return 0
		})
	}
	n := 0
	for i := 0; i < len(ms); {
		j := i + 1
		cur := ms[i]
		if cur.id != 0 {
			cur.ids = []uint32{cur.id}
		}
		for ; j < len(ms) && ms[j].s == cur.s; j++ {
			cur.qos = max(cur.qos, ms[j].qos)
			cur.retain = cur.retain || ms[j].retain
			if ms[j].id != 0 {
				cur.ids = append(cur.ids, ms[j].id)
			}
		}
		i = j
		if b.checkRead.Load() || b.inprocACL.Load() {
			info, acl := cur.s.authz()
			if !b.allowed(&info, acl, m.Topic, AccessRead) {
				continue
			}
		}
		if err := cur.s.deliver(m, cur.qos, cur.retain, cur.ids); err != nil && firstErr == nil {
			firstErr = err
		}
		n++
	}
	clear(ms)
	*mp = ms[:0]
	matchPool.Put(mp)
	return n, firstErr
}

// pick chooses the member of a shared group that gets the next message:
// round robin over members with a connection, else over all (the message
// then waits in an offline session's queue) [MQTT-4.8.2-?].
func (g *sharedGroup) pick() (*session, *subscription) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.members)
	if n == 0 {
		return nil, nil
	}
	for i := 0; i < n; i++ {
		m := g.members[(g.next+i)%n]
		if m.s.online.Load() {
			g.next = (g.next + i + 1) % n
			return m.s, m.sub
		}
	}
	m := g.members[g.next%n]
	g.next = (g.next + 1) % n
	return m.s, m.sub
}
