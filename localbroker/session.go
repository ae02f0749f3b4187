package localbroker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

// neverExpire is the 5.0 session expiry value meaning "does not expire".
const neverExpire = 0xFFFFFFFF

// link is the client side of a session: a network connection or an
// in-process client. Its methods are called with the session's lock held,
// so they must not block and must not call back into the session.
type link interface {
	// sendPublish queues a PUBLISH towards the client. For QoS 0 it may
	// refuse (false) when the link's outbound buffer is full.
	sendPublish(m *Message, qos byte, retain, dup bool, pid uint16, subIDs []uint32) bool
	// sendPubrel queues a PUBREL (QoS 2 second phase) towards the client.
	sendPubrel(pid uint16)
	// kick closes the link from the broker's side with reason code.
	kick(code packet.ReasonCode)
	// maxPacketSize is the client's Maximum Packet Size (0 = no limit).
	maxPacketSize() uint32
	version() packet.Version
}

// outMsg is a QoS 1/2 delivery in flight or queued towards a client.
type outMsg struct {
	msg    *Message
	qos    byte
	retain bool
	subIDs []uint32
	pid    uint16
	state  uint8  // outQueued, outPublished, outReleased
	seq    uint64 // number under which it was stored while queued offline; 0 none
}

const (
	outQueued    = 0
	outPublished = 1 // PUBLISH sent, awaiting PUBACK / PUBREC
	outReleased  = 2 // PUBREL sent, awaiting PUBCOMP
)

// subscription is one filter a session holds.
type subscription struct {
	filter string // as subscribed, including any $share/group/ prefix
	inner  string // the filter matched against topics
	group  string // shared subscription group, "" if none
	opts   packet.Subscription
	id     uint32 // subscription identifier, 0 if none
}

var sessionSeq atomic.Uint64

// session is the server side of an MQTT session [MQTT-4.1]. It outlives
// connections when the client asked for a session expiry.
type session struct {
	b   *Broker
	id  string
	seq uint64 // unique, orders sessions when merging overlapping matches

	online atomic.Bool // a link is attached (read without the lock by shared-group selection)

	mu          sync.Mutex
	link        link
	gen         uint64 // counts attachments
	ended       bool
	info        ClientInfo
	acl         *auth.ACL
	subs        map[string]*subscription
	inflight    []*outMsg // in send order
	queue       []*outMsg // waiting for a slot in the window; QoS 0 only while online
	queuedBytes int64
	dropping    bool // a drop episode is in progress (log once)
	nextPID     uint16
	sendMax     int                 // min(client receive maximum, Options.MaxInflight)
	inQoS2      map[uint16]struct{} // QoS 2 packet ids received, PUBREL pending [MQTT-4.3.3-2]
	qseq        uint64              // last number given to a message queued offline
	aclDropGen  uint64              // gen of the last connection told of a delivery its ACL refused
	netListener string              // listener of the client's last network connection; "" in-process
	lnStored    string              // netListener as last persisted (storeListener)
	expiry      uint32              // session expiry interval, seconds
	expiryTimer *time.Timer
	will        *Will
	willTimer   *time.Timer
}

func newSession(b *Broker, id string) *session {
	return &session{
		b:   b,
		id:  id,
		seq: sessionSeq.Add(1),
		// subs and inQoS2 are made with their first entry: many sessions
		// (idle MQTT-SN devices by the thousand) never need one of them.
	}
}

// deliver hands one message to the session with the QoS, retain flag and
// subscription identifiers of the matching subscription(s). Its error is
// the persistence's, when a QoS 1/2 message for a persistent session
// could not be stored: the message is queued or sent in memory all the
// same, but the publisher must not be told it is safe.
func (s *session) deliver(m *Message, qos byte, retain bool, subIDs []uint32) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil
	}
	if s.link == nil {
		if qos == 0 {
			s.mu.Unlock()
			return nil // QoS 0 is not queued for offline sessions (as mosquitto's default)
		}
		om := &outMsg{msg: m, qos: qos, retain: retain, subIDs: subIDs}
		p := s.b.deps.Persistence
		if p != nil && s.expiry > 0 {
			s.qseq++
			om.seq = s.qseq
		}
		queued := s.enqueue(om)
		s.mu.Unlock()
		if queued && om.seq != 0 {
			// Durable before the publisher is acknowledged; outside the
			// lock so that concurrent publishers share one sync.
			pm := PendingMessage{Message: m, QoS: qos, Retain: retain, SubIDs: subIDs, Seq: om.seq}
			if err := p.StoreQueued(s.id, &pm); err != nil {
				s.b.log.Error("persistence: store queued message", "client_id", s.id, "err", err)
				return err
			}
		}
		return nil
	}
	// A persistent session's QoS 1/2 delivery is stored while the client
	// is connected too, when the persistence can forget it once
	// acknowledged (deliveryPersistence): a kill -9 then loses nothing
	// that was queued or in flight. Stored outside the lock, so that
	// concurrent publishers share one sync, and before the publisher is
	// acknowledged; the client may acknowledge it first, which at worst
	// leaves a record behind that the next reconnection prunes.
	var seq uint64
	dp, durable := s.b.deps.Persistence.(deliveryPersistence)
	if durable && qos > 0 && s.expiry > 0 {
		s.qseq++
		seq = s.qseq
	}
	accepted := s.deliverOnline(&outMsg{msg: m, qos: qos, retain: retain, subIDs: subIDs, seq: seq})
	s.mu.Unlock()
	if accepted && seq != 0 {
		pm := PendingMessage{Message: m, QoS: qos, Retain: retain, SubIDs: subIDs, Seq: seq}
		if err := dp.StoreQueued(s.id, &pm); err != nil {
			s.b.log.Error("persistence: store queued message", "client_id", s.id, "err", err)
			return err
		}
	}
	return nil
}

// deliverOnline sends om on the session's link or queues it, and reports
// whether a QoS 1/2 om was taken. Called with s.mu held and a link.
func (s *session) deliverOnline(om *outMsg) bool {
	m, qos, retain, subIDs := om.msg, om.qos, om.retain, om.subIDs
	if max := s.link.maxPacketSize(); max > 0 && publishSize(m, qos, subIDs, s.link.version()) > int(max) {
		// [MQTT-3.1.2-25] a packet larger than the client's maximum is
		// discarded as if it had been sent.
		s.b.stats.dropped.Add(1)
		return false
	}
	if len(s.queue) == 0 {
		if qos == 0 {
			if !s.link.sendPublish(m, 0, retain, false, 0, subIDs) {
				s.b.stats.dropped.Add(1)
			}
			return false
		}
		if len(s.inflight) < s.sendMax {
			s.publishInflight(om)
			return true
		}
	}
	return s.enqueue(om) && qos > 0
}

// forgetDelivered removes the stored copy of a completed delivery (seq 0:
// none); called without s.mu.
func (s *session) forgetDelivered(seq uint64) {
	if seq == 0 {
		return
	}
	if dp, ok := s.b.deps.Persistence.(deliveryPersistence); ok {
		if err := dp.ForgetQueued(s.id, seq); err != nil {
			s.b.log.Error("persistence: forget delivered message", "client_id", s.id, "err", err)
		}
	}
}

// enqueue adds om to the queue, within MaxQueuedMessages and MaxQueuedBytes;
// QoS 0 messages are dropped first. Called with s.mu held.
func (s *session) enqueue(om *outMsg) bool {
	o := &s.b.opts
	size := int64(len(om.msg.Payload) + len(om.msg.Topic))
	for len(s.queue) >= o.MaxQueuedMessages || s.queuedBytes+size > o.MaxQueuedBytes {
		// QoS 0 goes first: a new QoS 0 message is dropped, a new QoS 1/2
		// message displaces the oldest queued QoS 0 one, else it is dropped.
		if om.qos == 0 || !s.dropQueuedQoS0() {
			s.noteDrop()
			return false
		}
	}
	s.queue = append(s.queue, om)
	s.queuedBytes += size
	return true
}

// dropQueuedQoS0 removes the oldest queued QoS 0 message, if any.
func (s *session) dropQueuedQoS0() bool {
	for i, q := range s.queue {
		if q.qos == 0 {
			s.queuedBytes -= int64(len(q.msg.Payload) + len(q.msg.Topic))
			copy(s.queue[i:], s.queue[i+1:])
			s.queue[len(s.queue)-1] = nil
			s.queue = s.queue[:len(s.queue)-1]
			s.noteDrop()
			return true
		}
	}
	return false
}

// dropQueuedQoS0All forgets queued QoS 0 messages when the client goes
// away: QoS 0 is not kept for offline sessions. Called with s.mu held.
func (s *session) dropQueuedQoS0All() {
	n := 0
	for _, q := range s.queue {
		if q.qos > 0 {
			s.queue[n] = q
			n++
			continue
		}
		s.queuedBytes -= int64(len(q.msg.Payload) + len(q.msg.Topic))
		s.b.stats.dropped.Add(1)
	}
	clear(s.queue[n:])
	s.queue = s.queue[:n]
}

func (s *session) noteDrop() {
	s.b.stats.dropped.Add(1)
	if !s.dropping {
		s.dropping = true
		s.b.log.Warn("session queue full, dropping messages", "client_id", s.id,
			"queued", len(s.queue), "queued_bytes", s.queuedBytes)
	}
}

// publishInflight assigns a packet id and sends om. Called with s.mu held
// and a link attached.
func (s *session) publishInflight(om *outMsg) {
	om.pid = s.allocPID()
	om.state = outPublished
	s.inflight = append(s.inflight, om)
	s.link.sendPublish(om.msg, om.qos, om.retain, false, om.pid, om.subIDs)
}

// allocPID returns a packet id not used by an in-flight delivery
// [MQTT-2.3.1-2]. The window is far below 65535, so this terminates.
func (s *session) allocPID() uint16 {
	for {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		free := true
		for _, om := range s.inflight {
			if om.pid == s.nextPID {
				free = false
				break
			}
		}
		if free {
			return s.nextPID
		}
	}
}

// pump moves queued messages into the inflight window. Called with s.mu held.
func (s *session) pump() {
	if s.link == nil {
		return
	}
	now := time.Now()
	n := 0
	for n < len(s.queue) {
		om := s.queue[n]
		if om.qos > 0 && len(s.inflight) >= s.sendMax {
			break
		}
		n++
		s.queuedBytes -= int64(len(om.msg.Payload) + len(om.msg.Topic))
		if om.msg.expired(now) {
			s.b.stats.expired.Add(1)
			continue
		}
		if !s.readable(om.msg) {
			s.notReadable(om.msg)
			continue
		}
		if max := s.link.maxPacketSize(); max > 0 && publishSize(om.msg, om.qos, om.subIDs, s.link.version()) > int(max) {
			// Queued while offline, too large for this connection: discarded
			// as if sent [MQTT-3.1.2-24] [MQTT-3.1.2-25].
			s.b.stats.dropped.Add(1)
			continue
		}
		if om.qos == 0 {
			if !s.link.sendPublish(om.msg, 0, om.retain, false, 0, om.subIDs) {
				s.b.stats.dropped.Add(1)
			}
			continue
		}
		s.publishInflight(om)
	}
	if n > 0 {
		clear(s.queue[:n])
		s.queue = s.queue[n:]
		if len(s.queue) == 0 {
			s.queue = nil
			s.dropping = false
		}
	}
}

// findInflight returns the index of pid in the window, or -1.
func (s *session) findInflight(pid uint16) int {
	for i, om := range s.inflight {
		if om.pid == pid {
			return i
		}
	}
	return -1
}

func (s *session) removeInflight(i int) {
	copy(s.inflight[i:], s.inflight[i+1:])
	s.inflight[len(s.inflight)-1] = nil
	s.inflight = s.inflight[:len(s.inflight)-1]
}

// onPuback completes a QoS 1 delivery [MQTT-4.3.2].
func (s *session) onPuback(pid uint16) {
	s.mu.Lock()
	var seq uint64
	if i := s.findInflight(pid); i >= 0 && s.inflight[i].qos == 1 {
		seq = s.inflight[i].seq
		s.removeInflight(i)
		s.b.stats.sent.Add(1)
		s.pump()
	}
	s.mu.Unlock()
	s.forgetDelivered(seq)
}

// onPubrec handles the first acknowledgement of a QoS 2 delivery; it
// reports whether pid was known (else the caller answers PUBREL 0x92).
func (s *session) onPubrec(pid uint16, code packet.ReasonCode) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findInflight(pid)
	if i < 0 || s.inflight[i].qos != 2 {
		return false
	}
	if code.IsError() {
		// [MQTT-4.3.3] a PUBREC with an error code ends the flow.
		s.removeInflight(i)
		s.pump()
		return true
	}
	s.inflight[i].state = outReleased
	if s.link != nil {
		s.link.sendPubrel(pid)
	}
	return true
}

// onPubcomp completes a QoS 2 delivery.
func (s *session) onPubcomp(pid uint16) {
	s.mu.Lock()
	var seq uint64
	if i := s.findInflight(pid); i >= 0 && s.inflight[i].state == outReleased {
		seq = s.inflight[i].seq
		s.removeInflight(i)
		s.b.stats.sent.Add(1)
		s.pump()
	}
	s.mu.Unlock()
	s.forgetDelivered(seq)
}

// resend re-sends every unacknowledged delivery in order, PUBLISH with DUP
// or PUBREL, then fills the window [MQTT-4.4.0-1]. Called with s.mu held.
//
// An in-flight message is resent even past its expiry: onward delivery has
// started, so [MQTT-3.3.2-5] no longer applies, and a message skipped here
// would hold its slot of the window forever. One that the session's ACL no
// longer lets the client read is dropped from the window instead.
func (s *session) resend() {
	n := 0
	for _, om := range s.inflight {
		if om.state == outPublished && !s.readable(om.msg) {
			// A reload, or a client that took the session over under
			// another username, no longer may read it.
			s.notReadable(om.msg)
			continue
		}
		s.inflight[n] = om
		n++
		switch om.state {
		case outPublished:
			s.link.sendPublish(om.msg, om.qos, om.retain, true, om.pid, om.subIDs)
		case outReleased:
			s.link.sendPubrel(om.pid)
		}
	}
	clear(s.inflight[n:])
	s.inflight = s.inflight[:n]
	s.pump()
}

func publishSize(m *Message, qos byte, subIDs []uint32, v packet.Version) int {
	p := packet.Publish{QoS: qos, Topic: m.Topic, Payload: m.Payload, PacketID: 1, Properties: m.Props}
	if len(subIDs) > 0 {
		p.Properties.SubscriptionIDs = subIDs
		p.Properties.Set(packet.PropSubscriptionID)
	}
	if !m.ExpiresAt.IsZero() {
		p.Properties.Set(packet.PropMessageExpiry)
		p.Properties.MessageExpiry = 1
	}
	return packet.Size(&p, v)
}
