package uplink

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/eclipse/paho.golang/packets"
	paholog "github.com/eclipse/paho.golang/paho/log"
	pahosession "github.com/eclipse/paho.golang/paho/session"
)

// flight is one spooled message published at QoS 1 or 2 and not yet
// completely acknowledged by the cloud.
type flight struct {
	cls   *class
	seq   uint64
	at    uint64 // spool append time of the message, Unix ns (for the flight record)
	data  []byte // the spooled record, for the quarantine
	pid   uint16
	pkt   *packets.Publish
	state byte   // packets.PUBLISH until PUBREC, then packets.PUBREL (stateRecd between, when recorded)
	order uint64 // send order, for the resend after a resumed session

	// recorded: the flight is in the FlightStore (QoS 2 with a store);
	// its PUBREL waits until the store has the new state.
	recorded bool
}

// stateRecd is a recorded flight whose PUBREC came: its PUBREL goes once
// the FlightStore has the state, so that a restart resends the PUBREL,
// never the PUBLISH [MQTT-4.3.3-4].
const stateRecd = 0xF0

// result is the end of a flight: the PUBACK, the failed PUBREC or the
// PUBCOMP, with its reason code.
type result struct {
	f    *flight
	kind byte // packets.PUBACK, PUBREC or PUBCOMP
	code byte
}

type flightKey struct{}

// withFlight returns a context that tells session.AddToSession which
// flight a PUBLISH belongs to (paho passes the Publish call's context on).
func withFlight(ctx context.Context, f *flight) context.Context {
	return context.WithValue(ctx, flightKey{}, f)
}

// session is the bridge's MQTT session state, implementing paho's
// session.SessionManager. One lives for a whole Run, across connections,
// so that a resumed cloud session gets its unacknowledged PUBLISH and
// PUBREL packets again with their original packet identifiers
// [MQTT-4.4.0-1], and results reach the drain loop whichever connection
// carried them.
//
// Packet identifiers are allocated lowest-free-first, so only a few are
// ever used. At the start of a process the state of a resumed cloud session
// is unknown: the cloud may still hold QoS 2 packet identifiers of the
// previous process awaiting PUBREL, and would take a new PUBLISH with such
// an identifier for a duplicate and drop it [MQTT-4.3.3-10]. So until the
// cloud says it has no session, each identifier is released with a PUBREL
// before its first use (the cloud answers PUBCOMP, possibly 0x92, which is
// ignored).
type session struct {
	mu          sync.Mutex
	conn        io.Writer // nil while not connected
	out         map[uint16]*flight
	reqs        map[uint16]chan<- packets.ControlPacket // SUBSCRIBE / UNSUBSCRIBE
	inRec       map[uint16]bool                         // inbound QoS 2 ids we sent PUBREC for
	order       uint64
	unknown     bool               // the cloud may hold identifiers from before this process
	released    [65536 / 64]uint64 // identifiers released with a PUBREL while unknown
	results     []result
	notify      chan struct{} // signalled when results grow
	recvMax     uint16        // the cloud's Receive Maximum of the current connection
	lost        bool          // the last CONNACK said no session: every flight was dropped
	maxQoS      byte
	retainOK    bool
	maxPacket   uint32
	debugLogger paholog.Logger

	recd     []*flight       // recorded flights whose PUBREC came, for the drain loop to record
	held     map[uint16]bool // identifiers of ended recorded flights until their record is gone
	lostRecs []uint16        // records of flights a CONNACK without session dropped
}

func newSession() *session {
	return &session{
		out:     make(map[uint16]*flight),
		reqs:    make(map[uint16]chan<- packets.ControlPacket),
		inRec:   make(map[uint16]bool),
		held:    make(map[uint16]bool),
		unknown: true,
		notify:  make(chan struct{}, 1),
	}
}

func (s *session) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// take returns the results gathered since the last call.
func (s *session) take(buf []result) []result {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf = append(buf[:0], s.results...)
	clear(s.results)
	s.results = s.results[:0]
	return buf
}

// inflight returns the number of flights.
func (s *session) inflight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.out)
}

// ConAckReceived implements session.SessionManager.
func (s *session) ConAckReceived(conn io.Writer, cp *packets.Connect, ca *packets.Connack) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = conn
	s.recvMax, s.maxQoS, s.retainOK, s.maxPacket = 65535, 2, true, 0
	if p := ca.Properties; p != nil {
		if p.ReceiveMaximum != nil && *p.ReceiveMaximum > 0 {
			s.recvMax = *p.ReceiveMaximum
		}
		if p.MaximumQOS != nil {
			s.maxQoS = *p.MaximumQOS
		}
		s.retainOK = p.RetainAvailable == nil || *p.RetainAvailable == 1
		if p.MaximumPacketSize != nil {
			s.maxPacket = *p.MaximumPacketSize
		}
	}
	if !ca.SessionPresent {
		// The cloud has no state: every flight is gone (the drain loop
		// sends again from the spool), every identifier is free.
		s.lost = len(s.out) > 0 || s.lost
		for pid, f := range s.out {
			if f.recorded {
				s.lostRecs = append(s.lostRecs, pid)
			}
		}
		clear(s.out)
		s.recd = s.recd[:0]
		clear(s.inRec)
		s.unknown = false
		return nil
	}
	// Resend in the original order [MQTT-4.4.0-1] [MQTT-4.6.0-1].
	fs := make([]*flight, 0, len(s.out))
	for _, f := range s.out {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b *flight) int { return int(int64(a.order - b.order)) })
	for _, f := range fs {
		var err error
		if f.state == stateRecd {
			continue // its PUBREL goes once recorded
		}
		if f.state == packets.PUBREL {
			_, err = (&packets.Pubrel{PacketID: f.pid}).WriteTo(conn)
		} else {
			f.pkt.Duplicate = true
			_, err = f.pkt.WriteTo(conn)
		}
		if err != nil {
			return err // paho drops the connection; the flights stay
		}
	}
	return nil
}

// takeLost reports (once) that a CONNACK without session dropped flights.
func (s *session) takeLost() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lost
	s.lost = false
	return l
}

// ConnectionLost implements session.SessionManager. Flights stay: whether
// they are resent or sent anew depends on the next CONNACK.
func (s *session) ConnectionLost(*packets.Disconnect) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = nil
	for id, ch := range s.reqs {
		ch <- packets.ControlPacket{} // paho reads the zero packet as "connection lost"
		delete(s.reqs, id)
	}
	return nil
}

// AddToSession implements session.SessionManager. A PUBLISH must carry its
// flight in ctx (withFlight).
func (s *session) AddToSession(ctx context.Context, p pahosession.Packet, resp chan<- packets.ControlPacket) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return pahosession.ErrNoConnection
	}
	var f *flight
	if p.Type() == packets.PUBLISH {
		f, _ = ctx.Value(flightKey{}).(*flight)
		if f == nil {
			return errors.New("uplink: PUBLISH without flight")
		}
	}
	if f != nil && f.pid != 0 && s.out[f.pid] == f {
		// Reserved (a recorded QoS 2 flight).
		p.SetIdentifier(f.pid)
		if pkt, ok := p.(*packets.Publish); ok {
			f.pkt = pkt
		}
		return nil
	}
	pid, err := s.allocPID()
	if err != nil {
		return err
	}
	p.SetIdentifier(pid)
	if f == nil {
		s.reqs[pid] = resp
		return nil
	}
	pkt, ok := p.(*packets.Publish)
	if !ok {
		return errors.New("uplink: PUBLISH of unexpected type")
	}
	s.order++
	f.pid, f.pkt, f.state, f.order = pid, pkt, packets.PUBLISH, s.order
	s.out[pid] = f
	return nil
}

func (s *session) isReleased(pid uint16) bool { return s.released[pid/64]&(1<<(pid%64)) != 0 }

// allocPID returns the lowest free identifier; while the cloud may hold
// identifiers of an earlier process it first releases it with a PUBREL.
// s.mu is held and the session is connected.
func (s *session) allocPID() (uint16, error) {
	pid := s.freePID()
	if pid == 0 {
		return 0, pahosession.ErrPacketIdentifiersExhausted
	}
	if s.unknown && !s.isReleased(pid) {
		if _, err := (&packets.Pubrel{PacketID: pid}).WriteTo(s.conn); err != nil {
			return 0, err
		}
		s.released[pid/64] |= 1 << (pid % 64)
	}
	return pid, nil
}

// freePID returns the lowest free identifier, or 0.
func (s *session) freePID() uint16 {
	for pid := 1; pid <= 65535; pid++ {
		id := uint16(pid)
		if s.out[id] == nil && s.reqs[id] == nil && !s.held[id] {
			return id
		}
	}
	return 0
}

// reserve gives a recorded QoS 2 flight its packet identifier before its
// record is written and its PUBLISH sent.
func (s *session) reserve(f *flight) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return pahosession.ErrNoConnection
	}
	pid, err := s.allocPID()
	if err != nil {
		return err
	}
	s.order++
	f.pid, f.state, f.order, f.recorded = pid, packets.PUBLISH, s.order, true
	s.out[pid] = f
	return nil
}

// unreserve takes back a reservation whose PUBLISH was not stored by paho;
// the identifier stays held until its record is gone.
func (s *session) unreserve(f *flight) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out[f.pid] == f {
		delete(s.out, f.pid)
		s.held[f.pid] = true
	}
}

// unhold frees identifiers whose records are gone.
func (s *session) unhold(pids []uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pid := range pids {
		delete(s.held, pid)
	}
}

// takeRecd returns the recorded flights whose PUBREC came.
func (s *session) takeRecd() []*flight {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := slices.Clone(s.recd)
	s.recd = s.recd[:0]
	return r
}

// recdDone sends the PUBREL of flights whose PUBREL state is recorded, or
// puts them back for another try when recording failed.
func (s *session) recdDone(fs []*flight, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		if s.out[f.pid] != f || f.state != stateRecd {
			continue
		}
		if !ok {
			s.recd = append(s.recd, f)
			continue
		}
		f.state = packets.PUBREL
		_ = s.write(&packets.Pubrel{PacketID: f.pid})
	}
}

// takeLostRecs returns the records of flights that a CONNACK without
// session dropped, and holds their identifiers until they are gone.
func (s *session) takeLostRecs() []uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := slices.Clone(s.lostRecs)
	s.lostRecs = s.lostRecs[:0]
	for _, pid := range r {
		s.held[pid] = true
	}
	return r
}

func (s *session) end(pid uint16, kind, code byte) {
	f := s.out[pid]
	delete(s.out, pid)
	if f != nil && f.recorded {
		s.held[pid] = true // until the drain loop removed the record
	}
	s.results = append(s.results, result{f: f, kind: kind, code: code})
	s.signal()
}

// PacketReceived implements session.SessionManager.
func (s *session) PacketReceived(cp *packets.ControlPacket, pubs chan<- *packets.Publish) error {
	switch p := cp.Content.(type) {
	case *packets.Puback:
		s.mu.Lock()
		defer s.mu.Unlock()
		if f := s.out[p.PacketID]; f != nil && f.state == packets.PUBLISH {
			s.end(p.PacketID, packets.PUBACK, p.ReasonCode)
		}
	case *packets.Pubrec:
		s.mu.Lock()
		defer s.mu.Unlock()
		f := s.out[p.PacketID]
		switch {
		case f == nil:
			return s.write(&packets.Pubrel{PacketID: p.PacketID, ReasonCode: 0x92})
		case p.ReasonCode >= 0x80:
			s.end(p.PacketID, packets.PUBREC, p.ReasonCode)
		case f.recorded && f.state == packets.PUBLISH:
			f.state = stateRecd
			s.recd = append(s.recd, f)
			s.signal()
		case f.state == stateRecd:
			// Being recorded; its PUBREL follows.
		default:
			f.state = packets.PUBREL
			return s.write(&packets.Pubrel{PacketID: p.PacketID})
		}
	case *packets.Pubcomp:
		s.mu.Lock()
		defer s.mu.Unlock()
		// A PUBCOMP for a flight still in PUBLISH state answers the PUBREL
		// that released its identifier: not ours to count.
		if f := s.out[p.PacketID]; f != nil && f.state == packets.PUBREL {
			s.end(p.PacketID, packets.PUBCOMP, p.ReasonCode)
		}
	case *packets.Suback, *packets.Unsuback:
		s.mu.Lock()
		defer s.mu.Unlock()
		if ch := s.reqs[cp.PacketID()]; ch != nil {
			ch <- *cp
			delete(s.reqs, cp.PacketID())
		}
	case *packets.Publish:
		if p.QoS == 2 {
			s.mu.Lock()
			seen := s.inRec[p.PacketID]
			s.mu.Unlock()
			if seen && p.Duplicate {
				// Handled before this connection: only the PUBREC was lost.
				return s.Ack(p)
			}
		}
		pubs <- p
	case *packets.Pubrel:
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.inRec, p.PacketID)
		return s.write(&packets.Pubcomp{PacketID: p.PacketID})
	}
	return nil
}

// write sends a packet on the current connection; s.mu is held. Errors
// end the connection, which paho notices when it reads.
func (s *session) write(p io.WriterTo) error {
	if s.conn == nil {
		return nil
	}
	_, err := p.WriteTo(s.conn)
	return err
}

// Ack implements session.SessionManager: the bridge calls paho's Ack once
// the message is published locally.
func (s *session) Ack(pb *packets.Publish) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch pb.QoS {
	case 1:
		return s.write(&packets.Puback{PacketID: pb.PacketID, Properties: &packets.Properties{}})
	case 2:
		s.inRec[pb.PacketID] = true
		return s.write(&packets.Pubrec{PacketID: pb.PacketID, Properties: &packets.Properties{}})
	}
	return nil
}

// Close implements session.SessionManager; paho calls it only for sessions
// it made.
func (s *session) Close() error { return nil }

// SetErrorLogger implements session.SessionManager.
func (s *session) SetErrorLogger(paholog.Logger) {}

// SetDebugLogger implements session.SessionManager.
func (s *session) SetDebugLogger(l paholog.Logger) { s.debugLogger = l }

var _ pahosession.SessionManager = (*session)(nil)
