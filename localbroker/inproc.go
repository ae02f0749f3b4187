package localbroker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/localbroker/topic"
)

// ClientOptions attach an in-process client (an MQTT-SN device, an uplink's
// inbound rule) to the broker. It gets a broker session exactly like a
// network client: QoS flows, inflight window, persistent sessions, wills,
// the ACL and the Authorize hook all apply.
type ClientOptions struct {
	ClientID string // required
	Username string // checked by ACL (its "user" block) and the Authorize hook
	Listener string // reported to hooks as ClientInfo.Listener; "" means "inproc"

	// ACL checks the client's publishes, subscriptions, will and the
	// messages delivered to it, as a listener's ACL file checks its
	// clients', with ClientID and Username; nil means no ACL (the Authorize
	// hook still applies). Client.SetACL replaces it while attached.
	ACL *auth.ACL

	// CleanStart discards any existing session. SessionExpiry keeps the
	// session after Close for that long; 0 ends it at Close, a negative
	// value never expires it.
	CleanStart    bool
	SessionExpiry time.Duration

	Will *Will // published when the client is lost (Close(true) or expiry)

	// ReceiveMaximum bounds the QoS 1/2 deliveries not yet acknowledged
	// with Delivery.Ack; 0 means Options.MaxInflight.
	ReceiveMaximum uint16

	// Deliver, when set, is called for each delivery from the publishing
	// goroutine, with the session locked: it must not block and must not
	// call methods of this Client (Ack included) before returning; hand the
	// delivery to your own queue instead. When nil, deliveries wait in a
	// queue read with Next.
	Deliver func(*Delivery)

	// MaxBuffered bounds the Next queue for QoS 0 deliveries; 0 means 1000.
	// QoS 1/2 deliveries are bounded by ReceiveMaximum.
	MaxBuffered int
}

// Delivery is one message delivered to an in-process client.
type Delivery struct {
	Message         *Message
	QoS             byte // granted: min(publish QoS, subscription QoS)
	Retain          bool
	Dup             bool // redelivered after a session resume
	SubscriptionIDs []uint32

	pid uint16
	c   *Client
}

// Ack acknowledges a QoS 1/2 delivery (PUBACK, or PUBREC+PUBCOMP for QoS 2),
// freeing its slot in the inflight window. It is a no-op for QoS 0.
func (d *Delivery) Ack() {
	if d.QoS == 0 || d.c == nil {
		return
	}
	s := d.c.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.findInflight(d.pid); i >= 0 {
		s.removeInflight(i)
		s.b.stats.sent.Add(1)
		s.pump()
	}
}

var errNextWithDeliver = errors.New("localbroker: Next on a client with a Deliver func")

// Client is an in-process MQTT client.
type Client struct {
	b    *Broker
	sess *session
	info ClientInfo
	opts ClientOptions
	acl  atomic.Pointer[auth.ACL] // opts.ACL until SetACL

	mu     sync.Mutex
	queue  []*Delivery
	qos0   int
	signal chan struct{}
	closed bool
	done   chan struct{}
}

// Attach connects an in-process client and reports whether an existing
// session was resumed; deliveries that were in flight are redelivered with
// Dup set.
func (b *Broker) Attach(opts ClientOptions) (*Client, bool, error) {
	if opts.ClientID == "" {
		return nil, false, packet.Errorf(packet.ClientIDNotValid, "in-process client needs a client id")
	}
	if opts.MaxBuffered == 0 {
		opts.MaxBuffered = 1000
	}
	lname := opts.Listener
	if lname == "" {
		lname = "inproc"
	}
	c := &Client{b: b, opts: opts,
		info: ClientInfo{ClientID: opts.ClientID, Username: opts.Username, Listener: lname, Version: packet.V5}}
	c.acl.Store(opts.ACL)
	if opts.Deliver == nil {
		// Only Next waits; a client with a Deliver func (every MQTT-SN
		// device) does without the two channels.
		c.signal, c.done = make(chan struct{}, 1), make(chan struct{})
	}
	if opts.Will != nil {
		if err := topic.ValidName(opts.Will.Topic, b.opts.MaxTopicLength, b.opts.MaxTopicLevels); err != nil {
			return nil, false, packet.Errorf(packet.TopicNameInvalid, "will topic: %v", err)
		}
		if !b.allowed(&c.info, opts.ACL, opts.Will.Topic, AccessWrite) {
			return nil, false, packet.Errorf(packet.NotAuthorized, "will topic not authorized")
		}
		w := *opts.Will
		w.Origin = opts.ClientID
		opts.Will = &w
	}
	if opts.ACL != nil {
		// Deliveries are checked for Read from now on.
		b.inprocACL.Store(true)
	}
	req := connectReq{info: c.info, cleanStart: opts.CleanStart, will: opts.Will, receiveMax: opts.ReceiveMaximum, acl: opts.ACL}
	switch {
	case opts.SessionExpiry < 0:
		req.expiry = neverExpire
	case opts.SessionExpiry > 0:
		req.expiry = uint32(min(opts.SessionExpiry/time.Second, neverExpire-1))
	}
	s, present, err := b.attach(c, &req)
	if err != nil {
		return nil, false, err
	}
	c.sess = s
	s.resume()
	return c, present, nil
}

// ClientID returns the client's id.
func (c *Client) ClientID() string { return c.info.ClientID }

// Username returns the username the client was attached with.
func (c *Client) Username() string { return c.info.Username }

// SetACL replaces the ACL of the attached client (nil: none), as a reload
// of a listener's ACL file does for its network clients (see ApplyAuth). The
// new ACL checks the client's next Publish, Subscribe and SetWill, and every
// message delivered to it from now on, including what waits in its queue or
// in its inflight window. Subscriptions made under the old ACL stay, but a
// message the new ACL does not let the client read is not delivered; the
// will already set is not checked again. Once the client is closed or taken
// over, the session is no longer changed. Safe to call from any goroutine,
// at the same time as the client's other methods.
func (c *Client) SetACL(a *auth.ACL) {
	if a != nil {
		// Deliveries are checked for Read from now on.
		c.b.inprocACL.Store(true)
	}
	c.acl.Store(a)
	s := c.sess
	s.mu.Lock()
	if s.link == link(c) && !s.ended {
		s.acl = a
	}
	s.mu.Unlock()
}

// Publish publishes m as this client and returns once the broker accepted
// it: for QoS 1/2 after the BeforeAck hook (the durable handoff) succeeded.
// The code is Success, NoMatchingSubscribers, or a refusal (NotAuthorized,
// TopicNameInvalid, QuotaExceeded, ...). m must not be modified afterwards.
func (c *Client) Publish(ctx context.Context, m *Message) (packet.ReasonCode, error) {
	if c.isClosed() {
		return packet.UnspecifiedError, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return packet.UnspecifiedError, err
	}
	o := &c.b.opts
	if err := topic.ValidName(m.Topic, o.MaxTopicLength, o.MaxTopicLevels); err != nil {
		return packet.TopicNameInvalid, packet.Errorf(packet.TopicNameInvalid, "%v", err)
	}
	if m.QoS > 2 {
		return packet.QoSNotSupported, packet.Errorf(packet.QoSNotSupported, "QoS %d", m.QoS)
	}
	m.Origin = c.info.ClientID
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	return c.b.publish(&c.info, c.acl.Load(), m)
}

// Subscribe adds subscriptions with their options (subID 0: none) and
// returns a reason code per filter (granted QoS, or a failure code).
// Matching retained messages are delivered afterwards as for MQTT clients.
func (c *Client) Subscribe(ctx context.Context, subs []packet.Subscription, subID uint32) ([]packet.ReasonCode, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, sp := range subs {
		if sp.QoS > 2 || sp.RetainHandling > 2 {
			return nil, packet.Errorf(packet.ProtocolError, "bad subscription options for %q", sp.Filter)
		}
	}
	c.b.retainMu.Lock()
	defer c.b.retainMu.Unlock()
	codes, rds := c.b.subscribe(c.sess, &c.info, subs, subID)
	c.b.sendRetained(c.sess, rds)
	return codes, nil
}

// Unsubscribe removes subscriptions; the codes are Success or
// NoSubscriptionExisted per filter.
func (c *Client) Unsubscribe(ctx context.Context, filters []string) ([]packet.ReasonCode, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.b.unsubscribe(c.sess, filters), nil
}

// Next returns the next delivery, waiting until one arrives, ctx is done,
// or the client is closed (ErrClosed). Not for clients with a Deliver func.
func (c *Client) Next(ctx context.Context) (*Delivery, error) {
	if c.done == nil {
		return nil, errNextWithDeliver
	}
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			d := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			if d.QoS == 0 {
				c.qos0--
			}
			c.mu.Unlock()
			return d, nil
		}
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-c.signal:
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// SetWill replaces the will of the attached client (nil removes it), as an
// MQTT-SN gateway does for WILLTOPICUPD and WILLMSGUPD (MQTT-SN 1.2 §6.4).
// It fails with ErrClosed once the client is closed or taken over, with
// TopicNameInvalid for a bad will topic, and with NotAuthorized for a will
// topic its ACL does not let it write.
func (c *Client) SetWill(w *Will) error {
	if c.isClosed() {
		return ErrClosed
	}
	if w != nil {
		o := &c.b.opts
		if err := topic.ValidName(w.Topic, o.MaxTopicLength, o.MaxTopicLevels); err != nil {
			return packet.Errorf(packet.TopicNameInvalid, "will topic: %v", err)
		}
		if !c.b.allowed(&c.info, c.acl.Load(), w.Topic, AccessWrite) {
			return packet.Errorf(packet.NotAuthorized, "will topic not authorized")
		}
		cp := *w
		cp.Origin = c.info.ClientID
		w = &cp
	}
	s := c.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != link(c) || s.ended {
		return ErrClosed
	}
	s.will = w
	return nil
}

// Close detaches the client. withWill publishes its will as for a lost
// connection; otherwise it is a normal disconnect and the will is
// discarded. A session with an expiry stays for a later Attach.
func (c *Client) Close(withWill bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
	c.b.detach(c.sess, c, withWill)
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// --- link -----------------------------------------------------------------

func (c *Client) version() packet.Version { return packet.V5 }
func (c *Client) maxPacketSize() uint32   { return 0 }
func (c *Client) sendPubrel(uint16)       {} // in-process QoS 2 completes with Ack

func (c *Client) sendPublish(m *Message, qos byte, retain, dup bool, pid uint16, subIDs []uint32) bool {
	d := &Delivery{Message: m, QoS: qos, Retain: retain, Dup: dup, SubscriptionIDs: subIDs, pid: pid, c: c}
	if c.opts.Deliver != nil {
		c.opts.Deliver(d)
		return true
	}
	c.mu.Lock()
	if c.closed || (qos == 0 && c.qos0 >= c.opts.MaxBuffered) {
		c.mu.Unlock()
		return false
	}
	if qos == 0 {
		c.qos0++
	}
	c.queue = append(c.queue, d)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
	return true
}

// kick is called when another attachment takes the session over, or at
// broker shutdown: the client is closed.
func (c *Client) kick(packet.ReasonCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		if c.done != nil {
			close(c.done)
		}
	}
}
