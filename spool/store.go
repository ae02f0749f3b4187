package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

var (
	// ErrClosed is returned by calls made before the Store is ready or after
	// its Run began to stop.
	ErrClosed = errors.New("spool: closed")
	// ErrFull is returned by Append when a RejectNew queue is at its limits,
	// or when one call carries more than the queue's limits allow.
	ErrFull = errors.New("spool: queue full")
	// ErrNoSpace is returned by Append and KV.Set while the file system has
	// less free space than Options.MinFreeBytes (or badger met ENOSPC).
	// What is stored stays; writing resumes by itself when space returns.
	ErrNoSpace = errors.New("spool: no space left")
	// ErrTooLarge is returned for one message or one call too large for a
	// badger transaction or a value-log file (see Options.MemTableBytes and
	// Options.ValueLogFileBytes).
	ErrTooLarge = errors.New("spool: too large")
)

// Store is the durable store: a badger database in Options.Dir holding FIFO
// queues and KV namespaces. Create it with New, start it with Run, and use
// Queue and KV once Ready is closed.
type Store struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time // test hook; time.Now

	minFree      atomic.Int64 // Options.MinFreeBytes; tests lower it
	maxTxnBytes  int64        // budget of one transaction (half of badger's limit)
	maxTxnCount  int64
	started      atomic.Bool
	reqs         chan *request
	ready        chan struct{} // closed when the store is open
	stopping     chan struct{} // closed when Run stops taking requests
	drained      chan struct{} // closed when the writer handled its last request
	stopOnce     sync.Once
	drainOnce    sync.Once
	dbMu         sync.RWMutex // guards db against Close during reads
	db           *badger.DB   // nil while not open
	mu           sync.Mutex   // guards queues and metas
	queues       map[string]*Queue
	metas        map[string]qmeta // recovered at Run, for queues not opened yet
	commits      atomic.Uint64
	syncs        atomic.Uint64
	noSpace      atomic.Bool
	unsynced     bool       // writer-owned: commits since the last sync
	tw           *txnWriter // writer-owned, reused across batches
	spaceErrOnce bool       // writer-owned: the statfs failure was logged
	syncMu       sync.Mutex // serializes syncAll (the writer, value-log GC)
	vlogSynced   uint64     // under syncMu: the newest value-log file at the last syncAll
}

// Stats are store-wide counters since Run.
type Stats struct {
	Commits       uint64 // badger transactions committed by the writer
	Syncs         uint64 // syncs to stable storage (with SyncAlways, one per commit)
	LSMBytes      int64  // disk space of the LSM tree's tables
	ValueLogBytes int64  // disk space of the value log (its newest file is preallocated, sparse)
	NoSpace       bool   // appends are being refused with ErrNoSpace
}

// New validates opts and returns a Store that Run will open. It starts
// nothing and touches no file.
func New(opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:     o,
		log:      o.Logger.With("component", "spool"),
		now:      time.Now,
		reqs:     make(chan *request, 1024),
		ready:    make(chan struct{}),
		stopping: make(chan struct{}),
		drained:  make(chan struct{}),
		queues:   make(map[string]*Queue),
		metas:    make(map[string]qmeta),
	}
	s.minFree.Store(o.MinFreeBytes)
	// Half of badger's transaction limits: the rest is room for the meta
	// records and badger's own estimate, which differs a little from ours.
	batch := maxBatchBytes(o.MemTableBytes)
	s.maxTxnBytes = batch / 2
	s.maxTxnCount = batch / skiplistNodeBytes / 2
	return s, nil
}

// skiplistNodeBytes is the size of a node of badger's skiplist, by which
// badger divides its byte limit to get its entry-count limit.
const skiplistNodeBytes = 96

// Name returns "spool".
func (s *Store) Name() string { return "spool" }

// Ready is closed once Run has opened the store and recovered its state.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// Run opens badger in Options.Dir (creating it), recovers the queues' state,
// runs the group-commit writer, value-log GC and expiry until ctx is done,
// then handles the requests already taken, syncs and closes badger. It
// returns after every goroutine it started has exited: nil after a clean
// stop, or the error that kept it from opening or closing cleanly. A Store
// runs once.
func (s *Store) Run(ctx context.Context) (err error) {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("spool: Run called twice")
	}
	defer s.stopOnce.Do(func() { close(s.stopping) })
	defer s.drainOnce.Do(func() { close(s.drained) })

	if err := os.MkdirAll(s.opts.Dir, 0o750); err != nil {
		return fmt.Errorf("spool: create data directory: %w", err)
	}
	bo := s.opts.badgerOptions(s.log)
	// badger sizes a memtable's write-ahead log at twice the memtable: logs
	// written with larger memtables (an older default, another setting)
	// are replayed with their size.
	if wal := largestWAL(s.opts.Dir); wal/2 > bo.MemTableSize {
		bo.MemTableSize = wal / 2
	}
	db, err := badger.Open(bo)
	if err != nil {
		return fmt.Errorf("spool: open badger in %s: %w", s.opts.Dir, err)
	}
	if err := s.recover(db); err != nil {
		return errors.Join(err, closeDB(db))
	}
	s.dbMu.Lock()
	s.db = db
	s.dbMu.Unlock()

	s.mu.Lock()
	nq := len(s.metas) // read before the writer may drop a queue
	s.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { s.writeLoop(ctx, db) })
	if s.opts.GCInterval > 0 {
		wg.Go(func() { s.gcLoop(ctx, db) })
	}
	if s.opts.TrimInterval > 0 {
		wg.Go(func() { s.trimLoop(ctx) })
	}
	close(s.ready)
	s.log.Info("spool open", "dir", s.opts.Dir, "sync", string(s.opts.Sync), "queues", nq)

	<-ctx.Done()
	wg.Wait() // the writer has handled every request it took

	// Acks, drops and expiry are never synced by themselves.
	var syncErr error
	if syncErr = db.Sync(); syncErr != nil {
		syncErr = fmt.Errorf("spool: final sync: %w", syncErr)
	} else {
		s.syncs.Add(1)
	}
	s.dbMu.Lock() // wait for reads in progress
	s.db = nil
	s.dbMu.Unlock()
	err = errors.Join(syncErr, closeDB(db))
	if err != nil {
		s.log.Error("spool closed with errors", "err", err)
	} else {
		s.log.Info("spool closed")
	}
	return err
}

func closeDB(db *badger.DB) error {
	if err := db.Close(); err != nil {
		return fmt.Errorf("spool: close badger: %w", err)
	}
	return nil
}

// recover checks the store format and loads every queue's meta record.
func (s *Store) recover(db *badger.DB) error {
	err := db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(formatKey, []byte{formatVersion})
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != formatVersion {
				return fmt.Errorf("%w: store format %v, this build reads %d", errCorrupt, v, formatVersion)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("spool: check store format: %w", err)
	}
	if err := loadMetas(db, s.metas); err != nil {
		return err
	}
	// A head left behind by out-of-order acks is moved to the first item, so
	// that reads do not step over tombstones.
	for name, m := range s.metas {
		if m.exact() {
			continue
		}
		first, ok, err := firstSeq(db, queuePrefix(name), m.head)
		if err != nil {
			return fmt.Errorf("spool: find head of queue %q: %w", name, err)
		}
		switch {
		case ok:
			m.head = first
		case m.depth != 0:
			s.log.Error("spool queue meta counts items that are not there; resetting its depth",
				"queue", name, "depth", m.depth, "bytes", m.bytes)
			m.head, m.depth, m.bytes = m.next, 0, 0
		default:
			m.head = m.next
		}
		s.metas[name] = m
	}
	return nil
}

// loadMetas reads every queue's meta record into metas.
func loadMetas(db *badger.DB, metas map[string]qmeta) error {
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 16, Prefix: []byte("m/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[2:])
			var m qmeta
			err := it.Item().Value(func(v []byte) (err error) {
				m, err = decodeMeta(v)
				return err
			})
			if err != nil {
				return fmt.Errorf("queue %q: %w", name, err)
			}
			metas[name] = m
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool: load queues: %w", err)
	}
	return nil
}

// firstSeq returns the seq of the first item of the queue at or after from.
func firstSeq(db *badger.DB, prefix []byte, from uint64) (seq uint64, ok bool, err error) {
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		it.Seek(itemKey(prefix, from))
		if it.Valid() {
			seq, ok = seqOf(it.Item().Key()), true
		}
		return nil
	})
	return seq, ok, err
}

// DropQueue deletes the queue called name with every message in it, and
// returns how many messages went. A Queue of that name obtained before is
// left empty and unusable: get it again with Queue. Dropping a queue that
// does not exist is no error.
func (s *Store) DropQueue(ctx context.Context, name string) (int64, error) {
	if err := checkName("queue", name); err != nil {
		return 0, err
	}
	if !s.isOpen() {
		return 0, ErrClosed
	}
	s.mu.Lock()
	q := s.queues[name]
	if q == nil {
		q = &Queue{s: s, name: name, prefix: queuePrefix(name), mkey: metaKey(name), notify: make(chan struct{}, 1)}
		q.lim.Store(&Limits{})
	}
	s.mu.Unlock()
	r := &request{op: opDrop, q: q, key: q.prefix}
	if err := s.do(ctx, r); err != nil {
		return 0, err
	}
	return int64(r.seqs[0]), nil
}

// DropKV deletes every key of a KV namespace.
func (s *Store) DropKV(ctx context.Context, namespace string) error {
	if err := checkName("KV namespace", namespace); err != nil {
		return err
	}
	return s.do(ctx, &request{op: opDrop, key: kvPrefix(namespace)})
}

// Stats returns store-wide counters.
func (s *Store) Stats() Stats {
	st := Stats{Commits: s.commits.Load(), Syncs: s.syncs.Load(), NoSpace: s.noSpace.Load()}
	s.dbMu.RLock()
	if s.db != nil {
		st.LSMBytes, st.ValueLogBytes = diskUsage(s.opts.Dir)
	}
	s.dbMu.RUnlock()
	return st
}

// QueueNames returns the names of the queues on disk and of those opened
// since Run, sorted.
func (s *Store) QueueNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.metas)+len(s.queues))
	for n := range s.metas {
		names = append(names, n)
	}
	for n := range s.queues {
		if _, ok := s.metas[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// QueueStats returns the state of the queue called name, whether it was
// opened since Run (then with its counters, as Queue.Stats) or only found
// on disk; false when there is no such queue.
func (s *Store) QueueStats(name string) (QueueStats, bool) {
	s.mu.Lock()
	q := s.queues[name]
	m, onDisk := s.metas[name]
	s.mu.Unlock()
	if q != nil {
		return q.Stats(), true
	}
	if !onDisk {
		return QueueStats{}, false
	}
	st := m.stats()
	_ = s.view(func(txn *badger.Txn) error { return describe(txn, queuePrefix(name), m, &st) })
	return st, true
}

// diskUsage returns the disk space that badger's tables and value-log files
// in dir take. (badger's DB.Size reports 0 with its metrics off.)
func diskUsage(dir string) (lsm, vlog int64) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		var sum *int64
		switch filepath.Ext(e.Name()) {
		case ".sst":
			sum = &lsm
		case ".vlog":
			sum = &vlog
		default:
			continue
		}
		if fi, err := e.Info(); err == nil {
			*sum += allocated(fi)
		}
	}
	return lsm, vlog
}

// isOpen reports whether the store takes requests.
func (s *Store) isOpen() bool {
	select {
	case <-s.ready:
	default:
		return false
	}
	select {
	case <-s.stopping:
		return false
	default:
		return true
	}
}

// view runs fn in a read-only transaction, or returns ErrClosed.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

// gcLoop runs value-log GC every GCInterval until ctx is done.
func (s *Store) gcLoop(ctx context.Context, db *badger.DB) {
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.runGC(ctx, db)
		}
	}
}

// runGC rewrites value-log files until none is worth it. badger deletes a
// file right after moving its live entries; without SyncWrites (the writer
// syncs by itself) those moves are not synced, so an open iterator holds
// the deletion back (badger defers it while iterators are open) until the
// moves are synced.
func (s *Store) runGC(ctx context.Context, db *badger.DB) {
	txn := db.NewTransaction(false)
	hold := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("s/none/")})
	n := 0
	for ctx.Err() == nil {
		err := db.RunValueLogGC(0.5)
		if err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.Warn("spool value-log GC failed", "err", err)
			}
			break
		}
		n++
	}
	if n > 0 {
		if err := s.syncAll(db); err != nil {
			s.log.Error("spool sync after value-log GC failed", "err", err)
		} else {
			s.syncs.Add(1)
		}
	}
	hold.Close()
	txn.Discard()
	if n > 0 {
		s.log.Debug("spool value-log GC", "files", n)
	}
}

// trimLoop pages out badger's mapped files every TrimInterval (trimMapped)
// until ctx is done, and gives the heap that a burst of writes left behind
// back to the system when the writes stop (see Options.TrimInterval).
func (s *Store) trimLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.TrimInterval)
	defer t.Stop()
	pageout := true
	var lastCommits uint64
	busy := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if pageout {
			if _, err := trimMapped(s.opts.Dir); err != nil {
				s.log.Debug("spool cannot page out mapped files; the resident set includes them", "err", err)
				pageout = false
			}
		}
		c := s.commits.Load()
		switch {
		case c != lastCommits:
			busy = true
		case busy:
			// badger builds tables in buffers that it drops or pools
			// afterwards; with no allocation after a burst, no garbage
			// collection runs to free them for minutes.
			busy = false
			debug.FreeOSMemory()
		}
		lastCommits = c
	}
}
