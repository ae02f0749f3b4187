package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/mqttsn"
	"github.com/outpost-gw/outpost/serialbus"
	"github.com/outpost-gw/outpost/spool"
	"github.com/outpost-gw/outpost/uplink"
)

// Status is a snapshot of a gateway: its broker, its spool and its
// uplinks. A running gateway writes it as JSON to StatusFile, where
// `outpost spool` reads it (InspectSpool); its fields are named as in Go.
type Status struct {
	Time    time.Time // when it was taken
	PID     int       // of the gateway's process
	Version string
	Broker  localbroker.Stats
	Spool   SpoolStatus
	Uplinks []UplinkStatus // in the order of the config
	MQTTSN  *mqttsn.Stats  `json:",omitempty"` // nil when MQTT-SN is off
	Serial  []SerialStatus `json:",omitempty"` // in the order of the config
}

// SerialStatus is the state of one serial link: up or down, device,
// counters, and the last RSSI/SNR per radio node where the framing has them.
type SerialStatus struct {
	Name string
	serialbus.Stats
}

// UplinkStatus is the state of one uplink.
type UplinkStatus struct {
	Name string
	uplink.Stats
}

// SpoolStatus describes the spool and each of its queues.
type SpoolStatus struct {
	Dir string
	spool.Stats
	Queues []QueueStatus // sorted by name
}

// QueueStatus describes one spool queue, and whose it is.
type QueueStatus struct {
	Name string
	// Uplink is the uplink the queue belongs to ("" for none): one of its
	// priority classes (Priority), or its quarantine (Quarantine).
	Uplink     string
	Priority   int
	Quarantine bool
	// Orphan: the queue's uplink is no longer configured, so its messages
	// do not drain (see [spool] orphan_keep). A queue of a priority class
	// that its uplink no longer has is not an orphan: the uplink drains it
	// after its configured classes (uplink.ClassStats.Leftover).
	Orphan bool `json:",omitempty"`
	spool.QueueStats
	// Quarantined lists the first messages of a quarantine queue (at most
	// StatusSamples in the status file), without their payloads.
	Quarantined []QuarantinedMessage `json:",omitempty"`
}

// QuarantinedMessage summarizes a message that a cloud refused for good:
// never its payload.
type QuarantinedMessage struct {
	Seq        uint64
	Time       time.Time // when it was quarantined
	Topic      string    // the cloud topic
	QoS        byte
	Size       int    // payload bytes
	Reason     byte   // the cloud's reason code (0x80 and above); 0 if unknown
	ReasonText string // e.g. "not authorized"
	Error      string `json:",omitempty"` // the record could not be decoded
}

// StatusSamples is how many quarantined messages per uplink Status lists.
const StatusSamples = 10

// statusInterval is how often a running gateway looks at its status, and
// rewrites StatusFile when something changed (a variable for tests);
// StatusHeartbeat bounds how long it leaves the file unchanged, so that
// its age tells the gateway is alive.
var statusInterval = 5 * time.Second

// StatusHeartbeat is the longest a running gateway leaves its status file
// unchanged.
const StatusHeartbeat = time.Minute

// StatusFile is where a running gateway with data directory dataDir keeps
// its Status: "status.json" in dataDir.
func StatusFile(dataDir string) string { return filepath.Join(dataDir, "status.json") }

// Status returns a snapshot of the gateway: the broker's counters, the
// spool's queues (with the first StatusSamples messages of each
// quarantine) and each uplink's state. It may be called at any time; before
// Ready some parts are empty.
func (g *Gateway) Status() Status {
	st := Status{Time: time.Now(), PID: os.Getpid(), Version: localbroker.Version}
	if g.broker != nil {
		st.Broker = g.broker.Stats()
	}
	st.Spool.Dir = g.spoolDir
	if g.store != nil {
		st.Spool.Stats = g.store.Stats()
		classes := g.uplinkClasses()
		for _, name := range g.store.QueueNames() {
			qs, ok := g.store.QueueStats(name)
			if !ok {
				continue
			}
			q := newQueueStatus(name, qs)
			q.Orphan = classes.orphan(name)
			st.Spool.Queues = append(st.Spool.Queues, q)
		}
	}
	if g.mqttsn != nil {
		sn := g.mqttsn.Stats()
		st.MQTTSN = &sn
	}
	for _, l := range g.links {
		st.Serial = append(st.Serial, SerialStatus{Name: l.Name(), Stats: l.Stats()})
	}
	for _, br := range g.bridges {
		us := UplinkStatus{Name: strings.TrimPrefix(br.Name(), "uplink/"), Stats: br.Stats()}
		st.Uplinks = append(st.Uplinks, us)
		if us.QuarantineDepth == 0 {
			continue
		}
		items, err := br.ReadQuarantine(0, StatusSamples)
		if err != nil {
			continue
		}
		for i := range st.Spool.Queues {
			if q := &st.Spool.Queues[i]; q.Quarantine && q.Uplink == us.Name {
				q.Quarantined = quarantined(items)
			}
		}
	}
	return st
}

func newQueueStatus(name string, qs spool.QueueStats) QueueStatus {
	q := QueueStatus{Name: name, QueueStats: qs}
	if b, prio, quar, ok := uplink.ParseQueueName(name); ok {
		q.Uplink, q.Priority, q.Quarantine = b, prio, quar
	}
	return q
}

// quarantined summarizes quarantined spool items.
func quarantined(items []spool.Item) []QuarantinedMessage {
	out := make([]QuarantinedMessage, 0, len(items))
	for _, it := range items {
		m := QuarantinedMessage{Seq: it.Seq, Time: it.Time}
		rec, err := uplink.DecodeRecord(it.Data)
		if err != nil {
			m.Error = err.Error()
		} else {
			m.Topic, m.QoS, m.Size, m.Reason = rec.Topic, rec.QoS, len(rec.Payload), rec.Reason
			if rec.Reason != 0 {
				m.ReasonText = packet.ReasonCode(rec.Reason).String()
			}
		}
		out = append(out, m)
	}
	return out
}

// statusWriter is the component that keeps StatusFile up to date while the
// gateway runs, and removes it at a clean stop.
type statusWriter struct {
	g        *Gateway
	path     string
	interval time.Duration
	log      *slog.Logger

	last    []byte // the last status written, without its time
	written time.Time
	failing bool
}

func (w *statusWriter) Name() string { return "status" }

// Run writes the status at once, then every interval when it changed (or
// StatusHeartbeat passed), until ctx is done.
func (w *statusWriter) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.update()
		select {
		case <-ctx.Done():
			if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				w.log.Warn("cannot remove the status file", "path", w.path, "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}

// update writes the status when it changed. The file is replaced
// atomically (a new file renamed over it), and not synced: it says how
// things are, and the next one follows within seconds.
func (w *statusWriter) update() {
	st := w.g.Status()
	now, uptime := st.Time, st.Broker.Uptime
	st.Time, st.Broker.Uptime = time.Time{}, 0 // they always change
	key, err := json.Marshal(st)
	if err != nil {
		w.log.Error("cannot encode the status", "err", err)
		return
	}
	if bytes.Equal(key, w.last) && now.Sub(w.written) < StatusHeartbeat {
		return
	}
	st.Time, st.Broker.Uptime = now, uptime
	data, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = writeFileAtomic(w.path, append(data, '\n'))
	}
	if err != nil {
		if !w.failing {
			w.log.Warn("cannot write the status file; `outpost spool` cannot show a running gateway", "path", w.path, "err", err)
			w.failing = true
		}
		return
	}
	if w.failing {
		w.log.Info("status file written again", "path", w.path)
		w.failing = false
	}
	w.last, w.written = key, now
}

// writeFileAtomic writes data to a new file beside path and renames it to
// path, so that readers see the old file or the new one, whole.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
