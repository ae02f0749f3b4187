package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

var (
	// ErrLocked is returned by OpenSnapshot and Recover while another
	// process (a running gateway) has the store open.
	ErrLocked = errors.New("spool: in use by another process")
	// ErrNeedsRecovery is returned by OpenSnapshot for a store that was
	// not closed cleanly (the process was killed, or the power failed):
	// badger must replay its logs, which a read-only open cannot do.
	// Recover does it, as Run would.
	ErrNeedsRecovery = errors.New("spool: not closed cleanly; it needs a recovery before it can be read read-only")
	// ErrNoStore is returned by OpenSnapshot and Recover for a folder that
	// holds no store.
	ErrNoStore = errors.New("spool: no store")
)

// Snapshot is a store opened read-only, for inspection: no writer, no
// value-log GC, no expiry, nothing written to the folder. Any number of
// snapshots may be open at once, but not while a Store runs on the folder
// (badger's directory lock), and a Store cannot start while one is open.
type Snapshot struct {
	dir   string
	db    *badger.DB
	metas map[string]qmeta
}

// OpenSnapshot opens the store in opts.Dir read-only. Of opts only Dir and
// the sizes matter. It fails with ErrLocked while a Store runs on the
// folder, with ErrNeedsRecovery when the store was not closed cleanly, and
// with ErrNoStore when the folder holds none.
func OpenSnapshot(opts Options) (*Snapshot, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkStoreDir(o.Dir); err != nil {
		return nil, err
	}
	if locked, err := dirLocked(o.Dir); err == nil && locked {
		return nil, fmt.Errorf("%w: %s", ErrLocked, o.Dir)
	}
	// A clean close flushes badger's memtables and deletes their
	// write-ahead logs; one left over needs replaying. (badger.Open would
	// say so too, but leaks goroutines when it fails.)
	if hasWAL(o.Dir) {
		return nil, fmt.Errorf("%w: %s", ErrNeedsRecovery, o.Dir)
	}
	db, err := badger.Open(o.badgerOptions(o.Logger).WithReadOnly(true))
	if err != nil {
		return nil, openError(o.Dir, err)
	}
	sn := &Snapshot{dir: o.Dir, db: db, metas: make(map[string]qmeta)}
	if err := sn.load(); err != nil {
		return nil, errors.Join(err, closeDB(db))
	}
	return sn, nil
}

// checkStoreDir reports ErrNoStore unless dir holds a badger database.
func checkStoreDir(dir string) error {
	_, err := os.Stat(filepath.Join(dir, "MANIFEST"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w in %s", ErrNoStore, dir)
	case err != nil:
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// hasWAL reports whether dir holds a memtable write-ahead log of badger.
func hasWAL(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".mem") {
			return true
		}
	}
	return false
}

// largestWAL returns the size of the largest memtable write-ahead log of
// badger in dir (0: none).
func largestWAL(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".mem") {
			n = max(n, fi.Size())
		}
	}
	return n
}

// openError classifies what badger.Open returned; badger flattens the
// errors it wraps, so their text is checked.
func openError(dir string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Cannot acquire directory lock"):
		return fmt.Errorf("%w: %s", ErrLocked, dir)
	case strings.Contains(msg, badger.ErrTruncateNeeded.Error()):
		return fmt.Errorf("%w: %s", ErrNeedsRecovery, dir)
	}
	return fmt.Errorf("spool: open badger in %s: %w", dir, err)
}

func (sn *Snapshot) load() error {
	err := sn.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil // opened by badger, never by a Store: empty
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
	return loadMetas(sn.db, sn.metas)
}

// QueueNames returns the names of the queues in the store, sorted.
func (sn *Snapshot) QueueNames() []string {
	names := make([]string, 0, len(sn.metas))
	for n := range sn.metas {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// QueueStats returns the state of the queue called name (its counters are
// zero: they count what a running Store did), or false when there is no
// such queue.
func (sn *Snapshot) QueueStats(name string) (QueueStats, bool, error) {
	m, ok := sn.metas[name]
	if !ok {
		return QueueStats{}, false, nil
	}
	st := m.stats()
	err := sn.db.View(func(txn *badger.Txn) error { return describe(txn, queuePrefix(name), m, &st) })
	if err != nil {
		return st, true, fmt.Errorf("spool: queue %q: %w", name, err)
	}
	return st, true, nil
}

// Read returns up to n messages of the queue called name with a sequence
// number above after, in order, expired or not. A missing queue has none.
func (sn *Snapshot) Read(name string, after uint64, n int) ([]Item, error) {
	m, ok := sn.metas[name]
	if !ok || n <= 0 {
		return nil, nil
	}
	var items []Item
	err := sn.db.View(func(txn *badger.Txn) (err error) {
		items, err = readItems(txn, name, queuePrefix(name), max(after+1, m.head), n, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	return items, nil
}

// Stats returns the sizes of the store on disk; the counters are zero.
func (sn *Snapshot) Stats() Stats {
	var st Stats
	st.LSMBytes, st.ValueLogBytes = diskUsage(sn.dir)
	return st
}

// Close closes the snapshot.
func (sn *Snapshot) Close() error { return closeDB(sn.db) }

// CheckStore reports ErrNoStore when dir holds no store, and ErrLocked
// while a Store runs on it.
func CheckStore(dir string) error {
	if err := checkStoreDir(dir); err != nil {
		return err
	}
	if locked, err := dirLocked(dir); err == nil && locked {
		return fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	return nil
}

// Recover opens the store in opts.Dir as Run does, which makes badger
// replay what a crash left in its logs, and closes it cleanly again, so
// that OpenSnapshot can read it. It writes to the folder what the next Run
// would write; nothing stored is lost or changed. It fails with ErrLocked
// while a Store runs on the folder, and with ErrNoStore when the folder
// holds none.
func Recover(ctx context.Context, opts Options) error {
	if err := checkStoreDir(opts.Dir); err != nil {
		return err
	}
	if locked, err := dirLocked(opts.Dir); err == nil && locked {
		return fmt.Errorf("%w: %s", ErrLocked, opts.Dir)
	}
	// badger sizes a memtable's write-ahead log at twice the memtable: a
	// log written with larger memtables than opts says needs their size
	// to be replayed.
	if wal := largestWAL(opts.Dir); wal/2 > max(opts.MemTableBytes, DefaultMemTableBytes) {
		opts.MemTableBytes = wal / 2
	}
	s, err := New(opts)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	select {
	case <-s.Ready():
		cancel()
		return <-done
	case err := <-done:
		if err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return fmt.Errorf("%w: %s", ErrLocked, opts.Dir)
		}
		return err
	}
}
