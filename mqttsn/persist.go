package mqttsn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Store keeps what the gateway holds of CleanSession=false clients across
// a restart of the process: their topic ids (those they REGISTERed, got in
// a SUBACK, or were told by the gateway), will data and the QoS 2 message
// ids awaiting PUBREL. The spool's KV namespace implements it. Set and
// Delete return once the change is durable.
type Store interface {
	Set(ctx context.Context, key string, val []byte) error
	Delete(ctx context.Context, key string) error
	Scan(prefix string, fn func(key string, val []byte) error) error
}

// storePrefix is the key prefix of a client's record; the rest of the key is
// its broker client id.
const storePrefix = "c/"

const recordV1 = 1

// record is the stored form of a client's gateway session.
type record struct {
	topics  *topicTable
	will    *willData
	inQoS2  []uint16
	expires time.Time // zero: the client was connected (or never expires)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeRecord(r *record) []byte {
	b := []byte{recordV1}
	var exp int64
	if !r.expires.IsZero() {
		exp = r.expires.UnixNano()
	}
	b = binary.AppendVarint(b, exp)
	if w := r.will; w != nil {
		b = append(b, 1)
		b = appendString(b, w.topic)
		b = append(b, w.qos, boolByte(w.retain))
		b = appendString(b, string(w.msg))
	} else {
		b = append(b, 0)
	}
	t := r.topics
	b = binary.BigEndian.AppendUint16(b, t.next)
	b = binary.AppendUvarint(b, uint64(t.len()))
	t.each(func(e *topicEntry) {
		b = binary.BigEndian.AppendUint16(b, e.id)
		b = append(b, boolByte(e.byGateway))
		b = appendString(b, e.name)
	})
	b = binary.AppendUvarint(b, uint64(len(r.inQoS2)))
	for _, id := range r.inQoS2 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

var errBadRecord = errors.New("mqttsn: malformed stored session")

// recDecoder reads a record; the first failure sticks.
type recDecoder struct {
	b   []byte
	err error
}

func (d *recDecoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errBadRecord
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *recDecoder) u16() uint16 {
	if d.err != nil || len(d.b) < 2 {
		d.err = errBadRecord
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *recDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errBadRecord
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// decodeRecord reads a record into a table of at most maxTopics ids.
func decodeRecord(b []byte, maxTopics int) (*record, error) {
	d := &recDecoder{b: b}
	if v := d.byte(); d.err == nil && v != recordV1 {
		return nil, fmt.Errorf("mqttsn: stored session of unknown version %d", v)
	}
	r := &record{topics: newTopicTable(maxTopics)}
	if exp := d.varint(); exp != 0 {
		r.expires = time.Unix(0, exp)
	}
	if d.byte() == 1 {
		w := &willData{topic: d.string()}
		w.qos, w.retain = d.byte(), d.byte() == 1
		w.msg = []byte(d.string())
		if d.err == nil && (w.qos > 2 || w.topic != "" && !validTopicName(w.topic)) {
			// Given to the broker at the client's next CONNECT.
			return nil, errBadRecord
		}
		r.will = w
	}
	t := r.topics
	t.next = d.u16()
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		id, byGW, name := d.u16(), d.byte() == 1, d.string()
		if d.err != nil {
			break
		}
		if id == 0 || id == 0xFFFF || !validTopicName(name) || t.get(id) != nil {
			return nil, errBadRecord
		}
		if t.len() >= maxTopics {
			continue // the limit was lowered: the ids beyond it are forgotten
		}
		t.clock++
		t.put(id, &topicEntry{name: name, byGateway: byGW, used: t.clock})
	}
	n = d.uvarint()
	for i := uint64(0); i < n && d.err == nil && i < maxInQoS2; i++ {
		r.inQoS2 = append(r.inQoS2, d.u16())
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// storeCtx bounds one write to the store.
func (g *Gateway) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// save writes the client's record: it holds topic ids or a will worth
// keeping across a restart. A client with nothing to keep and no record
// writes nothing.
func (c *client) save() error {
	g := c.g
	if g.store == nil || !c.persist {
		return nil
	}
	if c.topics.len() == 0 && c.will == nil && len(c.inQoS2) == 0 && !c.stored {
		return nil
	}
	ctx, cancel := g.storeCtx()
	defer cancel()
	err := g.store.Set(ctx, storePrefix+c.bid, encodeRecord(&record{topics: c.topics, will: c.will, inQoS2: c.inQoS2}))
	if err != nil {
		g.st.storeErrors.Add(1)
		g.warnLimited("store", "session store write failed", "client_id", c.id, "err", err)
		return err
	}
	c.stored = true
	return nil
}

// unstore deletes the record of bid; a failure is counted and logged.
func (g *Gateway) unstore(bid string) error {
	if g.store == nil {
		return nil
	}
	ctx, cancel := g.storeCtx()
	defer cancel()
	if err := g.store.Delete(ctx, storePrefix+bid); err != nil {
		g.st.storeErrors.Add(1)
		g.warnLimited("store", "session store delete failed", "client_id", bid, "err", err)
		return err
	}
	return nil
}

// storeSaved writes the record of a client gone away with its expiry.
func (g *Gateway) storeSaved(bid string, s *savedSession) {
	if g.store == nil || !s.stored && s.topics.len() == 0 && s.will == nil && len(s.inQoS2) == 0 {
		return
	}
	ctx, cancel := g.storeCtx()
	defer cancel()
	err := g.store.Set(ctx, storePrefix+bid, encodeRecord(&record{topics: s.topics, will: s.will, inQoS2: s.inQoS2, expires: s.expires}))
	if err != nil {
		g.st.storeErrors.Add(1)
		g.warnLimited("store", "session store write failed", "client_id", bid, "err", err)
		return
	}
	s.stored = true
}

// load reads the stored sessions into g.saved, deleting the expired and the
// malformed ones. A record of a client that was connected when the process
// ended expires SessionExpiry from now.
func (g *Gateway) load() error {
	if g.store == nil {
		return nil
	}
	now := time.Now()
	var gone []string
	loaded := 0
	err := g.store.Scan(storePrefix, func(key string, val []byte) error {
		bid := key[len(storePrefix):]
		r, err := decodeRecord(val, g.opts.MaxTopicsPerClient)
		if err != nil {
			g.log.Warn("stored MQTT-SN session dropped", "client_id", bid, "err", err)
			gone = append(gone, bid)
			return nil
		}
		if r.expires.IsZero() && g.opts.SessionExpiry > 0 {
			r.expires = now.Add(g.opts.SessionExpiry)
		}
		if !r.expires.IsZero() && !now.Before(r.expires) {
			gone = append(gone, bid)
			return nil
		}
		g.mu.Lock()
		g.saved[bid] = &savedSession{topics: r.topics, will: r.will, inQoS2: r.inQoS2, expires: r.expires, stored: true}
		g.mu.Unlock()
		loaded++
		return nil
	})
	if err != nil {
		return fmt.Errorf("mqttsn: load stored sessions: %w", err)
	}
	for _, bid := range gone {
		_ = g.unstore(bid) // counted and logged; tried again at the next start
	}
	if loaded > 0 {
		g.log.Info("stored sessions loaded", "sessions", loaded)
	}
	return nil
}
