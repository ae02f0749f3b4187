package client

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// fakeGateway is a UDP socket the test answers by hand.
type fakeGateway struct {
	t    *testing.T
	pc   net.PacketConn
	peer net.Addr
}

func newFakeGateway(t *testing.T) *fakeGateway {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &fakeGateway{t: t, pc: pc}
}

func (g *fakeGateway) read() packet.Message {
	g.t.Helper()
	buf := make([]byte, 1500)
	g.pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, addr, err := g.pc.ReadFrom(buf)
	if err != nil {
		g.t.Fatal(err)
	}
	g.peer = addr
	m, err := packet.Decode(buf[:n])
	if err != nil {
		g.t.Fatal(err)
	}
	return m
}

// readAnswer reads past the client's PUBLISH resends that a slow test may
// have left in the socket.
func (g *fakeGateway) readAnswer() packet.Message {
	g.t.Helper()
	for {
		if m := g.read(); m.Type() != packet.TypePublish {
			return m
		}
	}
}

func (g *fakeGateway) send(m packet.Message) {
	g.t.Helper()
	if _, err := g.pc.WriteTo(packet.Append(nil, m), g.peer); err != nil {
		g.t.Fatal(err)
	}
}

// The client resends an unanswered PUBLISH with DUP set, hands a QoS 2
// PUBLISH that the gateway resends to the caller once, and REGACKs a
// gateway's REGISTER.
func TestRetryDupAndRegister(t *testing.T) {
	g := newFakeGateway(t)
	c, err := New(Options{Addr: g.pc.LocalAddr().String(), ClientID: "c1", Retry: 100 * time.Millisecond, Retries: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	errs := make(chan error, 1)
	go func() { errs <- c.Publish(ctx, Topic{Predefined: 3}, packet.QoS1, false, []byte("x")) }()
	first, ok := g.read().(*packet.Publish)
	if !ok || first.DUP {
		t.Fatalf("first message %+v; want a PUBLISH without DUP", first)
	}
	again, ok := g.read().(*packet.Publish) // first one left unanswered
	if !ok || !again.DUP || again.MsgID != first.MsgID {
		t.Fatalf("resend %+v; want the PUBLISH with DUP and msg id %d", again, first.MsgID)
	}
	g.send(&packet.Puback{TopicID: 3, MsgID: first.MsgID, ReturnCode: packet.Accepted})
	if err := <-errs; err != nil {
		t.Fatal(err)
	}

	g.send(&packet.Register{TopicID: 9, MsgID: 5, TopicName: []byte("a/b")})
	pub := &packet.Publish{QoS: packet.QoS2, TopicID: 9, MsgID: 6, Data: []byte("hi")}
	g.send(pub)
	g.send(pub) // a resend: PUBREC again, but one message
	g.send(&packet.Pubrel{MsgID: 6})
	got := make(chan Message, 1)
	go func() {
		m, err := c.Receive(ctx)
		errs <- err
		got <- m
	}()
	if ra, ok := g.readAnswer().(*packet.Regack); !ok || ra.TopicID != 9 || ra.MsgID != 5 {
		t.Fatalf("answer to REGISTER %+v; want REGACK for id 9, msg 5", ra)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if m := <-got; m.Topic != "a/b" || string(m.Payload) != "hi" {
		t.Fatalf("received %+v; want a/b hi", m)
	}
	if m := g.readAnswer(); m.Type() != packet.TypePubrec {
		t.Fatalf("got %v; want PUBREC", m.Type())
	}
	// The next Receive handles the resend and the PUBREL, and returns no
	// message: the resend is a duplicate.
	ctx2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if m, err := c.Receive(ctx2); err != context.DeadlineExceeded {
		t.Fatalf("second Receive = %+v, %v; want no message before the deadline", m, err)
	}
	for _, want := range []packet.MsgType{packet.TypePubrec, packet.TypePubcomp} {
		if m := g.readAnswer(); m.Type() != want {
			t.Fatalf("got %v; want %v", m.Type(), want)
		}
	}
}
