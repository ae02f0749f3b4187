package mqttsn

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// Node rules "node:<hex>@<forwarder>" allow one Wireless Node Id behind the
// forwarders that match; a plain rule allows every datagram of its address.
func TestAddrMatcherNodeRules(t *testing.T) {
	m, err := newAddrMatcher([]string{"10.0.0.5", "node:0A0b@192.168.1.0/24", "node:01@0013a20040a1b2c3"})
	if err != nil {
		t.Fatal(err)
	}
	udp := func(s string) net.Addr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, tc := range []struct {
		addr    net.Addr
		verdict addrVerdict
		node    string
		allowed bool
	}{
		{udp("10.0.0.5:1"), addrAllowed, "\x0a\x0b", false}, // a plain rule: no node check needed
		{udp("192.168.1.9:1"), addrNodesOnly, "\x0a\x0b", true},
		{udp("[::ffff:192.168.1.9]:1"), addrNodesOnly, "\x0a\x0b", true},
		{udp("192.168.1.9:1"), addrNodesOnly, "\x0a\x0c", false},
		{udp("192.168.1.9:1"), addrNodesOnly, "\x0a", false},
		{udp("192.168.2.9:1"), addrDenied, "\x0a\x0b", false},
		{memAddr("0013A20040A1B2C3"), addrNodesOnly, "\x01", true},
		{memAddr("0013a20040a1b2c3"), addrNodesOnly, "\x02", false},
		{memAddr("0013a20040a1b2c4"), addrDenied, "\x01", false},
	} {
		if got := m.check(tc.addr); got != tc.verdict {
			t.Errorf("check(%v) = %v, want %v", tc.addr, got, tc.verdict)
		}
		if got := m.allowsNode(tc.addr, tc.node); got != tc.allowed {
			t.Errorf("allowsNode(%v, %x) = %v, want %v", tc.addr, tc.node, got, tc.allowed)
		}
	}
	for _, bad := range []string{"node:", "node:0a", "node:0a@", "node:@10.0.0.1", "node:xyz@10.0.0.1", "node:0a0@10.0.0.1",
		"node:0a@10.0.0.0/33", "node:0a@node:0b@10.0.0.1", "node:" + strings.Repeat("00", packet.MaxNodeIDLen+1) + "@10.0.0.1"} {
		if _, err := newAddrMatcher([]string{bad}); err == nil {
			t.Errorf("newAddrMatcher(%q) accepted", bad)
		}
	}
	if (*addrMatcher)(nil).check(udp("1.2.3.4:5")) != addrAllowed {
		t.Error("no allowlist must allow every address")
	}
}

// On a running gateway, a forwarder on 127.0.0.1 whose address is allowed
// only through a node rule: the listed node behind it is served, another
// node behind it and the forwarder's own plain messages are dropped
// (counted in Denied).
func TestAllowNodeBehindForwarder(t *testing.T) {
	e := newEnv(t, Options{Transports: []Transport{
		{Name: "udp", Addr: "127.0.0.1:0", AllowAddrs: []string{"node:0013a201@127.0.0.1"}},
	}})
	fwd := newSNClient(t, e.gwAddr)
	allowed := &snClient{t: t, conn: fwd.conn, gw: e.gwAddr, fwd: true, node: []byte{0x00, 0x13, 0xA2, 0x01}}
	other := &snClient{t: t, conn: fwd.conn, gw: e.gwAddr, fwd: true, node: []byte{0x00, 0x13, 0xA2, 0x02}}

	other.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("node-b")})
	fwd.send(&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("plain")})
	fwd.send(&packet.SearchGW{Radius: 0})
	eventually(t, 5*time.Second, "three datagrams denied", func() bool { return e.g.Stats().Denied == 3 })
	// The allowed node's answers are the next datagrams on the socket:
	// nothing came back for the three denied ones.
	allowed.connect("node-a", true, 60)
	allowed.send(&packet.SearchGW{Radius: 1})
	expect[*packet.GWInfo](allowed)
	if st := e.g.Stats(); st.Clients != 1 || st.Denied != 3 {
		t.Fatalf("Clients %d, Denied %d; want 1 and 3", st.Clients, st.Denied)
	}
}
