package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// The group-commit writer. Every change to the store goes through one
// goroutine: it takes all the requests that queued up while it committed the
// previous ones, applies them in one badger transaction (more when they do
// not fit in one), commits (and, with SyncAlways, syncs) once, and only then
// answers them. That goroutine owns the queues' state (qmeta), so limits,
// sequence numbers and counts need no locks and always match what is
// committed.

type opKind uint8

const (
	opAppend opKind = iota
	opAck
	opExpire
	opSet
	opDelete
	opForget // a delete that needs no sync
	opSetMany
	opDrop // every key under key (a queue's items, or a KV namespace), and the queue
)

type request struct {
	op       opKind
	q        *Queue
	vals     [][]byte // opAppend: 8-byte header + payload each
	seqs     []uint64 // opAck: sorted, unique; opAppend: the result
	key, val []byte   // opSet, opDelete
	keys     [][]byte // opSetMany, with vals
	err      error
	done     chan struct{} // closed when answered; nil for the writer's own requests
}

const (
	maxBatchRequests = 1024
	logEvery         = time.Minute // at most one expiry log line per queue per this
)

// do hands r to the writer and waits for its answer.
func (s *Store) do(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.isOpen() {
		return ErrClosed
	}
	r.done = make(chan struct{})
	select {
	case s.reqs <- r:
	case <-s.stopping:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return r.err
	case <-s.drained:
		// r may have been answered just before the writer stopped, or may
		// sit in the channel, never to be handled.
		select {
		case <-r.done:
			return r.err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return fmt.Errorf("spool: %w (the write may still be committed)", ctx.Err())
	}
}

// writeLoop is the writer goroutine. When ctx is done it refuses new
// requests, handles those already queued, and returns.
func (s *Store) writeLoop(ctx context.Context, db *badger.DB) {
	defer s.drainOnce.Do(func() { close(s.drained) })
	var syncC <-chan time.Time
	if s.opts.Sync == SyncPeriodic {
		t := time.NewTicker(s.opts.SyncInterval)
		defer t.Stop()
		syncC = t.C
	}
	expire := time.NewTicker(s.opts.ExpireInterval)
	defer expire.Stop()
	batch := make([]*request, 0, maxBatchRequests)
	gather := func(r *request) []*request {
		batch = append(batch[:0], r)
		for len(batch) < maxBatchRequests {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				return batch
			}
		}
		return batch
	}
	for {
		select {
		case r := <-s.reqs:
			s.process(db, gather(r))
		case <-syncC:
			s.syncNow(db)
		case <-expire.C:
			s.expireAll(db)
		case <-ctx.Done():
			s.stopOnce.Do(func() { close(s.stopping) })
			for {
				select {
				case r := <-s.reqs:
					s.process(db, gather(r))
					continue
				default:
				}
				return
			}
		}
	}
}

// syncNow syncs badger if something was committed since the last sync.
func (s *Store) syncNow(db *badger.DB) {
	if !s.unsynced {
		return
	}
	if err := s.syncDB(db); err != nil {
		s.log.Error("spool sync failed", "err", err)
	}
}

// syncDB syncs what the writer committed (syncAll) and counts it; only the
// writer goroutine calls it.
func (s *Store) syncDB(db *badger.DB) error {
	if err := s.syncAll(db); err != nil {
		return err
	}
	s.unsynced = false
	s.syncs.Add(1)
	return nil
}

// syncAll forces what badger committed to stable storage: the write-ahead
// log of the active memtable and the newest value-log file (badger's Sync),
// the logs of memtables that badger rotated but has not flushed to a table
// yet, and the value-log files that badger rotated since the last sync.
// A rotation between a commit and its sync (a write of value-log GC filled
// the memtable) would otherwise leave that commit in a log that nobody
// synced; and without SyncWrites badger rotates a value-log file without
// syncing it, so a commit whose values filled the file leaves them in a
// file that its own Sync no longer covers. badger writes those files
// through memory maps, whose pages are the file's page cache, which fsync
// writes back. The writer and value-log GC both call it.
func (s *Store) syncAll(db *badger.DB) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if err := db.Sync(); err != nil {
		return err
	}
	dir := s.opts.Dir
	if mems, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(mems) > 1 {
		for _, name := range mems {
			// A flushed memtable's log may be deleted meanwhile.
			if err := fsyncFile(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	// Every value-log file written since the last sync is numbered at
	// least as the newest one then; the newest one now is badger's.
	vlogs, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	fids := make([]uint64, len(vlogs))
	newest := uint64(0)
	for i, name := range vlogs {
		fid, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(name), ".vlog"), 10, 32)
		if err != nil {
			fid = 0
		}
		fids[i] = fid
		newest = max(newest, fid)
	}
	for i, name := range vlogs {
		if fids[i] < s.vlogSynced || fids[i] >= newest {
			continue
		}
		// Value-log GC may delete a file meanwhile.
		if err := fsyncFile(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	s.vlogSynced = newest
	return nil
}

// fsyncFile syncs the file called name; a variable for the tests, which
// record what is synced.
var fsyncFile = func(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// expireAll removes expired messages from the heads of the queues with a
// MaxAge.
func (s *Store) expireAll(db *badger.DB) {
	s.mu.Lock()
	var reqs []*request
	for _, q := range s.queues {
		if q.limits().MaxAge > 0 && q.st.depth > 0 {
			reqs = append(reqs, &request{op: opExpire, q: q})
		}
	}
	s.mu.Unlock()
	if len(reqs) > 0 {
		s.process(db, reqs)
	}
}

// process applies a batch of requests, commits, and answers them.
func (s *Store) process(db *badger.DB, batch []*request) {
	w := s.tw
	if w == nil || w.db != db {
		w = &txnWriter{s: s, db: db, dirty: make(map[*Queue]*qwork), notify: make(map[*Queue]struct{})}
		s.tw = w
	}
	clear(w.notify)
	w.spaceOK = true
	for _, r := range batch {
		if r.op == opAppend || r.op == opSet {
			w.spaceOK = s.checkSpace()
			break
		}
	}
	for _, r := range batch {
		if err := w.apply(r); err != nil && r.err == nil {
			r.err = err
		}
	}
	_ = w.commit() // a failure is recorded in the requests it concerns
	for q := range w.notify {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	for _, r := range batch {
		if r.done != nil {
			close(r.done)
		}
	}
}

// checkSpace reports whether the file system has at least MinFreeBytes free,
// and logs when that changes.
func (s *Store) checkSpace() bool {
	minFree := s.minFree.Load()
	if minFree < 0 {
		return true
	}
	free, err := freeBytes(s.opts.Dir)
	if err != nil {
		if !s.spaceErrOnce {
			s.spaceErrOnce = true
			s.log.Warn("spool cannot check free space; appending without the check", "err", err)
		}
		return true
	}
	low := free < minFree
	if was := s.noSpace.Swap(low); low && !was {
		s.log.Warn("spool refuses new messages: the disk is nearly full",
			"free_bytes", free, "min_free_bytes", minFree)
	} else if !low && was {
		s.log.Info("spool accepts new messages again: disk space returned", "free_bytes", free)
	}
	return !low
}

// qwork is a queue's state as changed by the open transaction.
type qwork struct {
	m                                 qmeta
	appended, acked, dropped, expired uint64
}

// txnWriter applies requests to a transaction within a budget, committing
// and starting a new transaction when the budget runs out.
type txnWriter struct {
	s       *Store
	db      *badger.DB
	txn     *badger.Txn
	count   int64 // entries counted against the budget
	size    int64 // bytes counted against the budget
	ops     int   // Set and Delete calls in txn
	durable bool  // txn holds changes that SyncAlways syncs before answering
	dirty   map[*Queue]*qwork
	inTxn   []*request // requests with effects in txn
	notify  map[*Queue]struct{}
	spaceOK bool
}

func (w *txnWriter) begin() {
	if w.txn == nil {
		w.txn = w.db.NewTransaction(true)
	}
}

// entryCost estimates what badger counts for one entry against its
// transaction limit (key, version, inline value or value pointer, metas).
func (w *txnWriter) entryCost(keyLen, valLen int) int64 {
	v := int64(valLen)
	if v >= w.s.opts.ValueThresholdBytes {
		v = 12
	}
	return int64(keyLen) + v + 32
}

// reserve makes room for n entries of b bytes in the transaction, committing
// the transaction first when they do not fit. ErrTooLarge means that they do
// not fit even in an empty one.
func (w *txnWriter) reserve(n, b int64) error {
	w.begin()
	if w.count+n <= w.s.maxTxnCount && w.size+b <= w.s.maxTxnBytes {
		w.count += n
		w.size += b
		return nil
	}
	if w.count == 0 {
		return fmt.Errorf("%w: %d entries of %d bytes in one transaction (limit %d, %d bytes)",
			ErrTooLarge, n, b, w.s.maxTxnCount, w.s.maxTxnBytes)
	}
	if err := w.commit(); err != nil {
		return err
	}
	return w.reserve(n, b)
}

// peek returns a queue's state as the open transaction sees it.
func (w *txnWriter) peek(q *Queue) qmeta {
	if qw := w.dirty[q]; qw != nil {
		return qw.m
	}
	return q.st
}

// state returns the queue's working state in the open transaction, which
// will write its meta record; call it only to change the queue.
func (w *txnWriter) state(q *Queue) *qwork {
	if qw := w.dirty[q]; qw != nil {
		return qw
	}
	w.begin()
	qw := &qwork{m: q.st}
	w.dirty[q] = qw
	w.count++
	w.size += w.entryCost(2+len(q.name), metaRecBytes)
	return qw
}

// involve records that r has effects in the open transaction.
func (w *txnWriter) involve(r *request) {
	if n := len(w.inTxn); n == 0 || w.inTxn[n-1] != r {
		w.inTxn = append(w.inTxn, r)
	}
}

func (w *txnWriter) set(key, val []byte) error {
	w.ops++
	if err := w.txn.Set(key, val); err != nil {
		return w.abort(fmt.Errorf("spool: set: %w", err))
	}
	return nil
}

func (w *txnWriter) delete(key []byte) error {
	w.ops++
	if err := w.txn.Delete(key); err != nil {
		return w.abort(fmt.Errorf("spool: delete: %w", err))
	}
	return nil
}

// abort discards the open transaction after an unexpected error: every
// request with effects in it fails with err.
func (w *txnWriter) abort(err error) error {
	w.txn.Discard()
	for _, r := range w.inTxn {
		if r.err == nil {
			r.err = err
		}
	}
	w.reset()
	return err
}

func (w *txnWriter) reset() {
	w.txn = nil
	w.count, w.size, w.ops = 0, 0, 0
	w.durable = false
	clear(w.dirty)
	clear(w.inTxn)
	w.inTxn = w.inTxn[:0]
}

// commit commits the open transaction with the meta records of the queues it
// changed, then publishes their new state.
func (w *txnWriter) commit() error {
	txn, dirty, inTxn := w.txn, w.dirty, w.inTxn
	if txn == nil {
		return nil
	}
	defer w.reset()
	if w.ops == 0 {
		txn.Discard()
		return nil
	}
	var err error
	for q, qw := range dirty {
		if err = txn.Set(q.mkey, qw.m.encode()); err != nil {
			break
		}
	}
	if err == nil {
		err = txn.Commit()
	} else {
		txn.Discard()
	}
	s := w.s
	synced := false
	if err == nil && w.durable && s.opts.Sync == SyncAlways {
		// The commit is applied; if the sync fails the callers hear of
		// it and send again (a duplicate at worst, never a loss).
		if err = s.syncDB(w.db); err == nil {
			synced = true
		} else {
			s.log.Error("spool sync failed", "err", err)
			err = fmt.Errorf("spool: sync: %w", err)
			for _, r := range inTxn {
				if r.err == nil {
					r.err = err
				}
			}
			err = nil // the state below is committed
		}
	}
	if err != nil {
		err = s.writeError(err)
		for _, r := range inTxn {
			if r.err == nil {
				r.err = err
			}
		}
		for q, qw := range dirty {
			s.reloadMeta(w.db, q, qw.m.next)
		}
		return err
	}
	s.commits.Add(1)
	if !synced {
		s.unsynced = true
	}
	for q, qw := range dirty {
		q.mu.Lock()
		q.st = qw.m
		q.mu.Unlock()
		q.appended.Add(qw.appended)
		q.acked.Add(qw.acked)
		q.dropped.Add(qw.dropped)
		q.expired.Add(qw.expired)
		if qw.appended > 0 {
			w.notify[q] = struct{}{}
		}
		if qw.expired > 0 {
			q.expiredUnlogged += qw.expired
			if now := s.now(); now.Sub(q.expiredLoggedAt) >= logEvery {
				s.log.Info("spool queue expired messages", "queue", q.name,
					"expired", q.expiredUnlogged, "max_age", q.limits().MaxAge)
				q.expiredUnlogged, q.expiredLoggedAt = 0, now
			}
		}
	}
	return nil
}

// writeError wraps a failed commit; ENOSPC becomes ErrNoSpace (badger
// flattens the errors it wraps, so the text is checked too).
func (s *Store) writeError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
		if !s.noSpace.Swap(true) {
			s.log.Warn("spool refuses new messages: the disk is full", "err", err)
		}
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	s.log.Error("spool commit failed", "err", err)
	return fmt.Errorf("spool: commit: %w", err)
}

// reloadMeta reads a queue's state back after a failed commit, since badger
// may have applied it all the same; the seqs handed out are never reused.
func (s *Store) reloadMeta(db *badger.DB, q *Queue, next uint64) {
	m := q.st
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(q.mkey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			m = newMeta()
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) (err error) {
			m, err = decodeMeta(v)
			return err
		})
	})
	if err != nil {
		s.log.Error("spool cannot reload queue state after a failed commit", "queue", q.name, "err", err)
	}
	m.next = max(m.next, next)
	q.mu.Lock()
	q.st = m
	q.mu.Unlock()
}

func (w *txnWriter) apply(r *request) error {
	switch r.op {
	case opAppend:
		return w.append(r)
	case opAck:
		return w.ack(r)
	case opExpire:
		return w.expire(r.q)
	case opSet:
		if !w.spaceOK {
			return ErrNoSpace
		}
		if err := w.reserve(1, w.entryCost(len(r.key), len(r.val))); err != nil {
			return err
		}
		if err := w.set(r.key, r.val); err != nil {
			return err
		}
		w.durable = true
		w.involve(r)
	case opSetMany: // bookkeeping: not held back by the free-space floor
		var cost int64
		for i, k := range r.keys {
			cost += w.entryCost(len(k), len(r.vals[i]))
		}
		if err := w.reserve(int64(len(r.keys)), cost); err != nil {
			return err
		}
		for i, k := range r.keys {
			if err := w.set(k, r.vals[i]); err != nil {
				return err
			}
		}
		w.durable = true
		w.involve(r)
	case opDrop:
		return w.drop(r)
	case opDelete, opForget:
		if err := w.reserve(1, w.entryCost(len(r.key), 0)); err != nil {
			return err
		}
		if err := w.delete(r.key); err != nil {
			return err
		}
		if r.op == opDelete {
			w.durable = true
		}
		w.involve(r)
	}
	return nil
}

func (w *txnWriter) append(r *request) error {
	q := r.q
	n := int64(len(r.vals))
	if !w.spaceOK {
		q.rejected.Add(uint64(n))
		return ErrNoSpace
	}
	var b, cost int64
	for _, v := range r.vals {
		b += int64(len(v) - itemHdrBytes)
		cost += w.entryCost(len(q.prefix)+8, len(v))
	}
	lim := q.limits()
	if lim.MaxMessages > 0 && n > lim.MaxMessages || lim.MaxBytes > 0 && b > lim.MaxBytes {
		q.rejected.Add(uint64(n))
		return fmt.Errorf("%w: %d messages of %d bytes in one call exceed the limits of queue %q", ErrFull, n, b, q.name)
	}
	over := func(m qmeta) bool {
		return lim.MaxMessages > 0 && m.depth+n > lim.MaxMessages || lim.MaxBytes > 0 && m.bytes+b > lim.MaxBytes
	}
	if over(w.peek(q)) {
		if lim.OnFull != DropOldest {
			q.rejected.Add(uint64(n))
			if !q.rejecting {
				q.rejecting, q.rejectEpisode = true, 0
				m := w.peek(q)
				w.s.log.Warn("spool queue full: refusing new messages", "queue", q.name,
					"depth", m.depth, "bytes", m.bytes, "max_messages", lim.MaxMessages, "max_bytes", lim.MaxBytes)
			}
			q.rejectEpisode += uint64(n)
			return fmt.Errorf("%w: queue %q", ErrFull, q.name)
		}
		dropped, err := w.removeHead(q, func(m qmeta, _ int64) bool { return over(m) }, false)
		if dropped > 0 {
			if !q.dropping {
				q.dropping, q.dropEpisode = true, 0
				w.s.log.Warn("spool queue full: dropping the oldest messages", "queue", q.name,
					"max_messages", lim.MaxMessages, "max_bytes", lim.MaxBytes)
			}
			q.dropEpisode += uint64(dropped)
		}
		if err != nil {
			return err
		}
		if over(w.peek(q)) {
			return fmt.Errorf("%w: queue %q counts %d messages that are not there", errCorrupt, q.name, w.peek(q).depth)
		}
	} else if q.dropping {
		q.dropping = false
		w.s.log.Info("spool queue no longer full", "queue", q.name, "dropped", q.dropEpisode)
	}
	if q.rejecting {
		q.rejecting = false
		w.s.log.Info("spool queue accepts messages again", "queue", q.name, "refused", q.rejectEpisode)
	}

	if err := w.reserve(n, cost); err != nil {
		return err
	}
	qw := w.state(q)
	now := uint64(w.s.now().UnixNano())
	seqs := make([]uint64, n)
	for i, v := range r.vals {
		seq := qw.m.next
		binary.BigEndian.PutUint64(v, now)
		if err := w.set(itemKey(q.prefix, seq), v); err != nil {
			return err
		}
		qw.m.next++
		qw.m.depth++
		qw.m.bytes += int64(len(v) - itemHdrBytes)
		seqs[i] = seq
	}
	qw.appended += uint64(n)
	r.seqs = seqs
	w.durable = true
	w.involve(r)
	return nil
}

func (w *txnWriter) ack(r *request) error {
	q := r.q
	headMoved := false
	for _, seq := range r.seqs {
		if m := w.peek(q); seq < m.head || seq >= m.next {
			continue
		}
		key := itemKey(q.prefix, seq)
		if err := w.reserve(1, w.entryCost(len(key), 0)); err != nil {
			return err
		}
		item, err := w.txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("spool: ack: %w", err)
		}
		var size int
		if err := item.Value(func(v []byte) error {
			_, data, err := decodeItem(v)
			size = len(data)
			return err
		}); err != nil {
			return fmt.Errorf("spool: ack queue %q seq %d: %w", q.name, seq, err)
		}
		if err := w.delete(key); err != nil {
			return err
		}
		w.involve(r)
		qw := w.state(q)
		qw.m.depth--
		qw.m.bytes -= int64(size)
		qw.acked++
		if seq == qw.m.head {
			qw.m.head++
			headMoved = true
		}
	}
	qw := w.dirty[q]
	switch {
	case qw == nil:
	case qw.m.depth == 0:
		qw.m.head = qw.m.next
	case headMoved && !qw.m.exact():
		// The acks were out of order: find the new first item.
		items, err := w.headItems(q, qw.m.head, 1)
		if err != nil {
			return err
		}
		if len(items) > 0 {
			qw.m.head = items[0].seq
		}
	}
	return nil
}

// drop deletes every key under r.key, in as many transactions as it takes,
// and with r.q the queue's meta record; r.seqs[0] returns how many keys
// went.
func (w *txnWriter) drop(r *request) error {
	var n uint64
	for {
		var keys [][]byte
		err := w.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: r.key})
			defer it.Close()
			for it.Rewind(); it.Valid() && len(keys) < 4096; it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("spool: drop: %w", err)
		}
		if len(keys) == 0 {
			break
		}
		for _, k := range keys {
			if err := w.reserve(1, w.entryCost(len(k), 0)); err != nil {
				return err
			}
			if err := w.delete(k); err != nil {
				return err
			}
		}
		w.durable = true
		w.involve(r)
		if err := w.commit(); err != nil {
			return err
		}
		n += uint64(len(keys))
	}
	if q := r.q; q != nil {
		w.begin()
		if err := w.delete(q.mkey); err != nil {
			return err
		}
		w.durable = true
		w.involve(r)
		if err := w.commit(); err != nil {
			return err
		}
		s := w.s
		s.mu.Lock()
		delete(s.queues, q.name)
		delete(s.metas, q.name)
		s.mu.Unlock()
		q.mu.Lock()
		q.st = newMeta()
		q.mu.Unlock()
	}
	r.seqs = []uint64{n}
	return nil
}

func (w *txnWriter) expire(q *Queue) error {
	lim := q.limits()
	if lim.MaxAge <= 0 {
		return nil
	}
	cutoff := w.s.now().Add(-lim.MaxAge).UnixNano()
	_, err := w.removeHead(q, func(_ qmeta, t int64) bool { return t < cutoff }, true)
	return err
}

type headItem struct {
	seq  uint64
	t    int64 // append time, Unix ns
	size int   // payload bytes
}

// headItems returns up to n items of the queue from seq from on, as the
// open transaction sees them.
func (w *txnWriter) headItems(q *Queue, from uint64, n int) ([]headItem, error) {
	w.begin()
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: q.prefix})
	defer it.Close()
	var out []headItem
	for it.Seek(itemKey(q.prefix, from)); it.Valid() && len(out) < n; it.Next() {
		hi := headItem{seq: seqOf(it.Item().Key())}
		err := it.Item().Value(func(v []byte) error {
			t, data, err := decodeItem(v)
			hi.t, hi.size = t, len(data)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("spool: queue %q seq %d: %w", q.name, hi.seq, err)
		}
		out = append(out, hi)
	}
	return out, nil
}

// removeHead removes items from the head of the queue while remove says so
// (given the queue's state and the item's append time), as drops or as
// expiries, and returns how many it removed.
func (w *txnWriter) removeHead(q *Queue, remove func(m qmeta, t int64) bool, expiry bool) (int64, error) {
	var removed int64
	for chunk := 1; ; chunk = min(chunk*4, 512) {
		m := w.peek(q)
		if m.depth == 0 {
			return removed, nil
		}
		items, err := w.headItems(q, m.head, chunk)
		if err != nil || len(items) == 0 {
			return removed, err
		}
		for _, hi := range items {
			if !remove(w.peek(q), hi.t) {
				return removed, nil
			}
			key := itemKey(q.prefix, hi.seq)
			if err := w.reserve(1, w.entryCost(len(key), 0)); err != nil {
				return removed, err
			}
			if err := w.delete(key); err != nil {
				return removed, err
			}
			qw := w.state(q)
			qw.m.depth--
			qw.m.bytes -= int64(hi.size)
			qw.m.head = hi.seq + 1
			if expiry {
				qw.expired++
			} else {
				qw.dropped++
			}
			removed++
		}
	}
}
