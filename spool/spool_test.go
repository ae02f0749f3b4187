package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(helperMain(dir)) // the child of TestKill9KeepsAcknowledgedWrites
	}
	goleak.VerifyTestMain(m)
}

// logBuf collects a store's logs so that tests can count lines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// fakeClock is the stores' clock in the tests of MaxAge.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testStore struct {
	*Store
	logs *logBuf
	stop func() // stops Run and reports its error; idempotent
}

// open starts a store on dir; setup may adjust it before Run.
func open(t *testing.T, opts Options, setup ...func(*Store)) *testStore {
	t.Helper()
	logs := &logBuf{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, f := range setup {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("store not ready after 30s")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testStore{Store: s, logs: logs, stop: stop}
}

func mustQueue(t *testing.T, s *Store, name string, lim Limits) *Queue {
	t.Helper()
	q, err := s.Queue(name, lim)
	if err != nil {
		t.Fatalf("Queue(%q): %v", name, err)
	}
	return q
}

func mustAppend(t *testing.T, q *Queue, data ...[]byte) []uint64 {
	t.Helper()
	seqs, err := q.Append(context.Background(), data...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(seqs) != len(data) {
		t.Fatalf("Append returned %d seqs for %d messages", len(seqs), len(data))
	}
	return seqs
}

func mustRead(t *testing.T, q *Queue, after uint64, n int) []Item {
	t.Helper()
	items, err := q.Read(after, n)
	if err != nil {
		t.Fatalf("Read(%d, %d): %v", after, n, err)
	}
	return items
}

func seqsOf(items []Item) []uint64 {
	var s []uint64
	for _, it := range items {
		s = append(s, it.Seq)
	}
	return s
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func payload(i, size int) []byte {
	b := []byte(fmt.Sprintf("message %d ", i))
	for len(b) < size {
		b = append(b, byte('a'+i%26))
	}
	return b[:max(size, 0)]
}

func checkStats(t *testing.T, q *Queue, depth, bytes int64) {
	t.Helper()
	st := q.Stats()
	if st.Depth != depth || st.Bytes != bytes {
		t.Fatalf("Stats: depth %d bytes %d, want %d and %d (%+v)", st.Depth, st.Bytes, depth, bytes, st)
	}
}

func TestAppendReadAck(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir()})
	q := mustQueue(t, s.Store, "uplink-a", Limits{})

	// Sizes around the value threshold: inline in the LSM tree and in the
	// value log; an empty payload too.
	sizes := []int{0, 1, 100, 1015, 1016, 2000, 70000, 10, 10, 10}
	var data [][]byte
	var total int64
	for i, n := range sizes {
		data = append(data, payload(i, n))
		total += int64(n)
	}
	seqs := mustAppend(t, q, data[:3]...)
	seqs = append(seqs, mustAppend(t, q, data[3:]...)...)
	if !slices.Equal(seqs, span(1, 10)) {
		t.Fatalf("seqs %v, want 1..10", seqs)
	}
	checkStats(t, q, 10, total)

	items := mustRead(t, q, 0, 100)
	if !slices.Equal(seqsOf(items), span(1, 10)) {
		t.Fatalf("Read seqs %v", seqsOf(items))
	}
	for i, it := range items {
		if !bytes.Equal(it.Data, data[i]) || it.Data == nil {
			t.Errorf("item %d: data %q (nil %v), want %q", it.Seq, it.Data, it.Data == nil, data[i])
		}
		if it.Time.IsZero() || time.Since(it.Time) > time.Minute {
			t.Errorf("item %d: time %v", it.Seq, it.Time)
		}
	}
	// Read returns copies the caller owns.
	items[3].Data[0] = 'X'
	if again := mustRead(t, q, 3, 1); again[0].Data[0] == 'X' {
		t.Fatal("Read returned memory shared with the store")
	}

	if got := seqsOf(mustRead(t, q, 5, 3)); !slices.Equal(got, []uint64{6, 7, 8}) {
		t.Fatalf("Read(5, 3) = %v", got)
	}
	if got := mustRead(t, q, 10, 5); len(got) != 0 {
		t.Fatalf("Read past the tail = %v", seqsOf(got))
	}

	// In-order acks advance the head.
	if err := q.Ack(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(mustRead(t, q, 0, 2)); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("after acking 1-3, Read(0, 2) = %v", got)
	}
	// Out-of-order acks, duplicates and unknown seqs.
	if err := q.Ack(7, 5, 5, 99, 2); err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(mustRead(t, q, 0, 100)); !slices.Equal(got, []uint64{4, 6, 8, 9, 10}) {
		t.Fatalf("after acking 5 and 7: %v", got)
	}
	checkStats(t, q, 5, total-int64(sizes[0]+sizes[1]+sizes[2]+sizes[4]+sizes[6]))
	if err := q.Ack(4, 6); err != nil {
		t.Fatal(err)
	}
	if m := q.meta(); m.head != 8 || !m.exact() {
		t.Fatalf("head after acking the gaps: %+v, want head 8, exact", m)
	}
	if err := q.Ack(span(8, 10)...); err != nil {
		t.Fatal(err)
	}
	checkStats(t, q, 0, 0)
	st := q.Stats()
	if st.Appended != 10 || st.Acked != 10 || !st.Oldest.IsZero() {
		t.Fatalf("Stats after acking everything: %+v", st)
	}
	if got := mustRead(t, q, 0, 10); len(got) != 0 {
		t.Fatalf("empty queue read %v", seqsOf(got))
	}
	if got := mustAppend(t, q, []byte("next")); got[0] != 11 {
		t.Fatalf("seq after emptying = %d, want 11", got[0])
	}
}

func TestQueuesAreSeparate(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir()})
	a := mustQueue(t, s.Store, "a", Limits{})
	ab := mustQueue(t, s.Store, "ab", Limits{})
	mustAppend(t, a, []byte("a1"), []byte("a2"))
	mustAppend(t, ab, []byte("ab1"))
	if got := mustRead(t, a, 0, 10); len(got) != 2 || string(got[1].Data) != "a2" {
		t.Fatalf("queue a: %v", got)
	}
	if got := mustRead(t, ab, 0, 10); len(got) != 1 || got[0].Seq != 1 || string(got[0].Data) != "ab1" {
		t.Fatalf("queue ab: %v", got)
	}
	if again := mustQueue(t, s.Store, "a", Limits{MaxMessages: 5}); again != a || a.limits().MaxMessages != 5 {
		t.Fatal("Queue is not idempotent per name, or ignores the new limits")
	}
	if got := s.QueueNames(); !slices.Equal(got, []string{"a", "ab"}) {
		t.Fatalf("QueueNames = %v", got)
	}
	for _, bad := range []string{"", "a/b", strings.Repeat("x", 201)} {
		if _, err := s.Queue(bad, Limits{}); err == nil {
			t.Errorf("Queue(%q) succeeded", bad)
		}
	}
	if _, err := s.Queue("x", Limits{OnFull: "drop-newest"}); err == nil {
		t.Error("Queue with an unknown policy succeeded")
	}
	if _, err := s.Queue("x", Limits{MaxBytes: -1}); err == nil {
		t.Error("Queue with a negative limit succeeded")
	}
}

func TestRestartKeepsItemsAndSeqs(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Options{Dir: dir})
	q := mustQueue(t, s.Store, "q", Limits{})
	var want [][]byte
	for i := range 20 {
		want = append(want, payload(i, 50+i*100)) // inline and value-log values
	}
	mustAppend(t, q, want...)
	if err := q.Ack(1, 2, 5, 6); err != nil { // leaves the head behind a gap
		t.Fatal(err)
	}
	empty := mustQueue(t, s.Store, "emptied", Limits{})
	mustAppend(t, empty, []byte("x"), []byte("y"))
	if err := empty.Ack(1, 2); err != nil {
		t.Fatal(err)
	}
	before := q.Stats()
	s.stop()

	s = open(t, Options{Dir: dir})
	if got := s.QueueNames(); !slices.Equal(got, []string{"emptied", "q"}) {
		t.Fatalf("QueueNames after restart = %v", got)
	}
	q = mustQueue(t, s.Store, "q", Limits{})
	if st := q.Stats(); st.Depth != before.Depth || st.Bytes != before.Bytes || !st.Oldest.Equal(before.Oldest) {
		t.Fatalf("after restart: %+v, before: %+v", st, before)
	}
	items := mustRead(t, q, 0, 100)
	wantSeqs := []uint64{3, 4}
	wantSeqs = append(wantSeqs, span(7, 20)...)
	if !slices.Equal(seqsOf(items), wantSeqs) {
		t.Fatalf("after restart: seqs %v", seqsOf(items))
	}
	for _, it := range items {
		if !bytes.Equal(it.Data, want[it.Seq-1]) {
			t.Fatalf("seq %d: data differs after restart", it.Seq)
		}
	}
	if got := mustAppend(t, q, []byte("after")); got[0] != 21 {
		t.Fatalf("seq after restart = %d, want 21", got[0])
	}
	empty = mustQueue(t, s.Store, "emptied", Limits{})
	if got := mustAppend(t, empty, []byte("z")); got[0] != 3 {
		t.Fatalf("seq of an emptied queue after restart = %d, want 3 (never reused)", got[0])
	}
	if m := empty.meta(); m.head != 3 || m.depth != 1 {
		t.Fatalf("emptied queue meta %+v", m)
	}
}

func TestGroupCommit(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir()})
	qs := []*Queue{mustQueue(t, s.Store, "g1", Limits{}), mustQueue(t, s.Store, "g2", Limits{})}
	const appenders, each = 64, 20
	errc := make(chan error, appenders)
	var mu sync.Mutex
	got := map[string][]uint64{}
	start := s.Stats()
	var wg sync.WaitGroup
	for g := range appenders {
		wg.Go(func() {
			q := qs[g%2]
			for i := range each {
				seqs, err := q.Append(context.Background(), fmt.Appendf(nil, "%d-%d", g, i))
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				got[q.Name()] = append(got[q.Name()], seqs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	end := s.Stats()
	syncs, commits := end.Syncs-start.Syncs, end.Commits-start.Commits
	t.Logf("%d appends in %d commits, %d syncs", appenders*each, commits, syncs)
	if syncs != commits {
		t.Errorf("SyncAlways: %d syncs for %d commits", syncs, commits)
	}
	// 64 callers that each wait for their sync: while one commit syncs,
	// the others queue up and share the next one.
	if syncs*4 > appenders*each {
		t.Errorf("%d syncs for %d appends: appends do not share commits", syncs, appenders*each)
	}
	for _, q := range qs {
		seqs := got[q.Name()]
		slices.Sort(seqs)
		if !slices.Equal(seqs, span(1, appenders/2*each)) {
			t.Errorf("queue %s: seqs not 1..%d without gaps or duplicates", q.Name(), appenders/2*each)
		}
		if n := len(mustRead(t, q, 0, 10000)); n != appenders/2*each {
			t.Errorf("queue %s holds %d items", q.Name(), n)
		}
	}
}

func TestDropOldest(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir()})
	q := mustQueue(t, s.Store, "q", Limits{MaxMessages: 5, OnFull: DropOldest})
	for i := range 8 {
		mustAppend(t, q, payload(i, 10))
	}
	if got := seqsOf(mustRead(t, q, 0, 100)); !slices.Equal(got, span(4, 8)) {
		t.Fatalf("after 8 appends with MaxMessages 5: %v", got)
	}
	st := q.Stats()
	if st.Depth != 5 || st.Bytes != 50 || st.Dropped != 3 || st.Appended != 8 || st.Rejected != 0 {
		t.Fatalf("Stats %+v", st)
	}
	// A call with more than one message drops as many as it needs, in the
	// same commit.
	mustAppend(t, q, payload(8, 10), payload(9, 10))
	if got := seqsOf(mustRead(t, q, 0, 100)); !slices.Equal(got, span(6, 10)) {
		t.Fatalf("after appending 2 more: %v", got)
	}
	if n := s.logs.count("dropping the oldest"); n != 1 {
		t.Fatalf("the drop episode was logged %d times, want once:\n%s", n, s.logs)
	}
	if err := q.Ack(6, 7); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, q, payload(10, 10))
	if n := s.logs.count("no longer full"); n != 1 {
		t.Fatalf("the end of the episode was logged %d times, want once:\n%s", n, s.logs)
	}
	mustAppend(t, q, payload(11, 10), payload(12, 10)) // a new episode
	if n := s.logs.count("dropping the oldest"); n != 2 {
		t.Fatalf("second drop episode logged %d times in all, want 2", n)
	}
	if st := q.Stats(); st.Dropped != 6 || st.Depth != 5 {
		t.Fatalf("Stats %+v", st)
	}

	// MaxBytes: a large message drops as many small ones as it takes.
	b := mustQueue(t, s.Store, "bytes", Limits{MaxBytes: 100, OnFull: DropOldest})
	for i := range 10 {
		mustAppend(t, b, payload(i, 10))
	}
	mustAppend(t, b, payload(10, 35))
	items := mustRead(t, b, 0, 100)
	if !slices.Equal(seqsOf(items), span(5, 11)) {
		t.Fatalf("MaxBytes: %v", seqsOf(items))
	}
	if st := b.Stats(); st.Bytes != 95 || st.Dropped != 4 {
		t.Fatalf("MaxBytes stats %+v", st)
	}
	// More than the limits allow in one call is refused even here.
	if _, err := b.Append(context.Background(), payload(0, 101)); !errors.Is(err, ErrFull) {
		t.Fatalf("a message above MaxBytes: %v, want ErrFull", err)
	}
	if st := b.Stats(); st.Rejected != 1 || st.Depth != 7 {
		t.Fatalf("after the refusal: %+v", st)
	}
}

func TestRejectNew(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir()})
	q := mustQueue(t, s.Store, "q", Limits{MaxMessages: 3, MaxBytes: 1000}) // RejectNew by default
	mustAppend(t, q, payload(0, 10), payload(1, 10))
	if _, err := q.Append(context.Background(), payload(2, 10), payload(3, 10)); !errors.Is(err, ErrFull) {
		t.Fatalf("2 messages into 1 free slot: %v, want ErrFull", err)
	}
	mustAppend(t, q, payload(2, 10))
	for range 3 {
		if _, err := q.Append(context.Background(), payload(9, 10)); !errors.Is(err, ErrFull) {
			t.Fatalf("append to a full queue: %v, want ErrFull", err)
		}
	}
	st := q.Stats()
	if st.Depth != 3 || st.Rejected != 5 || st.Dropped != 0 || st.Appended != 3 {
		t.Fatalf("Stats %+v", st)
	}
	items := mustRead(t, q, 0, 10)
	if !slices.Equal(seqsOf(items), span(1, 3)) || !bytes.Equal(items[2].Data, payload(2, 10)) {
		t.Fatalf("stored items changed: %v", seqsOf(items))
	}
	// Two episodes: the first refusal, ended by the append that fitted, and
	// the three refusals in a row.
	if n := s.logs.count("refusing new messages"); n != 2 {
		t.Fatalf("refusal episodes logged %d times, want 2:\n%s", n, s.logs)
	}
	if err := q.Ack(1); err != nil {
		t.Fatal(err)
	}
	if got := mustAppend(t, q, payload(3, 10)); got[0] != 4 {
		t.Fatalf("seq after the refusals = %d, want 4 (refused calls use none)", got[0])
	}
	if n := s.logs.count("accepts messages again"); n != 2 {
		t.Fatalf("ends of episodes logged %d times, want 2:\n%s", n, s.logs)
	}
	// MaxBytes.
	if _, err := q.Append(context.Background()); err != nil {
		t.Fatalf("empty append: %v", err)
	}
	if err := q.Ack(2); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Append(context.Background(), payload(5, 981)); !errors.Is(err, ErrFull) {
		t.Fatalf("append beyond MaxBytes: %v, want ErrFull", err)
	}
	mustAppend(t, q, payload(5, 980))
}

func TestMaxAge(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := open(t, Options{Dir: t.TempDir(), ExpireInterval: 5 * time.Millisecond}, func(s *Store) { s.now = clock.Now })
	q := mustQueue(t, s.Store, "q", Limits{MaxAge: time.Hour})
	mustAppend(t, q, payload(1, 10), payload(2, 10), payload(3, 10))
	clock.Add(30 * time.Minute)
	mustAppend(t, q, payload(4, 10), payload(5, 10))
	if st := q.Stats(); !st.Oldest.Equal(clock.Now().Add(-30*time.Minute)) || st.Depth != 5 {
		t.Fatalf("Stats %+v", st)
	}
	clock.Add(31 * time.Minute)
	// Read never returns an expired message: it expires the head itself.
	items := mustRead(t, q, 0, 10)
	if !slices.Equal(seqsOf(items), []uint64{4, 5}) {
		t.Fatalf("Read after an hour: %v", seqsOf(items))
	}
	if st := q.Stats(); st.Expired != 3 || st.Depth != 2 || st.Bytes != 20 {
		t.Fatalf("Stats after expiry on Read: %+v", st)
	}
	// The periodic expiry, without a Read.
	clock.Add(30 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for q.Stats().Expired != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("periodic expiry did not run: %+v", q.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkStats(t, q, 0, 0)
	if got := mustAppend(t, q, []byte("new")); got[0] != 6 {
		t.Fatalf("seq after expiry = %d", got[0])
	}
	if n := s.logs.count("expired messages"); n != 2 {
		t.Fatalf("expiry logged %d times, want 2 (half an hour apart)", n)
	}

	// Expiries within a minute of the last log line are not logged.
	fast := mustQueue(t, s.Store, "fast", Limits{MaxAge: time.Second})
	for range 3 {
		mustAppend(t, fast, []byte("x"))
		clock.Add(2 * time.Second)
		if got := mustRead(t, fast, 0, 10); len(got) != 0 {
			t.Fatalf("Read returned expired messages %v", seqsOf(got))
		}
	}
	if st := fast.Stats(); st.Expired != 3 || st.Depth != 0 {
		t.Fatalf("Stats %+v", st)
	}
	if n := s.logs.count("expired messages"); n != 3 {
		t.Fatalf("expiry logged %d times, want 3 (once for the fast queue)", n)
	}
}

func TestNoSpace(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir(), MinFreeBytes: 1 << 62})
	q := mustQueue(t, s.Store, "q", Limits{})
	kv, err := s.KV("kv")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := q.Append(ctx, []byte("x")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append below MinFreeBytes: %v, want ErrNoSpace", err)
	}
	if err := kv.Set(ctx, "k", []byte("v")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Set below MinFreeBytes: %v, want ErrNoSpace", err)
	}
	if st := s.Stats(); !st.NoSpace {
		t.Fatal("Stats.NoSpace is false")
	}
	if st := q.Stats(); st.Rejected != 1 || st.Depth != 0 {
		t.Fatalf("Stats %+v", st)
	}
	if n := s.logs.count("disk is nearly full"); n != 1 {
		t.Fatalf("no-space episode logged %d times", n)
	}

	s.minFree.Store(1 << 20) // space returned
	mustAppend(t, q, []byte("a"), []byte("b"))
	if err := kv.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if s.Stats().NoSpace || s.logs.count("disk space returned") != 1 {
		t.Fatal("recovery from low space not reported")
	}

	s.minFree.Store(1 << 62) // full again: what is stored stays, acks and deletes work
	if _, err := q.Append(ctx, []byte("c")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append: %v, want ErrNoSpace", err)
	}
	if got := seqsOf(mustRead(t, q, 0, 10)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("stored items while low on space: %v", got)
	}
	if err := q.Ack(1); err != nil {
		t.Fatalf("Ack while low on space: %v", err)
	}
	if err := kv.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete while low on space: %v", err)
	}
	checkStats(t, q, 1, 1)

	s.minFree.Store(-1) // check off
	if got := mustAppend(t, q, []byte("d")); got[0] != 3 {
		t.Fatalf("seq = %d, want 3", got[0])
	}
}

func TestKV(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Options{Dir: dir})
	ctx := context.Background()
	ret, err := s.KV("retained")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.KV("retained2")
	if err != nil {
		t.Fatal(err)
	}
	val := []byte("22.5C")
	for _, kv := range []struct{ k, v string }{
		{"sensors/1/temp", "22.5C"}, {"sensors/2/temp", "19C"}, {"sensors/10/hum", "40%"},
		{"status", ""}, {"big", strings.Repeat("b", 5000)},
	} {
		if err := ret.Set(ctx, kv.k, []byte(kv.v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Set(ctx, "sensors/1/temp", []byte("other")); err != nil {
		t.Fatal(err)
	}
	val[0] = 'X' // Set copied it
	if v, ok, err := ret.Get("sensors/1/temp"); err != nil || !ok || string(v) != "22.5C" {
		t.Fatalf("Get = %q %v %v", v, ok, err)
	}
	if v, ok, err := ret.Get("status"); err != nil || !ok || v == nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %q (nil %v) %v %v", v, v == nil, ok, err)
	}
	if _, ok, err := ret.Get("missing"); err != nil || ok {
		t.Fatalf("Get of a missing key: ok %v err %v", ok, err)
	}
	scan := func(kv *KV, prefix string) map[string]string {
		t.Helper()
		got := map[string]string{}
		var keys []string
		if err := kv.Scan(prefix, func(k string, v []byte) error {
			got[k] = string(v)
			keys = append(keys, k)
			return nil
		}); err != nil {
			t.Fatalf("Scan: %v", err)
		}
		if !slices.IsSorted(keys) {
			t.Fatalf("Scan order %v", keys)
		}
		return got
	}
	if got := scan(ret, "sensors/"); len(got) != 3 || got["sensors/10/hum"] != "40%" {
		t.Fatalf("Scan(sensors/) = %v", got)
	}
	if got := scan(other, ""); len(got) != 1 || got["sensors/1/temp"] != "other" {
		t.Fatalf("the other namespace: %v", got)
	}
	if err := ret.Delete(ctx, "sensors/2/temp"); err != nil {
		t.Fatal(err)
	}
	if err := ret.Delete(ctx, "never-set"); err != nil {
		t.Fatal(err)
	}
	stopErr := errors.New("stop")
	calls := 0
	if err := ret.Scan("", func(string, []byte) error { calls++; return stopErr }); !errors.Is(err, stopErr) || calls != 1 {
		t.Fatalf("Scan with a failing fn: %v after %d calls", err, calls)
	}
	// fn may write.
	if err := ret.Scan("sensors/1/", func(k string, v []byte) error {
		return ret.Set(ctx, k+"/copy", v)
	}); err != nil {
		t.Fatal(err)
	}
	s.stop()

	s = open(t, Options{Dir: dir})
	ret, _ = s.KV("retained")
	got := map[string]string{}
	if err := ret.Scan("", func(k string, v []byte) error { got[k] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sensors/1/temp": "22.5C", "sensors/1/temp/copy": "22.5C", "sensors/10/hum": "40%",
		"status": "", "big": strings.Repeat("b", 5000),
	}
	if len(got) != len(want) {
		t.Fatalf("after restart: %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after restart %q = %q, want %q", k, got[k], v)
		}
	}
	for _, bad := range []string{"", "a/b"} {
		if _, err := s.KV(bad); err == nil {
			t.Errorf("KV(%q) succeeded", bad)
		}
	}
}

func TestClosedAndLifecycle(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "spool" {
		t.Fatalf("Name = %q", s.Name())
	}
	if _, err := s.Queue("q", Limits{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Queue before Run: %v", err)
	}
	kv, err := s.KV("early")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Set(context.Background(), "k", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set before Run: %v", err)
	}
	if _, _, err := kv.Get("k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get before Run: %v", err)
	}

	ts := open(t, Options{Dir: dir})
	if err := ts.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
	q := mustQueue(t, ts.Store, "q", Limits{})
	mustAppend(t, q, []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Append(ctx, []byte("y")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context: %v", err)
	}
	ts.stop()
	if _, err := q.Append(context.Background(), []byte("z")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after stop: %v", err)
	}
	if _, err := q.Read(0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after stop: %v", err)
	}
	if err := q.Ack(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after stop: %v", err)
	}
	if _, err := ts.Queue("q", Limits{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Queue after stop: %v", err)
	}
	if st := q.Stats(); st.Depth != 1 {
		t.Fatalf("Stats after stop %+v", st)
	}

	// A second store on a directory in use fails to open (badger's lock).
	held := open(t, Options{Dir: dir})
	_ = held
	s2, _ := New(Options{Dir: dir})
	if err := s2.Run(context.Background()); err == nil {
		t.Fatal("a second store opened a directory in use")
	}
	if _, err := s2.Queue("q", Limits{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Queue on a store that failed to open: %v", err)
	}
}

func TestOptions(t *testing.T) {
	bad := []Options{
		{},
		{Dir: "d", Sync: "sometimes"},
		{Dir: "d", MemTableBytes: -1},
		{Dir: "d", MemTableBytes: 1000},
		{Dir: "d", ValueLogFileBytes: 1 << 40},
		{Dir: "d", ValueThresholdBytes: 4 << 20},
		{Dir: "d", SyncInterval: -time.Second},
		{Dir: "d", ExpireInterval: -time.Second},
	}
	for _, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	s, err := New(Options{Dir: "d"})
	if err != nil {
		t.Fatal(err)
	}
	o := s.opts
	if o.Sync != SyncAlways || o.MemTableBytes != 4<<20 || o.BlockCacheBytes != 8<<20 || o.ValueLogFileBytes != 64<<20 ||
		o.ValueThresholdBytes != 1<<10 || o.GCInterval != 10*time.Minute || o.MinFreeBytes != 64<<20 || o.SyncInterval != time.Second {
		t.Fatalf("defaults %+v", o)
	}
	bo := o.badgerOptions(s.log)
	// The writer syncs by itself (appends, not acks); tables small and
	// uncompressed for a small board.
	if bo.SyncWrites || bo.NumMemtables != 2 || bo.MemTableSize != 4<<20 || bo.BlockCacheSize != 8<<20 || bo.DetectConflicts ||
		bo.Compression != options.None || bo.BaseTableSize != 1<<20 || bo.TableSizeMultiplier != 1 {
		t.Fatalf("badger options %+v", bo)
	}
	s, _ = New(Options{Dir: "d", Sync: SyncPeriodic})
	if s.opts.badgerOptions(s.log).SyncWrites {
		t.Fatal("SyncPeriodic sets SyncWrites")
	}
}

func TestTooLargeAndSplitCommits(t *testing.T) {
	// 1 MiB memtables: a transaction holds about 78 KiB or 800 entries.
	s := open(t, Options{Dir: t.TempDir(), MemTableBytes: 1 << 20, ValueLogFileBytes: 1 << 20})
	q := mustQueue(t, s.Store, "q", Limits{})
	if _, err := q.Append(context.Background(), make([]byte, 1<<20)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a message as large as a value-log file: %v", err)
	}
	many := make([][]byte, 200)
	for i := range many {
		many[i] = payload(i, 900) // inline values: 180 KB in one call
	}
	if _, err := q.Append(context.Background(), many...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one call beyond a transaction: %v", err)
	}
	checkStats(t, q, 0, 0)

	// Concurrent appends that do not fit in one transaction get several.
	var wg sync.WaitGroup
	errc := make(chan error, 40)
	for g := range 40 {
		wg.Go(func() {
			if _, err := q.Append(context.Background(), many[g*5:g*5+5]...); err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	checkStats(t, q, 200, 200*900)

	// Lowering a limit drops thousands of messages on the next append,
	// over many transactions.
	for i := 0; i < 3000; i += 500 {
		batch := make([][]byte, 500)
		for j := range batch {
			batch[j] = payload(i+j, 8)
		}
		mustAppend(t, q, batch...)
	}
	q = mustQueue(t, s.Store, "q", Limits{MaxMessages: 10, OnFull: DropOldest})
	commits := s.Stats().Commits
	seqs := mustAppend(t, q, []byte("last"))
	if n := s.Stats().Commits - commits; n < 3 {
		t.Fatalf("dropping 3191 messages took %d commits; want several", n)
	}
	if got := seqsOf(mustRead(t, q, 0, 100)); !slices.Equal(got, span(seqs[0]-9, seqs[0])) {
		t.Fatalf("after the drop: %v", got)
	}
	if st := q.Stats(); st.Dropped != 3191 || st.Depth != 10 || st.Bytes != 9*8+4 {
		t.Fatalf("Stats %+v", st)
	}
}

func TestNotifyAndDrain(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir(), Sync: SyncPeriodic, SyncInterval: 5 * time.Millisecond})
	q := mustQueue(t, s.Store, "q", Limits{})
	select {
	case <-q.Notify():
		t.Fatal("notified before any append")
	default:
	}
	const producers, each = 8, 200
	var wg sync.WaitGroup
	errc := make(chan error, producers+1)
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if _, err := q.Append(context.Background(), fmt.Appendf(nil, "%d %d", p, i)); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	// A drain loop: read after the last seen seq, ack, wait on Notify.
	drained := make(chan map[int]int, 1)
	go func() {
		last := map[int]int{}
		for p := range producers {
			last[p] = -1
		}
		var after uint64
		seen := 0
		timeout := time.After(30 * time.Second)
		for seen < producers*each {
			items, err := q.Read(after, 50)
			if err != nil {
				errc <- err
				break
			}
			if len(items) == 0 {
				select {
				case <-q.Notify():
				case <-timeout:
					errc <- fmt.Errorf("drain stalled after %d items", seen)
					drained <- last
					return
				}
				continue
			}
			var acks []uint64
			for _, it := range items {
				var p, i int
				fmt.Sscanf(string(it.Data), "%d %d", &p, &i)
				if i != last[p]+1 {
					errc <- fmt.Errorf("producer %d: item %d after %d", p, i, last[p])
				}
				last[p] = i
				acks = append(acks, it.Seq)
				after = it.Seq
			}
			if err := q.Ack(acks...); err != nil {
				errc <- err
			}
			seen += len(items)
		}
		drained <- last
	}()
	wg.Wait()
	<-drained
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	st := q.Stats()
	if st.Depth != 0 || st.Acked != producers*each || st.Appended != producers*each {
		t.Fatalf("Stats %+v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Syncs == 0 {
		if time.Now().After(deadline) {
			t.Fatal("SyncPeriodic never synced")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyncNeverAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Options{Dir: dir, Sync: SyncNever})
	q := mustQueue(t, s.Store, "q", Limits{})
	mustAppend(t, q, []byte("a"), []byte("b"))
	if st := s.Stats(); st.Syncs != 0 || st.Commits == 0 {
		t.Fatalf("SyncNever stats %+v", st)
	}
	s.stop()
	s = open(t, Options{Dir: dir, Sync: SyncNever})
	q = mustQueue(t, s.Store, "q", Limits{})
	if got := seqsOf(mustRead(t, q, 0, 10)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("after reopen: %v", got)
	}
}

func TestValueLogGCKeepsLiveItems(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncPeriodic} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, Sync: policy, MemTableBytes: 1 << 20, ValueLogFileBytes: 1 << 20, GCInterval: -1}
			s := open(t, opts)
			q := mustQueue(t, s.Store, "q", Limits{})
			for i := range 60 {
				batch := make([][]byte, 10)
				for j := range batch {
					batch[j] = payload(i*10+j, 4000) // in the value log
				}
				mustAppend(t, q, batch...)
			}
			// Ack nine in ten, in four sessions: each close flushes a
			// memtable to a level-0 table, and at four of them badger
			// compacts, which fills the discard statistics that GC uses.
			for part := range uint64(4) {
				s.stop()
				s = open(t, opts)
				q = mustQueue(t, s.Store, "q", Limits{})
				var acks []uint64
				for seq := 1 + part*150; seq <= 150+part*150; seq++ {
					if seq%10 != 0 {
						acks = append(acks, seq)
					}
				}
				if err := q.Ack(acks...); err != nil {
					t.Fatal(err)
				}
			}
			s.stop()
			s = open(t, opts)
			q = mustQueue(t, s.Store, "q", Limits{})
			s.dbMu.RLock()
			db := s.db
			s.dbMu.RUnlock()
			deadline := time.Now().Add(20 * time.Second)
			for db.Levels()[0].NumTables > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("badger did not compact level 0: %+v", db.Levels()[0])
				}
				time.Sleep(10 * time.Millisecond)
			}
			vlogs := func() int {
				m, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
				return len(m)
			}
			before := vlogs()
			s.runGC(context.Background(), db)
			t.Logf("value-log files: %d before GC, %d after", before, vlogs())
			if vlogs() >= before {
				t.Errorf("GC reclaimed no value-log file (%d before, %d after)", before, vlogs())
			}
			check := func() {
				t.Helper()
				items := mustRead(t, q, 0, 1000)
				if len(items) != 60 {
					t.Fatalf("%d items after GC, want 60", len(items))
				}
				for _, it := range items {
					if it.Seq%10 != 0 || !bytes.Equal(it.Data, payload(int(it.Seq-1), 4000)) {
						t.Fatalf("item %d wrong after GC", it.Seq)
					}
				}
			}
			check()
			s.stop()
			s = open(t, opts)
			q = mustQueue(t, s.Store, "q", Limits{})
			check()
		})
	}
}

// TestAcksAreNotSynced: under SyncAlways an append or a KV set or delete
// is synced before it returns, an ack or a KV.Forget is only committed
// (its loss on a power cut means a duplicate), and an append after acks
// syncs them along.
func TestAcksAreNotSynced(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir()})
	q := mustQueue(t, s.Store, "q", Limits{})
	kv, err := s.KV("ns")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(name string, wantSyncs uint64, fn func() error) {
		t.Helper()
		before := s.Stats()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after := s.Stats()
		if after.Commits == before.Commits {
			t.Fatalf("%s: nothing committed", name)
		}
		if got := after.Syncs - before.Syncs; got != wantSyncs {
			t.Fatalf("%s: %d syncs, want %d", name, got, wantSyncs)
		}
	}
	step("append", 1, func() error { _, err := q.Append(ctx, []byte("a"), []byte("b")); return err })
	step("ack", 0, func() error { return q.Ack(1) })
	step("set", 1, func() error { return kv.Set(ctx, "k", []byte("v")) })
	step("forget", 0, func() error { return kv.Forget(ctx, "k") })
	step("set again", 1, func() error { return kv.Set(ctx, "k", []byte("v")) })
	step("delete", 1, func() error { return kv.Delete(ctx, "k") })
	step("set many", 1, func() error {
		return kv.SetMany(ctx, []string{"a", "b", "c"}, [][]byte{[]byte("1"), []byte("2"), nil})
	})
	for key, want := range map[string]string{"a": "1", "b": "2", "c": ""} {
		if v, ok, err := kv.Get(key); !ok || err != nil || string(v) != want {
			t.Fatalf("Get(%q) after SetMany = %q %v %v", key, v, ok, err)
		}
	}
	if err := kv.SetMany(ctx, []string{"x"}, nil); err == nil {
		t.Fatal("SetMany with more keys than values succeeded")
	}
	if _, ok, err := kv.Get("k"); ok || err != nil {
		t.Fatalf("Get after Delete: %v %v", ok, err)
	}
	if got := seqsOf(mustRead(t, q, 0, 10)); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after the unsynced ack: %v", got)
	}
}

// TestDropQueue drops a queue with its messages (more than one
// transaction's worth) and a KV namespace, leaving the others alone; a
// dropped queue comes back empty, with sequence numbers from 1, after a
// restart too.
func TestDropQueue(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, MemTableBytes: 1 << 20}
	s := open(t, opts)
	gone := mustQueue(t, s.Store, "gone", Limits{})
	kept := mustQueue(t, s.Store, "kept", Limits{})
	for range 10 {
		batch := make([][]byte, 500)
		for j := range batch {
			batch[j] = []byte("message")
		}
		mustAppend(t, gone, batch...)
	}
	mustAppend(t, kept, []byte("k"))
	kv, _ := s.KV("ns")
	other, _ := s.KV("other")
	ctx := context.Background()
	for _, k := range []*KV{kv, other} {
		if err := k.Set(ctx, "a", []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	if st := gone.Stats(); st.Newest.IsZero() || st.Newest.Before(st.Oldest) {
		t.Fatalf("Newest %v, Oldest %v", st.Newest, st.Oldest)
	}
	n, err := s.DropQueue(ctx, "gone")
	if err != nil || n != 5000 {
		t.Fatalf("DropQueue = %d, %v; want 5000", n, err)
	}
	if err := s.DropKV(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		if slices.Contains(s.QueueNames(), "gone") {
			t.Fatalf("queues after the drop: %v", s.QueueNames())
		}
		if _, ok, _ := kv.Get("a"); ok {
			t.Fatal("the dropped namespace still has its key")
		}
		if _, ok, _ := other.Get("a"); !ok {
			t.Fatal("the other namespace lost its key")
		}
		if got := seqsOf(mustRead(t, kept, 0, 10)); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("kept queue: %v", got)
		}
	}
	check()
	s.stop()
	s = open(t, opts)
	kept = mustQueue(t, s.Store, "kept", Limits{})
	kv, _ = s.KV("ns")
	other, _ = s.KV("other")
	check()
	q := mustQueue(t, s.Store, "gone", Limits{})
	if seqs := mustAppend(t, q, []byte("new")); !slices.Equal(seqs, []uint64{1}) {
		t.Fatalf("a dropped queue's new message got %v", seqs)
	}
}
