package uplink

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// FlightStore keeps the state of the bridge's QoS 2 flights to the cloud
// (packet identifier, PUBLISH sent or PUBREC received, which spooled
// message) so that a restarted bridge resumes them with the same packet
// identifiers over a resumed cloud session. *spool.KV has it; SetMany must
// be durable when it returns (the spool's sync "always"), Forget need not.
type FlightStore interface {
	SetMany(ctx context.Context, keys []string, vals [][]byte) error
	Forget(ctx context.Context, keys ...string) error
	Scan(prefix string, fn func(key string, val []byte) error) error
}

// Flight records: "f/<packet id>" = version, state (packets.PUBLISH or
// packets.PUBREL), uvarint send order, uvarint priority, uvarint sequence
// number, uvarint append time of the message in the spool (Unix ns): a
// queue that was dropped and made again numbers its messages from 1, and
// the time tells a new message from the recorded one. flightMarker says that the store has kept every flight since it
// was written: without it, the cloud may hold identifiers of an older
// process, released with a PUBREL before their first use (see session).
const (
	flightPrefix  = "f/"
	flightMarker  = "v"
	flightVersion = 1
)

func recordKey(pid uint16) string { return flightPrefix + strconv.Itoa(int(pid)) }

type flightRec struct {
	pid   uint16
	state byte
	order uint64
	prio  int
	seq   uint64
	at    uint64 // spool append time, Unix ns
}

func (r flightRec) encode() []byte {
	b := []byte{flightVersion, r.state}
	b = binary.AppendUvarint(b, r.order)
	b = binary.AppendUvarint(b, uint64(r.prio))
	b = binary.AppendUvarint(b, r.seq)
	return binary.AppendUvarint(b, r.at)
}

func decodeFlight(key string, v []byte) (flightRec, error) {
	var r flightRec
	id, err := strconv.ParseUint(strings.TrimPrefix(key, flightPrefix), 10, 16)
	if err != nil || id == 0 {
		return r, fmt.Errorf("flight key %q", key)
	}
	r.pid = uint16(id)
	if len(v) < 2 || v[0] != flightVersion || (v[1] != packets.PUBLISH && v[1] != packets.PUBREL) {
		return r, fmt.Errorf("flight %q: bad record", key)
	}
	r.state = v[1]
	v = v[2:]
	var vals [4]uint64
	for i := range vals {
		x, n := binary.Uvarint(v)
		if n <= 0 {
			return r, fmt.Errorf("flight %q: truncated", key)
		}
		vals[i], v = x, v[n:]
	}
	if len(v) != 0 || vals[1] > maxPriority {
		return r, fmt.Errorf("flight %q: bad record", key)
	}
	r.order, r.prio, r.seq, r.at = vals[0], int(vals[1]), vals[2], vals[3]
	return r, nil
}

// restoreFlights loads the QoS 2 flights of the previous process into
// sess: a message whose PUBLISH was sent goes again with its packet
// identifier (DUP) when the cloud resumes the session; one whose PUBREC
// came gets its PUBREL again. A record whose message is gone (its class
// removed, the message dropped or expired in the spool) only releases its
// identifier with a PUBREL. The classes skip the restored messages while
// they are in flight.
func (b *Bridge) restoreFlights(sess *session) error {
	fs := b.deps.Flights
	marked := false
	var recs []flightRec
	err := fs.Scan("", func(key string, val []byte) error {
		if key == flightMarker {
			marked = true
			return nil
		}
		if !strings.HasPrefix(key, flightPrefix) {
			return nil
		}
		r, err := decodeFlight(key, val)
		if err != nil {
			b.log.Warn("ignoring a corrupt QoS 2 flight record", "err", err)
			return nil
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("uplink: load QoS 2 flights: %w", err)
	}
	if !marked {
		if err := fs.SetMany(context.Background(), []string{flightMarker}, [][]byte{{flightVersion}}); err != nil {
			return fmt.Errorf("uplink: mark the QoS 2 flight store: %w", err)
		}
	}
	now := time.Now()
	type seqKey struct {
		prio int
		seq  uint64
	}
	latest := map[seqKey]*flight{}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.unknown = !marked
	for _, r := range recs {
		f := &flight{pid: r.pid, seq: r.seq, state: packets.PUBREL, order: r.order, recorded: true}
		sess.order = max(sess.order, r.order)
		sess.out[r.pid] = f
		var c *class
		for _, x := range b.classes {
			if x.prio == r.prio {
				c = x
			}
		}
		if c == nil {
			continue // released only
		}
		items, err := c.q.Read(r.seq-1, 1)
		if err != nil {
			return fmt.Errorf("uplink: read the message of a QoS 2 flight: %w", err)
		}
		if len(items) == 0 || items[0].Seq != r.seq || uint64(items[0].Time.UnixNano()) != r.at {
			continue // gone (or another message under its number): released only
		}
		if r.state == packets.PUBLISH {
			rec, err := DecodeRecord(items[0].Data)
			if err != nil {
				continue
			}
			p, ok := (&link{maxQoS: 2, retainOK: true}).packet(&rec, now)
			if !ok {
				p, _ = (&link{maxQoS: 2, retainOK: true}).packet(&Record{Topic: rec.Topic, Payload: rec.Payload, QoS: 2, Retain: rec.Retain}, now)
			}
			f.pkt = p.Packet()
			f.pkt.QoS, f.pkt.PacketID, f.pkt.Duplicate = 2, r.pid, true
			f.state = packets.PUBLISH
		}
		k := seqKey{r.prio, r.seq}
		if old := latest[k]; old != nil {
			// Sent twice (a publish that failed before it was stored):
			// the older identifier is only released.
			if old.order > f.order {
				f.cls, f.pkt, f.state = nil, nil, packets.PUBREL
				continue
			}
			old.cls, old.pkt, old.state, old.data = nil, nil, packets.PUBREL, nil
			c.inflight.Add(-1)
		}
		latest[k] = f
		f.cls, f.data, f.at = c, items[0].Data, r.at
		if c.skip == nil {
			c.skip = make(map[uint64]bool)
		}
		c.skip[r.seq] = true
		c.inflight.Add(1)
	}
	if len(recs) > 0 {
		b.log.Info("resuming QoS 2 flights of the previous run", "flights", len(recs))
	}
	return nil
}

// persistFlights records new QoS 2 flights (state PUBLISH) before their
// PUBLISH goes out.
func (b *Bridge) persistFlights(ctx context.Context, fs []*flight, state byte) error {
	keys := make([]string, len(fs))
	vals := make([][]byte, len(fs))
	for i, f := range fs {
		keys[i] = recordKey(f.pid)
		vals[i] = flightRec{pid: f.pid, state: state, order: f.order, prio: f.cls.prio, seq: f.seq, at: f.at}.encode()
	}
	if err := b.deps.Flights.SetMany(context.WithoutCancel(ctx), keys, vals); err != nil {
		return fmt.Errorf("uplink: record QoS 2 flights: %w", err)
	}
	return nil
}

// forgetFlights removes the records of flights that ended; their packet
// identifiers are free again after that (session.unhold).
func (b *Bridge) forgetFlights(ctx context.Context, sess *session, pids []uint16) {
	if len(pids) == 0 {
		return
	}
	keys := make([]string, len(pids))
	for i, pid := range pids {
		keys[i] = recordKey(pid)
	}
	if err := b.deps.Flights.Forget(context.WithoutCancel(ctx), keys...); err != nil {
		// A record left behind only releases its identifier with a PUBREL
		// at the next start; its identifier stays held until then.
		b.log.Error("removing QoS 2 flight records failed", "err", err)
		return
	}
	sess.unhold(pids)
}
