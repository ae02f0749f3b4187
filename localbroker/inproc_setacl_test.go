package localbroker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

func mustACL(t *testing.T, text string) *auth.ACL {
	t.Helper()
	acl, err := auth.ParseACL(strings.NewReader(text), "test.acl")
	if err != nil {
		t.Fatal(err)
	}
	return acl
}

// SetACL swaps the ACL of an attached in-process client (an MQTT-SN device
// after a reload): its next publishes, subscriptions and wills, and what is
// delivered to it, follow the new ACL; a client taken over leaves the new
// owner's session alone.
func TestInprocSetACL(t *testing.T) {
	b, _ := startBroker(t, Options{})
	ctx := context.Background()
	feeder, _, err := b.Attach(ClientOptions{ClientID: "feeder", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer feeder.Close(false)
	oldACL := mustACL(t, "user u\ntopic readwrite a/#\n")
	newACL := mustACL(t, "user u\ntopic readwrite b/#\n")

	c, _, err := b.Attach(ClientOptions{ClientID: "dev", Username: "u", ACL: oldACL, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(false)
	if c.Username() != "u" {
		t.Fatalf("Username() = %q, want u", c.Username())
	}
	if codes, err := c.Subscribe(ctx, []packet.Subscription{{Filter: "#", QoS: 1}}, 0); err != nil || codes[0] != packet.GrantedQoS1 {
		t.Fatalf("subscribe #: %v %v", codes, err)
	}
	next := func() *Delivery {
		t.Helper()
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		d, err := c.Next(nctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		d.Ack()
		return d
	}
	publish := func(from *Client, tp string, want packet.ReasonCode) {
		t.Helper()
		if code, err := from.Publish(ctx, &Message{Topic: tp, Payload: []byte("p"), QoS: 1}); err != nil || code != want {
			t.Fatalf("%s publishes %s: %v %v, want %v", from.ClientID(), tp, code, err, want)
		}
	}
	publish(c, "a/x", packet.Success) // its own subscription "#" matches
	if d := next(); d.Message.Topic != "a/x" {
		t.Fatalf("got %s, want a/x", d.Message.Topic)
	}
	publish(c, "b/x", packet.NotAuthorized)

	c.SetACL(newACL)
	publish(c, "a/x", packet.NotAuthorized)
	if codes, _ := c.Subscribe(ctx, []packet.Subscription{{Filter: "a/y", QoS: 1}, {Filter: "b/y", QoS: 1}}, 0); codes[0] != packet.NotAuthorized || codes[1] != packet.GrantedQoS1 {
		t.Fatalf("subscribe a/y and b/y under the new ACL: %v, want NotAuthorized and QoS 1", codes)
	}
	if err := c.SetWill(&Will{Message: Message{Topic: "a/will"}}); err == nil {
		t.Fatal("SetWill on a/will under the new ACL succeeded")
	}
	if err := c.SetWill(&Will{Message: Message{Topic: "b/will"}}); err != nil {
		t.Fatalf("SetWill on b/will: %v", err)
	}
	// The subscription "#" made under the old ACL stays; a/ is no longer
	// readable through it, b/ is.
	publish(feeder, "a/live", packet.NoMatchingSubscribers) // none may read it
	publish(feeder, "b/live", packet.Success)
	if d := next(); d.Message.Topic != "b/live" {
		t.Fatalf("got %s, want b/live (a/live is not readable under the new ACL)", d.Message.Topic)
	}

	// No ACL: everything.
	c.SetACL(nil)
	publish(c, "a/x", packet.Success)
	if d := next(); d.Message.Topic != "a/x" {
		t.Fatalf("got %s, want a/x", d.Message.Topic)
	}

	// A client taken over does not change the new owner's ACL.
	c1, _, err := b.Attach(ClientOptions{ClientID: "twin", Username: "u", ACL: oldACL, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	c2, _, err := b.Attach(ClientOptions{ClientID: "twin", Username: "u", ACL: oldACL, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(false)
	c1.SetACL(newACL)
	if codes, _ := c2.Subscribe(ctx, []packet.Subscription{{Filter: "a/t", QoS: 1}}, 0); codes[0] != packet.GrantedQoS1 {
		t.Fatalf("the new owner subscribes a/t after the old client's SetACL: %v, want QoS 1", codes)
	}
	publish(c2, "a/t", packet.Success)
}
