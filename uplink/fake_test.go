package uplink

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/outpost-gw/outpost/localbroker"
)

// fakeCloud is a minimal MQTT 5 server written for the test, for what
// mosquitto cannot be made to do: withhold acknowledgements, refuse with a
// chosen reason code, resume a session.
type fakeCloud struct {
	t  testing.TB
	ln net.Listener
	wg sync.WaitGroup

	mu          sync.Mutex
	conns       []net.Conn
	received    []*packets.Publish // every PUBLISH, in arrival order
	connects    int
	pubrels     []uint16
	policy      func(p *packets.Publish, seen int) (code byte, ack bool)
	presentFrom int // CONNACKs from this connection on say Session Present; 0: never
	recvMax     uint16
	refuse      byte     // CONNACK reason code while non-zero
	events      []string // "publish <id>", "pubrel <id>", in arrival order
	// subCode and unsubCode give the SUBACK and UNSUBACK reason code of a
	// filter; nil grants QoS 1 and unsubscribes (0x00).
	subCode, unsubCode func(filter string) byte
	subEvents          []string // "subscribe F <code>", "unsubscribe F <code>"
}

func newFakeCloud(t testing.TB) *fakeCloud {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCloud{t: t, ln: ln, policy: func(*packets.Publish, int) (byte, bool) { return 0, true }}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeCloud) url() string { return "mqtt://" + f.ln.Addr().String() }

func (f *fakeCloud) close() {
	f.ln.Close()
	f.dropAll()
	f.wg.Wait()
}

// setPolicy decides the answer to each PUBLISH: seen is how many times a
// PUBLISH with the same payload arrived before.
func (f *fakeCloud) setPolicy(p func(p *packets.Publish, seen int) (code byte, ack bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policy = p
}

func (f *fakeCloud) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (f *fakeCloud) payloads() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.received {
		out = append(out, string(p.Payload))
	}
	return out
}

func (f *fakeCloud) publishes() []*packets.Publish {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.received)
}

func (f *fakeCloud) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			f.serve(c)
		}()
	}
}

func (f *fakeCloud) serve(c net.Conn) {
	cp, err := packets.ReadPacket(c)
	if err != nil || cp.Type != packets.CONNECT {
		return
	}
	f.mu.Lock()
	f.connects++
	ca := &packets.Connack{SessionPresent: f.presentFrom > 0 && f.connects >= f.presentFrom, Properties: &packets.Properties{}}
	if f.refuse != 0 {
		ca.ReasonCode = f.refuse
	}
	if f.recvMax > 0 {
		rm := f.recvMax
		ca.Properties.ReceiveMaximum = &rm
	}
	f.mu.Unlock()
	if _, err := ca.WriteTo(c); err != nil || ca.ReasonCode != 0 {
		return
	}
	for {
		cp, err := packets.ReadPacket(c)
		if err != nil {
			return
		}
		switch p := cp.Content.(type) {
		case *packets.Publish:
			f.mu.Lock()
			seen := 0
			for _, r := range f.received {
				if string(r.Payload) == string(p.Payload) {
					seen++
				}
			}
			f.received = append(f.received, p)
			f.events = append(f.events, fmt.Sprintf("publish %d", p.PacketID))
			code, ack := f.policy(p, seen)
			f.mu.Unlock()
			if !ack || p.QoS == 0 {
				continue
			}
			if p.QoS == 1 {
				_, err = (&packets.Puback{PacketID: p.PacketID, ReasonCode: code, Properties: &packets.Properties{}}).WriteTo(c)
			} else {
				_, err = (&packets.Pubrec{PacketID: p.PacketID, ReasonCode: code, Properties: &packets.Properties{}}).WriteTo(c)
			}
		case *packets.Pubrel:
			f.mu.Lock()
			f.pubrels = append(f.pubrels, p.PacketID)
			f.events = append(f.events, fmt.Sprintf("pubrel %d", p.PacketID))
			f.mu.Unlock()
			_, err = (&packets.Pubcomp{PacketID: p.PacketID}).WriteTo(c)
		case *packets.Pingreq:
			_, err = (&packets.Pingresp{}).WriteTo(c)
		case *packets.Subscribe:
			sa := &packets.Suback{PacketID: p.PacketID, Properties: &packets.Properties{}}
			f.mu.Lock()
			for _, s := range p.Subscriptions {
				code := byte(1)
				if f.subCode != nil {
					code = f.subCode(s.Topic)
				}
				sa.Reasons = append(sa.Reasons, code)
				f.subEvents = append(f.subEvents, fmt.Sprintf("subscribe %s %#x", s.Topic, code))
			}
			f.mu.Unlock()
			_, err = sa.WriteTo(c)
		case *packets.Unsubscribe:
			ua := &packets.Unsuback{PacketID: p.PacketID, Properties: &packets.Properties{}}
			f.mu.Lock()
			for _, t := range p.Topics {
				code := byte(0)
				if f.unsubCode != nil {
					code = f.unsubCode(t)
				}
				ua.Reasons = append(ua.Reasons, code)
				f.subEvents = append(f.subEvents, fmt.Sprintf("unsubscribe %s %#x", t, code))
			}
			f.mu.Unlock()
			_, err = ua.WriteTo(c)
		case *packets.Disconnect:
			return
		}
		if err != nil {
			return
		}
	}
}

func payloadsN(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	return out
}

// Messages stay in the spool until the cloud acknowledged them: a cloud
// that takes PUBLISHes without acknowledging gets exactly Window of them,
// and the spool keeps all. When the connection is lost without a session
// at the cloud, everything goes again from the head of the queue.
func TestSpoolKeepsUnacknowledgedMessages(t *testing.T) {
	fc := newFakeCloud(t)
	fc.setPolicy(func(*packets.Publish, int) (byte, bool) { return 0, false })
	opts := baseOptions(fc.url(), Rule{Direction: Out, Local: "d/#", Remote: "site/d/#"})
	opts.Window = 4
	e := newEnv(t, opts)
	e.waitOnline()
	want := payloadsN("m", 10)
	for _, p := range want {
		e.publish("d/x", p, 1)
	}
	waitFor(t, 5*time.Second, "a full window at the cloud", func() bool { return len(fc.payloads()) >= 4 })
	waitFor(t, 5*time.Second, "4 messages in flight", func() bool { return e.bridge.Stats().Classes[0].InFlight == 4 })
	if d := e.depth(0); d != 10 {
		t.Fatalf("spool depth %d with nothing acknowledged, want 10", d)
	}
	if got := fc.payloads(); !slices.Equal(got, want[:4]) {
		t.Fatalf("cloud got %v, want the window %v", got, want[:4])
	}
	for _, p := range fc.publishes() {
		if p.Topic != "site/d/x" || p.QoS != 1 {
			t.Fatalf("publish %s QoS %d, want site/d/x QoS 1", p.Topic, p.QoS)
		}
	}

	// The cloud now acknowledges; the connection is cut mid-drain.
	fc.setPolicy(func(*packets.Publish, int) (byte, bool) { return 0, true })
	fc.dropAll()
	waitFor(t, 10*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	got := fc.payloads()
	if !slices.Equal(got[:4], want[:4]) || !slices.Equal(got[4:], want) {
		t.Fatalf("cloud got %v; want the first window, then everything again from the head", got)
	}
	if st := e.bridge.Stats(); st.Out != 10 || st.Classes[0].InFlight != 0 {
		t.Errorf("stats %+v: want 10 out, none in flight", st)
	}
}

// When the cloud resumes the session, the messages in flight are resent
// with their packet identifiers and the DUP flag, not read again from the
// spool; QoS 2 completes through PUBREL.
func TestResumedSessionResendsFlights(t *testing.T) {
	fc := newFakeCloud(t)
	fc.presentFrom = 2
	fc.setPolicy(func(*packets.Publish, int) (byte, bool) { return 0, false })
	opts := baseOptions(fc.url(), Rule{Direction: Out, Local: "d/#"})
	opts.Window = 3
	e := newEnv(t, opts)
	e.waitOnline()
	e.publish("d/x", "a", 1)
	e.publish("d/x", "b", 2)
	e.publish("d/x", "c", 1)
	e.publish("d/x", "d", 1)
	waitFor(t, 5*time.Second, "a full window", func() bool { return len(fc.payloads()) >= 3 })
	first := fc.publishes()

	fc.setPolicy(func(*packets.Publish, int) (byte, bool) { return 0, true })
	fc.dropAll()
	waitFor(t, 10*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	all := fc.publishes()
	if got := fc.payloads(); !slices.Equal(got, []string{"a", "b", "c", "a", "b", "c", "d"}) {
		t.Fatalf("cloud got %v; want the window, the same window resent, then d", got)
	}
	for i := range 3 {
		r := all[3+i]
		if !r.Duplicate || r.PacketID != first[i].PacketID || r.QoS != first[i].QoS {
			t.Errorf("resent %q: dup %v id %d QoS %d; want dup with id %d QoS %d", r.Payload, r.Duplicate, r.PacketID, r.QoS, first[i].PacketID, first[i].QoS)
		}
	}
	fc.mu.Lock()
	pubrels := slices.Clone(fc.pubrels)
	fc.mu.Unlock()
	if !slices.Contains(pubrels, first[1].PacketID) {
		t.Errorf("no PUBREL for the QoS 2 message's id %d (PUBRELs %v)", first[1].PacketID, pubrels)
	}
}

// A cloud that says "quota exceeded" gets the message again later; nothing
// is quarantined or lost.
func TestQuotaExceededIsRetried(t *testing.T) {
	fc := newFakeCloud(t)
	fc.setPolicy(func(p *packets.Publish, seen int) (byte, bool) {
		if string(p.Payload) == "m02" && seen < 2 {
			return 0x97, true
		}
		return 0, true
	})
	e := newEnv(t, baseOptions(fc.url(), Rule{Direction: Out, Local: "d/#"}))
	e.waitOnline()
	want := payloadsN("m", 6)
	for _, p := range want {
		e.publish("d/x", p, 1)
	}
	waitFor(t, 10*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	got := fc.payloads()
	if n := slices.IndexFunc(got, func(s string) bool { return s == "m02" }); n < 0 {
		t.Fatalf("m02 never sent: %v", got)
	}
	count := 0
	for _, p := range got {
		if p == "m02" {
			count++
		}
	}
	if count != 3 {
		t.Errorf("m02 sent %d times, want 3 (two refusals, then accepted): %v", count, got)
	}
	if order := firstOccurrences(toMsgs(got)); !slices.Equal(order, want) {
		t.Errorf("first occurrences %v, want %v", order, want)
	}
	if st := e.bridge.Stats(); st.Quarantined != 0 || st.Out != 6 {
		t.Errorf("stats %+v: want 6 out, none quarantined", st)
	}
}

func toMsgs(payloads []string) []cloudMsg {
	out := make([]cloudMsg, len(payloads))
	for i, p := range payloads {
		out[i].payload = p
	}
	return out
}

// The window is capped by the cloud's Receive Maximum.
func TestWindowCappedByReceiveMaximum(t *testing.T) {
	fc := newFakeCloud(t)
	fc.recvMax = 2
	fc.setPolicy(func(*packets.Publish, int) (byte, bool) { return 0, false })
	opts := baseOptions(fc.url(), Rule{Direction: Out, Local: "d/#"})
	opts.DrainTimeout = 50 * time.Millisecond // nothing will be acknowledged
	e := newEnv(t, opts)
	e.waitOnline()
	for _, p := range payloadsN("m", 5) {
		e.publish("d/x", p, 1)
	}
	waitFor(t, 5*time.Second, "2 messages in flight", func() bool { return e.bridge.Stats().Classes[0].InFlight == 2 })
	waitFor(t, 5*time.Second, "2 messages at the cloud", func() bool { return len(fc.payloads()) >= 2 })
	e.publish("d/x", "one more", 1) // another chance to overfill the window
	// The fake never acknowledges: more than 2 would be a protocol error
	// that nothing could take back, so the count is final once 2 are in.
	if got := fc.payloads(); len(got) != 2 || e.bridge.Stats().Classes[0].InFlight != 2 {
		t.Fatalf("cloud got %v with Receive Maximum 2", got)
	}
}

// A new process does not know which packet identifiers the resumed cloud
// session still holds for QoS 2 (a new PUBLISH with such an id would be
// taken for a duplicate and dropped): each id is released with a PUBREL
// before its first use.
func TestUnknownSessionReleasesIdentifiers(t *testing.T) {
	fc := newFakeCloud(t)
	fc.presentFrom = 1
	e := newEnv(t, baseOptions(fc.url(), Rule{Direction: Out, Local: "d/#"}))
	e.waitOnline()
	e.publish("d/x", "a", 2)
	e.publish("d/x", "b", 1)
	waitFor(t, 5*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	fc.mu.Lock()
	events := slices.Clone(fc.events)
	fc.mu.Unlock()
	for _, p := range fc.publishes() {
		rel := slices.Index(events, fmt.Sprintf("pubrel %d", p.PacketID))
		pub := slices.Index(events, fmt.Sprintf("publish %d", p.PacketID))
		if rel < 0 || rel > pub {
			t.Errorf("id %d not released before its first PUBLISH: %v", p.PacketID, events)
		}
	}
}

// Messages past their rule's MaxAge or their own expiry are dropped from
// the spool (counted) instead of being sent; the expiry left is forwarded
// for the others.
func TestExpiredMessagesAreDropped(t *testing.T) {
	fc := newFakeCloud(t)
	fc.refuse = 0x88 // server unavailable: the bridge stays offline
	e := newEnv(t, baseOptions(fc.url(),
		Rule{Direction: Out, Local: "old/#", MaxAge: time.Millisecond},
		Rule{Direction: Out, Local: "d/#"},
	))
	waitFor(t, 5*time.Second, "a refused attempt", func() bool {
		return strings.Contains(e.bridge.Stats().LastError, "server unavailable")
	})
	e.publish("old/x", "too old", 1)
	exp := time.Now().Add(30 * time.Millisecond)
	for _, m := range []*localbroker.Message{
		{Topic: "d/x", Payload: []byte("expires"), QoS: 1, ExpiresAt: exp},
		{Topic: "d/x", Payload: []byte("lasts"), QoS: 1, ExpiresAt: time.Now().Add(time.Hour)},
	} {
		if code, err := e.pub.Publish(context.Background(), m); err != nil || code >= 0x80 {
			t.Fatalf("publish: %v %v", code, err)
		}
	}
	waitFor(t, time.Second, "the expiry to pass", func() bool { return time.Now().After(exp.Add(5 * time.Millisecond)) })
	fc.mu.Lock()
	fc.refuse = 0
	fc.mu.Unlock()
	waitFor(t, 10*time.Second, "the spool emptied", func() bool { return e.depth(0) == 0 })
	got := fc.publishes()
	if len(got) != 1 || string(got[0].Payload) != "lasts" {
		t.Fatalf("cloud got %v, want only the message that did not expire", fc.payloads())
	}
	if me := got[0].Properties.MessageExpiry; me == nil || *me < 3500 || *me > 3600 {
		t.Errorf("message expiry %v, want about 3600", me)
	}
	if st := e.bridge.Stats(); st.Dropped != 2 || st.Out != 1 {
		t.Errorf("stats %+v: want 2 dropped, 1 out", st)
	}
}
