package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// SyncPolicy says when committed writes are forced to stable storage. The
// package documentation tells what each policy can lose on a power cut.
type SyncPolicy string

const (
	// SyncAlways syncs every commit before the callers in it return. The
	// empty policy means SyncAlways.
	SyncAlways SyncPolicy = "always"
	// SyncPeriodic syncs every Options.SyncInterval: fewer writes to the SD
	// card, a bounded loss window on a power cut.
	SyncPeriodic SyncPolicy = "interval"
	// SyncNever leaves write-back to the operating system.
	SyncNever SyncPolicy = "never"
)

// Defaults for the zero values of Options, sized for a board with 1 GiB of
// RAM and an SD card (badger's own defaults are sized for servers).
const (
	DefaultSyncInterval        = time.Second
	DefaultMemTableBytes       = 4 << 20
	DefaultBlockCacheBytes     = 8 << 20
	DefaultIndexCacheBytes     = 4 << 20
	DefaultValueLogFileBytes   = 64 << 20
	DefaultValueThresholdBytes = 1 << 10
	DefaultGCInterval          = 10 * time.Minute
	DefaultExpireInterval      = 30 * time.Second
	DefaultMinFreeBytes        = 64 << 20
	DefaultTrimInterval        = time.Second
)

// Options configure a Store. The zero value of every field but Dir is
// useful.
type Options struct {
	// Dir is the data directory; Run creates it when it is missing.
	// Required.
	Dir string
	// Sync is the sync policy; "" means SyncAlways.
	Sync SyncPolicy
	// SyncInterval is the period of SyncPeriodic; 0 means 1s. Ignored by the
	// other policies.
	SyncInterval time.Duration

	// MemTableBytes is the size of each of badger's two memtables (and of
	// their write-ahead logs), and of the level-0 tables flushed from them,
	// which badger builds in memory; 0 means 4 MiB. It also bounds one commit:
	// badger refuses a transaction larger than 15% of it, so one Append of
	// small messages carries at most about 7% of it (ErrTooLarge beyond).
	MemTableBytes int64
	// BlockCacheBytes is badger's block cache; 0 means 8 MiB.
	BlockCacheBytes int64
	// IndexCacheBytes bounds the memory for table indexes and bloom
	// filters; 0 means 4 MiB.
	IndexCacheBytes int64
	// ValueLogFileBytes is the size of one value-log file, the unit that
	// value-log GC reclaims, and the largest message the spool stores; 0
	// means 64 MiB. badger maps every value-log file into memory: on 32-bit
	// ARM the address space, not RAM, bounds the spool to well under 2 GiB
	// of value log.
	ValueLogFileBytes int64
	// ValueThresholdBytes: values of at least this size (payload plus an
	// 8-byte header) go to the value log, smaller ones stay in the LSM tree;
	// 0 means 1 KiB. At most 15% of MemTableBytes.
	ValueThresholdBytes int64

	// GCInterval is the period of value-log garbage collection; 0 means
	// 10m, negative turns it off.
	GCInterval time.Duration
	// ExpireInterval is how often queues with a MaxAge drop expired messages
	// from their heads (Read also does it, and never returns an expired
	// message); 0 means 30s.
	ExpireInterval time.Duration
	// MinFreeBytes: appends and KV sets fail with ErrNoSpace while the file
	// system holding Dir has less free space than this (acks and deletes
	// still work, and writing resumes by itself when space returns). 0 means
	// 64 MiB; negative turns the check off. Keep it above what badger may
	// write between two checks (a memtable flush, a compaction, a value-log
	// file): badger writes through memory maps, and a full file system makes
	// such a write fail with SIGBUS, not with an error.
	MinFreeBytes int64

	// TrimInterval is how often the spool asks the kernel to page out the
	// parts of badger's table and value-log files that this process has
	// mapped (Linux 5.4 and later; see the package documentation), and
	// checks whether writing stopped after a burst: then it runs a garbage
	// collection and returns the freed heap to the system at once
	// (debug.FreeOSMemory), instead of minutes later. 0 means 1s, negative
	// turns both off.
	TrimInterval time.Duration

	// Logger receives the spool's logs; nil discards them.
	Logger *slog.Logger
}

// withDefaults validates o and returns it with zero values replaced by the
// defaults.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Dir == "" {
		bad("Dir is required")
	}
	switch o.Sync {
	case "":
		o.Sync = SyncAlways
	case SyncAlways, SyncPeriodic, SyncNever:
	default:
		bad("Sync %q: want %q, %q or %q", o.Sync, SyncAlways, SyncPeriodic, SyncNever)
	}
	dflt := func(name string, v *int64, d int64) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			bad("%s %d is negative", name, *v)
		}
	}
	dflt("MemTableBytes", &o.MemTableBytes, DefaultMemTableBytes)
	dflt("BlockCacheBytes", &o.BlockCacheBytes, DefaultBlockCacheBytes)
	dflt("IndexCacheBytes", &o.IndexCacheBytes, DefaultIndexCacheBytes)
	dflt("ValueLogFileBytes", &o.ValueLogFileBytes, DefaultValueLogFileBytes)
	dflt("ValueThresholdBytes", &o.ValueThresholdBytes, DefaultValueThresholdBytes)
	if o.MemTableBytes > 0 && o.MemTableBytes < 1<<20 {
		bad("MemTableBytes %d is below 1 MiB", o.MemTableBytes)
	}
	if o.ValueLogFileBytes > 0 && (o.ValueLogFileBytes < 1<<20 || o.ValueLogFileBytes >= 2<<30) {
		bad("ValueLogFileBytes %d is outside [1 MiB, 2 GiB)", o.ValueLogFileBytes)
	}
	if o.ValueThresholdBytes > 0 && o.ValueThresholdBytes > maxBatchBytes(o.MemTableBytes) {
		bad("ValueThresholdBytes %d is above 15%% of MemTableBytes", o.ValueThresholdBytes)
	}
	if o.SyncInterval < 0 {
		bad("SyncInterval %v is negative", o.SyncInterval)
	} else if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.ExpireInterval < 0 {
		bad("ExpireInterval %v is negative", o.ExpireInterval)
	} else if o.ExpireInterval == 0 {
		o.ExpireInterval = DefaultExpireInterval
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.TrimInterval == 0 {
		o.TrimInterval = DefaultTrimInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("spool: invalid options: %w", err)
	}
	return o, nil
}

// maxBatchBytes is badger's limit on one transaction (15% of a memtable).
func maxBatchBytes(memTableBytes int64) int64 { return memTableBytes * 15 / 100 }

// badgerOptions translates o (with defaults) into badger's options.
func (o Options) badgerOptions(log *slog.Logger) badger.Options {
	bo := badger.DefaultOptions(o.Dir).
		WithLogger(badgerLogger{log}).
		WithMetricsEnabled(false).
		// The writer syncs itself, after the commits that must be durable
		// (appends, KV sets and deletes) and not after removals (acks,
		// drops, expiry), whose loss on a power cut only brings a message
		// back. Value-log GC syncs its moves before the old file goes.
		WithSyncWrites(false).
		WithDetectConflicts(false). // one writer goroutine
		WithNumVersionsToKeep(1).
		WithMemTableSize(o.MemTableBytes).
		WithNumMemtables(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(8).
		WithNumCompactors(2).
		WithBlockCacheSize(o.BlockCacheBytes).
		WithIndexCacheSize(o.IndexCacheBytes).
		WithValueLogFileSize(o.ValueLogFileBytes).
		WithValueThreshold(o.ValueThresholdBytes).
		WithCompactL0OnClose(false).
		// Memory for a 1 GiB board. badger builds each table in memory, in
		// buffers of about twice the table's size, runs up to eight builders
		// per compaction and keeps up to eight spent buffers for reuse; with
		// its default 2 MiB tables growing twofold per level, and snappy
		// compression (a second buffer per block, and a block cache it then
		// needs), 1,000,000 spooled messages took 400 MiB of heap. Small
		// tables of one size at every level, uncompressed (queue items are
		// small and unique: snappy saved little), keep it near 50 MiB.
		WithCompression(options.None).
		WithBaseTableSize(1 << 20)
	bo.TableSizeMultiplier = 1 // no With method in badger v4
	return bo
}

// badgerLogger sends badger's logs to slog. badger's Info level is chatty
// (table and compaction chatter), so it goes to Debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) logf(level slog.Level, format string, args []any) {
	if !b.l.Enabled(context.Background(), level) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	for len(msg) > 0 && (msg[len(msg)-1] == '\n' || msg[len(msg)-1] == ' ') {
		msg = msg[:len(msg)-1]
	}
	b.l.Log(context.Background(), level, "badger: "+msg)
}

func (b badgerLogger) Errorf(f string, a ...any)   { b.logf(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.logf(slog.LevelWarn, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.logf(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.logf(slog.LevelDebug, f, a) }
