package uplink

import (
	"sync"
	"time"
)

// rateSlots is the number of one-second slots of a rateMeter, the span of
// its rate.
const rateSlots = 10

// rateMeter counts events in a ring of per-second slots, for a rate over
// the last rateSlots seconds. The zero value is ready; it starts counting
// time at its first use.
type rateMeter struct {
	mu     sync.Mutex
	start  time.Time
	secs   [rateSlots]int64 // the Unix second each slot counts
	counts [rateSlots]uint64
}

// add counts n events at now.
func (m *rateMeter) add(now time.Time, n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.begin(now)
	sec := now.Unix()
	i := int(uint64(sec) % rateSlots)
	if m.secs[i] != sec {
		m.secs[i], m.counts[i] = sec, 0
	}
	m.counts[i] += n
}

func (m *rateMeter) begin(now time.Time) {
	if m.start.IsZero() {
		m.start = now
	}
}

// rate returns the events per second over the last rateSlots seconds: the
// current second so far and the rateSlots-1 before it, or the time since
// the first use when that is shorter (at least a second).
func (m *rateMeter) rate(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.begin(now)
	sec := now.Unix()
	var sum uint64
	for i := range rateSlots {
		if s := m.secs[i]; s <= sec && s > sec-rateSlots {
			sum += m.counts[i]
		}
	}
	span := (rateSlots-1)*time.Second + now.Sub(time.Unix(sec, 0))
	span = max(time.Second, min(span, now.Sub(m.start)))
	return float64(sum) / span.Seconds()
}
