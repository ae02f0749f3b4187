package uplink

import (
	"context"
	"fmt"
	"slices"
)

// Leftover queues. A restart with changed rules may find spool queues of
// this bridge whose priority class no out-rule has any more: their
// messages were acknowledged to their publishers, so they still go to the
// cloud, after every configured class (the lowest priority, the highest
// leftover class first), each queue in order and under the topic it was
// spooled with. A leftover queue is dropped once the cloud acknowledged
// all of it; a reload that brings its class back makes it an ordinary
// class again. (A reload that removes a class while the bridge runs keeps
// it in its place until the next start; see SetRules.)

// leftoverClasses opens the bridge's leftover queues, those named after it
// whose priority is not in prios, highest priority first. Empty ones are
// dropped at once.
func (b *Bridge) leftoverClasses(ctx context.Context, prios []int) ([]*class, error) {
	if b.deps.QueueNames == nil {
		return nil, nil
	}
	var found []int
	for _, name := range b.deps.QueueNames() {
		bridge, p, quarantine, ok := ParseQueueName(name)
		if !ok || quarantine || bridge != b.s.Name || slices.Contains(prios, p) || slices.Contains(found, p) {
			continue
		}
		found = append(found, p)
	}
	slices.SortFunc(found, func(x, y int) int { return y - x })
	var classes []*class
	for _, p := range found {
		q, err := b.queue(p)
		if err != nil {
			return nil, fmt.Errorf("uplink: leftover queue: %w", err)
		}
		c := &class{prio: p, name: QueueName(b.s.Name, p), q: q, attempts: make(map[uint64]int), skip: make(map[uint64]bool), leftover: true}
		st := q.Stats()
		if st.Depth == 0 {
			b.qmu.Lock()
			b.dropLeftoverLocked(ctx, c)
			b.qmu.Unlock()
			continue
		}
		b.log.Warn("spool queue of a priority class that no out-rule has any more: its messages drain after every configured class, then it is dropped",
			"queue", c.name, "messages", st.Depth, "bytes", st.Bytes, "oldest", st.Oldest)
		classes = append(classes, c)
	}
	return classes, nil
}

// retireLeftovers drops the leftover queues that the cloud acknowledged
// entirely. Only the goroutine of connLoop calls it (after the acks).
func (b *Bridge) retireLeftovers(ctx context.Context) {
	for i := 0; i < len(b.classes); i++ {
		c := b.classes[i]
		if !c.leftover || len(c.pending) > 0 || len(c.acks) > 0 || c.inflight.Load() > 0 || c.q.Stats().Depth > 0 {
			continue
		}
		b.qmu.Lock()
		// Under qmu: BeforeAck opens a class's queue under qmu, so a
		// reload that brings the class back either finds the queue here
		// (and the class stays) or opens a new one after the drop.
		if slices.Contains(b.rules().prios, c.prio) {
			b.qmu.Unlock()
			continue
		}
		b.dropLeftoverLocked(ctx, c)
		b.classes = slices.Delete(b.classes, i, i+1)
		b.qmu.Unlock()
		i--
	}
}

// dropLeftoverLocked drops the empty leftover queue of c; b.qmu is held.
func (b *Bridge) dropLeftoverLocked(ctx context.Context, c *class) {
	delete(b.queues, c.prio)
	if b.deps.DropQueue == nil {
		return
	}
	if err := b.deps.DropQueue(context.WithoutCancel(ctx), c.name); err != nil {
		b.log.Error("dropping an emptied leftover spool queue failed; it stays, empty", "queue", c.name, "err", err)
		return
	}
	b.log.Info("sent every message of a leftover spool queue; dropped it", "queue", c.name)
}

// adoptLeftover makes the leftover class of priority p, if there is one,
// an ordinary class again, in its place in the drain order: a reload
// brought its class back. It reports whether there was one.
func (b *Bridge) adoptLeftover(p int) bool {
	i := slices.IndexFunc(b.classes, func(c *class) bool { return c.prio == p && c.leftover })
	if i < 0 {
		return false
	}
	c := b.classes[i]
	b.qmu.Lock()
	defer b.qmu.Unlock()
	c.leftover = false
	b.classes = slices.Delete(b.classes, i, i+1)
	j := slices.IndexFunc(b.classes, func(x *class) bool { return x.leftover || x.prio < p })
	if j < 0 {
		j = len(b.classes)
	}
	b.classes = slices.Insert(b.classes, j, c)
	return true
}
