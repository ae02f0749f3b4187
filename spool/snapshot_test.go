package spool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dirState lists the files of dir with their sizes and modification times.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

func mustSnapshot(t *testing.T, dir string) *Snapshot {
	t.Helper()
	sn, err := OpenSnapshot(Options{Dir: dir})
	if err != nil {
		t.Fatalf("OpenSnapshot: %v", err)
	}
	return sn
}

// A snapshot of a stopped store sees every queue as the store left it
// (depth, bytes, oldest message, sequence range, the items), and changes
// nothing in the folder.
func TestSnapshotOfAStoppedStore(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := open(t, Options{Dir: dir}, func(s *Store) { s.now = clock.Now })
	a := mustQueue(t, s.Store, "a", Limits{})
	b := mustQueue(t, s.Store, "b", Limits{})
	mustQueue(t, s.Store, "unused", Limits{}) // never written: not on disk
	seqs := mustAppend(t, a, payload(0, 10), payload(1, 2000), payload(2, 30), payload(3, 40))
	clock.Add(time.Minute)
	mustAppend(t, a, payload(4, 50))
	mustAppend(t, b, payload(9, 5))
	if err := a.Ack(seqs[0], seqs[2]); err != nil { // out of order: 2, 4 and 5 stay
		t.Fatal(err)
	}
	if err := b.Ack(1); err != nil {
		t.Fatal(err)
	}
	live, ok := s.QueueStats("a")
	if !ok || live.Depth != 3 || live.First != 2 || live.Last != 5 || live.Next != 6 || live.Acked != 2 {
		t.Fatalf("live QueueStats(a) = %+v, %v", live, ok)
	}
	if st := s.Stats(); st.ValueLogBytes <= 0 {
		t.Errorf("live Stats %+v: no value log, with a 2000-byte message in it", st)
	}
	s.stop()

	before := dirState(t, dir)
	sn := mustSnapshot(t, dir)
	if got := sn.QueueNames(); strings.Join(got, ",") != "a,b" {
		t.Fatalf("QueueNames = %v", got)
	}
	st, ok, err := sn.QueueStats("a")
	want := QueueStats{Depth: 3, Bytes: 2000 + 40 + 50, Oldest: clock.Now().Add(-time.Minute), Newest: clock.Now(), First: 2, Last: 5, Next: 6}
	if err != nil || !ok || st != want {
		t.Fatalf("QueueStats(a) = %+v, %v, %v; want %+v", st, ok, err, want)
	}
	st, ok, err = sn.QueueStats("b")
	if want := (QueueStats{Next: 2}); err != nil || !ok || st != want {
		t.Fatalf("QueueStats(b) = %+v, %v, %v; want %+v", st, ok, err, want)
	}
	if _, ok, _ := sn.QueueStats("nope"); ok {
		t.Fatal("a missing queue has stats")
	}
	items, err := sn.Read("a", 0, 10)
	if err != nil || fmt.Sprint(seqsOf(items)) != "[2 4 5]" || !bytes.Equal(items[1].Data, payload(3, 40)) {
		t.Fatalf("Read(a) = %v, %v", seqsOf(items), err)
	}
	if items, err := sn.Read("a", 2, 1); err != nil || fmt.Sprint(seqsOf(items)) != "[4]" {
		t.Fatalf("Read(a, 2, 1) = %v, %v", seqsOf(items), err)
	}
	if items, err := sn.Read("nope", 0, 10); err != nil || len(items) != 0 {
		t.Fatalf("Read(nope) = %v, %v", items, err)
	}
	if st := sn.Stats(); st.LSMBytes <= 0 || st.ValueLogBytes <= 0 {
		t.Errorf("snapshot Stats %+v: want the tables and value log on disk", st)
	}
	// Two snapshots at once: read-only opens share the lock.
	sn2 := mustSnapshot(t, dir)
	if err := errors.Join(sn2.Close(), sn.Close()); err != nil {
		t.Fatal(err)
	}
	if after := dirState(t, dir); after != before {
		t.Errorf("the snapshot changed the folder:\n%s\nwas\n%s", after, before)
	}

	// The store opens again after the snapshots, as it was.
	s = open(t, Options{Dir: dir})
	if st, ok := s.QueueStats("a"); !ok || st.Depth != 3 || st.First != 2 || st.Appended != 0 {
		t.Fatalf("QueueStats(a) of a queue not opened since Run = %+v, %v", st, ok)
	}
}

// While a store runs, a snapshot or a recovery is refused with ErrLocked;
// a folder without a store gives ErrNoStore.
func TestSnapshotLockedAndMissing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Options{Dir: dir})
	mustAppend(t, mustQueue(t, s.Store, "q", Limits{}), []byte("x"))
	if _, err := OpenSnapshot(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenSnapshot of a running store: %v; want ErrLocked", err)
	}
	if err := Recover(context.Background(), Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Recover of a running store: %v; want ErrLocked", err)
	}
	s.stop()
	sn := mustSnapshot(t, dir)
	defer sn.Close()

	for _, d := range []string{filepath.Join(dir, "missing"), t.TempDir()} {
		if _, err := OpenSnapshot(Options{Dir: d}); !errors.Is(err, ErrNoStore) {
			t.Errorf("OpenSnapshot(%s): %v; want ErrNoStore", d, err)
		}
		if err := Recover(context.Background(), Options{Dir: d}); !errors.Is(err, ErrNoStore) {
			t.Errorf("Recover(%s): %v; want ErrNoStore", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Recover created the missing folder: %v", err)
	}
}

// A store killed with SIGKILL cannot be read read-only (ErrNeedsRecovery)
// until Recover replays its logs; then the snapshot holds every write the
// killed process saw acknowledged.
func TestSnapshotAfterKill9NeedsRecovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	timeout := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timeout.Stop()
	acked := map[uint64][]byte{}
	sc := bufio.NewScanner(stdout)
	for lines := 0; sc.Scan(); {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "q" {
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			w, _ := strconv.Atoi(f[2])
			i, _ := strconv.Atoi(f[3])
			acked[seq] = helperPayload(w, i)
		}
		if lines++; lines == 200 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("the child acknowledged no append")
	}

	if _, err := OpenSnapshot(Options{Dir: dir}); !errors.Is(err, ErrNeedsRecovery) {
		t.Fatalf("OpenSnapshot after kill -9: %v; want ErrNeedsRecovery", err)
	}
	// Smaller memtables than the writer's: Recover sizes them up to its
	// write-ahead log.
	if err := Recover(context.Background(), Options{Dir: dir, MemTableBytes: 1 << 20}); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	sn := mustSnapshot(t, dir)
	defer sn.Close()
	st, ok, err := sn.QueueStats("q")
	if err != nil || !ok || st.Depth < int64(len(acked)) {
		t.Fatalf("QueueStats(q) = %+v, %v, %v; want at least %d messages", st, ok, err, len(acked))
	}
	items, err := sn.Read("q", 0, int(st.Depth))
	if err != nil {
		t.Fatal(err)
	}
	stored := map[uint64][]byte{}
	for _, it := range items {
		stored[it.Seq] = it.Data
	}
	for seq, data := range acked {
		if !bytes.Equal(stored[seq], data) {
			t.Fatalf("acknowledged seq %d is not in the snapshot", seq)
		}
	}
}
