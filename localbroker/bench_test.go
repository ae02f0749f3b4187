package localbroker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// BenchmarkRouteFanOut routes one QoS 0 message to 16 in-process
// subscribers whose Deliver callbacks only count: the cost of the topic
// match, the per-session delivery and the in-process link.
func BenchmarkRouteFanOut(b *testing.B) {
	br, err := New(Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)}, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	const subs = 16
	delivered := 0
	for i := range subs {
		c, _, err := br.Attach(ClientOptions{ClientID: fmt.Sprintf("sub-%d", i), CleanStart: true,
			Deliver: func(*Delivery) { delivered++ }})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(false) })
		if _, err := c.Subscribe(context.Background(), []packet.Subscription{{Filter: "bench/fanout/+", QoS: 0}}, 0); err != nil {
			b.Fatal(err)
		}
	}
	m := &Message{Topic: "bench/fanout/1", Payload: make([]byte, 64), Created: time.Now()}
	b.ReportAllocs()
	b.SetBytes(int64(len(m.Payload)))
	for b.Loop() {
		if n, err := br.route(m); n != subs || err != nil {
			b.Fatalf("route reached %d sessions (%v), want %d", n, err, subs)
		}
	}
	if delivered < subs {
		b.Fatalf("%d deliveries", delivered)
	}
}

// BenchmarkPublishQoS0Loopback is one QoS 0 PUBLISH of 64 bytes from a TCP
// client through the broker to a TCP subscriber and back to the benchmark,
// one at a time: the broker's per-message path including both sockets. The
// clients' side does not allocate, so allocs/op are the broker's.
func BenchmarkPublishQoS0Loopback(b *testing.B) {
	_, addr := startBroker(b, Options{})
	sub := mustConnect(b, addr, packet.V311, "sub")
	sub.subscribe(1, "bench/loop", 0)
	pub := mustConnect(b, addr, packet.V311, "pub")
	raw := packet.Append(nil, &packet.Publish{Topic: "bench/loop", Payload: make([]byte, 64)}, packet.V311)
	got := make([]byte, len(raw)) // a 3.1.1 QoS 0 delivery has the same bytes
	_ = sub.nc.SetReadDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		if _, err := pub.nc.Write(raw); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(sub.nc, got); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(got, raw) {
		b.Fatalf("delivered % x, want % x", got, raw)
	}
	pub.disconnect()
	sub.disconnect()
}
