package mqttsn

import (
	"container/heap"
	"sync"
	"time"
)

// timers holds every client's next deadline (keep-alive, sleep, Tretry) in
// one heap served by one goroutine (Gateway.timerLoop), instead of a timer
// per client. A client sets its deadline at the end of each run; when it
// passes, the client is scheduled and checks its deadlines itself, so a
// stale wake-up does no harm.
type timers struct {
	mu   sync.Mutex
	h    timerHeap
	wake chan struct{} // the earliest deadline moved earlier
}

type timerItem struct {
	when time.Time
	c    *client
}

type timerHeap []*timerItem

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].c.timerIdx = i
	h[j].c.timerIdx = j
}
func (h *timerHeap) Push(x any) {
	it := x.(*timerItem)
	it.c.timerIdx = len(*h)
	*h = append(*h, it)
}
func (h *timerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.c.timerIdx = -1
	return it
}

func newTimers() *timers { return &timers{wake: make(chan struct{}, 1)} }

// set makes when the deadline of c; a zero when removes it.
func (t *timers) set(c *client, when time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if when.IsZero() {
		if c.timerIdx >= 0 {
			heap.Remove(&t.h, c.timerIdx)
		}
		return
	}
	if c.timerIdx >= 0 {
		it := t.h[c.timerIdx]
		if it.when.Equal(when) {
			return
		}
		it.when = when
		heap.Fix(&t.h, c.timerIdx)
	} else {
		heap.Push(&t.h, &timerItem{when: when, c: c})
	}
	if t.h[0].c == c {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// due removes and returns the clients whose deadline is not after now, and
// returns the earliest remaining deadline (zero when none).
func (t *timers) due(now time.Time, out []*client) ([]*client, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.h) > 0 && !t.h[0].when.After(now) {
		it := heap.Pop(&t.h).(*timerItem)
		out = append(out, it.c)
	}
	if len(t.h) == 0 {
		return out, time.Time{}
	}
	return out, t.h[0].when
}

// len returns the number of deadlines held.
func (t *timers) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.h)
}
