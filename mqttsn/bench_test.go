package mqttsn

import (
	"context"
	"testing"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// BenchmarkPublishQoS1 measures one device publishing QoS 1 messages over
// loopback UDP, each waiting for its PUBACK (as MQTT-SN allows one
// outstanding at a time), to an in-process subscriber.
func BenchmarkPublishQoS1(b *testing.B) {
	e := newEnv(b, Options{})
	sub, _, err := e.b.Attach(localbroker.ClientOptions{ClientID: "bench-sub", CleanStart: true,
		Deliver: func(d *localbroker.Delivery) {}})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close(false)
	if _, err := sub.Subscribe(context.Background(), subs("bench/#", 0), 0); err != nil {
		b.Fatal(err)
	}
	c := newSNClient(b, e.gwAddr)
	c.connect("bench", true, 600)
	id := c.register("bench/data")
	payload := make([]byte, 32)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		c.send(&packet.Publish{QoS: packet.QoS1, TopicID: id, MsgID: c.nextID(), Data: payload})
		expect[*packet.Puback](c)
	}
}

// BenchmarkDeliverQoS1 measures messages from the broker to one subscribed
// device over loopback UDP, each acknowledged with PUBACK.
func BenchmarkDeliverQoS1(b *testing.B) {
	e := newEnv(b, Options{})
	pub, _, err := e.b.Attach(localbroker.ClientOptions{ClientID: "bench-pub", CleanStart: true})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close(false)
	c := newSNClient(b, e.gwAddr)
	c.connect("bench", true, 600)
	c.subscribe(packet.TopicIDNormal, "bench/down", 0, packet.QoS1)
	payload := make([]byte, 32)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pub.Publish(context.Background(), &localbroker.Message{Topic: "bench/down", Payload: payload, QoS: 1}); err != nil {
			b.Fatal(err)
		}
		c.expectPublish()
	}
}
