package uplink

import (
	"context"
	"slices"
	"testing"
	"time"
)

// (mosquitto's acl_file never refuses a SUBSCRIBE or UNSUBSCRIBE: it
// filters deliveries. The fake cloud refuses with a chosen reason code.)

// A reload whose cloud SUBSCRIBE and UNSUBSCRIBE the cloud refuses (SUBACK
// and UNSUBACK 0x87) keeps both pending and retries them with backoff over
// the same connection, counted, until the cloud takes them; then nothing
// is pending and the retries stop.
func TestReloadSubscriptionRetriedUntilCloudTakesIt(t *testing.T) {
	fc := newFakeCloud(t)
	refusing := true
	// refusing is read by the codes under fc.mu, which serve holds.
	fc.mu.Lock()
	fc.subCode = func(f string) byte {
		if refusing && f == "new/cmd/#" {
			return 0x87
		}
		return 1
	}
	fc.unsubCode = func(f string) byte {
		if refusing && f == "old/cmd/#" {
			return 0x87
		}
		return 0
	}
	fc.mu.Unlock()
	e := newEnv(t, baseOptions(fc.url(), Rule{Direction: In, Local: "cmd/#", Remote: "old/cmd/#"}))
	e.waitOnline()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.bridge.SetRules(ctx, []Rule{{Direction: In, Local: "cmd/#", Remote: "new/cmd/#"}}); err != nil {
		t.Fatal(err)
	}
	events := func() []string {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return slices.Clone(fc.subEvents)
	}
	count := func(ev string) int {
		n := 0
		for _, x := range events() {
			if x == ev {
				n++
			}
		}
		return n
	}
	waitFor(t, 15*time.Second, "refused subscriptions and unsubscriptions retried", func() bool {
		return count("subscribe new/cmd/# 0x87") >= 3 && count("unsubscribe old/cmd/# 0x87") >= 3 && e.bridge.Stats().SubscribeRetries >= 4
	})
	pending := func() int {
		e.bridge.reload.mu.Lock()
		defer e.bridge.reload.mu.Unlock()
		return len(e.bridge.reload.resub) + len(e.bridge.reload.unsub)
	}
	if n := pending(); n != 2 {
		t.Fatalf("%d filters pending while the cloud refuses; want 2", n)
	}

	fc.mu.Lock()
	refusing = false
	fc.mu.Unlock()
	waitFor(t, 15*time.Second, "nothing pending", func() bool { return pending() == 0 })
	if count("subscribe new/cmd/# 0x1") != 1 || count("unsubscribe old/cmd/# 0x0") != 1 {
		t.Errorf("cloud events %v: want the subscription and unsubscription taken once", events())
	}
	fc.mu.Lock()
	connects := fc.connects
	fc.mu.Unlock()
	if connects != 1 {
		t.Errorf("%d connections: the retries must go over the same one", connects)
	}
	// Nothing left: a further reload with no cloud change sends nothing.
	n := len(events())
	if _, err := e.bridge.SetRules(ctx, []Rule{{Direction: In, Local: "cmd/#", Remote: "new/cmd/#"}, {Direction: Out, Local: "d/#", Remote: "d/#"}}); err != nil {
		t.Fatal(err)
	}
	retries := e.bridge.Stats().SubscribeRetries
	if e.bridge.Stats().State != StateOnline || pending() != 0 || len(events()) != n {
		t.Errorf("after success: pending %d, events %v", pending(), events()[n:])
	}
	if e.bridge.Stats().SubscribeRetries != retries {
		t.Error("retries went on after success")
	}
}
