package mqttsn

import (
	"cmp"
	"container/list"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// --- allowlists --------------------------------------------------------------

// idMatcher holds client id rules: exact ids and patterns with '*' (any run
// of octets, '/' included) and '?' (one octet).
type idMatcher struct {
	exact    map[string]bool
	patterns []string
}

func newIDMatcher(rules []string) (*idMatcher, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	m := &idMatcher{exact: map[string]bool{}}
	for _, r := range rules {
		if err := checkIDRule(r); err != nil {
			return nil, err
		}
		if strings.ContainsAny(r, "*?") {
			m.patterns = append(m.patterns, r)
		} else {
			m.exact[r] = true
		}
	}
	return m, nil
}

// checkIDRule checks a client id or pattern of an allowlist or of the
// username mapping.
func checkIDRule(r string) error {
	if r == "" || strings.ContainsRune(r, 0) {
		return fmt.Errorf("client id pattern %q is empty or holds U+0000", r)
	}
	return nil
}

// match reports whether id is allowed; a nil matcher allows every id.
func (m *idMatcher) match(id string) bool {
	if m == nil || m.exact[id] {
		return true
	}
	for _, p := range m.patterns {
		if globMatch(p, id) {
			return true
		}
	}
	return false
}

// globMatch reports whether s matches pattern, where '*' matches any run of
// octets and '?' one octet (unlike path.Match, '/' is not special: client
// ids often hold it). Linear backtracking over the last '*'.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// addrMatcher holds address rules: IP addresses and prefixes (a CIDR or one
// address) for UDP sources, and other addresses (a serial link's node
// addresses) compared as text, case-insensitively; and node rules
// "node:<hex>@<forwarder>", which allow one Wireless Node Id behind the
// forwarders that <forwarder> (an address rule) matches (MQTT-SN 1.2 §5.5).
// It is asked about every datagram: single addresses and node ids are
// looked up in maps, so a long list of devices costs no more per datagram
// than a short one; only the CIDR prefixes wider than one address are
// scanned.
type addrMatcher struct {
	ips      map[netip.Addr]bool // single addresses, IPv4-mapped unmapped
	prefixes []netip.Prefix      // wider prefixes
	names    map[string]bool
	nodes    map[string][]*addrMatcher // node id octets -> forwarders (one address rule each)
	fwds     *addrMatcher              // every forwarder of a node rule; nil: none
}

// nodeRulePrefix starts a node rule of an address allowlist.
const nodeRulePrefix = "node:"

func newAddrMatcher(rules []string) (*addrMatcher, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	m := &addrMatcher{}
	for _, r := range rules {
		if rest, ok := strings.CutPrefix(r, nodeRulePrefix); ok {
			nodeHex, fwdRule, _ := strings.Cut(rest, "@")
			node, err := hex.DecodeString(nodeHex)
			if err != nil || len(node) == 0 || len(node) > packet.MaxNodeIDLen {
				return nil, fmt.Errorf("address %q: the node id after %q is not 1 to %d octets in hex", r, nodeRulePrefix, packet.MaxNodeIDLen)
			}
			fwd := &addrMatcher{}
			if err := fwd.addAddr(fwdRule); err != nil {
				return nil, fmt.Errorf("address %q: the forwarder after '@': %w", r, err)
			}
			if m.nodes == nil {
				m.nodes, m.fwds = map[string][]*addrMatcher{}, &addrMatcher{}
			}
			m.nodes[string(node)] = append(m.nodes[string(node)], fwd)
			_ = m.fwds.addAddr(fwdRule)
			continue
		}
		if err := m.addAddr(r); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// addAddr adds an address rule.
func (m *addrMatcher) addAddr(r string) error {
	var pf netip.Prefix
	if p, err := netip.ParsePrefix(r); err == nil {
		pf = p.Masked()
		if a := pf.Addr(); a.Is4In6() && pf.Bits() >= 96 {
			pf = netip.PrefixFrom(a.Unmap(), pf.Bits()-96) // as a v4 client of a dual-stack socket is seen
		}
	} else if a, err := netip.ParseAddr(r); err == nil {
		pf = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	} else if r == "" || strings.ContainsAny(r, " \t/@") {
		return fmt.Errorf("address %q is neither an IP address, a CIDR prefix nor a node address", r)
	} else {
		if m.names == nil {
			m.names = map[string]bool{}
		}
		m.names[strings.ToLower(r)] = true
		return nil
	}
	if pf.IsSingleIP() {
		if m.ips == nil {
			m.ips = map[netip.Addr]bool{}
		}
		m.ips[pf.Addr()] = true
	} else {
		m.prefixes = append(m.prefixes, pf)
	}
	return nil
}

// match reports whether an address rule allows every datagram from addr; a
// nil matcher allows every address.
func (m *addrMatcher) match(addr net.Addr) bool {
	if m == nil {
		return true
	}
	if ip, ok := addrIP(addr); ok {
		if m.ips[ip] {
			return true
		}
		for _, pf := range m.prefixes {
			if pf.Contains(ip) {
				return true
			}
		}
	}
	return len(m.names) > 0 && m.names[strings.ToLower(addr.String())]
}

// addrVerdict is what an allowlist says of a datagram's source address.
type addrVerdict uint8

const (
	addrDenied    addrVerdict = iota
	addrAllowed               // every datagram from it
	addrNodesOnly             // only encapsulated ones of the nodes allowed (allowsNode)
)

// check tells which datagrams from addr are served.
func (m *addrMatcher) check(addr net.Addr) addrVerdict {
	switch {
	case m.match(addr):
		return addrAllowed
	case m.fwds != nil && m.fwds.match(addr):
		return addrNodesOnly
	}
	return addrDenied
}

// allowsNode reports whether a node rule allows the client with Wireless
// Node Id node behind the forwarder at addr.
func (m *addrMatcher) allowsNode(addr net.Addr, node string) bool {
	for _, fwd := range m.nodes[node] {
		if fwd.match(addr) {
			return true
		}
	}
	return false
}

// addrIP returns the IP of a UDP address (IPv4-mapped IPv6 unmapped).
func addrIP(addr net.Addr) (netip.Addr, bool) {
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case interface{ AddrPort() netip.AddrPort }:
		ap := a.AddrPort()
		return ap.Addr().Unmap(), ap.IsValid()
	}
	return netip.Addr{}, false
}

// --- usernames ---------------------------------------------------------------

// usernames maps a ClientId to a broker username: an exact id first, then
// the pattern with the most literal octets (ties: the first in sort order).
type usernames struct {
	exact    map[string]string
	patterns []userPattern
}

type userPattern struct{ pattern, user string }

func newUsernames(m map[string]string) (*usernames, error) {
	if len(m) == 0 {
		return nil, nil
	}
	u := &usernames{exact: map[string]string{}}
	for id, user := range m {
		if err := checkIDRule(id); err != nil {
			return nil, err
		}
		if user == "" || strings.ContainsRune(user, 0) {
			return nil, fmt.Errorf("username for %q is empty or holds U+0000", id)
		}
		if strings.ContainsAny(id, "*?") {
			u.patterns = append(u.patterns, userPattern{id, user})
		} else {
			u.exact[id] = user
		}
	}
	literal := func(p string) int { return len(p) - strings.Count(p, "*") - strings.Count(p, "?") }
	slices.SortFunc(u.patterns, func(a, b userPattern) int {
		return cmp.Or(cmp.Compare(literal(b.pattern), literal(a.pattern)), cmp.Compare(a.pattern, b.pattern))
	})
	return u, nil
}

// of returns the username of a ClientId, "" when none is mapped.
func (u *usernames) of(id string) string {
	if u == nil {
		return ""
	}
	if n, ok := u.exact[id]; ok {
		return n
	}
	for _, p := range u.patterns {
		if globMatch(p.pattern, id) {
			return p.user
		}
	}
	return ""
}

// --- rate limit of unconnected traffic --------------------------------------

// rateLimiter is a token bucket per source address for traffic that no
// session accounts for (SEARCHGW, QoS -1 PUBLISH, answers to addresses
// without a session). The table holds at most max addresses, so spoofed
// sources cannot grow memory. When it is full, the least recently seen
// address makes room for a new one only once its bucket has refilled: an
// evicted address would start again with a full bucket, so evicting one
// that had spent tokens would let a flood from ever new (spoofed) addresses
// through unlimited. Such a flood gets at most what max addresses at the
// rate get; a new address finds the table full until then and is refused.
// Each call is O(1).
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int

	mu    sync.Mutex
	byKey map[string]*list.Element
	lru   list.List // of *bucket, most recent at the front
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// newRateLimiter returns nil (no limit) for a rate <= 0.
func newRateLimiter(rate float64, burst, max int) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	return &rateLimiter{rate: rate, burst: float64(burst), max: max, byKey: map[string]*list.Element{}}
}

// allow takes a token of key's bucket, and reports whether there was one.
func (r *rateLimiter) allow(key string, now time.Time) bool {
	if r == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var b *bucket
	if e := r.byKey[key]; e != nil {
		r.lru.MoveToFront(e)
		b = e.Value.(*bucket)
		if d := now.Sub(b.last); d > 0 {
			b.tokens = min(r.burst, b.tokens+d.Seconds()*r.rate)
		}
		b.last = now
	} else {
		if len(r.byKey) >= r.max {
			old := r.lru.Back()
			ob := old.Value.(*bucket)
			if ob.tokens+now.Sub(ob.last).Seconds()*r.rate < r.burst {
				return false // the table is full of addresses seen lately
			}
			r.lru.Remove(old)
			delete(r.byKey, ob.key)
		}
		b = &bucket{key: key, tokens: r.burst, last: now}
		r.byKey[key] = r.lru.PushFront(b)
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// len returns the number of addresses tracked.
func (r *rateLimiter) len() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byKey)
}
