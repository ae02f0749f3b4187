package mqttsn

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"sensor-*", "sensor-1", true},
		{"sensor-*", "sensor-", true},
		{"sensor-*", "sensor", false},
		{"sensor-*", "xsensor-1", false},
		{"*", "", true},
		{"*", "a/b/c", true},
		{"site/*/t", "site/a/b/t", true}, // '/' is not special
		{"site/*/t", "site/a/b/u", false},
		{"node-?", "node-7", true},
		{"node-?", "node-77", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"*-01", "pump-01", true},
		{"**x", "abx", true},
		{"exact", "exact", true},
		{"exact", "exact2", false},
	} {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestAddrMatcher(t *testing.T) {
	m, err := newAddrMatcher([]string{"192.168.1.0/24", "10.0.0.5", "fd00::/8", "0013A20040A1B2C3", "::ffff:172.16.0.0/112", "::ffff:10.9.9.9/128"})
	if err != nil {
		t.Fatal(err)
	}
	udp := func(s string) net.Addr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, tc := range []struct {
		addr net.Addr
		want bool
	}{
		{udp("192.168.1.77:1000"), true},
		{udp("[::ffff:192.168.1.77]:1000"), true}, // a v4 client on a dual-stack socket
		{udp("192.168.2.1:1000"), false},
		{udp("10.0.0.5:9"), true},
		{udp("10.0.0.6:9"), false},
		{udp("[fd12::1]:5"), true},
		{udp("[fe80::1]:5"), false},
		{udp("172.16.3.4:1"), true}, // a rule written IPv4-mapped matches as IPv4
		{udp("172.17.0.1:1"), false},
		{udp("10.9.9.9:1"), true},
		{memAddr("0013a20040a1b2c3"), true}, // node addresses ignore case
		{memAddr("0013a20040a1b2c4"), false},
	} {
		if got := m.match(tc.addr); got != tc.want {
			t.Errorf("match(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "a b", "x/y"} {
		if _, err := newAddrMatcher([]string{bad}); err == nil {
			t.Errorf("newAddrMatcher(%q) accepted", bad)
		}
	}
	if (*addrMatcher)(nil).match(udp("1.2.3.4:5")) != true {
		t.Error("no allowlist must allow every address")
	}
}

// BenchmarkAddrAllowlist measures the check of one datagram's source
// against an allowlist of 1,000 device addresses, a few prefixes and
// nodes behind a forwarder: an address not listed (as a spoofed one), a
// listed one, and a node behind the forwarder.
func BenchmarkAddrAllowlist(b *testing.B) {
	rules := []string{"fd00::/8", "192.168.50.0/24"}
	for i := range 1000 {
		rules = append(rules, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1))
		rules = append(rules, fmt.Sprintf("node:%04x@10.2.0.1", i))
	}
	m, err := newAddrMatcher(rules)
	if err != nil {
		b.Fatal(err)
	}
	udp := func(s string) net.Addr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, bc := range []struct {
		name string
		addr net.Addr
		node string
	}{
		{"denied", udp("203.0.113.7:1"), ""},
		{"listed", udp("10.1.3.250:1"), ""},
		{"node", udp("10.2.0.1:1"), "\x03\xe7"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v := m.check(bc.addr); v == addrNodesOnly && !m.allowsNode(bc.addr, bc.node) {
					b.Fatal("node not allowed")
				}
			}
		})
	}
}

func TestUsernames(t *testing.T) {
	u, err := newUsernames(map[string]string{"sensor-*": "sensors", "sensor-7*": "seven", "sensor-77": "exact", "*": "anyone"})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"sensor-77": "exact", "sensor-78": "seven", "sensor-1": "sensors", "pump": "anyone"} {
		if got := u.of(id); got != want {
			t.Errorf("username of %q = %q, want %q", id, got, want)
		}
	}
	if _, err := newUsernames(map[string]string{"a": ""}); err == nil {
		t.Error("an empty username was accepted")
	}
}

// The limiter is a token bucket per address that refills at its rate, and
// its table never holds more than its bound, however many addresses come.
func TestRateLimiter(t *testing.T) {
	r := newRateLimiter(2, 3, 100)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if !r.allow("a", t0) {
			t.Fatalf("message %d of the burst refused", i)
		}
	}
	if r.allow("a", t0) {
		t.Fatal("a fourth message in the same instant allowed with a burst of 3")
	}
	if !r.allow("b", t0) {
		t.Fatal("another address shares the first one's bucket")
	}
	if !r.allow("a", t0.Add(500*time.Millisecond)) || r.allow("a", t0.Add(500*time.Millisecond)) {
		t.Fatal("after 0.5 s at 2/s exactly one token must be back")
	}
	for i := range 10000 {
		r.allow("spoofed-"+strconv.Itoa(i), t0)
	}
	if n := r.len(); n != 100 {
		t.Fatalf("table holds %d addresses, want its bound 100", n)
	}
	if newRateLimiter(-1, 1, 1) != nil || !(*rateLimiter)(nil).allow("x", t0) {
		t.Fatal("a negative rate must mean no limit")
	}
}

// A flood from ever new (spoofed) addresses gets no more through than the
// table's addresses get at the rate: once the table is full of addresses
// seen lately, a new address is refused rather than handed a full bucket
// by evicting one, and an address that keeps sending keeps its bucket.
// When the old entries have refilled, new addresses take their places.
func TestRateLimiterSpoofedFlood(t *testing.T) {
	const rate, burst, max = 1.0, 3, 100
	r := newRateLimiter(rate, burst, max)
	t0 := time.Unix(1000, 0)
	for range burst {
		r.allow("steady", t0)
	}
	allowed := 0
	for i := range 10000 {
		if r.allow("spoofed-"+strconv.Itoa(i), t0) {
			allowed++
		}
	}
	if allowed != max-1 {
		t.Fatalf("%d of 10000 datagrams from new addresses allowed at once, want %d (the table's room)", allowed, max-1)
	}
	if r.allow("steady", t0) {
		t.Fatal("the flood gave an address that had spent its burst a new bucket")
	}
	if n := r.len(); n != max {
		t.Fatalf("table holds %d addresses, want %d", n, max)
	}
	// Half a token back in every bucket: still no room (a bucket is full
	// only at its burst; each flooding address spent one token).
	if r.allow("late", t0.Add(time.Second/2)) {
		t.Fatal("a new address evicted one whose bucket had not refilled")
	}
	// Every bucket full again: the oldest makes room.
	if !r.allow("later", t0.Add(time.Second)) {
		t.Fatal("a new address refused once the table's buckets had refilled")
	}
}

// A transport's ClientId allowlist: a listed id or a matching pattern
// connects; another id gets CONNACK "rejected: not supported", counted.
func TestAllowClientIDs(t *testing.T) {
	e := newEnv(t, Options{Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0",
		AllowClientIDs: []string{"pump-1", "sensor-*"}}}})
	newSNClient(t, e.gwAddr).connect("sensor-9", true, 60)
	newSNClient(t, e.gwAddr).connect("pump-1", true, 60)
	c := newSNClient(t, e.gwAddr)
	c.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("intruder")})
	if ca := expect[*packet.Connack](c); ca.ReturnCode != packet.RejectedNotSupported {
		t.Fatalf("CONNACK %v for a client id not allowed, want rejected: not supported", ca.ReturnCode)
	}
	if st := e.g.Stats(); st.Denied != 1 || st.Refused != 1 || st.Clients != 2 {
		t.Fatalf("Denied %d, Refused %d, Clients %d; want 1, 1, 2", st.Denied, st.Refused, st.Clients)
	}
}

// A transport's address allowlist: datagrams from other addresses are
// dropped unanswered and counted, on the same gateway where an allowed
// transport serves them.
func TestAllowAddrs(t *testing.T) {
	e := newEnv(t, Options{Transports: []Transport{
		{Name: "closed", Addr: "127.0.0.1:0", AllowAddrs: []string{"10.0.0.0/8"}},
		{Name: "open", Addr: "127.0.0.1:0", AllowAddrs: []string{"127.0.0.0/8", "::1"}},
	}})
	c := newSNClient(t, e.gwAddr)
	c.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("outsider")})
	c.send(&packet.SearchGW{Radius: 0})
	eventually(t, 5*time.Second, "two datagrams denied", func() bool { return e.g.Stats().Denied == 2 })
	c.expectNothing(100 * time.Millisecond)
	if st := e.g.Stats(); st.Clients != 0 {
		t.Fatalf("Clients %d, want 0", st.Clients)
	}
	newSNClient(t, e.g.Addrs()["open"]).connect("insider", true, 60)
}

// Node addresses on a link that is not UDP (a serial link's): only the
// listed node is served.
func TestAllowNodeAddrs(t *testing.T) {
	n := newMemNet()
	gwConn := n.listen("gw")
	b, _ := startBroker(t)
	startGateway(t, b, Options{Transports: []Transport{{Name: "radio", Conn: gwConn, AllowAddrs: []string{"00AA"}}}})
	for _, node := range []string{"00aa", "00bb"} {
		c := &snClient{t: t, conn: n.listen(node), gw: memAddr("gw")}
		t.Cleanup(func() { c.conn.Close() })
		c.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("node-" + node)})
		if node == "00aa" {
			expect[*packet.Connack](c)
		} else {
			c.expectNothing(100 * time.Millisecond)
		}
	}
}

// Traffic without a session (SEARCHGW, QoS -1 PUBLISH, what gets a
// DISCONNECT, a CONNECT that would make or move a client) is limited per
// source address: beyond the burst it is dropped unanswered and counted,
// while another address is served.
func TestUnconnectedRateLimit(t *testing.T) {
	e := newEnv(t, Options{
		Transports:       []Transport{{Name: "udp", Addr: "127.0.0.1:0", AllowQoSMinus1: true}},
		Predefined:       map[uint16]string{7: "minus1/t"},
		UnconnectedRate:  0.001, // no refill while the test runs
		UnconnectedBurst: 3,
	})
	w := watch(t, e.b, "minus1/#")
	c := newSNClient(t, e.gwAddr)
	for range 5 {
		c.send(&packet.SearchGW{})
	}
	for range 3 {
		expect[*packet.GWInfo](c)
	}
	eventually(t, 5*time.Second, "2 SEARCHGW limited", func() bool { return e.g.Stats().RateLimited == 2 })
	c.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: 7, Data: []byte("x")})
	c.send(&packet.Pingreq{})
	eventually(t, 5*time.Second, "4 limited", func() bool { return e.g.Stats().RateLimited == 4 })
	c.expectNothing(100 * time.Millisecond)
	w.expectNothing(100 * time.Millisecond)

	o := newSNClient(t, e.gwAddr)
	o.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: 7, Data: []byte("y")})
	w.expect("minus1/t", "y")
	o.send(&packet.Pingreq{})
	expect[*packet.Disconnect](o)
	// A CONNECT from an address without a session takes a token too: c has
	// none left, o its last one.
	c.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("flood")})
	eventually(t, 5*time.Second, "CONNECT limited", func() bool { return e.g.Stats().RateLimited == 5 })
	c.expectNothing(100 * time.Millisecond)
	o.connect("busy", true, 60)
	// A connected client is not limited, nor is its CONNECT again from its
	// address; one with another ClientId from there is.
	for range 10 {
		o.send(&packet.Pingreq{})
		expect[*packet.Pingresp](o)
	}
	o.connect("busy", true, 60)
	o.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("other")})
	eventually(t, 5*time.Second, "CONNECT of another ClientId limited", func() bool { return e.g.Stats().RateLimited == 6 })
	if n := len(e.g.Clients()); n != 1 {
		t.Fatalf("%d clients, want 1: a refused CONNECT made a client", n)
	}
}

// Usernames and an ACL file: a device mapped to a username gets that
// user's block, seen by mosquitto_sub on the broker's LAN listener: its
// allowed publish arrives, the refused one gets PUBACK "rejected: not
// supported" and does not; a refused subscription and will topic get 0x03
// in SUBACK and CONNACK; an unmapped device gets the anonymous block.
func TestUsernameACL(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(acl, []byte("topic read public/#\n"+
		"user sensors\n"+
		"topic readwrite sensors/#\n"+
		"topic read cmd/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{ACLFile: acl, Usernames: map[string]string{"sensor-*": "sensors"},
		Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0", AllowQoSMinus1: true}},
		Predefined: map[uint16]string{1: "sensors/anon", 2: "public/anon"}})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			sub := e.startSub(t, v, "#", 1)
			c := newSNClient(t, e.gwAddr)
			c.connect("sensor-1", true, 60)
			ok := c.register("sensors/t")
			c.publish(packet.TopicIDNormal, ok, packet.QoS1, false, "allowed")
			sub.expect("MSG|sensors/t|1|0|allowed")

			bad := c.register("other/t")
			c.send(&packet.Publish{QoS: packet.QoS1, TopicID: bad, MsgID: 900, Data: []byte("refused")})
			if pa := expect[*packet.Puback](c); pa.MsgID != 900 || pa.ReturnCode != packet.RejectedNotSupported {
				t.Fatalf("PUBACK %+v, want rejected: not supported", pa)
			}
			c.publish(packet.TopicIDNormal, ok, packet.QoS1, false, "after")
			sub.expect("MSG|sensors/t|1|0|after") // not the refused one

			if sa := c.subscribe(packet.TopicIDNormal, "secret/x", 0, packet.QoS1); sa.ReturnCode != packet.RejectedNotSupported {
				t.Fatalf("SUBACK %+v for a topic it may not read, want rejected: not supported", sa)
			}
			if sa := c.subscribe(packet.TopicIDNormal, "cmd/+", 0, packet.QoS1); sa.ReturnCode != packet.Accepted {
				t.Fatalf("SUBACK %+v", sa)
			}
			mosqPub(t, e.tcp, v, "-t", "public/news", "-m", "not for sensors", "-q", "1")
			mosqPub(t, e.tcp, v, "-t", "cmd/go", "-m", "go", "-q", "1")
			r := c.acceptRegister()
			if p := c.expectPublish(); string(r.TopicName) != "cmd/go" || string(p.Data) != "go" {
				t.Fatalf("got %q on %s, want the command only", p.Data, r.TopicName)
			}

			// Not mapped: the anonymous block, which may not write sensors/.
			a := newSNClient(t, e.gwAddr)
			a.connect("pump-"+v, true, 60)
			id := a.register("sensors/t")
			a.send(&packet.Publish{QoS: packet.QoS1, TopicID: id, MsgID: 901, Data: []byte("x")})
			if pa := expect[*packet.Puback](a); pa.ReturnCode != packet.RejectedNotSupported {
				t.Fatalf("PUBACK %+v for an unmapped client, want rejected: not supported", pa)
			}

			// A will topic it may not write refuses the CONNECT.
			wc := newSNClient(t, e.gwAddr)
			wc.send(&packet.Connect{Will: true, CleanSession: true, KeepAlive: 60, ClientID: []byte("sensor-w")})
			expect[*packet.WillTopicReq](wc)
			wc.send(&packet.WillTopic{QoS: packet.QoS0, WillTopic: []byte("public/will")})
			expect[*packet.WillMsgReq](wc)
			wc.send(&packet.WillMsg{WillMsg: []byte("bye")})
			if ca := expect[*packet.Connack](wc); ca.ReturnCode != packet.RejectedNotSupported {
				t.Fatalf("CONNACK %v for a will topic not allowed, want rejected: not supported", ca.ReturnCode)
			}
		})
	}
	// QoS -1 has no client: the anonymous block, which may read public/
	// but not write there or to sensors/.
	w := watch(t, e.b, "#")
	c := newSNClient(t, e.gwAddr)
	for _, id := range []uint16{1, 2} {
		c.send(&packet.Publish{QoS: packet.QoSMinus1, TopicIDType: packet.TopicIDPredefined, TopicID: id, Data: []byte("anon")})
	}
	// Per version: publish, subscribe, publish of the unmapped client,
	// will; then the two QoS -1 messages.
	eventually(t, 5*time.Second, "10 refusals counted", func() bool { return e.g.Stats().NotAuthorized == 10 })
	w.expectNothing(100 * time.Millisecond)
}
