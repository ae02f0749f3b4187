package spool

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestSyncCoversRotatedValueLogFiles: under SyncAlways an append whose
// value went to a value-log file that badger rotated within the same
// commit returns only once that file is synced too. badger (without its
// SyncWrites) syncs only the newest value-log file, and rotates without a
// sync, so a message acknowledged from the older file would be lost on a
// power cut.
func TestSyncCoversRotatedValueLogFiles(t *testing.T) {
	var mu sync.Mutex
	synced := map[string]int{}
	orig := fsyncFile
	fsyncFile = func(name string) error {
		mu.Lock()
		synced[filepath.Base(name)]++
		mu.Unlock()
		return orig(name)
	}
	t.Cleanup(func() { fsyncFile = orig })

	dir := t.TempDir()
	s := open(t, Options{Dir: dir, MemTableBytes: 4 << 20, ValueLogFileBytes: 1 << 20, GCInterval: -1, TrimInterval: -1})
	q := mustQueue(t, s.Store, "q", Limits{})
	vlogs := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		slices.Sort(m)
		return m
	}
	for i := 0; len(vlogs()) < 4; i++ {
		if i > 1000 {
			t.Fatalf("badger did not rotate its value log: %v", vlogs())
		}
		mustAppend(t, q, payload(i, 64<<10)) // in the value log
		// Every value-log file but the newest was written before this
		// append returned, by it or by an earlier one: each must have
		// been synced since it was last written.
		files := vlogs()
		mu.Lock()
		for _, name := range files[:len(files)-1] {
			if synced[name] == 0 {
				mu.Unlock()
				t.Fatalf("append %d returned with value-log file %s never synced (files %v, synced %v)",
					i, name, files, synced)
			}
		}
		mu.Unlock()
	}
	if !strings.HasSuffix(vlogs()[0], ".vlog") {
		t.Fatal("no value-log file")
	}
}
