package uplink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

// MQTT over ws:// and wss://, with Outpost's own broker as the cloud (its
// websocket listeners are coder/websocket servers, a strict peer for the
// bridge's framing): an out-rule and an in-rule both ways, a payload
// larger than one short frame, and a QoS 2 message.
func TestWebsockets(t *testing.T) {
	pki := newTestPKI(t)
	cloudBroker, err := localbroker.New(localbroker.Options{SysInterval: -1, Logger: testLogger(), Listeners: []localbroker.ListenerOptions{
		{Name: "ws", Kind: localbroker.KindWS, Address: "127.0.0.1:0", AllowAnonymous: true},
		{Name: "wss", Kind: localbroker.KindWSS, Address: "127.0.0.1:0", AllowAnonymous: true, CertFile: pki.serverCert, KeyFile: pki.server},
	}}, localbroker.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "cloud broker", cloudBroker.Run, cloudBroker.Ready())
	addrs := cloudBroker.Addrs()

	for _, scheme := range []string{"ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			watcher, _, err := cloudBroker.Attach(localbroker.ClientOptions{ClientID: "watcher-" + scheme, CleanStart: true})
			if err != nil {
				t.Fatal(err)
			}
			defer watcher.Close(false)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := watcher.Subscribe(ctx, []packet.Subscription{{Filter: scheme + "/up/#", QoS: 2}}, 0); err != nil {
				t.Fatal(err)
			}
			opts := baseOptions(fmt.Sprintf("%s://%s/mqtt", scheme, addrs[scheme]),
				Rule{Direction: Out, Local: "up/#", Remote: scheme + "/up/#"},
				Rule{Direction: In, Local: "down/#", Remote: scheme + "/down/#"},
			)
			opts.Name = scheme
			if scheme == "wss" {
				opts.CAFile, opts.ServerName = pki.ca, "cloud.test"
			}
			e := newEnv(t, opts)
			e.waitOnline()

			big := make([]byte, 70000) // a 64-bit length frame
			for i := range big {
				big[i] = byte(i)
			}
			e.publish("up/a", "small", 1)
			if code, err := e.pub.Publish(ctx, &localbroker.Message{Topic: "up/b", Payload: big, QoS: 2}); err != nil || code >= 0x80 {
				t.Fatalf("publish: %v %v", code, err)
			}
			for i, want := range []struct {
				topic string
				size  int
			}{{scheme + "/up/a", 5}, {scheme + "/up/b", len(big)}} {
				d, err := watcher.Next(ctx)
				if err != nil {
					t.Fatalf("cloud delivery %d: %v", i, err)
				}
				d.Ack()
				if d.Message.Topic != want.topic || len(d.Message.Payload) != want.size {
					t.Fatalf("cloud got %s (%d bytes), want %s (%d bytes)", d.Message.Topic, len(d.Message.Payload), want.topic, want.size)
				}
			}

			local, _, err := e.broker.Attach(localbroker.ClientOptions{ClientID: "lan"})
			if err != nil {
				t.Fatal(err)
			}
			defer local.Close(false)
			if _, err := local.Subscribe(ctx, []packet.Subscription{{Filter: "down/#", QoS: 1}}, 0); err != nil {
				t.Fatal(err)
			}
			if code, err := watcher.Publish(ctx, &localbroker.Message{Topic: scheme + "/down/cmd", Payload: []byte("go"), QoS: 1}); err != nil || code >= 0x80 {
				t.Fatalf("cloud publish: %v %v", code, err)
			}
			d, err := local.Next(ctx)
			if err != nil {
				t.Fatalf("local delivery: %v", err)
			}
			d.Ack()
			if d.Message.Topic != "down/cmd" || string(d.Message.Payload) != "go" {
				t.Fatalf("local got %s %q", d.Message.Topic, d.Message.Payload)
			}
			waitFor(t, 5*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
		})
	}
}

// The frame reader answers pings, joins data frames into one stream, and
// ends at a close frame; the writer masks every frame.
func TestWSConnFrames(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := &wsConn{Conn: client, br: bufio.NewReader(client)}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		// ping "p", binary "ab" (not final), continuation "c", close 1000
		_, err := server.Write([]byte{0x89, 0x01, 'p', 0x02, 0x02, 'a', 'b', 0x80, 0x01, 'c', 0x88, 0x02, 0x03, 0xE8})
		errc <- err
	}()
	pong := make(chan []byte, 1)
	go func() {
		h := make([]byte, 7) // 2 header + 4 mask + 1 payload
		if _, err := io.ReadFull(server, h); err != nil {
			pong <- nil
			return
		}
		pong <- h
		_, _ = io.Copy(io.Discard, server) // the close frame and the rest
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "abc" {
		t.Fatalf("read %q, %v; want \"abc\"", got, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	h := <-pong
	if h == nil || h[0] != 0x8A || h[1] != 0x81 || h[6]^h[2] != 'p' {
		t.Fatalf("pong frame % x; want a masked pong carrying \"p\"", h)
	}
}
