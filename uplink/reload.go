package uplink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// ruleSet is the rules a bridge applies; SetRules swaps in a new one.
type ruleSet struct {
	out, in []*rule
	// prios are the priority classes with a spool queue, highest first:
	// those of the out-rules, and those of out-rules a reload removed,
	// whose spooled messages still drain.
	prios []int
}

// reloadState is what SetRules keeps between reloads.
type reloadState struct {
	mu sync.Mutex // one SetRules or unsubscription at a time
	// unsub holds the cloud filters of removed in-rules that are still
	// subscribed in the cloud session: unsubscribed at the next
	// connection when the link was down at the reload.
	unsub map[string]bool
	// resub holds the cloud filters of in-rules whose SUBSCRIBE failed at
	// a reload (no SUBACK, or a refusing reason code): retried with
	// backoff while the link is up (retryRemote), and subscribed with
	// every in-rule at the next connection.
	resub map[string]bool
}

// rules returns the rules in force.
func (b *Bridge) rules() *ruleSet { return b.rs.Load() }

// compileRules compiles rules into a rule set, or says what is wrong.
func compileRules(rules []Rule) (*ruleSet, []error) {
	rs := &ruleSet{}
	var errs []error
	if len(rules) == 0 {
		errs = append(errs, errors.New("no rules"))
	}
	for i, r := range rules {
		cr, err := compileRule(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %v", i, err))
			continue
		}
		if r.Direction == Out {
			rs.out = append(rs.out, cr)
			if !slices.Contains(rs.prios, r.Priority) {
				rs.prios = append(rs.prios, r.Priority)
			}
		} else {
			rs.in = append(rs.in, cr)
		}
	}
	slices.SortFunc(rs.prios, func(a, b int) int { return b - a })
	return rs, errs
}

// localSubs are the bridge's local subscriptions for the out-rules, which
// bring it their QoS 0 messages (QoS 1/2 come through BeforeAck). No Local
// keeps out what the bridge publishes for its in-rules; retained messages
// are not resent at each start.
func localSubs(out []*rule) []packet.Subscription {
	subs := make([]packet.Subscription, len(out))
	for i, r := range out {
		subs[i] = packet.Subscription{Filter: r.Local, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}
	}
	return subs
}

// remoteSubs are the cloud subscriptions of the in-rules. No Local keeps
// the bridge's own publications out; Retain Handling 1 gets retained
// messages only for a new subscription.
func remoteSubs(in []*rule) []paho.SubscribeOptions {
	subs := make([]paho.SubscribeOptions, len(in))
	for i, r := range in {
		subs[i] = paho.SubscribeOptions{Topic: r.Remote, QoS: r.maxQoS, NoLocal: true, RetainAsPublished: true, RetainHandling: 1}
	}
	return subs
}

// RulesChange says what SetRules did.
type RulesChange struct {
	// Subscribed and Unsubscribed are the cloud filters subscribed (new
	// or with a new QoS) and unsubscribed for the in-rules: at once when
	// the link is up, else at the next connection.
	Subscribed, Unsubscribed []string
	// LocalSubscribed and LocalUnsubscribed are the local filters of the
	// out-rules added and removed.
	LocalSubscribed, LocalUnsubscribed []string
	// Classes are the priority classes new to the bridge.
	Classes []int
}

// Changed reports whether the rules changed anything at all.
func (c RulesChange) Changed() bool {
	return len(c.Subscribed)+len(c.Unsubscribed)+len(c.LocalSubscribed)+len(c.LocalUnsubscribed)+len(c.Classes) > 0
}

// SetRules replaces the bridge's rules while it runs, for a reload of the
// configuration. Invalid rules change nothing and return the error.
//
// The new out-rules decide from now on which local messages go to the
// spool and how their topics map; messages already spooled stay and are
// sent as spooled, also those of a removed rule or class. The in-rules'
// cloud filters are subscribed and unsubscribed over the connection that
// is up (the cloud session keeps subscriptions across connections, so a
// removed one is unsubscribed at the next connection when the link is
// down now). A rule in a new priority class gets its spool queue and the
// drain loop takes it up without a reconnection.
//
// SetRules may be called before Run (the rules then apply from the start)
// and after it returned.
func (b *Bridge) SetRules(ctx context.Context, rules []Rule) (RulesChange, error) {
	rs, errs := compileRules(rules)
	if err := errors.Join(errs...); err != nil {
		return RulesChange{}, fmt.Errorf("uplink %s: invalid rules: %w", b.s.Name, err)
	}
	b.reload.mu.Lock()
	defer b.reload.mu.Unlock()
	old := b.rules()
	var ch RulesChange
	for _, p := range rs.prios {
		if !slices.Contains(old.prios, p) {
			ch.Classes = append(ch.Classes, p)
		}
	}
	rs.prios = append(slices.Clone(old.prios), ch.Classes...)
	slices.SortFunc(rs.prios, func(a, b int) int { return b - a })

	oldRemote, newRemote := remoteFilters(old.in), remoteFilters(rs.in)
	for f, q := range newRemote {
		if oq, ok := oldRemote[f]; !ok || oq != q {
			ch.Subscribed = append(ch.Subscribed, f)
		}
	}
	for f := range oldRemote {
		if _, ok := newRemote[f]; !ok {
			ch.Unsubscribed = append(ch.Unsubscribed, f)
		}
	}
	oldLocal, newLocal := localFilters(old.out), localFilters(rs.out)
	for f := range newLocal {
		if !oldLocal[f] {
			ch.LocalSubscribed = append(ch.LocalSubscribed, f)
		}
	}
	for f := range oldLocal {
		if !newLocal[f] {
			ch.LocalUnsubscribed = append(ch.LocalUnsubscribed, f)
		}
	}
	slices.Sort(ch.Subscribed)
	slices.Sort(ch.Unsubscribed)
	slices.Sort(ch.LocalSubscribed)
	slices.Sort(ch.LocalUnsubscribed)

	if b.reload.unsub == nil {
		b.reload.unsub = make(map[string]bool)
	}
	for _, f := range ch.Unsubscribed {
		b.reload.unsub[f] = true
	}
	if b.reload.resub == nil {
		b.reload.resub = make(map[string]bool)
	}
	for f := range newRemote {
		delete(b.reload.unsub, f) // subscribed again
	}
	for f := range b.reload.resub {
		if _, ok := newRemote[f]; !ok {
			delete(b.reload.resub, f) // no rule wants it any more
		}
	}
	b.rs.Store(rs)

	if b.running() {
		b.applyLocal(ctx, rs, ch)
		if l := b.link.Load(); l != nil {
			b.applyRemote(ctx, l.cli, rs, ch)
		}
		b.kick() // the drain loop takes up new classes
		select {
		case b.subKick <- struct{}{}: // retryRemote sees what failed
		default:
		}
	}
	b.log.Info("rules reloaded", "out_rules", len(rs.out), "in_rules", len(rs.in),
		"subscribed", ch.Subscribed, "unsubscribed", ch.Unsubscribed, "new_classes", ch.Classes)
	return ch, nil
}

// running reports whether Run has attached to the local broker and not yet
// returned.
func (b *Bridge) running() bool {
	select {
	case <-b.ready:
		return b.runCtx.Err() == nil
	default:
		return false
	}
}

func remoteFilters(in []*rule) map[string]byte {
	m := map[string]byte{}
	for _, r := range in {
		m[r.Remote] = max(m[r.Remote], r.maxQoS)
	}
	return m
}

func localFilters(out []*rule) map[string]bool {
	m := map[string]bool{}
	for _, r := range out {
		m[r.Local] = true
	}
	return m
}

// applyLocal changes the bridge's local subscriptions for the out-rules.
func (b *Bridge) applyLocal(ctx context.Context, rs *ruleSet, ch RulesChange) {
	if len(ch.LocalSubscribed) > 0 {
		var subs []packet.Subscription
		for _, s := range localSubs(rs.out) {
			if slices.Contains(ch.LocalSubscribed, s.Filter) && !slices.ContainsFunc(subs, func(x packet.Subscription) bool { return x.Filter == s.Filter }) {
				subs = append(subs, s)
			}
		}
		codes, err := b.local.Subscribe(ctx, subs, 0)
		if err != nil {
			b.log.Warn("local subscription for new out-rules failed; their QoS 0 messages are not forwarded", "err", err)
		}
		for i, c := range codes {
			if c >= 0x80 {
				b.log.Warn("local subscription refused; QoS 0 messages of this rule are not forwarded", "filter", subs[i].Filter, "reason", c.String())
			}
		}
	}
	if len(ch.LocalUnsubscribed) > 0 {
		if _, err := b.local.Unsubscribe(ctx, ch.LocalUnsubscribed); err != nil {
			b.log.Warn("local unsubscription for removed out-rules failed", "err", err)
		}
	}
}

// applyRemote subscribes and unsubscribes the in-rules' cloud filters over
// the connection that is up. What fails here is retried with backoff while
// the link stays up (retryRemote), and done at the next connection
// otherwise, which subscribes every in-rule (see subscribe).
func (b *Bridge) applyRemote(ctx context.Context, cli *paho.Client, rs *ruleSet, ch RulesChange) {
	for _, f := range ch.Subscribed {
		b.reload.resub[f] = true
	}
	b.syncRemoteLocked(ctx, cli, rs, false)
}

// syncRemoteLocked subscribes the filters of reload.resub and unsubscribes
// those of reload.unsub over cli, and reports whether all of it succeeded
// (what failed stays for the next try). b.reload.mu is held.
func (b *Bridge) syncRemoteLocked(ctx context.Context, cli *paho.Client, rs *ruleSet, retry bool) bool {
	ctx, cancel := context.WithTimeout(ctx, b.s.ConnectTimeout)
	defer cancel()
	ok := true
	if len(b.reload.resub) > 0 {
		var subs []paho.SubscribeOptions
		for _, s := range remoteSubs(rs.in) {
			if b.reload.resub[s.Topic] && !slices.ContainsFunc(subs, func(x paho.SubscribeOptions) bool { return x.Topic == s.Topic }) {
				s.QoS = remoteFilters(rs.in)[s.Topic]
				subs = append(subs, s)
			}
		}
		if retry && len(subs) > 0 {
			b.subRetries.Add(1)
		}
		sa, err := cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
		switch {
		case sa != nil:
			for i, s := range subs {
				if i < len(sa.Reasons) && sa.Reasons[i] >= 0x80 {
					ok = false
					if b.subEp.hit() {
						b.log.Warn("cloud refused an in-rule subscription; retrying with backoff", "filter", s.Topic, "reason", packet.ReasonCode(sa.Reasons[i]).String())
					}
					continue
				}
				delete(b.reload.resub, s.Topic)
				if retry {
					b.log.Info("subscribed an in-rule at the cloud after retrying", "filter", s.Topic)
				}
			}
		case err != nil:
			ok = false
			if b.subEp.hit() {
				b.log.Warn("subscribing new in-rules at the cloud failed; retrying with backoff", "err", err)
			}
		}
	}
	if !b.unsubscribeLocked(ctx, cli, retry) {
		ok = false
	}
	if ok {
		if n, ended := b.subEp.end(); ended {
			b.log.Info("cloud took the in-rule changes", "failures", n)
		}
	}
	return ok
}

// retryRemote retries, with backoff, the cloud subscriptions and
// unsubscriptions of reloads that failed, while the connection cli lasts
// (until ctx is done). Each SetRules wakes it through b.subKick.
func (b *Bridge) retryRemote(ctx context.Context, cli *paho.Client) {
	attempt := 0
	for {
		b.reload.mu.Lock()
		pending := len(b.reload.resub)+len(b.reload.unsub) > 0
		b.reload.mu.Unlock()
		if !pending {
			attempt = 0
			select {
			case <-ctx.Done():
				return
			case <-b.subKick:
				continue
			}
		}
		t := time.NewTimer(backoff(attempt, b.s.ReconnectMin, b.s.ReconnectMax))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		b.reload.mu.Lock()
		if b.syncRemoteLocked(ctx, cli, b.rules(), true) {
			attempt = 0
		} else {
			attempt++
		}
		b.reload.mu.Unlock()
	}
}

// unsubscribeRemoved unsubscribes at the cloud the filters of in-rules that
// a reload removed while the link was down. subscribe calls it at each
// connection.
func (b *Bridge) unsubscribeRemoved(ctx context.Context, cli *paho.Client) {
	b.reload.mu.Lock()
	defer b.reload.mu.Unlock()
	b.unsubscribeLocked(ctx, cli, false)
}

// unsubscribeLocked unsubscribes the filters of reload.unsub at the cloud
// and forgets those the UNSUBACK took (0x00, or 0x11 no subscription
// existed); the others stay for the next try. It reports whether none
// is left. b.reload.mu is held.
func (b *Bridge) unsubscribeLocked(ctx context.Context, cli *paho.Client, retry bool) bool {
	if len(b.reload.unsub) == 0 {
		return true
	}
	filters := slices.Sorted(maps.Keys(b.reload.unsub))
	if retry {
		b.subRetries.Add(1)
	}
	ua, err := cli.Unsubscribe(ctx, &paho.Unsubscribe{Topics: filters})
	if err != nil && ua == nil {
		if b.subEp.hit() {
			b.log.Warn("unsubscribing removed in-rules at the cloud failed; retrying with backoff", "filters", filters, "err", err)
		}
		return false
	}
	var done []string
	for i, f := range filters {
		// MQTT 5: one reason code per filter; 0x11 No subscription existed
		// leaves nothing to undo.
		if ua != nil && i < len(ua.Reasons) && ua.Reasons[i] >= 0x80 {
			if b.subEp.hit() {
				b.log.Warn("cloud refused to unsubscribe a removed in-rule; retrying with backoff", "filter", f, "reason", packet.ReasonCode(ua.Reasons[i]).String())
			}
			continue
		}
		delete(b.reload.unsub, f)
		done = append(done, f)
	}
	if len(done) > 0 {
		b.log.Info("unsubscribed removed in-rules at the cloud", "filters", done)
	}
	return len(b.reload.unsub) == 0
}

// adoptClasses gives each priority class that a reload added a spool queue
// and a place in the drain order. Only the goroutine of connLoop calls it.
func (b *Bridge) adoptClasses() {
	for _, p := range b.rules().prios {
		if b.adoptLeftover(p) || slices.ContainsFunc(b.classes, func(c *class) bool { return c.prio == p }) {
			continue
		}
		q, err := b.queue(p)
		if err != nil {
			b.log.Error("opening the spool queue of a new priority class failed; its messages wait in the spool", "priority", p, "err", err)
			continue
		}
		c := &class{prio: p, name: QueueName(b.s.Name, p), q: q, attempts: make(map[uint64]int)}
		i := slices.IndexFunc(b.classes, func(x *class) bool { return x.leftover || x.prio < p })
		if i < 0 {
			i = len(b.classes)
		}
		b.qmu.Lock() // Stats reads classes
		b.classes = slices.Insert(b.classes, i, c)
		b.qmu.Unlock()
	}
}
