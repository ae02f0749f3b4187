package serialbus

import "time"

// dutyWindow is the rolling window of the duty-cycle budget (ETSI EN 300 220
// counts duty cycle over one hour), and dutyBuckets the number of slices it
// is kept in: a transmission counts against the budget from its start until
// one hour after the end of the minute it started in, so the accounting is
// never more generous than a true rolling hour and its memory is bounded.
const (
	dutyWindow  = time.Hour
	dutyBuckets = 60
	dutyBucket  = dutyWindow / dutyBuckets
)

// pacer decides when the writer of a link may start the next frame: a
// minimum gap after the previous frame, and a duty-cycle budget of time on
// air per rolling hour. It is used by one goroutine at a time.
type pacer struct {
	minGap  time.Duration
	budget  time.Duration // time on air per window; 0: no limit
	baud    int           // serial line, 10 bits per byte
	bitRate int           // air, 8 bits per byte

	lastEnd time.Time
	buckets []dutyUse // ascending bucket index
}

type dutyUse struct {
	index int64 // start time / dutyBucket
	used  time.Duration
}

// wireTime is the time n bytes take on the serial line.
func (p *pacer) wireTime(n int) time.Duration {
	return time.Duration(int64(n) * 10 * int64(time.Second) / int64(p.baud))
}

// airTime is the time a frame of n bytes takes on air.
func (p *pacer) airTime(n int) time.Duration {
	return time.Duration(int64(n) * 8 * int64(time.Second) / int64(p.bitRate))
}

// fits reports whether a frame of n bytes fits the budget at all.
func (p *pacer) fits(n int) bool { return p.budget == 0 || p.airTime(n) <= p.budget }

func expiry(index int64) time.Time {
	return time.Unix(0, (index+1)*int64(dutyBucket)).Add(dutyWindow)
}

// earliest returns the first time at or after now when a frame of n bytes may
// start. The frame must fit the budget.
func (p *pacer) earliest(now time.Time, n int) time.Time {
	t := now
	if !p.lastEnd.IsZero() {
		if g := p.lastEnd.Add(p.minGap); g.After(t) {
			t = g
		}
	}
	if p.budget == 0 {
		return t
	}
	d := p.airTime(n)
	used := time.Duration(0)
	for _, b := range p.buckets {
		if expiry(b.index).After(t) {
			used += b.used
		}
	}
	// Wait for the oldest buckets to expire until the frame fits.
	for _, b := range p.buckets {
		if used+d <= p.budget {
			break
		}
		if e := expiry(b.index); e.After(t) {
			t = e
			used -= b.used
		}
	}
	return t
}

// sent records a frame of n bytes that started at start.
func (p *pacer) sent(start time.Time, n int) {
	d := max(p.airTime(n), p.wireTime(n))
	p.lastEnd = start.Add(d)
	if p.budget == 0 {
		return
	}
	for len(p.buckets) > 0 && !expiry(p.buckets[0].index).After(start) {
		p.buckets = p.buckets[1:]
	}
	i := start.UnixNano() / int64(dutyBucket)
	if k := len(p.buckets); k > 0 && p.buckets[k-1].index == i {
		p.buckets[k-1].used += p.airTime(n)
		return
	}
	p.buckets = append(p.buckets, dutyUse{index: i, used: p.airTime(n)})
}
