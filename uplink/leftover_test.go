package uplink

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/spool"
)

// runGateway starts a spool in dir, a broker and a bridge with opts, like
// a gateway process, and returns it with a stop that ends them in reverse
// order (a restart is stop, then runGateway on the same dir).
func runGateway(t *testing.T, dir string, opts Options) (*env, func()) {
	t.Helper()
	e := &env{t: t, opts: opts}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		stops = nil
	}
	start := func(name string, run func(context.Context) error, ready <-chan struct{}) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx) }()
		stops = append(stops, func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s Run: %v", name, err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("%s Run did not return", name)
			}
		})
		select {
		case <-ready:
		case err := <-done:
			stop()
			t.Fatalf("%s Run returned at start: %v", name, err)
		case <-time.After(10 * time.Second):
			stop()
			t.Fatalf("%s not ready", name)
		}
	}
	store, err := spool.New(spool.Options{Dir: dir, MinFreeBytes: -1, Sync: spool.SyncAlways, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	start("spool", store.Run, store.Ready())
	broker, err := localbroker.New(localbroker.Options{SysInterval: -1, Logger: testLogger()}, localbroker.Deps{
		Hooks: localbroker.Hooks{BeforeAck: func(c *localbroker.ClientInfo, m *localbroker.Message) error { return e.bridge.BeforeAck(c, m) }},
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	e.broker = broker
	opts.Logger = testLogger()
	e.bridge, err = New(opts, Deps{
		Broker:     broker,
		OpenQueue:  func(name string) (Queue, error) { return store.Queue(name, spoolLimits()) },
		QueueNames: store.QueueNames,
		DropQueue: func(ctx context.Context, name string) error {
			_, err := store.DropQueue(ctx, name)
			return err
		},
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	start("broker", broker.Run, broker.Ready())
	e.pub, _, err = broker.Attach(localbroker.ClientOptions{ClientID: "test-pub"})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	stops = append(stops, func() { e.pub.Close(false) })
	start("bridge", e.bridge.Run, e.bridge.Ready())
	return e, stop
}

// A restart whose config no longer has a priority class: the messages
// spooled in that class while the cloud was down were acknowledged to
// their publishers, so they still reach the cloud, in order and under the
// topic they were spooled with, after the configured classes; then the
// leftover queue is dropped. Run once with the rule removed and once with
// it moved to another priority.
func TestLeftoverClassDrainsAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []Rule
		newTo string // where data/x goes after the restart; "" none
	}{
		{"rule removed", []Rule{{Direction: Out, Local: "other/#", Remote: "site/other/#", Priority: 9}}, ""},
		{"priority changed", []Rule{{Direction: Out, Local: "data/#", Remote: "v2/data/#", Priority: 1}}, "v2/data/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200
			dir := t.TempDir()
			c, g := newGatedCloud(t, "") // shut: the gateway cannot get in
			c.start()
			sub := watch(t, c, "#")
			e, stop := runGateway(t, dir, gatedOptions(c.url(),
				Rule{Direction: Out, Local: "data/#", Remote: "site/data/#", Priority: 5},
				Rule{Direction: Out, Local: "other/#", Remote: "site/other/#", Priority: 9},
			))
			for i := range n {
				e.publish("data/x", fmt.Sprintf("m%03d", i), 1)
			}
			if d := e.depth(5); d != n {
				stop()
				t.Fatalf("class 5 holds %d; want %d", d, n)
			}
			stop()

			e, stop = runGateway(t, dir, gatedOptions(c.url(), tc.rules...))
			defer stop()
			left := QueueName("cloud", 5)
			var ls *ClassStats
			for _, cs := range e.bridge.Stats().Classes {
				if cs.Queue == left {
					ls = &cs
				}
			}
			if ls == nil || !ls.Leftover || ls.Depth != n {
				t.Fatalf("stats of the leftover class %+v; want Leftover with %d", ls, n)
			}
			if tc.newTo != "" {
				e.publish("data/x", "new", 1)
			}
			g.open(c)
			want := n
			if tc.newTo != "" {
				want++
			}
			waitFor(t, 30*time.Second, "the leftover queue dropped", func() bool {
				return !slices.Contains(e.store.QueueNames(), left)
			})
			msgs := sub.waitN(t, want, 15*time.Second)
			var got []cloudMsg
			for _, m := range msgs {
				if m.payload == "new" {
					if m.topic != tc.newTo {
						t.Errorf("new message on %s; want %s", m.topic, tc.newTo)
					}
					continue
				}
				if m.topic != "site/data/x" {
					t.Errorf("leftover %s on %s; want the topic it was spooled with, site/data/x", m.payload, m.topic)
				}
				got = append(got, m)
			}
			order := firstOccurrences(got)
			if len(order) != n {
				t.Fatalf("%d distinct leftover messages at the cloud; want %d", len(order), n)
			}
			for i, p := range order {
				if w := fmt.Sprintf("m%03d", i); p != w {
					t.Fatalf("message %d is %s; want %s (in order)", i, p, w)
				}
			}
			st := e.bridge.Stats()
			for _, cs := range st.Classes {
				if cs.Leftover {
					t.Errorf("leftover class still listed: %+v", cs)
				}
			}
			if st.Depth != 0 {
				t.Errorf("depth %d after the drain", st.Depth)
			}
		})
	}
}

// A reload that brings a leftover class back makes it an ordinary class
// again: it drains in its place and its queue stays.
func TestLeftoverClassAdoptedByReload(t *testing.T) {
	const n = 20
	dir := t.TempDir()
	c, g := newGatedCloud(t, "")
	c.start()
	sub := watch(t, c, "#")
	five := Rule{Direction: Out, Local: "data/#", Remote: "site/data/#", Priority: 5}
	other := Rule{Direction: Out, Local: "other/#", Remote: "site/other/#"}
	e, stop := runGateway(t, dir, gatedOptions(c.url(), five, other))
	for i := range n {
		e.publish("data/x", fmt.Sprintf("m%03d", i), 1)
	}
	stop()

	e, stop = runGateway(t, dir, gatedOptions(c.url(), other))
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := e.bridge.SetRules(ctx, []Rule{five, other})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Classes, []int{5}) {
		t.Fatalf("new classes %v; want [5]", ch.Classes)
	}
	e.publish("data/x", "new", 1)
	g.open(c)
	msgs := sub.waitN(t, n+1, 15*time.Second)
	order := firstOccurrences(msgs)
	for i := range n {
		if w := fmt.Sprintf("m%03d", i); i >= len(order) || order[i] != w {
			t.Fatalf("cloud got %v; want m000..m%03d then new, in order", order, n-1)
		}
	}
	if order[n] != "new" {
		t.Fatalf("cloud got %v last; want new", order[n:])
	}
	waitFor(t, 15*time.Second, "class 5 emptied", func() bool { return e.depth(5) == 0 })
	for _, cs := range e.bridge.Stats().Classes {
		if cs.Leftover {
			t.Errorf("class still leftover after the reload brought it back: %+v", cs)
		}
	}
	if !slices.Contains(e.store.QueueNames(), QueueName("cloud", 5)) {
		t.Error("the queue of a configured class was dropped")
	}
}
