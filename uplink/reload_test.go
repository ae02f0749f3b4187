package uplink

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

// SetRules on a running bridge against mosquitto: a changed in-rule
// unsubscribes its old cloud filter and subscribes the new one over the
// same connection, a changed out-rule maps new messages its new way while
// the spooled ones keep theirs, and a rule in a new priority class drains
// without a reconnection.
func TestSetRulesWhileRunning(t *testing.T) {
	c, g := newGatedCloud(t, "")
	c.start()
	e := newEnv(t, gatedOptions(c.url(),
		Rule{Direction: In, Local: "cmd/#", Remote: "old/cmd/#"},
		Rule{Direction: Out, Local: "data/#", Remote: "v1/data/#"},
	))
	// Spooled while the gate is shut: they keep the old mapping.
	e.publish("data/a", "spooled", 1)
	sub := watch(t, c, "v1/#", "v2/#", "prio/#")
	g.open(c)
	e.waitOnline()
	sub.waitN(t, 1, 15*time.Second)

	local, _, err := e.broker.Attach(localbroker.ClientOptions{ClientID: "lan-device"})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close(false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := local.Subscribe(ctx, []packet.Subscription{{Filter: "cmd/#", QoS: 1}}, 0); err != nil {
		t.Fatal(err)
	}

	ch, err := e.bridge.SetRules(ctx, []Rule{
		{Direction: In, Local: "cmd/#", Remote: "new/cmd/#"},
		{Direction: Out, Local: "data/#", Remote: "v2/data/#"},
		{Direction: Out, Local: "alarm/#", Remote: "prio/alarm/#", Priority: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Subscribed, []string{"new/cmd/#"}) || !slices.Equal(ch.Unsubscribed, []string{"old/cmd/#"}) ||
		!slices.Equal(ch.LocalSubscribed, []string{"alarm/#"}) || !slices.Equal(ch.Classes, []int{5}) {
		t.Fatalf("change %+v", ch)
	}
	if _, err := e.bridge.SetRules(ctx, []Rule{{Direction: "sideways", Local: "x"}}); err == nil {
		t.Fatal("SetRules took an invalid rule")
	}

	e.publish("data/a", "after", 1)
	e.publish("alarm/fire", "hot", 1)
	e.publish("alarm/smoke", "qos0", 0) // through the new local subscription
	msgs := sub.waitN(t, 4, 15*time.Second)
	want := map[string]string{"spooled": "v1/data/a", "after": "v2/data/a", "hot": "prio/alarm/fire", "qos0": "prio/alarm/smoke"}
	for _, m := range msgs {
		if w, ok := want[m.payload]; !ok || w != m.topic {
			t.Errorf("cloud got %q on %s; want %v", m.payload, m.topic, want)
		}
	}

	pub := lookMosquitto(t, "mosquitto_pub")
	for _, topic := range []string{"old/cmd/x", "new/cmd/y"} {
		if out, err := execCommand(pub, "-h", "127.0.0.1", "-p", fmt.Sprint(c.port), "-u", watcherUser, "-P", watcherPass, "-q", "1", "-t", topic, "-m", topic); err != nil {
			t.Fatalf("mosquitto_pub: %v\n%s", err, out)
		}
	}
	d, err := local.Next(ctx)
	if err != nil {
		t.Fatalf("no local delivery: %v", err)
	}
	d.Ack()
	if d.Message.Topic != "cmd/y" || string(d.Message.Payload) != "new/cmd/y" {
		t.Fatalf("local got %s %q; want cmd/y from the new in-rule, nothing from the old one", d.Message.Topic, d.Message.Payload)
	}
	if st := e.bridge.Stats(); st.Dropped != 0 {
		t.Errorf("%d dropped: the old cloud filter still delivers", st.Dropped)
	}
	// The watcher may get the message before the bridge has the cloud's
	// PUBACK and acked it in the spool.
	waitFor(t, 15*time.Second, "the new class to empty", func() bool { return e.depth(5) == 0 })
}
