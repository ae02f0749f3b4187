// Package spool is Outpost's durable store, on badger: FIFO queues with
// acknowledgement, size and age limits and a drop policy, for the QoS 1/2
// messages that uplink rules export, and KV namespaces that back the
// broker's persistence (retained messages, persistent sessions).
//
// # Shape
//
// New validates Options; Run opens badger in Options.Dir, recovers every
// queue's state, closes Ready and serves until its context is done, then
// handles the requests it already took, syncs, closes badger and returns.
// Queue and KV hand out the queues and namespaces.
//
// # Group commit
//
// Every write (Append, Ack, KV Set and Delete, drops and expiry) goes to one
// writer goroutine. It takes all requests that queued up while it committed
// the previous ones, from all queues and namespaces, applies them in one
// badger transaction and commits (and syncs) once; then each caller returns.
// One Append call is atomic. A queue's meta record (next sequence number,
// depth, bytes) is written in the same transaction as its items, so Run
// recovers depth and bytes without reading the items, and a crash never
// leaves them apart.
//
// # Sync policies and what a power cut loses
//
// Nothing that Append or Set returned nil for is lost when the process is
// killed (kill -9, a panic, the OOM killer) under any policy: badger writes
// through memory maps, and the kernel keeps those pages. The policies differ
// when power is lost or the kernel crashes:
//
//   - SyncAlways (the default): each commit that appends or sets is synced
//     (msync of the write-ahead logs and value log) before its callers
//     return, so what Outpost acknowledged survives a power cut, provided
//     the storage honours flushes (some SD cards and USB bridges do not).
//     Concurrent callers share one sync. Removals (Ack, KV.Forget, drops
//     and expiry) are committed without a sync of their own: they ride
//     along with the next synced commit, so a power cut may undo the last
//     of them, which brings messages back to be sent again (a duplicate,
//     never a loss). Value-log GC syncs its moves before the old file goes.
//   - SyncPeriodic ("interval"): commits return before the sync; a sync runs
//     every SyncInterval. A power cut loses up to SyncInterval of
//     acknowledged writes, plus those of a full memtable still being flushed
//     to a table (badger syncs only the newest write-ahead log). A value-log
//     GC keeps the old file until its moves are synced.
//   - SyncNever: the kernel writes back when it likes (typically within 30
//     seconds on Linux); a power cut loses whatever it had not written. Run
//     syncs on a clean stop.
//
// After a power cut badger replays its write-ahead log and drops torn
// transactions whole, so a queue's items and meta record stay consistent
// under every policy; only how much is lost differs.
//
// # Limits
//
// A queue's Limits bound its messages and payload bytes. At the bound,
// RejectNew (the default) refuses new messages with ErrFull, and DropOldest
// removes messages at the head to make room. MaxAge expires messages at the
// head. Every drop, expiry and refusal is counted in QueueStats; drops and
// refusals are logged once per episode (when the first happens and when the
// queue has room again), expiries at most once a minute per queue. Below
// Options.MinFreeBytes of free disk, appends and KV sets fail with ErrNoSpace
// while acks and deletes go on; writing resumes when space returns.
//
// # Inspection
//
// OpenSnapshot opens a store read-only, without the writer, for tools that
// look at the data directory of a stopped gateway: queue names, depth,
// bytes, oldest message, sequence range, and the items. badger's directory
// lock keeps it from opening a store that a running Store holds
// (ErrLocked). A store that was not closed cleanly needs its logs replayed
// first (ErrNeedsRecovery): Recover does what Run would do at its start,
// and closes again.
//
// # Keys
//
// Queue items are under q/<queue>/<seq> (seq 8 bytes big-endian), queue meta
// records under m/<queue>, KV entries under k/<namespace>/<key>. Values
// returned by Read, Get and Scan are copies the caller owns.
//
// # Memory
//
// badger's options are sized for a 1 GiB board (see Options), not badger's
// server defaults: 4 MiB memtables, 1 MiB uncompressed tables at every
// level (badger builds each table in memory), small caches. badger reads
// and writes its tables and value log through memory maps, so every page
// it touched would count in the process's resident set although the kernel
// may drop it at any time; on Linux 5.4 and later the spool asks the kernel
// every Options.TrimInterval to page those mappings out (MADV_PAGEOUT).
// Reads fault pages back in from the page cache or the card. When a burst
// of writes ends, the spool returns the heap that badger's table builders
// left behind to the system (debug.FreeOSMemory). The Go heap follows
// GOMEMLIMIT (the .deb's unit sets one); a soft limit below 100 MiB kept
// the heap near 65 MiB while 1,000,000 messages were spooled, at the same
// append rate.
//
// spool imports only the standard library and badger.
package spool
