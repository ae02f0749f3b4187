package localbroker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// KVStore is what the broker's persistence needs from a durable store (the
// spool's KV namespace implements it). Set and Delete return once the change
// is durable per the store's sync policy.
type KVStore interface {
	Set(ctx context.Context, key string, val []byte) error
	Delete(ctx context.Context, key string) error
	Scan(prefix string, fn func(key string, val []byte) error) error
	// Forget deletes keys without waiting for durability: a record it
	// loses on a power cut only brings a delivered message back.
	Forget(ctx context.Context, keys ...string) error
}

// deliveryPersistence is a Persistence that also keeps the QoS 1/2
// deliveries of connected persistent sessions: StoreQueued then stores
// every one (queued or in flight), ForgetQueued removes it once the client
// acknowledged it, and PruneQueued drops, when the client reconnects, the
// records of messages the session no longer holds. A kill -9 of the broker
// then loses none of them: after the restart, LoadSessions returns them in
// Pending and the reconnecting client gets them again (at least once).
type deliveryPersistence interface {
	Persistence
	ForgetQueued(clientID string, seqs ...uint64) error
	PruneQueued(clientID string, keep func(seq uint64) bool) error
}

var _ deliveryPersistence = (*kvPersistence)(nil)

// NewKVPersistence returns a Persistence that keeps retained messages under
// "r/<topic>", persistent sessions under "s/<client id>" and messages queued
// for offline sessions under "q/<client id>\x00<seq>" in kv.
func NewKVPersistence(kv KVStore) Persistence { return &kvPersistence{kv: kv} }

type kvPersistence struct{ kv KVStore }

const (
	retainedPrefix = "r/"
	sessionPrefix  = "s/"
	queuePrefix    = "q/"
	recordVersion  = 1
)

func (p *kvPersistence) LoadRetained() ([]*Message, error) {
	var out []*Message
	err := p.kv.Scan(retainedPrefix, func(key string, val []byte) error {
		d := decoder{b: val}
		if d.byte() != recordVersion {
			return fmt.Errorf("retained %q: unknown record version", key)
		}
		m := d.message()
		if d.err != nil {
			return fmt.Errorf("retained %q: %w", key, d.err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func (p *kvPersistence) StoreRetained(m *Message) error {
	ctx := context.Background()
	if len(m.Payload) == 0 {
		return p.kv.Delete(ctx, retainedPrefix+m.Topic)
	}
	b := appendMessage([]byte{recordVersion}, m)
	return p.kv.Set(ctx, retainedPrefix+m.Topic, b)
}

func (p *kvPersistence) LoadSessions() ([]*SessionState, error) {
	var out []*SessionState
	err := p.kv.Scan(sessionPrefix, func(key string, val []byte) error {
		st, err := decodeSession(val)
		if err != nil {
			return fmt.Errorf("session %q: %w", key, err)
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, st := range out {
		queued, err := p.loadQueued(st.ClientID)
		if err != nil {
			return nil, err
		}
		have := make(map[uint64]bool, len(st.Pending))
		for _, pm := range st.Pending {
			if pm.Seq != 0 {
				have[pm.Seq] = true
			}
		}
		for _, pm := range queued {
			if !have[pm.Seq] {
				st.Pending = append(st.Pending, pm)
			}
		}
	}
	return out, nil
}

func (p *kvPersistence) StoreSession(st *SessionState) error {
	return p.kv.Set(context.Background(), sessionPrefix+st.ClientID, encodeSession(st))
}

func (p *kvPersistence) DeleteSession(clientID string) error {
	if err := p.DeleteQueued(clientID); err != nil {
		return err
	}
	return p.kv.Delete(context.Background(), sessionPrefix+clientID)
}

// queuedPrefix is the key prefix of a session's offline queue. U+0000
// cannot occur in a client id [MQTT-1.5.4-2], so no id's prefix is
// another's.
func queuedPrefix(clientID string) string { return queuePrefix + clientID + "\x00" }

func queuedKey(clientID string, seq uint64) string {
	return fmt.Sprintf("%s%016x", queuedPrefix(clientID), seq)
}

func (p *kvPersistence) StoreQueued(clientID string, pm *PendingMessage) error {
	return p.kv.Set(context.Background(), queuedKey(clientID, pm.Seq), appendPending([]byte{recordVersion}, pm))
}

func (p *kvPersistence) ForgetQueued(clientID string, seqs ...uint64) error {
	keys := make([]string, len(seqs))
	for i, seq := range seqs {
		keys[i] = queuedKey(clientID, seq)
	}
	return p.kv.Forget(context.Background(), keys...)
}

func (p *kvPersistence) PruneQueued(clientID string, keep func(seq uint64) bool) error {
	prefix := queuedPrefix(clientID)
	var drop []string
	err := p.kv.Scan(prefix, func(key string, _ []byte) error {
		seq, err := strconv.ParseUint(key[len(prefix):], 16, 64)
		if err != nil || !keep(seq) {
			drop = append(drop, key)
		}
		return nil
	})
	if err != nil || len(drop) == 0 {
		return err
	}
	return p.kv.Forget(context.Background(), drop...)
}

func (p *kvPersistence) DeleteQueued(clientID string) error {
	var keys []string
	if err := p.kv.Scan(queuedPrefix(clientID), func(key string, _ []byte) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := p.kv.Delete(context.Background(), k); err != nil {
			return err
		}
	}
	return nil
}

// loadQueued returns a session's offline queue in Seq order.
func (p *kvPersistence) loadQueued(clientID string) ([]PendingMessage, error) {
	var out []PendingMessage
	err := p.kv.Scan(queuedPrefix(clientID), func(key string, val []byte) error {
		d := decoder{b: val}
		if d.byte() != recordVersion {
			return fmt.Errorf("queued %q: unknown record version", key)
		}
		pm := d.pending()
		if d.err == nil && len(d.b) != 0 {
			d.err = errors.New("trailing bytes")
		}
		if d.err != nil {
			return fmt.Errorf("queued %q: %w", key, d.err)
		}
		out = append(out, pm)
		return nil
	})
	return out, err
}

// --- record encoding ------------------------------------------------------
// A compact, versioned binary format: uvarint lengths and integers.

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendBytes(b, v []byte) []byte {
	b = appendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return appendUvarint(b, 0)
	}
	return appendUvarint(b, uint64(t.UnixNano()))
}

func appendMessage(b []byte, m *Message) []byte {
	flags := m.QoS & 3
	if m.Retain {
		flags |= 4
	}
	b = append(b, flags)
	b = appendString(b, m.Topic)
	b = appendBytes(b, m.Payload)
	b = appendString(b, m.Origin)
	b = appendTime(b, m.Created)
	b = appendTime(b, m.ExpiresAt)
	pr := &m.Props
	b = appendUvarint(b, pr.Present)
	b = append(b, pr.PayloadFormat)
	b = appendString(b, pr.ContentType)
	b = appendString(b, pr.ResponseTopic)
	b = appendBytes(b, pr.CorrelationData)
	b = appendUvarint(b, uint64(len(pr.User)))
	for _, u := range pr.User {
		b = appendString(b, u.Key)
		b = appendString(b, u.Value)
	}
	return b
}

var errShort = errors.New("record truncated")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if uint64(len(d.b)) < n {
		d.fail(errShort)
		return nil
	}
	v := append([]byte(nil), d.b[:n]...) // the store may reuse its buffer
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) time() time.Time {
	v := d.uvarint()
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(v))
}

func (d *decoder) message() *Message {
	m := &Message{}
	flags := d.byte()
	m.QoS, m.Retain = flags&3, flags&4 != 0
	m.Topic = d.string()
	m.Payload = d.bytes()
	m.Origin = d.string()
	m.Created = d.time()
	m.ExpiresAt = d.time()
	pr := &m.Props
	pr.Present = d.uvarint()
	pr.PayloadFormat = d.byte()
	pr.ContentType = d.string()
	pr.ResponseTopic = d.string()
	pr.CorrelationData = d.bytes()
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return m
	}
	for range n {
		pr.User = append(pr.User, packet.UserProperty{Key: d.string(), Value: d.string()})
	}
	if m.QoS > 2 {
		d.fail(errors.New("bad QoS"))
	}
	return m
}

func encodeSession(st *SessionState) []byte {
	b := []byte{recordVersion}
	b = appendString(b, st.ClientID)
	b = appendString(b, st.Username)
	b = appendUvarint(b, uint64(st.Expiry))
	b = appendTime(b, st.Disconnected)
	b = appendUvarint(b, uint64(len(st.Subscriptions)))
	for _, s := range st.Subscriptions {
		b = appendString(b, s.Filter)
		o := s.Opts
		flags := o.QoS&3 | o.RetainHandling&3<<2
		if o.NoLocal {
			flags |= 16
		}
		if o.RetainAsPublished {
			flags |= 32
		}
		b = append(b, flags)
		b = appendUvarint(b, uint64(s.ID))
	}
	b = appendUvarint(b, uint64(len(st.Pending)))
	for i := range st.Pending {
		b = appendPending(b, &st.Pending[i])
	}
	return b
}

func appendPending(b []byte, pm *PendingMessage) []byte {
	b = appendMessage(b, pm.Message)
	flags := pm.QoS & 3
	if pm.Retain {
		flags |= 4
	}
	if pm.Released {
		flags |= 8
	}
	b = append(b, flags)
	b = appendUvarint(b, uint64(pm.PacketID))
	b = appendUvarint(b, pm.Seq)
	b = appendUvarint(b, uint64(len(pm.SubIDs)))
	for _, id := range pm.SubIDs {
		b = appendUvarint(b, uint64(id))
	}
	return b
}

func (d *decoder) pending() PendingMessage {
	pm := PendingMessage{Message: d.message()}
	flags := d.byte()
	pm.QoS, pm.Retain, pm.Released = flags&3, flags&4 != 0, flags&8 != 0
	pm.PacketID = uint16(d.uvarint())
	pm.Seq = d.uvarint()
	k := d.uvarint()
	for j := uint64(0); j < k && d.err == nil; j++ {
		pm.SubIDs = append(pm.SubIDs, uint32(d.uvarint()))
	}
	return pm
}

func decodeSession(val []byte) (*SessionState, error) {
	d := decoder{b: val}
	if d.byte() != recordVersion {
		return nil, errors.New("unknown record version")
	}
	st := &SessionState{}
	st.ClientID = d.string()
	st.Username = d.string()
	st.Expiry = uint32(d.uvarint())
	st.Disconnected = d.time()
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		f := d.string()
		flags := d.byte()
		st.Subscriptions = append(st.Subscriptions, SubscriptionState{Filter: f, ID: uint32(d.uvarint()),
			Opts: packet.Subscription{Filter: f, QoS: flags & 3, RetainHandling: flags >> 2 & 3,
				NoLocal: flags&16 != 0, RetainAsPublished: flags&32 != 0}})
	}
	n = d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		st.Pending = append(st.Pending, d.pending())
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	return st, d.err
}
