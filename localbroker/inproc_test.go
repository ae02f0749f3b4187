package localbroker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// SetWill replaces or removes an attached in-process client's will, as an
// MQTT-SN gateway does for WILLTOPICUPD / WILLMSGUPD.
func TestInprocSetWill(t *testing.T) {
	b, _ := startBroker(t, Options{})
	ctx := context.Background()
	watch, _, err := b.Attach(ClientOptions{ClientID: "watch", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(false)
	if _, err := watch.Subscribe(ctx, []packet.Subscription{{Filter: "will/#", QoS: 1}}, 0); err != nil {
		t.Fatal(err)
	}
	next := func() *Delivery {
		t.Helper()
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		d, err := watch.Next(nctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		d.Ack()
		return d
	}

	c, _, err := b.Attach(ClientOptions{ClientID: "dev", CleanStart: true,
		Will: &Will{Message: Message{Topic: "will/old", Payload: []byte("old"), QoS: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	var pe *packet.Error
	if err := c.SetWill(&Will{Message: Message{Topic: "will/#", Payload: []byte("x")}}); !errors.As(err, &pe) || pe.Code != packet.TopicNameInvalid {
		t.Fatalf("SetWill with a wildcard topic: %v, want TopicNameInvalid", err)
	}
	if err := c.SetWill(&Will{Message: Message{Topic: "will/new", Payload: []byte("new"), QoS: 1}}); err != nil {
		t.Fatalf("SetWill: %v", err)
	}
	c.Close(true)
	if d := next(); d.Message.Topic != "will/new" || string(d.Message.Payload) != "new" || d.Message.Origin != "dev" {
		t.Fatalf("will %+v", d.Message)
	}
	if err := c.SetWill(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetWill after Close: %v, want ErrClosed", err)
	}

	// A removed will is not published.
	c, _, err = b.Attach(ClientOptions{ClientID: "dev", CleanStart: true,
		Will: &Will{Message: Message{Topic: "will/gone", Payload: []byte("gone")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetWill(nil); err != nil {
		t.Fatal(err)
	}
	c.Close(true)
	if _, err := watch.Publish(ctx, &Message{Topic: "will/marker", Payload: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if d := next(); d.Message.Topic != "will/marker" {
		t.Fatalf("got %q, want only the marker (the removed will was published)", d.Message.Topic)
	}

	// A client taken over cannot change the new owner's will.
	c1, _, err := b.Attach(ClientOptions{ClientID: "twin", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	c2, _, err := b.Attach(ClientOptions{ClientID: "twin"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(false)
	if err := c1.SetWill(&Will{Message: Message{Topic: "will/twin"}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetWill on a taken-over client: %v, want ErrClosed", err)
	}
}
