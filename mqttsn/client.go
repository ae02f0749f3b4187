package mqttsn

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	bpacket "github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// cstate is a client's state as the gateway sees it (MQTT-SN 1.2 §6.14
// Fig. 4). Disconnected and lost clients are removed (what a client with
// CleanSession=false keeps is in Gateway.saved).
type cstate uint8

const (
	stNew        cstate = iota // made for a CONNECT not yet handled
	stConnecting               // asking for the will (WILLTOPICREQ, WILLMSGREQ)
	stActive
	stAsleep
	stAwake // asleep, woken by PINGREQ: buffered messages going out
	stGone  // disconnected or lost, removed
)

// maxInbox bounds the datagrams waiting for one client's worker: room for a
// device that sends a burst (a QoS 0 series, a batch after waking) while
// the workers are busy; maxInboxTotal bounds them for all clients together
// (some hundred bytes each, so a few tens of MiB at most). A datagram beyond
// either is dropped and counted (Stats.InboxFull).
const (
	maxInbox      = 256
	maxInboxTotal = 1 << 16
)

// maxInQoS2 bounds the QoS 2 message ids awaiting PUBREL per client; a
// client has only one QoS 1/2 PUBLISH outstanding (§6.6).
const maxInQoS2 = 16

// inItem is one datagram for a client, or the news that another client
// connected from its address.
type inItem struct {
	m          packet.Message
	from       peer
	superseded bool
	// reauth: a reload changed the usernames mapping (see SetAccess).
	reauth bool
}

// arrival is a delivery from the broker, tagged with the attachment it came
// through.
type arrival struct {
	gen uint64
	d   *localbroker.Delivery
}

// outItem is a message waiting to go to the client.
type outItem struct {
	d            *localbroker.Delivery
	dup          bool // sent before (a resend after reconnection)
	reregistered bool // the client refused its topic id once already
}

// flight kinds: the one gateway-to-client exchange that waits for an
// answer (MQTT-SN 1.2 §6.13 applies Tretry/Nretry to it).
const (
	fRegister     = iota // REGISTER, awaiting REGACK; then the PUBLISH
	fPublish             // PUBLISH QoS 1/2, awaiting PUBACK / PUBREC
	fPubrel              // PUBREL, awaiting PUBCOMP
	fWillTopicReq        // WILLTOPICREQ, awaiting WILLTOPIC
	fWillMsgReq          // WILLMSGREQ, awaiting WILLMSG
)

type flight struct {
	kind    int
	msg     packet.Message
	msgID   uint16
	it      *outItem // fRegister, fPublish
	topicID uint16   // fRegister: the id registered; fPublish: the id used
	tidType packet.TopicIDType
	name    string // fRegister
	sentAt  time.Time
	retries int
}

// willData is a client's will as MQTT-SN 1.2 §6.3 keeps it: it survives
// connections with CleanSession=false. A message without a topic (a
// WILLMSGUPD before any will topic) is kept but not given to the broker.
type willData struct {
	topic  string
	qos    byte
	retain bool
	msg    []byte
}

// connReq is a CONNECT being handled.
type connReq struct {
	clean     bool
	keepAlive time.Duration
	askWill   bool
	will      *willData // filled by the handshake; nil: empty WILLTOPIC
}

// client is one MQTT-SN client. Its state is owned by whichever worker runs
// it (one at a time); other goroutines only append to its inbox and
// arrivals under qmu and schedule it.
type client struct {
	g   *Gateway
	id  string // ClientId
	bid string // broker client id

	// keys are the peer keys mapped to this client (guarded by g.mu).
	keys []peerKey

	timerIdx int // position in the timer heap (guarded by timers.mu)

	qmu       sync.Mutex
	inbox     []inItem
	arrived   []arrival
	arrivedQ0 int
	queued    bool
	dead      bool

	// Owned by the running worker. The small fields come first, in the
	// word that queued and dead begin: one client costs 384 bytes, not 416.
	state     cstate
	clean     bool
	persist   bool // has a session worth saving (CleanSession=false)
	stored    bool // Deps.Store holds a record of it
	msgID     uint16
	peer      peer
	pending   *connReq
	hs        *flight             // will handshake
	bc        *localbroker.Client // set with setBroker
	gen       uint64
	keepAlive time.Duration
	sleepFor  time.Duration
	lastHeard time.Time
	will      *willData
	topics    *topicTable
	pre       *predefined // this client's own pre-defined ids, or nil
	inQoS2    []uint16
	out       []*outItem
	flight    *flight
	wakeLeft  int // awake: buffered messages still to send before PINGRESP

	// For Gateway.Clients, from other goroutines.
	view    atomic.Pointer[clientView]
	bcRef   atomic.Pointer[localbroker.Client] // bc, for SetAccess
	heardAt atomic.Int64                       // lastHeard in unix nanoseconds
}

// newClient makes a client for a CONNECT from p. Called with g.mu held.
func (g *Gateway) newClient(p peer, id, bid string) *client {
	return &client{
		g:        g,
		id:       id,
		bid:      bid,
		peer:     p,
		timerIdx: -1,
		topics:   newTopicTable(g.opts.MaxTopicsPerClient),
		pre:      g.clPre[id],
	}
}

// enqueue adds a datagram to the inbox and schedules the client. Called by
// readers with g.mu held, and by workers.
func (c *client) enqueue(it inItem) {
	c.qmu.Lock()
	if c.dead {
		c.qmu.Unlock()
		return
	}
	// A notice (superseded, reauth; one per event) passes a full inbox.
	if it.m != nil && (len(c.inbox) >= maxInbox || c.g.st.inboxLen.Load() >= maxInboxTotal) {
		c.qmu.Unlock()
		c.g.st.inboxFull.Add(1)
		c.g.warnLimited("inbox", "client too far behind, datagram dropped", "client_id", c.id)
		return
	}
	c.inbox = append(c.inbox, it)
	c.g.st.inboxLen.Add(1)
	sched := !c.queued
	c.queued = true
	c.qmu.Unlock()
	if sched {
		c.g.rq.push(c)
	}
}

// deliverFunc returns the broker's Deliver callback for attachment gen. It
// runs with the broker session locked: it only queues.
func (c *client) deliverFunc(gen uint64) func(*localbroker.Delivery) {
	max := c.g.opts.MaxBuffered
	return func(d *localbroker.Delivery) {
		c.qmu.Lock()
		if c.dead || (d.QoS == 0 && c.arrivedQ0 >= max) {
			c.qmu.Unlock()
			c.g.st.dropped.Add(1)
			return
		}
		if d.QoS == 0 {
			c.arrivedQ0++
		}
		c.arrived = append(c.arrived, arrival{gen: gen, d: d})
		sched := !c.queued
		c.queued = true
		c.qmu.Unlock()
		if sched {
			c.g.rq.push(c)
		}
	}
}

// run handles what the client was given until nothing is left, then sets
// its next deadline.
func (c *client) run() {
	for {
		c.qmu.Lock()
		in, arr := c.inbox, c.arrived
		c.inbox, c.arrived, c.arrivedQ0 = nil, nil, 0
		c.qmu.Unlock()
		c.g.st.inboxLen.Add(-int64(len(in)))

		c.step(in, arr, time.Now())

		c.qmu.Lock()
		if c.dead {
			c.queued = false
			c.qmu.Unlock()
			return
		}
		if len(c.inbox) == 0 && len(c.arrived) == 0 {
			// Under qmu, so that a worker that runs c next sets its own
			// deadline after this one.
			c.g.timers.set(c, c.deadline())
			c.queued = false
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
	}
}

func (c *client) step(in []inItem, arr []arrival, now time.Time) {
	// Deliveries first: a CONNECT below may end the attachment they came
	// through, and a wake-up sends what is buffered.
	c.take(arr)
	for _, it := range in {
		if c.state == stGone {
			// Removed while handling an earlier item: what is left goes
			// through routing again (a new CONNECT makes a new client).
			if it.m != nil { // not a notice (superseded, reauth)
				c.g.route(it.from, it.m)
			}
			continue
		}
		c.handle(it, now)
	}
	if c.state == stGone {
		return
	}
	c.checkTimers(now)
	if c.state == stGone {
		return
	}
	c.pump(now)
}

func (c *client) setState(s cstate) {
	sleeping := func(s cstate) bool { return s == stAsleep || s == stAwake }
	if sleeping(c.state) != sleeping(s) {
		if sleeping(s) {
			c.g.nAsleep.Add(1)
		} else {
			c.g.nAsleep.Add(-1)
		}
	}
	c.state = s
	c.publishView()
}

func (c *client) attached() bool {
	return c.bc != nil && (c.state == stActive || c.state == stAsleep || c.state == stAwake)
}

func (c *client) send(m packet.Message) error { return c.g.sendTo(c.peer, m) }

// setPeer makes p the client's address; the other addresses that pointed
// at it are forgotten.
func (c *client) setPeer(p peer) {
	key := p.key()
	g := c.g
	g.mu.Lock()
	kept := c.keys[:0]
	for _, k := range c.keys {
		if k == key {
			kept = append(kept, k)
		} else if g.byPeer[k] == c {
			delete(g.byPeer, k)
		}
	}
	c.keys = kept
	g.mu.Unlock()
	c.peer = p
	c.publishView()
}

// logger returns the client's logger, made when something is logged
// rather than kept by every client.
func (c *client) logger() *slog.Logger {
	return c.g.log.With("client_id", c.id, "transport", c.peer.tr.opts.Name, "remote", c.peer.String())
}

func (c *client) debug(msg string, args ...any) {
	if c.g.log.Enabled(context.Background(), slog.LevelDebug) {
		c.logger().Debug(msg, args...)
	}
}

func (c *client) nextMsgID() uint16 {
	c.msgID++
	if c.msgID == 0 {
		c.msgID = 1
	}
	return c.msgID
}

// --- inbound --------------------------------------------------------------

func (c *client) handle(it inItem, now time.Time) {
	if it.reauth {
		c.checkUsername()
		return
	}
	if it.superseded {
		if it.from.key() == c.peer.key() && c.state != stNew {
			c.lose("another client connected from its address")
		}
		return
	}
	switch m := it.m.(type) {
	case *packet.Connect:
		c.heard(now)
		c.onConnect(it.from, m, now)
		return
	case *packet.Pingreq:
		if len(m.ClientID) > 0 {
			c.heard(now)
			c.onWake(it.from, now)
			return
		}
	}
	if c.state == stConnecting {
		c.heard(now)
		switch m := it.m.(type) {
		case *packet.WillTopic:
			c.onWillTopic(m, now)
		case *packet.WillMsg:
			c.onWillMsg(m, now)
		}
		return // anything else waits for CONNACK: dropped
	}
	if !c.attached() {
		return
	}
	c.heard(now)
	switch m := it.m.(type) {
	case *packet.Publish:
		c.onPublish(m)
	case *packet.Pubrel:
		c.removeQoS2(m.MsgID)
		_ = c.send(&packet.Pubcomp{MsgID: m.MsgID})
	case *packet.Puback:
		c.onPuback(m, now)
	case *packet.Pubrec:
		c.onPubrec(m, now)
	case *packet.Pubcomp:
		if f := c.flight; f != nil && f.kind == fPubrel && f.msgID == m.MsgID {
			c.flight = nil
		}
	case *packet.Register:
		c.onRegister(m)
	case *packet.Regack:
		c.onRegack(m, now)
	case *packet.Subscribe:
		c.onSubscribe(m)
	case *packet.Unsubscribe:
		c.onUnsubscribe(m)
	case *packet.Pingreq:
		_ = c.send(&packet.Pingresp{})
	case *packet.Disconnect:
		c.onDisconnect(m, now)
	case *packet.WillTopicUpd:
		c.onWillTopicUpd(m)
	case *packet.WillMsgUpd:
		c.onWillMsgUpd(m)
	}
	// Others (PINGRESP, gateway-to-client types) are ignored.
}

// onConnect starts or restarts the client's connection (MQTT-SN 1.2 §6.2,
// §6.3), from whatever state: a CONNECT from an active or sleeping client
// with CleanSession=false keeps its session and buffered messages.
func (c *client) onConnect(p peer, m *packet.Connect, now time.Time) {
	c.setPeer(p)
	if c.state == stNew {
		g := c.g
		g.mu.Lock()
		if s := g.saved[c.bid]; s != nil {
			delete(g.saved, c.bid)
			c.stored = s.stored
			if !m.CleanSession {
				c.topics, c.will, c.inQoS2, c.persist = s.topics, s.will, s.inQoS2, true
			}
		}
		g.mu.Unlock()
	}
	c.pending = &connReq{clean: m.CleanSession, keepAlive: m.KeepAlive.Duration(), askWill: m.Will}
	if m.Will {
		if c.state != stConnecting {
			c.setState(stConnecting)
		}
		c.startHandshake(fWillTopicReq, &packet.WillTopicReq{}, now)
		return
	}
	c.finishConnect(now)
}

func (c *client) startHandshake(kind int, m packet.Message, now time.Time) {
	c.hs = &flight{kind: kind, msg: m, sentAt: now}
	_ = c.send(m)
}

func (c *client) onWillTopic(m *packet.WillTopic, now time.Time) {
	if c.hs == nil || c.hs.kind != fWillTopicReq || c.pending == nil {
		return
	}
	if len(m.WillTopic) == 0 {
		c.pending.will = nil // the empty WILLTOPIC: no will (§5.4.7)
		c.finishConnect(now)
		return
	}
	topic := string(m.WillTopic)
	if !validTopicName(topic) {
		c.refuse(packet.RejectedNotSupported, "will topic is not a topic name")
		return
	}
	c.pending.will = &willData{topic: topic, qos: byte(m.QoS), retain: m.Retain}
	c.startHandshake(fWillMsgReq, &packet.WillMsgReq{}, now)
}

func (c *client) onWillMsg(m *packet.WillMsg, now time.Time) {
	if c.hs == nil || c.hs.kind != fWillMsgReq || c.pending == nil || c.pending.will == nil {
		return
	}
	c.pending.will.msg = append([]byte(nil), m.WillMsg...)
	c.finishConnect(now)
}

// refuse answers the CONNECT being handled with a rejection and ends the
// client, unless it is still attached from before (a refused re-CONNECT
// leaves the old connection as it was).
func (c *client) refuse(rc packet.ReturnCode, why string) {
	c.g.st.refused.Add(1)
	c.logger().Info("connect refused", "reason", why, "code", rc.String())
	_ = c.send(&packet.Connack{ReturnCode: rc})
	c.pending, c.hs = nil, nil
	if c.bc != nil {
		c.setState(stActive)
		return
	}
	c.setState(stGone)
	c.remove()
}

func (c *client) finishConnect(now time.Time) {
	req := c.pending
	c.pending, c.hs = nil, nil
	prevWill := c.will
	switch {
	case req.askWill:
		c.will = req.will
	case req.clean:
		c.will = nil
	}
	if req.clean {
		c.topics = newTopicTable(c.g.opts.MaxTopicsPerClient)
		c.inQoS2 = nil
	}
	c.topics.unknowAll()
	acc := c.g.access()
	if c.bc != nil {
		if req.clean || c.bc.Username() != acc.users.of(c.id) {
			// A new username (SetAccess) takes a new attachment.
			c.detach(false)
		} else if err := c.bc.SetWill(c.brokerWill()); err != nil {
			if !errors.Is(err, localbroker.ErrClosed) {
				c.refuse(packet.RejectedNotSupported, err.Error())
				return
			}
			c.detach(false)
		}
	}
	present := false
	if c.bc == nil {
		c.gen++
		expiry := time.Duration(0)
		if !req.clean {
			expiry = c.g.opts.SessionExpiry
		}
		bc, p, err := c.g.broker.Attach(localbroker.ClientOptions{
			ClientID:       c.bid,
			Username:       acc.users.of(c.id),
			ACL:            acc.acl,
			Listener:       c.peer.tr.listener,
			CleanStart:     req.clean,
			SessionExpiry:  expiry,
			Will:           c.brokerWill(),
			ReceiveMaximum: uint16(min(c.g.opts.MaxBuffered, 0xFFFF)),
			Deliver:        c.deliverFunc(c.gen),
		})
		if err != nil {
			rc := packet.RejectedCongestion
			var pe *bpacket.Error
			if errors.As(err, &pe) && pe.Code != bpacket.ServerBusy && pe.Code != bpacket.QuotaExceeded {
				rc = packet.RejectedNotSupported
				if pe.Code == bpacket.NotAuthorized {
					c.notAuthorized("will", c.willTopic())
				}
			}
			c.refuse(rc, err.Error())
			return
		}
		present = p
		c.setBroker(bc, acc)
		c.g.attached.Add(1)
	}
	c.clean, c.persist = req.clean, !req.clean
	if req.clean && c.stored && c.g.unstore(c.bid) == nil {
		// A failed delete (logged) is tried again when the client goes.
		c.stored = false
	}
	if err := c.save(); err != nil && req.askWill {
		// The will data just given cannot be kept across a restart
		// (MQTT-SN 1.2 §6.3: the gateway stores them): refused with
		// congestion, as a REGISTER that cannot be stored is, and the
		// session stays as it was. Without new will data the session
		// works on from memory (the failure is counted and logged).
		c.will = prevWill
		c.detach(false)
		c.refuse(packet.RejectedCongestion, "session store: "+err.Error())
		return
	}
	c.keepAlive = req.keepAlive
	c.setState(stActive)
	_ = c.send(&packet.Connack{ReturnCode: packet.Accepted})
	c.debug("connected", "clean_session", req.clean, "keep_alive", req.keepAlive, "session_present", present)
	if f := c.flight; f != nil {
		c.resend(f, now)
	}
}

// brokerWill returns the will to give the broker.
func (c *client) brokerWill() *localbroker.Will {
	w := c.will
	if w == nil || w.topic == "" {
		return nil
	}
	return &localbroker.Will{Message: localbroker.Message{Topic: w.topic, Payload: w.msg, QoS: w.qos, Retain: w.retain}}
}

// resolve returns the topic name of a PUBLISH's topic id (§6.5, §6.7).
func (c *client) resolve(tt packet.TopicIDType, id uint16) (string, bool) {
	switch tt {
	case packet.TopicIDNormal:
		return c.topics.name(id)
	case packet.TopicIDPredefined:
		return c.predefinedName(id)
	case packet.TopicIDShort:
		n := shortName(id)
		return n, validTopicName(n)
	}
	return "", false
}

func (c *client) predefinedName(id uint16) (string, bool) {
	if c.pre != nil {
		if n, ok := c.pre.names[id]; ok {
			return n, true
		}
	}
	n, ok := c.g.pre.names[id]
	return n, ok
}

func (c *client) predefinedID(name string) (uint16, bool) {
	if c.pre != nil {
		if id, ok := c.pre.ids[name]; ok {
			return id, true
		}
	}
	id, ok := c.g.pre.ids[name]
	return id, ok
}

// onPublish hands a client's PUBLISH to the broker, and acknowledges QoS
// 1/2 only after the broker's Publish returned: the durable handoff.
func (c *client) onPublish(m *packet.Publish) {
	name, ok := c.resolve(m.TopicIDType, m.TopicID)
	if !ok {
		// MQTT-SN 1.2 §6.6, §6.7: whatever the QoS.
		_ = c.send(&packet.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: packet.RejectedInvalidTopicID})
		return
	}
	if m.QoS == packet.QoS2 && c.hasQoS2(m.MsgID) {
		_ = c.send(&packet.Pubrec{MsgID: m.MsgID}) // a retransmission: published already
		return
	}
	msg := &localbroker.Message{Topic: name, Payload: m.Data, QoS: byte(m.QoS), Retain: m.Retain}
	code, err := c.bc.Publish(c.g.runCtx, msg)
	if errors.Is(err, localbroker.ErrClosed) {
		c.brokerGone()
		return
	}
	if c.g.runCtx.Err() != nil {
		return // shutting down: no acknowledgement
	}
	rc := publishCode(code, err)
	if rc == packet.Accepted {
		c.publishedIn()
	} else if code == bpacket.NotAuthorized {
		c.notAuthorized("publish", name)
	} else {
		c.debug("publish refused by the broker", "topic", name, "code", code, "err", err)
	}
	switch {
	case m.QoS == packet.QoS0:
		if rc == packet.RejectedCongestion {
			_ = c.send(&packet.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: rc})
		}
	case m.QoS == packet.QoS2 && rc == packet.Accepted:
		c.addQoS2(m.MsgID)
		_ = c.send(&packet.Pubrec{MsgID: m.MsgID})
	default:
		_ = c.send(&packet.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: rc})
	}
}

// publishCode maps the broker's answer to an MQTT-SN return code.
func publishCode(code bpacket.ReasonCode, err error) packet.ReturnCode {
	switch code {
	case bpacket.Success, bpacket.NoMatchingSubscribers:
		if err != nil {
			return packet.RejectedCongestion
		}
		return packet.Accepted
	case bpacket.NotAuthorized, bpacket.TopicNameInvalid, bpacket.RetainNotSupported, bpacket.QoSNotSupported,
		bpacket.PayloadFormatInvalid, bpacket.PacketTooLarge:
		return packet.RejectedNotSupported
	}
	return packet.RejectedCongestion // QuotaExceeded, a BeforeAck failure, ...
}

func (c *client) willTopic() string {
	if c.will == nil {
		return ""
	}
	return c.will.topic
}

// notAuthorized counts and logs (at most every few seconds) what the ACL
// refused the client.
func (c *client) notAuthorized(what, topic string) {
	c.g.st.notAuthorized.Add(1)
	c.g.warnLimited("acl", "not authorized", "client_id", c.id, "username", c.g.access().users.of(c.id), "access", what, "topic", topic)
}

func (c *client) hasQoS2(id uint16) bool {
	for _, v := range c.inQoS2 {
		if v == id {
			return true
		}
	}
	return false
}

func (c *client) addQoS2(id uint16) {
	if len(c.inQoS2) >= maxInQoS2 {
		c.inQoS2 = append(c.inQoS2[:0], c.inQoS2[1:]...)
	}
	c.inQoS2 = append(c.inQoS2, id)
}

func (c *client) removeQoS2(id uint16) {
	for i, v := range c.inQoS2 {
		if v == id {
			c.inQoS2 = append(c.inQoS2[:i], c.inQoS2[i+1:]...)
			return
		}
	}
}

// onRegister assigns a topic id to a client's topic name (MQTT-SN 1.2 §6.5).
func (c *client) onRegister(m *packet.Register) {
	name := string(m.TopicName)
	if !validTopicName(name) {
		// A REGISTER never holds wildcards (§6.10).
		_ = c.send(&packet.Regack{MsgID: m.MsgID, ReturnCode: packet.RejectedNotSupported})
		return
	}
	id, e, ok := c.assignDurable(name)
	if !ok {
		_ = c.send(&packet.Regack{MsgID: m.MsgID, ReturnCode: packet.RejectedCongestion})
		return
	}
	e.known = true
	_ = c.send(&packet.Regack{TopicID: id, MsgID: m.MsgID, ReturnCode: packet.Accepted})
}

// assignDurable gives name a topic id the client keeps (a REGISTER, or a
// SUBSCRIBE to a name), stored before it is answered when the client's
// session outlives its connection. ok is false when the table is full or
// the store failed (logged): the answer is then "rejected: congestion".
func (c *client) assignDurable(name string) (uint16, *topicEntry, bool) {
	_, before := c.topics.lookup(name)
	wasGateway := before != nil && before.byGateway
	id, e, ok := c.topics.assign(name, false)
	if !ok {
		c.g.warnLimited("topics", "topic id refused: topic table full", "client_id", c.id, "max", c.g.opts.MaxTopicsPerClient)
		return 0, nil, false
	}
	if (before == nil || wasGateway) && c.save() != nil {
		if before == nil {
			c.topics.forget(id)
		} else {
			e.byGateway = true
		}
		return 0, nil, false
	}
	return id, e, true
}

// onSubscribe subscribes by topic name (wildcards allowed), pre-defined id
// or short name (MQTT-SN 1.2 §6.9); retained messages follow the SUBACK.
func (c *client) onSubscribe(m *packet.Subscribe) {
	suback := func(rc packet.ReturnCode, q packet.QoS, id uint16) {
		_ = c.send(&packet.Suback{QoS: q, TopicID: id, MsgID: m.MsgID, ReturnCode: rc})
	}
	var filter string
	var topicID uint16
	var entry *topicEntry
	switch m.TopicIDType {
	case packet.TopicIDNormal:
		filter = string(m.TopicName)
		if !hasWildcard(filter) {
			if !validTopicName(filter) {
				suback(packet.RejectedNotSupported, 0, 0)
				return
			}
			id, e, ok := c.assignDurable(filter)
			if !ok {
				suback(packet.RejectedCongestion, 0, 0)
				return
			}
			topicID, entry = id, e
		}
	case packet.TopicIDPredefined:
		name, ok := c.predefinedName(m.TopicID)
		if !ok {
			suback(packet.RejectedInvalidTopicID, 0, m.TopicID)
			return
		}
		filter, topicID = name, m.TopicID
	case packet.TopicIDShort:
		filter = shortName(m.TopicID)
		if !validTopicName(filter) {
			suback(packet.RejectedInvalidTopicID, 0, 0)
			return
		}
	}
	codes, err := c.bc.Subscribe(c.g.runCtx, []bpacket.Subscription{{Filter: filter, QoS: byte(m.QoS)}}, 0)
	if errors.Is(err, localbroker.ErrClosed) {
		c.brokerGone()
		return
	}
	if err != nil || len(codes) != 1 {
		suback(packet.RejectedCongestion, 0, 0)
		return
	}
	if code := codes[0]; code.IsError() {
		if code == bpacket.NotAuthorized {
			c.notAuthorized("subscribe", filter)
		}
		rc := packet.RejectedNotSupported
		if code == bpacket.QuotaExceeded || code == bpacket.ServerBusy {
			rc = packet.RejectedCongestion
		}
		suback(rc, 0, 0)
		return
	}
	suback(packet.Accepted, packet.QoS(codes[0]), topicID)
	if entry != nil {
		entry.known = true
	}
}

func (c *client) onUnsubscribe(m *packet.Unsubscribe) {
	var filter string
	switch m.TopicIDType {
	case packet.TopicIDNormal:
		filter = string(m.TopicName)
	case packet.TopicIDPredefined:
		filter, _ = c.predefinedName(m.TopicID)
	case packet.TopicIDShort:
		filter = shortName(m.TopicID)
	}
	if filter != "" {
		if _, err := c.bc.Unsubscribe(c.g.runCtx, []string{filter}); errors.Is(err, localbroker.ErrClosed) {
			c.brokerGone()
			return
		}
	}
	_ = c.send(&packet.Unsuback{MsgID: m.MsgID})
}

// onDisconnect: without a Duration the client disconnects; with one it goes
// to sleep (MQTT-SN 1.2 §6.12, §6.14). Either way it gets a DISCONNECT.
func (c *client) onDisconnect(m *packet.Disconnect, now time.Time) {
	_ = c.send(&packet.Disconnect{})
	if m.HasDuration && m.Duration > 0 {
		c.sleepFor = m.Duration.Duration()
		c.heard(now)
		c.setState(stAsleep)
		c.debug("asleep", "duration", c.sleepFor)
		return
	}
	c.debug("disconnected")
	c.end(false)
}

// onWake handles PINGREQ with the ClientId: a sleeping client is awake and
// gets what was buffered, then PINGRESP (MQTT-SN 1.2 §6.14).
func (c *client) onWake(p peer, now time.Time) {
	switch c.state {
	case stAsleep, stAwake:
	case stActive:
		c.setPeer(p)
		_ = c.send(&packet.Pingresp{})
		return
	default:
		return
	}
	c.setPeer(p)
	c.setState(stAwake)
	c.wakeLeft = len(c.out)
	if f := c.flight; f != nil {
		c.resend(f, now)
	}
	// pump sends the buffered messages and the PINGRESP.
}

func (c *client) onWillTopicUpd(m *packet.WillTopicUpd) {
	prev := c.will
	if len(m.WillTopic) == 0 {
		c.will = nil // deletes the will topic and message (§6.4)
	} else {
		topic := string(m.WillTopic)
		if !validTopicName(topic) {
			_ = c.send(&packet.WillTopicResp{ReturnCode: packet.RejectedNotSupported})
			return
		}
		w := &willData{topic: topic, qos: byte(m.QoS), retain: m.Retain}
		if c.will != nil {
			w.msg = c.will.msg
		}
		c.will = w
	}
	_ = c.send(&packet.WillTopicResp{ReturnCode: c.commitWill(prev)})
}

func (c *client) onWillMsgUpd(m *packet.WillMsgUpd) {
	prev := c.will
	w := &willData{}
	if c.will != nil {
		*w = *c.will
	}
	w.msg = append([]byte(nil), m.WillMsg...)
	c.will = w
	_ = c.send(&packet.WillMsgResp{ReturnCode: c.commitWill(prev)})
}

// commitWill gives the broker the will c.will that a WILLTOPICUPD or
// WILLMSGUPD made, and stores it (MQTT-SN 1.2 §6.4), and returns the
// answer. A refused update leaves the will before it, prev, in force, at
// the broker and in the stored session: a will the broker refuses
// (0x03), and one the store cannot keep (0x01 congestion: the update was
// not kept, as a REGISTER that cannot be stored is not).
func (c *client) commitWill(prev *willData) packet.ReturnCode {
	err := c.bc.SetWill(c.brokerWill())
	if err != nil {
		topic := c.willTopic()
		c.will = prev
		if errors.Is(err, localbroker.ErrClosed) {
			c.brokerGone()
			return packet.RejectedCongestion
		}
		if pe := (*bpacket.Error)(nil); errors.As(err, &pe) && pe.Code == bpacket.NotAuthorized {
			c.notAuthorized("will", topic)
		}
		return packet.RejectedNotSupported
	}
	if c.save() != nil { // counted and logged
		c.will = prev
		if err := c.bc.SetWill(c.brokerWill()); err != nil && !errors.Is(err, localbroker.ErrClosed) {
			c.logger().Warn("the will before a refused update not restored at the broker", "err", err)
		}
		return packet.RejectedCongestion
	}
	return packet.Accepted
}

// --- outbound -------------------------------------------------------------

// take moves the broker's deliveries into the buffer (MaxBuffered: a QoS 0
// message is dropped when full; a QoS 1/2 one pushes out the oldest QoS 0).
func (c *client) take(arr []arrival) {
	for _, a := range arr {
		if a.gen != c.gen || c.bc == nil {
			continue // from an attachment that ended: the broker resends what counts
		}
		if len(c.out) >= c.g.opts.MaxBuffered {
			if a.d.QoS == 0 || !c.dropOldestQoS0() {
				c.drop(a.d, "buffer full")
				continue
			}
		}
		c.out = append(c.out, &outItem{d: a.d, dup: a.d.Dup})
	}
}

func (c *client) dropOldestQoS0() bool {
	for i, it := range c.out {
		if it.d.QoS == 0 {
			c.out = append(c.out[:i], c.out[i+1:]...)
			c.drop(it.d, "buffer full")
			return true
		}
	}
	return false
}

// drop gives up a delivery: counted, and acknowledged to the broker so
// that its window moves on (as a too large packet is in MQTT 5).
func (c *client) drop(d *localbroker.Delivery, why string) {
	c.g.st.dropped.Add(1)
	c.g.warnLimited("drop:"+why, "message to client dropped", "client_id", c.id, "reason", why, "topic", d.Message.Topic)
	d.Ack()
}

// pump sends buffered messages while no exchange is outstanding; an awake
// client gets PINGRESP when its buffered messages are out.
func (c *client) pump(now time.Time) {
	if c.state != stActive && c.state != stAwake {
		return
	}
	for c.flight == nil && len(c.out) > 0 && c.state != stGone {
		if c.state == stAwake && c.wakeLeft <= 0 {
			break
		}
		it := c.out[0]
		c.out[0] = nil
		c.out = c.out[1:]
		if len(c.out) == 0 {
			c.out = nil
		}
		if c.state == stAwake {
			c.wakeLeft--
		}
		c.sendDelivery(it, now)
	}
	if c.state == stAwake && c.flight == nil && (c.wakeLeft <= 0 || len(c.out) == 0) {
		_ = c.send(&packet.Pingresp{})
		c.setState(stAsleep)
		c.heard(now)
	}
}

// sendDelivery sends one message: by pre-defined id, short name, or a
// normal topic id that is REGISTERed first when the client does not know it
// in this connection (MQTT-SN 1.2 §6.10).
func (c *client) sendDelivery(it *outItem, now time.Time) {
	d := it.d
	name := d.Message.Topic
	var tt packet.TopicIDType
	var tid uint16
	if id, ok := c.predefinedID(name); ok {
		tt, tid = packet.TopicIDPredefined, id
	} else if len(name) == 2 {
		tt, tid = packet.TopicIDShort, packet.ShortTopicID([2]byte{name[0], name[1]})
	} else {
		id, e, ok := c.topics.assign(name, true)
		if !ok {
			c.drop(d, "topic table full")
			return
		}
		if !e.known {
			reg := &packet.Register{TopicID: id, MsgID: c.nextMsgID(), TopicName: []byte(name)}
			if err := c.send(reg); errors.Is(err, errTooLarge) {
				c.drop(d, "topic name too long for the MTU") // §6.10: silently aborted
				return
			}
			c.flight = &flight{kind: fRegister, msg: reg, msgID: reg.MsgID, it: it, topicID: id, name: name, sentAt: now}
			return
		}
		tt, tid = packet.TopicIDNormal, id
	}
	p := &packet.Publish{DUP: it.dup, QoS: packet.QoS(d.QoS), Retain: d.Retain, TopicIDType: tt, TopicID: tid, Data: d.Message.Payload}
	if d.QoS > 0 {
		p.MsgID = c.nextMsgID()
	}
	if err := c.send(p); errors.Is(err, errTooLarge) {
		c.drop(d, "message too large for the MTU") // §6.10: silently aborted
		return
	}
	if d.QoS == 0 {
		c.publishedOut()
		return
	}
	c.flight = &flight{kind: fPublish, msg: p, msgID: p.MsgID, it: it, topicID: tid, tidType: tt, sentAt: now}
}

func (c *client) onRegack(m *packet.Regack, now time.Time) {
	f := c.flight
	if f == nil || f.kind != fRegister || f.msgID != m.MsgID {
		return
	}
	c.flight = nil
	if m.ReturnCode != packet.Accepted {
		// §6.10: a refused REGISTER is an unsubscribe from that name.
		c.topics.forget(f.topicID)
		if _, err := c.bc.Unsubscribe(c.g.runCtx, []string{f.name}); errors.Is(err, localbroker.ErrClosed) {
			c.brokerGone()
			return
		}
		c.drop(f.it.d, "client refused the topic")
		return
	}
	if _, e := c.topics.lookup(f.name); e != nil {
		e.known = true
	}
	c.sendDelivery(f.it, now)
}

func (c *client) onPuback(m *packet.Puback, now time.Time) {
	f := c.flight
	if f == nil || f.kind != fPublish || f.msgID != m.MsgID {
		if m.ReturnCode == packet.RejectedInvalidTopicID {
			c.unknowTopic(m.TopicID) // an answer to a QoS 0 PUBLISH
		}
		return
	}
	c.flight = nil
	switch m.ReturnCode {
	case packet.Accepted:
		if f.it.d.QoS == 1 {
			f.it.d.Ack()
			c.publishedOut()
		} else {
			c.drop(f.it.d, "client refused QoS 2 with PUBACK")
		}
	case packet.RejectedInvalidTopicID:
		// §6.10: the gateway corrects the assignment: REGISTER again, then
		// the same message, once.
		if f.tidType == packet.TopicIDNormal && !f.it.reregistered {
			c.unknowTopic(f.topicID)
			f.it.reregistered, f.it.dup = true, true
			c.out = append([]*outItem{f.it}, c.out...)
			if c.state == stAwake {
				c.wakeLeft++
			}
			return
		}
		c.drop(f.it.d, "client does not know the topic id")
	default:
		c.drop(f.it.d, "client refused the message")
	}
}

func (c *client) unknowTopic(id uint16) {
	if e := c.topics.get(id); e != nil {
		e.known = false
	}
}

func (c *client) onPubrec(m *packet.Pubrec, now time.Time) {
	f := c.flight
	if f == nil || f.msgID != m.MsgID {
		return
	}
	switch f.kind {
	case fPublish:
		if f.it.d.QoS != 2 {
			return
		}
		// The client has the message: the broker's delivery is done.
		f.it.d.Ack()
		c.publishedOut()
		rel := &packet.Pubrel{MsgID: m.MsgID}
		c.flight = &flight{kind: fPubrel, msg: rel, msgID: m.MsgID, sentAt: now}
		_ = c.send(rel)
	case fPubrel:
		_ = c.send(f.msg) // PUBREC again: our PUBREL was lost
	}
}

// --- timers ---------------------------------------------------------------

func (c *client) grace(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.g.opts.KeepAliveGrace)
}

// deadline returns the client's next deadline (zero: none).
func (c *client) deadline() time.Time {
	var t time.Time
	earlier := func(u time.Time) {
		if t.IsZero() || u.Before(t) {
			t = u
		}
	}
	switch c.state {
	case stConnecting:
		if c.hs != nil {
			earlier(c.hs.sentAt.Add(c.g.opts.Tretry))
		}
	case stActive:
		if c.keepAlive > 0 {
			earlier(c.lastHeard.Add(c.grace(c.keepAlive)))
		}
		if c.flight != nil {
			earlier(c.flight.sentAt.Add(c.g.opts.Tretry))
		}
	case stAsleep:
		earlier(c.lastHeard.Add(c.grace(c.sleepFor)))
	case stAwake:
		earlier(c.lastHeard.Add(c.grace(c.sleepFor)))
		if c.flight != nil {
			earlier(c.flight.sentAt.Add(c.g.opts.Tretry))
		}
	}
	return t
}

// checkTimers acts on the deadlines that passed: keep-alive and sleep
// supervision (§6.14), retransmission (§6.13).
func (c *client) checkTimers(now time.Time) {
	o := &c.g.opts
	due := func(t time.Time, d time.Duration) bool { return !now.Before(t.Add(d)) }
	switch c.state {
	case stConnecting:
		if f := c.hs; f != nil && due(f.sentAt, o.Tretry) {
			if f.retries >= o.Nretry {
				if c.bc != nil {
					c.lose("no answer to " + f.msg.Type().String())
					return
				}
				c.logger().Info("connect abandoned: no answer to " + f.msg.Type().String())
				c.setState(stGone)
				c.remove()
				return
			}
			c.retransmit(f, now)
		}
	case stActive:
		if c.keepAlive > 0 && due(c.lastHeard, c.grace(c.keepAlive)) {
			c.lose("keep-alive timeout")
			return
		}
		fallthrough
	case stAwake:
		if c.state == stAwake && due(c.lastHeard, c.grace(c.sleepFor)) {
			c.lose("sleep timeout")
			return
		}
		if f := c.flight; f != nil && due(f.sentAt, o.Tretry) {
			if f.retries >= o.Nretry {
				c.lose("no answer to " + f.msg.Type().String() + " after retransmissions")
				return
			}
			c.retransmit(f, now)
		}
	case stAsleep:
		if due(c.lastHeard, c.grace(c.sleepFor)) {
			c.lose("sleep timeout")
		}
	}
}

func (c *client) retransmit(f *flight, now time.Time) {
	f.retries++
	c.g.st.retransmissions.Add(1)
	c.resendMsg(f, now)
}

// resend sends a flight again at once (reconnection, wake-up) and restarts
// its retry count.
func (c *client) resend(f *flight, now time.Time) {
	f.retries = 0
	c.resendMsg(f, now)
}

func (c *client) resendMsg(f *flight, now time.Time) {
	if p, ok := f.msg.(*packet.Publish); ok {
		p.DUP = true // MQTT-SN 1.2 §5.3.4
	}
	f.sentAt = now
	_ = c.send(f.msg)
}

// --- ending -----------------------------------------------------------------

// lose ends a client that went silent: its will is published.
func (c *client) lose(why string) {
	c.g.st.lost.Add(1)
	c.logger().Info("client lost", "reason", why)
	c.end(true)
}

// brokerGone ends a client whose broker session was taken away (a LAN
// client took its id over, or the broker is stopping): it is told with
// DISCONNECT (§6.12) and connects again.
func (c *client) brokerGone() {
	c.logger().Info("broker session ended")
	_ = c.send(&packet.Disconnect{})
	c.end(false)
}

// end closes the broker session (publishing the will when withWill) and
// removes the client.
func (c *client) end(withWill bool) {
	c.detach(withWill)
	c.setState(stGone)
	c.remove()
}

// detach closes the broker client and forgets what was on its way: the
// broker keeps unacknowledged QoS 1/2 deliveries of a persistent session
// and sends them again with Dup on the next attachment.
func (c *client) detach(withWill bool) {
	if c.bc != nil {
		c.bc.Close(withWill)
		c.setBroker(nil, nil)
		c.g.attached.Add(-1)
	}
	c.gen++
	clear(c.out)
	c.out, c.flight, c.hs = nil, nil, nil
}

// savedSession returns what the gateway keeps of the client while it is
// away, expiring SessionExpiry from now.
func (c *client) savedSession() *savedSession {
	s := &savedSession{topics: c.topics, will: c.will, inQoS2: c.inQoS2, stored: c.stored}
	if e := c.g.opts.SessionExpiry; e > 0 {
		s.expires = time.Now().Add(e)
	}
	return s
}

// remove takes the client out of the gateway's tables, saving what a
// CleanSession=false client keeps; datagrams still in its inbox are routed
// again.
func (c *client) remove() {
	g := c.g
	var saved *savedSession
	if c.persist {
		saved = c.savedSession()
		g.storeSaved(c.bid, saved) // before the lock: it waits for the disk
	} else if c.stored && g.unstore(c.bid) == nil {
		// A CleanSession=true CONNECT could not delete the record.
		c.stored = false
	}
	var evicted string
	g.mu.Lock()
	if g.byID[c.bid] == c {
		delete(g.byID, c.bid)
	}
	for _, k := range c.keys {
		if g.byPeer[k] == c {
			delete(g.byPeer, k)
		}
	}
	c.keys = nil
	if saved != nil {
		evicted = g.saveSession(c.bid, saved)
	}
	c.qmu.Lock()
	c.dead = true
	left := c.inbox
	c.inbox, c.arrived = nil, nil
	c.qmu.Unlock()
	g.st.inboxLen.Add(-int64(len(left)))
	g.mu.Unlock()
	g.timers.set(c, time.Time{})
	if evicted != "" {
		_ = g.unstore(evicted) // counted and logged
	}
	for _, it := range left {
		if it.m != nil { // not a notice (superseded, reauth)
			g.route(it.from, it.m)
		}
	}
}
