package mqttsn

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"
)

// TransportStats are the counters of one transport since New.
type TransportStats struct {
	Name    string
	Address string // the local address; "" before Run opens it

	DatagramsIn  int64
	DatagramsOut int64
	BytesIn      int64 // bytes of the datagrams received (encapsulation included)
	BytesOut     int64 // bytes of the datagrams sent
	PublishIn    int64 // PUBLISH from its clients taken by the broker (QoS -1 included)
	PublishOut   int64 // PUBLISH to its clients done (as Stats.PublishOut)
}

// trCounters are a transport's live counters.
type trCounters struct {
	datagramsIn, datagramsOut atomic.Int64
	bytesIn, bytesOut         atomic.Int64
	publishIn, publishOut     atomic.Int64
}

// TransportStats returns the counters of each transport, in the order of
// Options.Transports.
func (g *Gateway) TransportStats() []TransportStats {
	out := make([]TransportStats, 0, len(g.trs))
	for _, t := range g.trs {
		st := TransportStats{
			Name:         t.opts.Name,
			DatagramsIn:  t.st.datagramsIn.Load(),
			DatagramsOut: t.st.datagramsOut.Load(),
			BytesIn:      t.st.bytesIn.Load(),
			BytesOut:     t.st.bytesOut.Load(),
			PublishIn:    t.st.publishIn.Load(),
			PublishOut:   t.st.publishOut.Load(),
		}
		if a := g.Addrs()[t.opts.Name]; a != nil {
			st.Address = a.String()
		}
		out = append(out, st)
	}
	return out
}

// Client states as ClientStatus.State names them (MQTT-SN 1.2 §6.14).
const (
	StateConnecting = "connecting" // CONNECT received, will handshake running
	StateActive     = "active"
	StateAsleep     = "asleep"
	StateAwake      = "awake" // asleep, woken by PINGREQ to take its messages
)

// ClientStatus describes one client of the gateway.
type ClientStatus struct {
	ClientID  string
	Transport string // the transport's name
	// Remote is where the client's datagrams come from: an IP address and
	// port on UDP, a node address on a serial link, and "<address>/<node
	// id in hex>" behind a forwarder.
	Remote    string
	Node      string `json:",omitempty"` // the Wireless Node Id behind a forwarder
	State     string // StateConnecting, StateActive, StateAsleep or StateAwake
	KeepAlive time.Duration
	SleepFor  time.Duration `json:",omitempty"` // the sleep duration asked for; asleep and awake only
	LastHeard time.Time     // when its last message arrived
}

// clientView is what Clients shows of a client: a copy the worker running
// the client publishes at each change of state or address.
type clientView struct {
	state     cstate
	peer      peer
	keepAlive time.Duration
	sleepFor  time.Duration
}

// Clients returns the clients the gateway has now (connecting, active,
// asleep or awake; not the saved sessions of clients away), sorted by
// transport, then client id.
func (g *Gateway) Clients() []ClientStatus {
	g.mu.Lock()
	out := make([]ClientStatus, 0, len(g.byID))
	for _, c := range g.byID {
		v := c.view.Load()
		if v == nil || v.state == stNew || v.state == stGone {
			continue
		}
		cs := ClientStatus{
			ClientID:  c.id,
			Transport: v.peer.tr.opts.Name,
			Remote:    v.peer.String(),
			State:     v.state.String(),
			KeepAlive: v.keepAlive,
			LastHeard: time.Unix(0, c.heardAt.Load()),
		}
		if v.peer.fwd {
			cs.Node = v.peer.node
		}
		if v.state == stAsleep || v.state == stAwake {
			cs.SleepFor = v.sleepFor
		}
		out = append(out, cs)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b ClientStatus) int {
		return cmp.Or(cmp.Compare(a.Transport, b.Transport), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out
}

func (s cstate) String() string {
	switch s {
	case stNew:
		return "new"
	case stConnecting:
		return StateConnecting
	case stActive:
		return StateActive
	case stAsleep:
		return StateAsleep
	case stAwake:
		return StateAwake
	}
	return "gone"
}

// publishView makes the client's state, address and timers visible to
// Clients. Called by the worker running c.
func (c *client) publishView() {
	c.view.Store(&clientView{state: c.state, peer: c.peer, keepAlive: c.keepAlive, sleepFor: c.sleepFor})
}

// heard notes that a message from the client arrived at now.
func (c *client) heard(now time.Time) {
	c.lastHeard = now
	c.heardAt.Store(now.UnixNano())
}

// publishedIn counts a PUBLISH of c taken by the broker.
func (c *client) publishedIn() {
	c.g.st.publishIn.Add(1)
	c.peer.tr.st.publishIn.Add(1)
}

// publishedOut counts a PUBLISH to c done.
func (c *client) publishedOut() {
	c.g.st.publishOut.Add(1)
	c.peer.tr.st.publishOut.Add(1)
}
