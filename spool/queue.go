package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Policy says what Append does when a queue is at its limits.
type Policy string

const (
	// RejectNew refuses the new messages with ErrFull and keeps the stored
	// ones. It is the default (the empty Policy): what the spool
	// acknowledged does not vanish because more came.
	RejectNew Policy = "reject-new"
	// DropOldest removes messages at the head of the queue until the new
	// ones fit.
	DropOldest Policy = "drop-oldest"
)

// Limits bound a queue. Zero fields are unlimited. Every drop, expiry and
// refusal is counted in QueueStats and logged once per episode.
type Limits struct {
	// MaxBytes bounds the sum of the payload sizes.
	MaxBytes int64
	// MaxMessages bounds the number of messages.
	MaxMessages int64
	// MaxAge removes messages older than this from the head of the queue
	// (periodically, every Options.ExpireInterval, and on Read); Read never
	// returns a message older than this. Age is taken from the wall clock at
	// append, so a clock that jumps (a board without RTC before NTP) moves it.
	MaxAge time.Duration
	// OnFull is the policy at MaxBytes or MaxMessages; "" means RejectNew.
	OnFull Policy
}

func (l Limits) check() error {
	switch l.OnFull {
	case "", RejectNew, DropOldest:
	default:
		return fmt.Errorf("spool: OnFull %q: want %q or %q", l.OnFull, RejectNew, DropOldest)
	}
	if l.MaxBytes < 0 || l.MaxMessages < 0 || l.MaxAge < 0 {
		return fmt.Errorf("spool: negative limit in %+v", l)
	}
	return nil
}

// Item is one message read from a queue.
type Item struct {
	Seq  uint64
	Time time.Time // when the spool appended it
	Data []byte    // a copy the caller owns
}

// QueueStats describe a queue. The counters count messages since Run.
type QueueStats struct {
	Depth  int64     // messages stored
	Bytes  int64     // sum of their payload sizes
	Oldest time.Time // append time of the first message; zero when empty
	Newest time.Time // append time of the last message; zero when empty
	First  uint64    // sequence number of the first message; 0 when empty
	Last   uint64    // sequence number of the last message; 0 when empty
	Next   uint64    // sequence number the next message gets

	Appended uint64
	Acked    uint64
	Dropped  uint64 // removed by DropOldest
	Expired  uint64 // removed by MaxAge
	Rejected uint64 // refused by Append with ErrFull or ErrNoSpace
}

// Queue is a durable FIFO queue of messages with sequence numbers. Messages
// stay until acknowledged with Ack, dropped by DropOldest or expired by
// MaxAge. Sequence numbers increase by one per message, start at 1 and are
// never reused, not even after a restart with an empty queue.
type Queue struct {
	s      *Store
	name   string
	prefix []byte // of its item keys
	mkey   []byte // of its meta record
	lim    atomic.Pointer[Limits]
	notify chan struct{}

	mu sync.Mutex // guards st for readers; the writer goroutine writes it
	st qmeta      // committed state

	appended, acked, dropped, expired, rejected atomic.Uint64

	// Writer-owned episode state, for logging once per episode.
	dropping, rejecting        bool
	dropEpisode, rejectEpisode uint64 // messages dropped or refused in the episode
	expiredUnlogged            uint64
	expiredLoggedAt            time.Time
}

// Queue returns the queue called name, creating it when it does not exist,
// with limits lim. It may be called once Ready is closed; a later call with
// the same name returns the same Queue with lim in force. Names may not
// contain '/'.
func (s *Store) Queue(name string, lim Limits) (*Queue, error) {
	if err := checkName("queue", name); err != nil {
		return nil, err
	}
	if err := lim.check(); err != nil {
		return nil, err
	}
	if !s.isOpen() {
		return nil, ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[name]
	if q == nil {
		q = &Queue{s: s, name: name, prefix: queuePrefix(name), mkey: metaKey(name), notify: make(chan struct{}, 1)}
		q.st = newMeta()
		if m, ok := s.metas[name]; ok {
			q.st = m
		}
		s.queues[name] = q
	}
	q.lim.Store(&lim)
	return q, nil
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

func (q *Queue) limits() Limits { return *q.lim.Load() }

func (q *Queue) meta() qmeta {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.st
}

// Append stores data as new messages at the tail of the queue, in order, and
// returns their sequence numbers. It returns once they are durable as the
// sync policy says; concurrent appends (to any queue) share one commit and
// one sync. The call is atomic: all messages are stored or none.
//
// Errors: ErrFull (RejectNew at the limits, or more data than the limits
// allow at all), ErrNoSpace, ErrTooLarge, ErrClosed, or a write error. When
// ctx ends first, Append returns its error, and the messages may still be
// stored.
func (q *Queue) Append(ctx context.Context, data ...[]byte) ([]uint64, error) {
	if len(data) == 0 {
		return nil, nil
	}
	total := 0
	for _, d := range data {
		if int64(itemHdrBytes+len(d)) >= q.s.opts.ValueLogFileBytes {
			return nil, fmt.Errorf("%w: message of %d bytes (ValueLogFileBytes is %d)", ErrTooLarge, len(d), q.s.opts.ValueLogFileBytes)
		}
		total += itemHdrBytes + len(d)
	}
	// One copy per call, so that the caller may reuse data even after ctx
	// made it return early. The writer fills in the time headers.
	buf := make([]byte, 0, total)
	vals := make([][]byte, len(data))
	for i, d := range data {
		start := len(buf)
		buf = append(buf, make([]byte, itemHdrBytes)...)
		buf = append(buf, d...)
		vals[i] = buf[start:len(buf):len(buf)]
	}
	r := &request{op: opAppend, q: q, vals: vals}
	if err := q.s.do(ctx, r); err != nil {
		return nil, err
	}
	return r.seqs, nil
}

// Ack removes the messages with the given sequence numbers, in any order.
// Numbers of messages that are not stored (acked before, dropped, expired,
// never appended) are ignored. It returns once the removal is committed,
// without waiting for a sync under any policy: a kill -9 keeps the removal,
// a power cut within the next sync may undo it, which brings the messages
// back to be sent again (a duplicate, never a loss). Removals ride along
// with the next synced commit, or with the kernel's write-back.
func (q *Queue) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	seqs = slices.Clone(seqs)
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	return q.s.do(context.Background(), &request{op: opAck, q: q, seqs: seqs})
}

// Notify returns a channel that receives a value after appends to the queue
// are committed, for one drain loop to wait on. Signals coalesce: read until
// Read returns nothing before waiting again.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

// Read returns up to n messages with a sequence number above after, in
// order, skipping messages older than MaxAge. Read(0, n) reads from the
// head. Reading does not remove anything: Ack does.
func (q *Queue) Read(after uint64, n int) ([]Item, error) {
	if n <= 0 {
		return nil, nil
	}
	lim := q.limits()
	var cutoff int64
	if lim.MaxAge > 0 {
		cutoff = q.s.now().Add(-lim.MaxAge).UnixNano()
		t, ok, err := q.headTime()
		if err != nil {
			return nil, err
		}
		if ok && t.UnixNano() < cutoff {
			if err := q.s.do(context.Background(), &request{op: opExpire, q: q}); err != nil {
				return nil, err
			}
		}
	}
	start := max(after+1, q.meta().head)
	var items []Item
	err := q.s.view(func(txn *badger.Txn) (err error) {
		items, err = readItems(txn, q.name, q.prefix, start, n, cutoff)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	return items, nil
}

// readItems returns up to n items of a queue from seq start on, in order,
// skipping those appended before cutoff (Unix ns; 0: none).
func readItems(txn *badger.Txn, name string, prefix []byte, start uint64, n int, cutoff int64) ([]Item, error) {
	var items []Item
	it := txn.NewIterator(badger.IteratorOptions{
		PrefetchValues: true,
		PrefetchSize:   min(n, 64),
		Prefix:         prefix,
	})
	defer it.Close()
	for it.Seek(itemKey(prefix, start)); it.Valid() && len(items) < n; it.Next() {
		item := it.Item()
		seq := seqOf(item.Key())
		err := item.Value(func(v []byte) error {
			t, data, err := decodeItem(v)
			if err != nil {
				return fmt.Errorf("queue %q seq %d: %w", name, seq, err)
			}
			if cutoff != 0 && t < cutoff {
				return nil
			}
			items = append(items, Item{Seq: seq, Time: time.Unix(0, t), Data: bytes.Clone(data)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return items, nil
}

// Stats returns the queue's state and counters.
func (q *Queue) Stats() QueueStats {
	m := q.meta()
	st := m.stats()
	st.Appended = q.appended.Load()
	st.Acked = q.acked.Load()
	st.Dropped = q.dropped.Load()
	st.Expired = q.expired.Load()
	st.Rejected = q.rejected.Load()
	_ = q.s.view(func(txn *badger.Txn) error { return describe(txn, q.prefix, m, &st) })
	return st
}

// stats returns what the meta record says of a queue.
func (m qmeta) stats() QueueStats {
	return QueueStats{Depth: m.depth, Bytes: m.bytes, Next: m.next}
}

// describe fills in the oldest append time and the sequence range of a
// queue with meta record m from its items.
func describe(txn *badger.Txn, prefix []byte, m qmeta, st *QueueStats) error {
	if m.depth == 0 {
		return nil
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	it.Seek(itemKey(prefix, m.head))
	var err error
	if it.Valid() {
		st.First = seqOf(it.Item().Key())
		err = it.Item().Value(func(v []byte) error {
			ns, _, err := decodeItem(v)
			st.Oldest = time.Unix(0, ns)
			return err
		})
	}
	it.Close()
	if err != nil {
		return err
	}
	rit := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
	defer rit.Close()
	rit.Seek(itemKey(prefix, math.MaxUint64))
	if rit.Valid() {
		st.Last = seqOf(rit.Item().Key())
		return rit.Item().Value(func(v []byte) error {
			ns, _, err := decodeItem(v)
			st.Newest = time.Unix(0, ns)
			return err
		})
	}
	return nil
}

// headTime returns the append time of the first message.
func (q *Queue) headTime() (t time.Time, ok bool, err error) {
	head := q.meta().head
	err = q.s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: q.prefix})
		defer it.Close()
		it.Seek(itemKey(q.prefix, head))
		if !it.Valid() {
			return nil
		}
		return it.Item().Value(func(v []byte) error {
			ns, _, err := decodeItem(v)
			t, ok = time.Unix(0, ns), err == nil
			return err
		})
	})
	return t, ok, err
}

func decodeItem(v []byte) (unixNano int64, data []byte, err error) {
	if len(v) < itemHdrBytes {
		return 0, nil, fmt.Errorf("%w: item of %d bytes", errCorrupt, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), v[itemHdrBytes:], nil
}
