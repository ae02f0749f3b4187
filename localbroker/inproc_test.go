package localbroker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
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

// An in-process client attached with an ACL and a username is checked as a
// network client of a listener with that ACL file: its "user" block decides
// publishes, subscriptions to one topic, deliveries (retained included) and
// the will; a client without the username gets the anonymous block.
func TestInprocACL(t *testing.T) {
	b, _ := startBroker(t, Options{})
	ctx := context.Background()
	acl, err := auth.ParseACL(strings.NewReader(
		"topic read public/#\n"+
			"user sensors\n"+
			"topic readwrite sensors/#\n"+
			"topic read cmd/#\n"+
			"pattern write dev/%c/status\n"), "test.acl")
	if err != nil {
		t.Fatal(err)
	}
	feeder, _, err := b.Attach(ClientOptions{ClientID: "feeder", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer feeder.Close(false)
	if _, err := feeder.Publish(ctx, &Message{Topic: "cmd/retained", Payload: []byte("r"), Retain: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := feeder.Publish(ctx, &Message{Topic: "secret/retained", Payload: []byte("s"), Retain: true}); err != nil {
		t.Fatal(err)
	}

	var pe *packet.Error
	if _, _, err := b.Attach(ClientOptions{ClientID: "s1", Username: "sensors", ACL: acl, CleanStart: true,
		Will: &Will{Message: Message{Topic: "cmd/x", Payload: []byte("w")}}}); !errors.As(err, &pe) || pe.Code != packet.NotAuthorized {
		t.Fatalf("Attach with a will topic the ACL does not let it write: %v, want NotAuthorized", err)
	}
	s1, _, err := b.Attach(ClientOptions{ClientID: "s1", Username: "sensors", ACL: acl, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close(false)
	for _, tc := range []struct {
		topic string
		want  packet.ReasonCode
	}{
		{"sensors/t", packet.NoMatchingSubscribers},
		{"cmd/x", packet.NotAuthorized},
		{"dev/s1/status", packet.NoMatchingSubscribers},
		{"dev/s2/status", packet.NotAuthorized},
		{"public/x", packet.NotAuthorized},
	} {
		if code, err := s1.Publish(ctx, &Message{Topic: tc.topic, Payload: []byte("p")}); err != nil || code != tc.want {
			t.Errorf("publish %s: %v %v, want %v", tc.topic, code, err, tc.want)
		}
	}
	codes, err := s1.Subscribe(ctx, []packet.Subscription{{Filter: "secret/x", QoS: 1}, {Filter: "#", QoS: 1}}, 0)
	if err != nil || len(codes) != 2 || codes[0] != packet.NotAuthorized || codes[1] != packet.GrantedQoS1 {
		t.Fatalf("subscribe secret/x and #: %v %v, want NotAuthorized and QoS 1", codes, err)
	}
	if err := s1.SetWill(&Will{Message: Message{Topic: "public/x"}}); !errors.As(err, &pe) || pe.Code != packet.NotAuthorized {
		t.Fatalf("SetWill on a topic it may not write: %v, want NotAuthorized", err)
	}
	// Through "#" only what the ACL lets it read arrives, retained first.
	next := func() *Delivery {
		t.Helper()
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		d, err := s1.Next(nctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		d.Ack()
		return d
	}
	if d := next(); d.Message.Topic != "cmd/retained" {
		t.Fatalf("got %s, want the retained cmd/retained only", d.Message.Topic)
	}
	for _, tp := range []string{"secret/live", "public/live", "cmd/live"} {
		if _, err := feeder.Publish(ctx, &Message{Topic: tp, Payload: []byte("l")}); err != nil {
			t.Fatal(err)
		}
	}
	if d := next(); d.Message.Topic != "cmd/live" {
		t.Fatalf("got %s, want cmd/live (secret/ and public/ are not readable for user sensors)", d.Message.Topic)
	}

	// Without a username: the anonymous block.
	anon, _, err := b.Attach(ClientOptions{ClientID: "anon", ACL: acl, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close(false)
	if code, _ := anon.Publish(ctx, &Message{Topic: "sensors/t", Payload: []byte("p")}); code != packet.NotAuthorized {
		t.Fatalf("anonymous publish to sensors/t: %v, want NotAuthorized", code)
	}
}
