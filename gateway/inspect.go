package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/outpost-gw/outpost/spool"
)

// Errors of InspectSpool, for errors.Is.
var (
	// ErrNoSpool: the data directory holds no spool (the gateway never ran
	// there).
	ErrNoSpool = spool.ErrNoStore
	// ErrSpoolNeedsRecovery: the gateway stopped without closing its spool
	// (killed, or a power cut), so it cannot be read read-only; see
	// InspectOptions.Recover.
	ErrSpoolNeedsRecovery = spool.ErrNeedsRecovery
	// ErrNoStatus: a running gateway holds the spool but has not written
	// its status file (yet).
	ErrNoStatus = errors.New("no status from the running gateway")
)

// InspectOptions tune InspectSpool.
type InspectOptions struct {
	// Samples is how many messages of each quarantine queue to summarize
	// (topic, QoS, size, reason, never the payload); 0 means none. A
	// running gateway's status holds at most StatusSamples.
	Samples int
	// Recover lets InspectSpool replay a spool that was not closed cleanly
	// before it reads it: it opens the spool read-write as the gateway
	// does at its start, which writes what that start would write.
	// Without it such a spool gives ErrSpoolNeedsRecovery.
	Recover bool
}

// SpoolReport is what InspectSpool found.
type SpoolReport struct {
	// Live is true when a running gateway holds the spool: Status is then
	// what that gateway last wrote to its status file (Status.Time says
	// when). Otherwise the spool was read directly, and Status holds its
	// Spool part, taken at Status.Time.
	Live   bool
	Status Status
	// Recovered is true when the spool was replayed first (see
	// InspectOptions.Recover).
	Recovered bool
}

// InspectSpool reports the spool of the data directory of cfg: every queue
// with its depth, bytes, oldest message and sequence range, which uplink
// and priority class it belongs to, and what the quarantines hold. On a
// stopped gateway it opens the spool read-only and runs nothing (a gateway
// cannot start on the folder meanwhile). While a gateway runs there,
// badger's lock keeps the spool closed to others, and InspectSpool returns
// the status that gateway writes every few seconds to StatusFile instead.
func InspectSpool(ctx context.Context, cfg *Config, opts InspectOptions) (*SpoolReport, error) {
	sopts := cfg.SpoolOptions()
	sn, err := spool.OpenSnapshot(sopts)
	rep := &SpoolReport{}
	if errors.Is(err, spool.ErrNeedsRecovery) && opts.Recover {
		if err := spool.Recover(ctx, sopts); err != nil {
			return nil, fmt.Errorf("recover the spool: %w", err)
		}
		rep.Recovered = true
		sn, err = spool.OpenSnapshot(sopts)
	}
	if errors.Is(err, spool.ErrLocked) {
		return readStatusFile(cfg.DataDir, opts.Samples)
	}
	if err != nil {
		return nil, err
	}
	defer sn.Close()

	rep.Status = Status{Time: time.Now(), Spool: SpoolStatus{Dir: sopts.Dir, Stats: sn.Stats()}}
	for _, name := range sn.QueueNames() {
		qs, ok, err := sn.QueueStats(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		q := newQueueStatus(name, qs)
		q.Orphan = classesOf(cfg).orphan(name)
		if q.Quarantine && opts.Samples > 0 && q.Depth > 0 {
			items, err := sn.Read(name, 0, opts.Samples)
			if err != nil {
				return nil, err
			}
			q.Quarantined = quarantined(items)
		}
		rep.Status.Spool.Queues = append(rep.Status.Spool.Queues, q)
	}
	return rep, nil
}

// readStatusFile reads the status a running gateway wrote in dataDir.
func readStatusFile(dataDir string, samples int) (*SpoolReport, error) {
	path := StatusFile(dataDir)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the spool is in use by a running gateway, and %s is missing: %w", path, ErrNoStatus)
	}
	if err != nil {
		return nil, fmt.Errorf("the spool is in use by a running gateway: %w", err)
	}
	rep := &SpoolReport{Live: true}
	if err := json.Unmarshal(data, &rep.Status); err != nil {
		return nil, fmt.Errorf("the spool is in use by a running gateway, and %s is not its status: %w", path, err)
	}
	for i := range rep.Status.Spool.Queues {
		q := &rep.Status.Spool.Queues[i]
		q.Quarantined = q.Quarantined[:min(len(q.Quarantined), max(samples, 0))]
	}
	return rep, nil
}
