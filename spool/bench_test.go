package spool

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func openBench(b *testing.B, opts Options) *Store {
	b.Helper()
	opts.Dir = b.TempDir()
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			b.Error(err)
		}
	})
	return s
}

// BenchmarkAppendSyncAlways: 64 appenders, one 128-byte message per call,
// SyncAlways. One op is one round in which every appender appends once.
func BenchmarkAppendSyncAlways(b *testing.B) {
	const appenders = 64
	s := openBench(b, Options{})
	q, err := s.Queue("bench", Limits{})
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 128)
	syncs := s.Stats().Syncs
	b.ReportAllocs()
	start := time.Now()
	var failed sync.Once
	for b.Loop() {
		var wg sync.WaitGroup
		for range appenders {
			wg.Go(func() {
				if _, err := q.Append(context.Background(), msg); err != nil {
					failed.Do(func() { b.Error(err) })
				}
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	n := float64(b.N * appenders)
	b.ReportMetric(n/elapsed.Seconds(), "appends/s")
	b.ReportMetric(n/float64(s.Stats().Syncs-syncs), "appends/sync")
	b.SetBytes(appenders * int64(len(msg)))
}

// BenchmarkAppendNever: one appender, one 128-byte message per call,
// SyncNever: the cost of the spool and badger without the disk.
func BenchmarkAppendNever(b *testing.B) {
	s := openBench(b, Options{Sync: SyncNever})
	q, err := s.Queue("bench", Limits{})
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 128)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Append(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAck: a drain loop reads 64 messages of 128 bytes and acks
// them (SyncNever). One op is one message; the refills are not timed.
func BenchmarkReadAck(b *testing.B) {
	const batch = 64
	s := openBench(b, Options{Sync: SyncNever})
	q, err := s.Queue("bench", Limits{})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([][]byte, 512)
	for i := range msgs {
		msgs[i] = make([]byte, 128)
	}
	b.SetBytes(128)
	b.ReportAllocs()
	var after uint64
	var items []Item
	seqs := make([]uint64, 0, batch)
	i := 0
	for b.Loop() {
		if len(items) == 0 {
			items, err = q.Read(after, batch)
			if err != nil {
				b.Fatal(err)
			}
			if len(items) == 0 {
				b.StopTimer()
				if _, err := q.Append(context.Background(), msgs...); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				items, err = q.Read(after, batch)
				if err != nil || len(items) == 0 {
					b.Fatal("nothing to read after a refill", err)
				}
			}
		}
		seqs = append(seqs, items[0].Seq)
		after = items[0].Seq
		items = items[1:]
		if i++; len(items) == 0 {
			if err := q.Ack(seqs...); err != nil {
				b.Fatal(err)
			}
			seqs = seqs[:0]
		}
	}
}
