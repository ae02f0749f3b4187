package uplink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/spool"
)

// class is one priority class: a spool queue and the drain loop's cursor
// into it. Only the goroutine of connLoop touches it, except inflight.
type class struct {
	prio int
	name string
	q    Queue

	cursor      uint64       // highest sequence number read
	pending     []spool.Item // read, not sent, in order
	exhausted   bool         // the last Read found nothing: wait for an append
	pausedUntil time.Time    // the cloud asked to retry later
	attempts    map[uint64]int
	acks        []uint64 // acknowledged by the cloud, to Ack in the spool
	inflight    atomic.Int64
	skip        map[uint64]bool // in flight since the previous run (restored QoS 2 flights)
	// leftover: no out-rule has this class any more (Deps.QueueNames);
	// changed under Bridge.qmu.
	leftover bool
}

// reset forgets what was read: the next Read starts at the head of the
// queue, which holds exactly what the cloud has not acknowledged.
func (c *class) reset() {
	c.cursor, c.pending, c.exhausted = 0, nil, false
	c.inflight.Store(0)
	clear(c.skip)
}

// pushBack returns an item to the pending items, in order.
func (c *class) pushBack(it spool.Item) {
	i, found := slices.BinarySearchFunc(c.pending, it.Seq, func(e spool.Item, s uint64) int {
		switch {
		case e.Seq < s:
			return -1
		case e.Seq > s:
			return 1
		}
		return 0
	})
	if !found {
		c.pending = slices.Insert(c.pending, i, it)
	}
}

// readBatch is how many items one Read takes from a queue.
const readBatch = 64

// maxUnknownRefusals is how often the cloud may refuse one message with a
// code that says nothing of why (0x80, 0x83) before it is quarantined.
const maxUnknownRefusals = 5

// stableOnline is how long a connection must have lasted for the next
// reconnection to start again at ReconnectMin.
const stableOnline = 30 * time.Second

// link is an established connection to the cloud.
type link struct {
	cli       *paho.Client
	conn      *packetConn
	maxQoS    byte
	retainOK  bool
	maxPacket uint32
}

// ConnackError is a CONNACK that refused the connection.
type ConnackError struct {
	Code   byte
	Reason string // the cloud's reason string, if any
}

func (e *ConnackError) Error() string {
	s := fmt.Sprintf("cloud refused the connection: %s", packet.ReasonCode(e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// DisconnectError is a DISCONNECT sent by the cloud.
type DisconnectError struct {
	Code   byte
	Reason string
}

func (e *DisconnectError) Error() string {
	s := fmt.Sprintf("cloud disconnected: %s", packet.ReasonCode(e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

var errRedial = errors.New("reconnecting to get refused cloud messages again")

// connLoop keeps a connection to the cloud until ctx is done.
func (b *Bridge) connLoop(ctx context.Context, sess *session) {
	attempt := 0
	failing := false
	for ctx.Err() == nil {
		b.setState(StateConnecting, nil)
		online, err := b.connectAndServe(ctx, sess)
		if ctx.Err() != nil {
			return
		}
		b.setState(StateOffline, err)
		if online >= stableOnline {
			attempt = 0
		}
		d := backoff(attempt, b.s.ReconnectMin, b.s.ReconnectMax)
		attempt++
		switch {
		case online > 0:
			b.log.Warn("connection to the cloud lost", "err", err, "online_for", online.Round(time.Second), "retry_in", d.Round(time.Millisecond))
			failing = false
		case !failing:
			b.log.Warn("cannot connect to the cloud; retrying with backoff", "err", err, "retry_in", d.Round(time.Millisecond))
			failing = true
		default:
			b.log.Debug("cannot connect to the cloud", "err", err, "retry_in", d.Round(time.Millisecond))
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// connectAndServe makes one connection and drains over it until it ends.
// online is how long the connection was up (0 when it never came up).
func (b *Bridge) connectAndServe(ctx context.Context, sess *session) (online time.Duration, err error) {
	b.adoptClasses()
	dctx, cancel := context.WithTimeout(ctx, b.s.ConnectTimeout)
	nc, err := b.dial(dctx)
	cancel()
	if err != nil {
		return 0, err
	}
	errc := make(chan error, 1)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	pc := newPacketConn(nc)
	cli := paho.NewClient(paho.ClientConfig{
		ClientID:                   b.s.ClientID,
		Conn:                       pc,
		Session:                    sess,
		OnPublishReceived:          []func(paho.PublishReceived) (bool, error){b.onPublish},
		EnableManualAcknowledgment: true,
		SendAcksInterval:           10 * time.Millisecond,
		PacketTimeout:              b.s.ConnectTimeout,
		OnClientError:              report,
		OnServerDisconnect: func(d *paho.Disconnect) {
			e := &DisconnectError{Code: d.ReasonCode}
			if d.Properties != nil {
				e.Reason = d.Properties.ReasonString
			}
			report(e)
		},
	})
	ca, err := cli.Connect(ctx, b.connectPacket())
	if err != nil {
		if ca != nil && ca.ReasonCode >= 0x80 {
			e := &ConnackError{Code: ca.ReasonCode}
			if ca.Properties != nil {
				e.Reason = ca.Properties.ReasonString
			}
			return 0, e
		}
		return 0, fmt.Errorf("connect: %w", err)
	}
	start := time.Now()
	l := &link{cli: cli, conn: pc}
	sess.mu.Lock()
	l.maxQoS, l.retainOK, l.maxPacket = sess.maxQoS, sess.retainOK, sess.maxPacket
	window := min(b.s.Window, int(sess.recvMax))
	sess.mu.Unlock()

	// Results of the previous connection first, then, when the cloud kept
	// no session, everything unacknowledged goes again from the heads.
	b.handleResults(ctx, sess, nil)
	if lost := sess.takeLostRecs(); len(lost) > 0 {
		// Before any new flight may take one of their identifiers.
		b.forgetFlights(ctx, sess, lost)
	}
	if lost := sess.takeLost(); lost || !ca.SessionPresent {
		for _, c := range b.classes {
			c.reset()
		}
	}
	b.link.Store(l)
	b.subscribe(ctx, cli)
	b.setState(StateOnline, nil) // after the in-rule subscriptions
	b.log.Info("connected to the cloud", "session_present", ca.SessionPresent, "window", window, "max_qos", l.maxQoS)
	rctx, stopRetry := context.WithCancel(ctx)
	retried := make(chan struct{})
	go func() {
		defer close(retried)
		b.retryRemote(rctx, cli)
	}()
	err = b.drain(ctx, l, sess, window)
	stopRetry()
	<-retried
	b.link.Store(nil)
	_ = cli.Disconnect(&paho.Disconnect{ReasonCode: 0})
	<-cli.Done()
	// Results that arrived while disconnecting.
	b.handleResults(context.WithoutCancel(ctx), sess, nil)
	if err == nil && ctx.Err() == nil {
		// paho reports the cause just after closing.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case err = <-errc:
		case <-t.C:
			err = errors.New("connection closed")
		}
		t.Stop()
	}
	return time.Since(start), err
}

func (b *Bridge) connectPacket() *paho.Connect {
	cp := &paho.Connect{
		ClientID:   b.s.ClientID,
		CleanStart: false,
		Properties: &paho.ConnectProperties{RequestProblemInfo: true},
	}
	if b.s.KeepAlive > 0 {
		cp.KeepAlive = uint16(b.s.KeepAlive / time.Second)
		if cp.KeepAlive == 0 {
			cp.KeepAlive = 1
		}
	}
	var exp uint32
	if b.s.SessionExpiry > 0 {
		exp = uint32(min(b.s.SessionExpiry/time.Second, math.MaxUint32-1))
	}
	cp.Properties.SessionExpiryInterval = &exp
	if b.s.Username != "" {
		cp.Username, cp.UsernameFlag = b.s.Username, true
	}
	if b.s.Password != "" {
		cp.Password, cp.PasswordFlag = []byte(b.s.Password), true
	}
	return cp
}

// subscribe subscribes at the cloud to the in-rules' remote filters. No
// Local keeps the bridge's own publications out; Retain Handling 1 gets
// retained messages only for a new subscription.
func (b *Bridge) subscribe(ctx context.Context, cli *paho.Client) {
	b.unsubscribeRemoved(ctx, cli)
	subs := remoteSubs(b.rules().in)
	if len(subs) == 0 {
		return
	}
	sa, err := cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
	if sa != nil {
		b.reload.mu.Lock()
		defer b.reload.mu.Unlock()
		for i, code := range sa.Reasons {
			if i >= len(subs) {
				break
			}
			if code < 0x80 {
				delete(b.reload.resub, subs[i].Topic) // a reload's failure is made good
				continue
			}
			err := fmt.Errorf("subscription to %q refused: %s", subs[i].Topic, packet.ReasonCode(code))
			b.setState(StateConnecting, err)
			b.log.Warn("cloud refused an in-rule subscription", "filter", subs[i].Topic, "reason", packet.ReasonCode(code).String())
		}
		return
	}
	if err != nil {
		b.setState(StateConnecting, fmt.Errorf("subscribe: %w", err))
		b.log.Warn("subscribing at the cloud failed", "err", err)
	}
}

// drain publishes from the queues while the connection lasts: highest
// class first, in order per queue, up to window messages in flight, paced
// by the rate limit. It returns when the connection ends (the error says
// why), or nil after ctx is done and the messages in flight were
// acknowledged or DrainTimeout passed.
func (b *Bridge) drain(ctx context.Context, l *link, sess *session, window int) error {
	var results []result
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var deadline <-chan time.Time // set once ctx is done
	stopping := false
	for {
		results = b.handleResults(ctx, sess, results)
		if stopping && sess.inflight() == 0 {
			return nil
		}
		var wait time.Duration
		if !stopping {
			var err error
			l.conn.hold() // the window's PUBLISHes go out together
			wait, err = b.fill(ctx, l, sess, window)
			l.conn.release()
			if err != nil {
				return err
			}
		}
		var timerC <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			timerC = timer.C
		}
		var done <-chan struct{}
		if !stopping {
			done = ctx.Done()
		}
		select {
		case <-sess.notify:
		case <-b.wake:
			b.adoptClasses()
			for _, c := range b.classes {
				c.exhausted = false
			}
		case <-timerC:
		case <-l.cli.Done():
			return nil
		case <-done:
			stopping = true
			t := time.NewTimer(b.s.DrainTimeout)
			defer t.Stop()
			deadline = t.C
		case <-deadline:
			b.log.Info("messages still in flight at shutdown stay in the spool", "in_flight", sess.inflight())
			return nil
		case <-b.redial:
			return errRedial
		}
		timer.Stop()
	}
}

// fill publishes until the window is full or nothing can go now. It
// returns how long to wait before trying again when a pause or the rate
// limit holds a message back (0: wait for an event), or an error when the
// connection failed. With a FlightStore, the QoS 2 messages of a round get
// their packet identifiers first, and their flights are recorded (one
// synced write) before any PUBLISH of the round goes out.
func (b *Bridge) fill(ctx context.Context, l *link, sess *session, window int) (time.Duration, error) {
	var batch []outgoing
	var recs []*flight
	var wait time.Duration
	unsent := 0 // QoS 1/2 in batch not yet in the session
	for sess.inflight()+unsent < window {
		now := time.Now()
		c, it, w := b.next(now)
		if c == nil {
			wait = w
			break
		}
		rec, err := DecodeRecord(it.Data)
		if err != nil {
			b.quarantineItem(ctx, c, it, 0, err)
			continue
		}
		if !rec.Deadline.IsZero() && !now.Before(rec.Deadline) {
			b.expire("older than the rule's MaxAge", "queue", c.name)
			c.acks = append(c.acks, it.Seq)
			continue
		}
		p, ok := l.packet(&rec, now)
		if !ok {
			b.expire("message expired in the spool", "queue", c.name)
			c.acks = append(c.acks, it.Seq)
			continue
		}
		if l.maxPacket > 0 && publishSize(p) > int(l.maxPacket) {
			b.quarantineItem(ctx, c, it, byte(packet.PacketTooLarge), fmt.Errorf("%d bytes, the cloud's maximum packet size is %d", publishSize(p), l.maxPacket))
			continue
		}
		if w := b.limiter.take(now, len(p.Topic)+len(p.Payload)); w > 0 {
			c.pushBack(it)
			wait = w
			break
		}
		o := outgoing{c: c, it: it, p: p}
		if p.QoS == 2 && b.deps.Flights != nil {
			f := &flight{cls: c, seq: it.Seq, at: uint64(it.Time.UnixNano()), data: it.Data}
			if err := sess.reserve(f); err != nil {
				c.pushBack(it)
				break // the connection is going; paho reports it
			}
			o.f = f
			recs = append(recs, f)
		} else if p.QoS > 0 {
			unsent++
		}
		batch = append(batch, o)
	}
	if len(recs) > 0 {
		if err := b.persistFlights(ctx, recs, packets.PUBLISH); err != nil {
			for _, o := range batch {
				o.c.pushBack(o.it)
			}
			pids := make([]uint16, len(recs))
			for i, f := range recs {
				sess.unreserve(f)
				pids[i] = f.pid
			}
			sess.unhold(pids) // nothing was written
			if b.retryEp.hit() {
				b.log.Error("recording QoS 2 flights failed; their messages wait", "err", err)
			}
			return b.s.ReconnectMin, nil
		}
	}
	for i, o := range batch {
		c, it, p := o.c, o.it, o.p
		if p.QoS == 0 {
			if _, err := l.cli.Publish(ctx, p); err != nil {
				return 0, b.giveBack(ctx, sess, batch[i:], fmt.Errorf("publish: %w", err))
			}
			c.acks = append(c.acks, it.Seq)
			b.sent.Add(1)
			b.forwarded()
			b.drained.add(time.Now(), 1)
			continue
		}
		f := o.f
		if f == nil {
			f = &flight{cls: c, seq: it.Seq, data: it.Data}
		}
		_, err := l.cli.PublishWithOptions(withFlight(ctx, f), p, paho.PublishOptions{Method: paho.PublishMethod_AsyncSend})
		switch {
		case err == nil:
			c.inflight.Add(1)
			b.sent.Add(1)
		case errors.Is(err, paho.ErrNetworkErrorAfterStored):
			// In the session: sent again on a resumed session, or read
			// again from the spool otherwise. The connection is going.
			c.inflight.Add(1)
			return 0, b.giveBack(ctx, sess, batch[i+1:], nil)
		case errors.Is(err, paho.ErrInvalidArguments):
			if o.f != nil {
				b.dropReserved(ctx, sess, o.f)
			}
			b.quarantineItem(ctx, c, it, byte(packet.UnspecifiedError), err)
		default:
			return 0, b.giveBack(ctx, sess, batch[i:], fmt.Errorf("publish: %w", err))
		}
	}
	return wait, nil
}

// outgoing is one message of a fill round.
type outgoing struct {
	c  *class
	it spool.Item
	p  *paho.Publish
	f  *flight // reserved and recorded; nil otherwise
}

// giveBack returns the messages of a round that were not sent to their
// classes, releases their reservations, and returns err.
func (b *Bridge) giveBack(ctx context.Context, sess *session, rest []outgoing, err error) error {
	for _, o := range rest {
		o.c.pushBack(o.it)
		if o.f != nil {
			b.dropReserved(ctx, sess, o.f)
		}
	}
	return err
}

// dropReserved takes back a recorded flight whose PUBLISH paho did not
// store, and removes its record.
func (b *Bridge) dropReserved(ctx context.Context, sess *session, f *flight) {
	sess.unreserve(f)
	b.forgetFlights(ctx, sess, []uint16{f.pid})
}

// next returns the next item to send: from the highest class that has one
// and is not paused. When none has, it returns how long until the earliest
// pause ends (0: none).
func (b *Bridge) next(now time.Time) (*class, spool.Item, time.Duration) {
	var wait time.Duration
	for _, c := range b.classes {
		if now.Before(c.pausedUntil) {
			if w := c.pausedUntil.Sub(now); wait == 0 || w < wait {
				wait = w
			}
			continue
		}
	class:
		for {
			if len(c.pending) == 0 && !c.exhausted {
				items, err := c.q.Read(c.cursor, readBatch)
				if err != nil {
					b.log.Error("reading the spool failed", "queue", c.name, "err", err)
					c.pausedUntil = now.Add(b.s.ReconnectMin)
					if wait == 0 || b.s.ReconnectMin < wait {
						wait = b.s.ReconnectMin
					}
					break class
				}
				if len(items) == 0 {
					c.exhausted = true
					break class
				}
				c.pending = items
				c.cursor = items[len(items)-1].Seq
			}
			if len(c.pending) == 0 {
				break class
			}
			it := c.pending[0]
			c.pending[0] = spool.Item{}
			c.pending = c.pending[1:]
			if c.skip[it.Seq] {
				continue // in flight since the previous run
			}
			return c, it, 0
		}
	}
	return nil, spool.Item{}, wait
}

// handleResults takes the session's results: acknowledged messages are
// acked in the spool, refused ones quarantined or retried later.
func (b *Bridge) handleResults(ctx context.Context, sess *session, buf []result) []result {
	if recd := sess.takeRecd(); len(recd) > 0 {
		// PUBREC came: record the PUBREL state, then send the PUBREL.
		err := b.persistFlights(ctx, recd, packets.PUBREL)
		sess.recdDone(recd, err == nil)
		if err != nil {
			if b.retryEp.hit() {
				b.log.Error("recording QoS 2 flights failed; their PUBREL waits", "err", err)
			}
			time.AfterFunc(b.s.ReconnectMin, sess.signal)
		}
	}
	buf = sess.take(buf)
	now := time.Now()
	var forget []flightEnd
	for _, r := range buf {
		f := r.f
		if f == nil {
			continue
		}
		if f.recorded {
			forget = append(forget, flightEnd{f.cls, f.pid})
		}
		c := f.cls
		if c == nil {
			continue // a flight of the previous run whose message is gone: released
		}
		c.inflight.Add(-1)
		delete(c.skip, f.seq)
		if r.kind == packets.PUBCOMP || r.code < 0x80 {
			c.acks = append(c.acks, f.seq)
			delete(c.attempts, f.seq)
			b.forwarded()
			b.drained.add(now, 1)
			if n, ok := b.quarantineEp.end(); ok {
				b.log.Info("cloud takes messages again", "quarantined", n)
			}
			if n, ok := b.retryEp.end(); ok {
				b.log.Info("cloud takes messages again", "retries", n)
			}
			continue
		}
		it := spool.Item{Seq: f.seq, Data: f.data}
		code := packet.ReasonCode(r.code)
		if quarantineCode(code) {
			b.quarantineItem(ctx, c, it, r.code, nil)
			continue
		}
		n := c.attempts[f.seq] + 1
		c.attempts[f.seq] = n
		if n >= maxUnknownRefusals && code != packet.QuotaExceeded {
			b.quarantineItem(ctx, c, it, r.code, fmt.Errorf("refused %d times", n))
			continue
		}
		d := backoff(n-1, b.s.ReconnectMin, b.s.ReconnectMax)
		if b.retryEp.hit() {
			b.log.Warn("cloud asks to retry messages later; pausing their class with backoff", "queue", c.name, "reason", code.String(), "pause", d.Round(time.Millisecond))
		}
		c.pushBack(it)
		c.pausedUntil = now.Add(d)
	}
	var failed []*class
	for _, c := range b.classes {
		if len(c.acks) == 0 {
			continue
		}
		if err := c.q.Ack(c.acks...); err != nil {
			// They stay in the spool and go again: a duplicate, not a loss.
			b.log.Error("acking sent messages in the spool failed", "queue", c.name, "err", err)
			failed = append(failed, c)
		}
		c.acks = c.acks[:0]
	}
	// After the acks: a record gone before its message would send the
	// message again after a restart. Those of failed acks stay (their
	// identifiers held): at the next start they release the identifier.
	var pids []uint16
	for _, e := range forget {
		if e.c == nil || !slices.Contains(failed, e.c) {
			pids = append(pids, e.pid)
		}
	}
	b.forgetFlights(ctx, sess, pids)
	b.retireLeftovers(ctx)
	return buf
}

// flightEnd is a recorded flight that ended, whose record goes after the
// acks of its class.
type flightEnd struct {
	c   *class
	pid uint16
}

// quarantineCode reports whether a PUBACK/PUBREC reason code refuses the
// message for good: sending it again cannot help. The others (0x80
// unspecified, 0x83 implementation specific, 0x91 packet identifier in
// use, 0x97 quota exceeded) are retried later.
func quarantineCode(c packet.ReasonCode) bool {
	switch c {
	case packet.NotAuthorized, packet.TopicNameInvalid, packet.PayloadFormatInvalid,
		packet.PacketTooLarge, packet.RetainNotSupported, packet.QoSNotSupported:
		return true
	}
	return false
}

// quarantineItem moves a message the cloud refused for good to the
// quarantine queue, then removes it from its class. When the quarantine
// does not take it, it stays and its class pauses: nothing is lost.
func (b *Bridge) quarantineItem(ctx context.Context, c *class, it spool.Item, code byte, why error) {
	data := it.Data
	if rec, err := DecodeRecord(it.Data); err == nil && code >= 0x80 {
		rec.Reason = code
		data = AppendRecord(nil, &rec)
	}
	q, err := b.quarantineQueue()
	if err == nil {
		_, err = q.Append(context.WithoutCancel(ctx), data)
	}
	if err != nil {
		b.log.Error("quarantine refuses a message; its class pauses", "queue", c.name, "err", err)
		c.pushBack(it)
		c.pausedUntil = time.Now().Add(b.s.ReconnectMax)
		return
	}
	c.acks = append(c.acks, it.Seq)
	delete(c.attempts, it.Seq)
	b.quarantined.Add(1)
	if b.quarantineEp.hit() {
		args := []any{"queue", c.name, "quarantine", QuarantineName(b.s.Name), "reason", packet.ReasonCode(code).String()}
		if why != nil {
			args = append(args, "detail", why)
		}
		b.log.Warn("cloud refuses messages for good; moving them to the quarantine", args...)
	}
}

// packet builds the PUBLISH for a record, fitted to what the cloud
// supports. It reports false when the message expired.
func (l *link) packet(rec *Record, now time.Time) (*paho.Publish, bool) {
	p := &paho.Publish{
		QoS:     min(rec.QoS, l.maxQoS),
		Retain:  rec.Retain && l.retainOK,
		Topic:   rec.Topic,
		Payload: rec.Payload,
		Properties: &paho.PublishProperties{
			ContentType:     rec.ContentType,
			ResponseTopic:   rec.ResponseTopic,
			CorrelationData: rec.CorrelationData,
		},
	}
	if rec.HasPayloadFormat {
		pf := rec.PayloadFormat
		p.Properties.PayloadFormat = &pf
	}
	for _, u := range rec.User {
		p.Properties.User = append(p.Properties.User, paho.UserProperty{Key: u.Key, Value: u.Value})
	}
	if !rec.Expiry.IsZero() {
		left := rec.Expiry.Sub(now)
		if left <= 0 {
			return nil, false
		}
		secs := uint32(min((left+time.Second-1)/time.Second, math.MaxUint32))
		p.Properties.MessageExpiry = &secs
	}
	return p, true
}

// publishQoS0 sends a QoS 0 message at once.
func (l *link) publishQoS0(ctx context.Context, rec *Record, now time.Time) error {
	p, ok := l.packet(rec, now)
	if !ok {
		return nil
	}
	p.QoS = 0
	if l.maxPacket > 0 && publishSize(p) > int(l.maxPacket) {
		return errors.New("larger than the cloud's maximum packet size")
	}
	_, err := l.cli.Publish(ctx, p)
	return err
}

// publishSize returns the encoded size of a PUBLISH packet.
func publishSize(p *paho.Publish) int {
	props := 0
	if pp := p.Properties; pp != nil {
		if pp.PayloadFormat != nil {
			props += 2
		}
		if pp.MessageExpiry != nil {
			props += 5
		}
		if pp.ContentType != "" {
			props += 3 + len(pp.ContentType)
		}
		if pp.ResponseTopic != "" {
			props += 3 + len(pp.ResponseTopic)
		}
		if len(pp.CorrelationData) > 0 {
			props += 3 + len(pp.CorrelationData)
		}
		for _, u := range pp.User {
			props += 5 + len(u.Key) + len(u.Value)
		}
	}
	vh := 2 + len(p.Topic) + varintLen(props) + props
	if p.QoS > 0 {
		vh += 2
	}
	rem := vh + len(p.Payload)
	return 1 + varintLen(rem) + rem
}

func varintLen(n int) int {
	l := 1
	for n >= 128 {
		n >>= 7
		l++
	}
	return l
}
