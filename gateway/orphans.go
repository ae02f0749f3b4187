package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/outpost-gw/outpost/spool"
	"github.com/outpost-gw/outpost/uplink"
)

// Queues of removed uplinks. A spool queue is an orphan when it belongs to
// an uplink that is no longer configured. Its messages will not drain. (A
// queue of a configured uplink is none: one whose priority class no
// out-rule has any more drains after the configured classes and is then
// dropped by the uplink; see uplink.Deps.QueueNames.) At start the gateway logs each
// orphan (name, depth, bytes, oldest and newest message) and marks it in
// the status (QueueStatus.Orphan, `outpost spool`). An orphan is kept,
// so that putting the uplink or the rule back drains it, until its newest
// message is older than [spool] orphan_keep (default 7 days; "0s" keeps
// orphans for ever): then the gateway drops it at its start, with a
// warning that counts the messages. An empty orphan goes at once. `outpost spool drop QUEUE` drops one
// at once (on a stopped gateway). Dropping the last queue of an uplink
// that is not configured also drops its QoS 2 flight records.

// ErrSpoolLocked: a running gateway holds the spool (DropSpoolQueues).
var ErrSpoolLocked = spool.ErrLocked

// DefaultOrphanKeep is the default of [spool] orphan_keep.
const DefaultOrphanKeep = 7 * 24 * time.Hour

// uplinkClasses are the configured uplinks and, for each, the priority
// classes of its out-rules.
type uplinkClasses map[string][]int

func (g *Gateway) uplinkClasses() uplinkClasses {
	u := uplinkClasses{}
	for _, br := range g.bridges {
		name := strings.TrimPrefix(br.Name(), "uplink/")
		u[name] = []int{}
		for _, c := range br.Stats().Classes {
			u[name] = append(u[name], c.Priority)
		}
	}
	return u
}

// classesOf returns the configured uplinks of cfg and their out-rules'
// priority classes, for a gateway that is not running.
func classesOf(cfg *Config) uplinkClasses {
	u := uplinkClasses{}
	for _, up := range cfg.Uplinks {
		u[up.Name] = []int{}
		for _, r := range up.Rules {
			if r.Direction == uplink.Out && !slices.Contains(u[up.Name], r.Priority) {
				u[up.Name] = append(u[up.Name], r.Priority)
			}
		}
	}
	return u
}

// orphan reports whether the queue called name is an orphan.
func (u uplinkClasses) orphan(name string) bool {
	bridge, _, _, ok := uplink.ParseQueueName(name)
	if !ok {
		return false
	}
	_, configured := u[bridge]
	return !configured
}

// checkOrphanQueues reports the orphans in the spool and drops those whose
// newest message is older than keep (0: none). The gateway calls it once
// every component started, before it says it is ready.
func (g *Gateway) checkOrphanQueues(ctx context.Context, keep time.Duration) {
	if g.store == nil {
		return
	}
	u := g.uplinkClasses()
	now := time.Now()
	var dropped []string
	for _, name := range g.store.QueueNames() {
		if !u.orphan(name) {
			continue
		}
		st, ok := g.store.QueueStats(name)
		if !ok {
			continue
		}
		last := st.Newest
		if st.Depth == 0 || (keep > 0 && now.Sub(last) > keep) {
			n, err := g.store.DropQueue(ctx, name)
			if err != nil {
				g.log.Error("dropping an orphan spool queue failed", "queue", name, "err", err)
				continue
			}
			if n > 0 {
				g.log.Warn("dropped the spool queue of a removed uplink or rule: its newest message was older than orphan_keep",
					"queue", name, "messages", n, "newest", last, "orphan_keep", keep)
			}
			dropped = append(dropped, name)
			continue
		}
		args := []any{"queue", name, "messages", st.Depth, "bytes", st.Bytes, "oldest", st.Oldest, "newest", last}
		if keep > 0 {
			args = append(args, "dropped_after", last.Add(keep).Format(time.RFC3339))
		}
		g.log.Warn("spool queue of a removed uplink or rule: its messages do not drain; put the uplink or rule back, or drop it with \"outpost spool drop\"", args...)
	}
	dropFlights(ctx, g.store, u, dropped, g.log)
}

// dropFlights drops the QoS 2 flight records of the uplinks of the dropped
// queues that are not configured and have no queue left. (A configured
// uplink keeps its records: one whose message is gone only releases its
// packet identifier.)
func dropFlights(ctx context.Context, store *spool.Store, u uplinkClasses, dropped []string, log *slog.Logger) {
	left := map[string]bool{}
	for _, name := range store.QueueNames() {
		if b, _, _, ok := uplink.ParseQueueName(name); ok {
			left[b] = true
		}
	}
	done := map[string]bool{}
	for _, name := range dropped {
		b, _, _, ok := uplink.ParseQueueName(name)
		if _, configured := u[b]; !ok || configured || left[b] || done[b] {
			continue
		}
		done[b] = true
		if err := store.DropKV(ctx, FlightsNamespace(b)); err != nil {
			log.Error("dropping the QoS 2 flight records of a removed uplink failed", "uplink", b, "err", err)
		}
	}
}

// DropSpoolQueues drops the named spool queues of the data directory of
// cfg, with their messages, for `outpost spool drop`: the gateway must be
// stopped (a running one holds the spool: ErrSpoolLocked). It returns how
// many messages each held; a queue that does not exist is an error.
func DropSpoolQueues(ctx context.Context, cfg *Config, names []string, log *slog.Logger) ([]int64, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := cfg.SpoolOptions()
	opts.Logger = log
	opts.GCInterval, opts.TrimInterval = -1, -1
	if err := spool.CheckStore(opts.Dir); err != nil {
		return nil, err
	}
	store, err := spool.New(opts)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- store.Run(rctx) }()
	stop := func() error {
		cancel()
		return <-done
	}
	select {
	case <-store.Ready():
	case err := <-done:
		cancel()
		return nil, err
	}
	var counts []int64
	var dropped []string
	for _, name := range names {
		if !slices.Contains(store.QueueNames(), name) {
			return counts, errors.Join(fmt.Errorf("no spool queue %q", name), stop())
		}
		n, err := store.DropQueue(ctx, name)
		if err != nil {
			return counts, errors.Join(err, stop())
		}
		counts = append(counts, n)
		dropped = append(dropped, name)
		log.Info("dropped spool queue", "queue", name, "messages", n)
	}
	dropFlights(ctx, store, classesOf(cfg), dropped, log)
	return counts, stop()
}
