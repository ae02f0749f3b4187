package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/spool"
)

// Queue is what a Bridge needs of a durable spool queue. *spool.Queue has
// it.
type Queue interface {
	Append(ctx context.Context, data ...[]byte) ([]uint64, error)
	Read(after uint64, max int) ([]spool.Item, error)
	Ack(seqs ...uint64) error
	Stats() spool.QueueStats
}

// Broker is what a Bridge needs of the local broker. *localbroker.Broker
// has it.
type Broker interface {
	Attach(localbroker.ClientOptions) (*localbroker.Client, bool, error)
}

// Deps are a Bridge's collaborators.
type Deps struct {
	// Broker is the local broker. Required.
	Broker Broker
	// OpenQueue opens the spool queue called name, creating it when it is
	// missing, with the limits the gateway chose for it. Required. With a
	// *spool.Store:
	//
	//	func(name string) (uplink.Queue, error) { return store.Queue(name, limits) }
	OpenQueue func(name string) (Queue, error)
	// Flights keeps the state of QoS 2 flights across restarts, for
	// exactly once delivery over a resumed cloud session (see the package
	// documentation); nil keeps it in memory only, and a QoS 2 message in
	// flight at a restart may then arrive twice. With a *spool.Store:
	// store.KV("uplink." + name).
	Flights FlightStore
	// QueueNames lists the spool's queues. With it, Run finds the bridge's
	// leftover queues: those named after the bridge (QueueName) whose
	// priority class no out-rule has any more, left by a restart with
	// changed rules. Their messages drain after every configured class,
	// under the topics they were spooled with, and each queue is dropped
	// (DropQueue) once the cloud acknowledged all of it. nil: none.
	// With a *spool.Store: store.QueueNames.
	QueueNames func() []string
	// DropQueue drops an emptied leftover queue; nil leaves it empty.
	// With a *spool.Store, discarding the count of store.DropQueue.
	DropQueue func(ctx context.Context, name string) error
}

// State is the state of the link to the cloud.
type State string

// States.
const (
	StateConnecting State = "connecting" // dialing, or waiting for CONNACK
	StateOnline     State = "online"
	StateOffline    State = "offline" // waiting before the next attempt, or stopped
)

// Stats describe a bridge. Counters count since New.
type Stats struct {
	State       State
	Connected   bool      // State is StateOnline
	Since       time.Time // when State was entered
	LastError   string    // the last failure of the link; "" when none yet
	LastErrorAt time.Time

	// Sent counts PUBLISH packets written to the cloud; a message sent
	// again after a reconnect counts again.
	Sent uint64
	// Out counts messages acknowledged by the cloud (PUBACK, or PUBCOMP
	// for QoS 2; QoS 0: written).
	Out uint64
	In  uint64 // messages from the cloud published locally

	// Dropped counts messages not forwarded on purpose: QoS 0 while
	// offline (without QueueQoS0), expired messages, messages past their
	// rule's MaxAge, topics a rule cannot map, cloud messages the local
	// broker refused for good, and what the spool queues dropped (their
	// drop-oldest policy) or expired (their MaxAge limit).
	Dropped uint64
	// Expired is the part of Dropped that expired: past their Message
	// Expiry Interval, their rule's MaxAge or their queue's MaxAge.
	Expired uint64
	// Quarantined counts messages the cloud refused for good, moved to the
	// quarantine queue.
	Quarantined uint64
	// Refused counts local QoS 1/2 messages refused at BeforeAck because
	// the spool did not take them (the publisher got no success ack).
	Refused uint64

	// SubscribeRetries counts the cloud SUBSCRIBE and UNSUBSCRIBE packets
	// sent again for in-rules after one of a reload failed (no answer, or
	// a refusing reason code); they are retried with backoff while the
	// link is up.
	SubscribeRetries uint64

	// Depth and Bytes sum the classes: the backlog waiting in the spool.
	Depth int64
	Bytes int64
	// DrainRate is how many spooled messages the cloud acknowledged per
	// second over the last DrainRateWindow.
	DrainRate float64
	// ETA is the time to drain the backlog at DrainRate (Depth /
	// DrainRate): 0 when the spool is empty, UnknownETA when there is a
	// backlog and nothing drains.
	ETA time.Duration

	Classes         []ClassStats // highest priority first
	QuarantineDepth int64
	QuarantineBytes int64
}

// UnknownETA is Stats.ETA when a backlog does not drain.
const UnknownETA time.Duration = -1

// DrainRateWindow is the span of Stats.DrainRate.
const DrainRateWindow = rateSlots * time.Second

// ClassStats describe one priority class.
type ClassStats struct {
	Priority int
	Queue    string    // spool queue name
	Depth    int64     // messages in the queue (including those in flight)
	Bytes    int64     // their payload bytes (spool records: topic, properties and payload)
	Oldest   time.Time // when the oldest was spooled; zero when empty
	InFlight int       // published, not yet acknowledged
	// Leftover marks the queue of a class that no out-rule has any more,
	// found at the start: it drains after every configured class and is
	// dropped once empty (see Deps.QueueNames).
	Leftover bool
}

// Bridge links the local broker with one cloud broker: out-rules go
// through the spool to the cloud, in-rules from the cloud to the local
// broker. Create it with New, wire BeforeAck into the broker's
// Hooks.BeforeAck, and start it with Run.
type Bridge struct {
	s       *settings
	deps    Deps
	log     *slog.Logger
	localID string
	limiter *limiter

	qmu        sync.Mutex
	queues     map[int]Queue
	quarantine Queue

	started atomic.Bool
	ready   chan struct{}
	wake    chan struct{} // a queue was appended to
	redial  chan struct{} // the inbound path asks for a new connection
	subKick chan struct{} // a reload changed the cloud subscriptions

	rs     atomic.Pointer[ruleSet] // the rules in force; SetRules replaces them
	reload reloadState

	runCtx  context.Context
	local   *localbroker.Client
	link    atomic.Pointer[link]
	classes []*class

	out, in, dropped, quarantined, refused atomic.Uint64
	sent, expired                          atomic.Uint64
	drained                                rateMeter // spooled messages the cloud acknowledged
	dropEp, refuseEp, quarantineEp         episode
	inEp, retryEp, subEp                   episode
	subRetries                             atomic.Uint64

	stMu      sync.Mutex
	state     State
	since     time.Time
	lastErr   string
	lastErrAt time.Time
}

// New validates opts and deps and returns a Bridge that Run will start. It
// starts nothing.
func New(opts Options, deps Deps) (*Bridge, error) {
	s, err := opts.compile()
	if err != nil {
		return nil, err
	}
	if deps.Broker == nil || deps.OpenQueue == nil {
		return nil, errors.New("uplink: Deps.Broker and Deps.OpenQueue are required")
	}
	b := &Bridge{
		s:       s,
		deps:    deps,
		log:     s.Logger.With("component", "uplink", "bridge", s.Name),
		localID: "outpost-uplink-" + s.Name,
		limiter: newLimiter(s.RateLimit, s.RateBurst, s.RateBytes),
		queues:  make(map[int]Queue),
		ready:   make(chan struct{}),
		wake:    make(chan struct{}, 1),
		redial:  make(chan struct{}, 1),
		subKick: make(chan struct{}, 1),
		state:   StateOffline,
		since:   time.Now(),
	}
	b.drained.begin(b.since)
	b.rs.Store(&ruleSet{out: s.out, in: s.in, prios: s.prios})
	return b, nil
}

// Name returns "uplink/" and the bridge's name.
func (b *Bridge) Name() string { return "uplink/" + b.s.Name }

// Ready is closed once Run opened the spool queues and attached to the
// local broker; the cloud may still be unreachable (see Stats).
func (b *Bridge) Ready() <-chan struct{} { return b.ready }

// queue returns the spool queue of a priority class, opening it on first
// use (BeforeAck may run before Run).
func (b *Bridge) queue(prio int) (Queue, error) {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if q := b.queues[prio]; q != nil {
		return q, nil
	}
	q, err := b.deps.OpenQueue(QueueName(b.s.Name, prio))
	if err != nil {
		return nil, fmt.Errorf("uplink: open queue: %w", err)
	}
	b.queues[prio] = q
	return q, nil
}

func (b *Bridge) quarantineQueue() (Queue, error) {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if b.quarantine != nil {
		return b.quarantine, nil
	}
	q, err := b.deps.OpenQueue(QuarantineName(b.s.Name))
	if err != nil {
		return nil, fmt.Errorf("uplink: open quarantine queue: %w", err)
	}
	b.quarantine = q
	return q, nil
}

// Run opens the queues, attaches to the local broker, and keeps a
// connection to the cloud (reconnecting with backoff) until ctx is done.
// At the end it waits up to DrainTimeout for the messages in flight,
// disconnects, detaches, and returns after every goroutine it started has
// exited: nil after a clean stop, or the error that kept it from starting.
// A Bridge runs once.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("uplink: Run called twice")
	}
	rs := b.rules()
	classes := make([]*class, 0, len(rs.prios))
	for _, p := range rs.prios {
		q, err := b.queue(p)
		if err != nil {
			return err
		}
		classes = append(classes, &class{prio: p, name: QueueName(b.s.Name, p), q: q, attempts: make(map[uint64]int), skip: make(map[uint64]bool)})
	}
	leftover, err := b.leftoverClasses(ctx, rs.prios)
	if err != nil {
		return err
	}
	b.qmu.Lock() // Stats reads classes
	b.classes = append(classes, leftover...)
	b.qmu.Unlock()
	if _, err := b.quarantineQueue(); err != nil {
		return err
	}
	sess := newSession()
	if b.deps.Flights != nil {
		if err := b.restoreFlights(sess); err != nil {
			return err
		}
	}
	local, _, err := b.deps.Broker.Attach(localbroker.ClientOptions{
		ClientID:   b.localID,
		CleanStart: true,
		Listener:   "uplink",
	})
	if err != nil {
		return fmt.Errorf("uplink: attach to the local broker: %w", err)
	}
	defer local.Close(false)
	if len(rs.out) > 0 {
		// QoS 0 messages of the out-rules come through this subscription
		// (QoS 1/2 ones through BeforeAck). No Local keeps out what this
		// bridge publishes for its in-rules; retained messages are not
		// resent at each start.
		subs := localSubs(rs.out)
		codes, err := local.Subscribe(ctx, subs, 0)
		if err != nil {
			return fmt.Errorf("uplink: subscribe locally: %w", err)
		}
		for i, c := range codes {
			if c >= 0x80 {
				b.log.Warn("local subscription refused; QoS 0 messages of this rule are not forwarded", "filter", subs[i].Filter, "reason", c.String())
			}
		}
	}
	b.runCtx, b.local = ctx, local
	close(b.ready)
	b.log.Info("started", "url", b.s.url.Redacted(), "client_id", b.s.ClientID, "classes", len(b.classes), "in_rules", len(rs.in))

	var wg sync.WaitGroup
	wg.Go(func() { b.qos0Loop(ctx) }) // also when there is no out-rule yet: a reload may add one
	b.connLoop(ctx, sess)
	local.Close(false)
	wg.Wait()
	b.setState(StateOffline, nil)
	b.log.Info("stopped")
	return nil
}

// kick wakes the drain loop after an append.
func (b *Bridge) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *Bridge) setState(st State, err error) {
	b.stMu.Lock()
	defer b.stMu.Unlock()
	if st != b.state {
		b.state, b.since = st, time.Now()
	}
	if err != nil {
		b.lastErr, b.lastErrAt = err.Error(), time.Now()
	}
}

// Stats returns the bridge's state and counters.
func (b *Bridge) Stats() Stats {
	now := time.Now()
	b.stMu.Lock()
	st := Stats{State: b.state, Since: b.since, LastError: b.lastErr, LastErrorAt: b.lastErrAt}
	b.stMu.Unlock()
	st.Connected = st.State == StateOnline
	st.Sent, st.Out, st.In = b.sent.Load(), b.out.Load(), b.in.Load()
	st.Dropped, st.Expired = b.dropped.Load(), b.expired.Load()
	st.Quarantined, st.Refused = b.quarantined.Load(), b.refused.Load()
	st.SubscribeRetries = b.subRetries.Load()
	b.qmu.Lock()
	defer b.qmu.Unlock()
	for _, p := range b.rules().prios {
		cs := ClassStats{Priority: p, Queue: QueueName(b.s.Name, p)}
		if q := b.queues[p]; q != nil {
			qs := q.Stats()
			cs.Depth, cs.Bytes, cs.Oldest = qs.Depth, qs.Bytes, qs.Oldest
			st.Dropped += qs.Dropped + qs.Expired
			st.Expired += qs.Expired
		}
		for _, c := range b.classes {
			if c.prio == p {
				cs.InFlight = int(c.inflight.Load())
			}
		}
		st.Depth += cs.Depth
		st.Bytes += cs.Bytes
		st.Classes = append(st.Classes, cs)
	}
	for _, c := range b.classes {
		if !c.leftover {
			continue
		}
		cs := ClassStats{Priority: c.prio, Queue: c.name, InFlight: int(c.inflight.Load()), Leftover: true}
		qs := c.q.Stats()
		cs.Depth, cs.Bytes, cs.Oldest = qs.Depth, qs.Bytes, qs.Oldest
		st.Dropped += qs.Dropped + qs.Expired
		st.Expired += qs.Expired
		st.Depth += cs.Depth
		st.Bytes += cs.Bytes
		st.Classes = append(st.Classes, cs)
	}
	if b.quarantine != nil {
		qs := b.quarantine.Stats()
		st.QuarantineDepth, st.QuarantineBytes = qs.Depth, qs.Bytes
	}
	st.DrainRate = b.drained.rate(now)
	st.ETA = eta(st.Depth, st.DrainRate)
	return st
}

// ReadQuarantine returns up to n messages of the quarantine queue with a
// sequence number above after, oldest first (DecodeRecord decodes them,
// with the cloud's reason code). It works once Run opened the queue.
func (b *Bridge) ReadQuarantine(after uint64, n int) ([]spool.Item, error) {
	b.qmu.Lock()
	q := b.quarantine
	b.qmu.Unlock()
	if q == nil {
		return nil, nil
	}
	return q.Read(after, n)
}

// eta is the time to drain depth messages at rate messages per second.
func eta(depth int64, rate float64) time.Duration {
	switch {
	case depth <= 0:
		return 0
	case rate <= 0:
		return UnknownETA
	}
	secs := float64(depth) / rate
	if secs >= float64(math.MaxInt64/time.Second) {
		return UnknownETA
	}
	return time.Duration(math.Ceil(secs)) * time.Second
}

// BeforeAck is the durable handoff, for the broker's Hooks.BeforeAck: a
// QoS 1/2 message that matches an out-rule is encoded with its mapped
// topic and appended to the spool queue of the rule's priority class, and
// BeforeAck returns once the spool has it durably. When the spool refuses
// it (full with RejectNew, no space) the error carries QuotaExceeded and
// the broker refuses or withholds the publisher's acknowledgement. Other
// messages, and the bridge's own in-rule publications, pass untouched.
// BeforeAck works before Run and after it returned, as long as the spool
// is open: the messages wait in the spool for the next Run.
func (b *Bridge) BeforeAck(c *localbroker.ClientInfo, m *localbroker.Message) error {
	if m.QoS == 0 || (c != nil && c.ClientID == b.localID) {
		return nil
	}
	r := matchRule(b.rules().out, m.Topic, false)
	if r == nil {
		return nil
	}
	now := time.Now()
	if !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt) {
		return nil // the broker does not route it either
	}
	rec, ok := b.record(r, m, m.QoS, now)
	if !ok {
		b.drop("topic cannot be mapped", "topic", m.Topic, "rule", r.Local)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.s.SpoolTimeout)
	defer cancel()
	if err := b.append(ctx, r.Priority, &rec); err != nil {
		b.refused.Add(1)
		if b.refuseEp.hit() {
			b.log.Warn("spool refuses messages; their publishers get no success acknowledgement", "queue", QueueName(b.s.Name, r.Priority), "err", err)
		}
		code := packet.ImplementationSpecificError
		if errors.Is(err, spool.ErrFull) || errors.Is(err, spool.ErrNoSpace) {
			code = packet.QuotaExceeded
		}
		return packet.Errorf(code, "uplink %s: %v", b.s.Name, err)
	}
	if n, ok := b.refuseEp.end(); ok {
		b.log.Info("spool takes messages again", "refused", n)
	}
	b.kick()
	return nil
}

func (b *Bridge) append(ctx context.Context, prio int, rec *Record) error {
	q, err := b.queue(prio)
	if err != nil {
		return err
	}
	_, err = q.Append(ctx, AppendRecord(nil, rec))
	return err
}

// record builds the spool record of a local message for rule r.
func (b *Bridge) record(r *rule, m *localbroker.Message, qos byte, now time.Time) (Record, bool) {
	remote, ok := r.toRemote(m.Topic)
	if !ok {
		return Record{}, false
	}
	rec := Record{
		Topic:           remote,
		Payload:         m.Payload,
		QoS:             min(qos, r.maxQoS),
		Retain:          r.retain(m.Retain),
		ContentType:     m.Props.ContentType,
		ResponseTopic:   m.Props.ResponseTopic,
		CorrelationData: m.Props.CorrelationData,
		User:            m.Props.User,
		Expiry:          m.ExpiresAt,
	}
	if m.Props.Has(packet.PropPayloadFormat) && m.Props.PayloadFormat <= 1 {
		rec.HasPayloadFormat, rec.PayloadFormat = true, m.Props.PayloadFormat
	}
	if r.MaxAge > 0 {
		rec.Deadline = now.Add(r.MaxAge)
	}
	return rec, true
}

// drop counts a message not forwarded on purpose, logging the first of
// an episode (the episode ends when a message goes out again).
func (b *Bridge) drop(why string, args ...any) {
	b.dropped.Add(1)
	if b.dropEp.hit() {
		b.log.Warn("dropping messages", append([]any{"why", why}, args...)...)
	}
}

// expire counts a spooled message dropped because it expired.
func (b *Bridge) expire(why string, args ...any) {
	b.expired.Add(1)
	b.drop(why, args...)
}

// forwarded counts a message the cloud took.
func (b *Bridge) forwarded() {
	b.out.Add(1)
	if n, ok := b.dropEp.end(); ok {
		b.log.Info("messages flow again", "dropped", n)
	}
}

// qos0Loop forwards the QoS 0 messages of the out-rules: at once while
// online, spooled while offline when the rule says QueueQoS0, else
// dropped (counted).
func (b *Bridge) qos0Loop(ctx context.Context) {
	for {
		d, err := b.local.Next(ctx)
		if err != nil {
			return
		}
		m := d.Message
		if m.QoS != 0 {
			d.Ack() // BeforeAck spooled it; granted QoS 0, so a no-op
			continue
		}
		r := matchRule(b.rules().out, m.Topic, false)
		if r == nil {
			continue
		}
		now := time.Now()
		if !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt) {
			continue
		}
		rec, ok := b.record(r, m, 0, now)
		if !ok {
			b.drop("topic cannot be mapped", "topic", m.Topic, "rule", r.Local)
			continue
		}
		if l := b.link.Load(); l != nil {
			if err := b.limiter.wait(ctx, len(rec.Topic)+len(rec.Payload)); err != nil {
				return
			}
			if err := l.publishQoS0(ctx, &rec, now); err == nil {
				b.sent.Add(1)
				b.forwarded()
				continue
			}
		}
		if r.QueueQoS0 {
			if err := b.append(ctx, r.Priority, &rec); err == nil {
				b.kick()
				continue
			} else {
				b.drop("spool refused a QoS 0 message", "err", err)
				continue
			}
		}
		b.drop("QoS 0 while offline", "rule", r.Local)
	}
}

// onPublish handles a message from the cloud: it is published locally,
// and acknowledged to the cloud only after the local Publish returned.
func (b *Bridge) onPublish(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	ack := func() {
		if err := pr.Client.Ack(p); err != nil {
			b.log.Debug("ack to the cloud failed", "err", err)
		}
	}
	r := matchRule(b.rules().in, p.Topic, true)
	if r == nil {
		b.drop("cloud message matches no in-rule", "topic", p.Topic)
		ack()
		return true, nil
	}
	local, ok := r.toLocal(p.Topic)
	if !ok {
		b.drop("topic cannot be mapped", "topic", p.Topic, "rule", r.Remote)
		ack()
		return true, nil
	}
	m := &localbroker.Message{
		Topic:   local,
		Payload: p.Payload,
		QoS:     min(p.QoS, r.maxQoS),
		Retain:  r.retain(p.Retain),
	}
	if pp := p.Properties; pp != nil {
		if pp.PayloadFormat != nil {
			m.Props.Set(packet.PropPayloadFormat)
			m.Props.PayloadFormat = *pp.PayloadFormat
		}
		if pp.ContentType != "" {
			m.Props.Set(packet.PropContentType)
			m.Props.ContentType = pp.ContentType
		}
		if pp.ResponseTopic != "" {
			m.Props.Set(packet.PropResponseTopic)
			m.Props.ResponseTopic = pp.ResponseTopic
		}
		if len(pp.CorrelationData) > 0 {
			m.Props.Set(packet.PropCorrelationData)
			m.Props.CorrelationData = pp.CorrelationData
		}
		if len(pp.User) > 0 {
			m.Props.Set(packet.PropUser)
			for _, u := range pp.User {
				m.Props.User = append(m.Props.User, packet.UserProperty{Key: u.Key, Value: u.Value})
			}
		}
		if pp.MessageExpiry != nil {
			m.ExpiresAt = time.Now().Add(time.Duration(*pp.MessageExpiry) * time.Second)
		}
	}
	code, err := b.local.Publish(b.runCtx, m)
	switch {
	case err == nil && code < 0x80:
		b.in.Add(1)
		if n, ok := b.inEp.end(); ok {
			b.log.Info("local broker takes cloud messages again", "refused", n)
		}
		ack()
	case err == nil || permanentLocal(code):
		// The local broker refuses this message for good (ACL, invalid
		// topic): acknowledge it, or the cloud redelivers it forever.
		b.drop("local broker refused a cloud message", "topic", local, "reason", code.String())
		ack()
	default:
		// Transient (spool full behind another bridge's BeforeAck, broker
		// stopping): no ack; a new connection brings it again.
		if b.inEp.hit() {
			b.log.Warn("local broker refuses cloud messages; reconnecting to get them again", "topic", local, "reason", code.String(), "err", err)
		}
		select {
		case b.redial <- struct{}{}:
		default:
		}
	}
	return true, nil
}

func permanentLocal(c packet.ReasonCode) bool {
	switch c {
	case packet.NotAuthorized, packet.TopicNameInvalid, packet.RetainNotSupported,
		packet.QoSNotSupported, packet.PacketTooLarge, packet.PayloadFormatInvalid:
		return true
	}
	return false
}
