package localbroker

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"
)

// ListenerStats are the counters of one listener since New. Only network
// clients count; in-process clients belong to no listener.
type ListenerStats struct {
	Name    string
	Kind    string // KindTCP, KindTLS, KindWS or KindWSS
	Address string // the bound address; the configured one before Run binds it

	Connections      int64 // clients connected now (CONNECT accepted)
	ConnectionsTotal int64 // CONNECTs accepted since start
	MessagesReceived int64 // PUBLISH packets read from clients
	MessagesSent     int64 // PUBLISH packets written to clients (a resend counts again)
	BytesReceived    int64 // bytes of packets read (fixed header estimated at 2 bytes)
	BytesSent        int64 // bytes written to sockets
}

// listenerCounters are a listener's live counters.
type listenerCounters struct {
	connected, total  atomic.Int64
	msgsIn, msgsOut   atomic.Int64
	bytesIn, bytesOut atomic.Int64
}

// ListenerStats returns the counters of each listener, in the order of
// Options.Listeners.
func (b *Broker) ListenerStats() []ListenerStats {
	out := make([]ListenerStats, 0, len(b.listeners))
	for _, l := range b.listeners {
		st := ListenerStats{
			Name:             l.opts.Name,
			Kind:             l.opts.Kind,
			Address:          l.opts.Address,
			Connections:      l.st.connected.Load(),
			ConnectionsTotal: l.st.total.Load(),
			MessagesReceived: l.st.msgsIn.Load(),
			MessagesSent:     l.st.msgsOut.Load(),
			BytesReceived:    l.st.bytesIn.Load(),
			BytesSent:        l.st.bytesOut.Load(),
		}
		if a := l.addr(); a != nil {
			st.Address = a.String()
		}
		out = append(out, st)
	}
	return out
}

// ClientStatus describes one connected network client.
type ClientStatus struct {
	ClientID    string
	Username    string `json:",omitempty"`
	Listener    string
	Remote      string
	Version     string        // "3.1.1" or "5.0"
	KeepAlive   time.Duration // as agreed at CONNECT; 0 means none
	ConnectedAt time.Time
	LastSeen    time.Time // when its last packet arrived
}

// Clients returns the network clients connected now (CONNECT accepted),
// sorted by listener, then client id. In-process clients (MQTT-SN
// sessions, uplinks) are not listed: their owners describe them.
func (b *Broker) Clients() []ClientStatus {
	b.mu.Lock()
	out := make([]ClientStatus, 0, len(b.conns))
	for c := range b.conns {
		v := c.view.Load()
		if v == nil {
			continue // not connected yet, or refused
		}
		cs := *v
		cs.LastSeen = time.Unix(0, c.lastSeen.Load())
		out = append(out, cs)
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(a, b ClientStatus) int {
		return cmp.Or(cmp.Compare(a.Listener, b.Listener), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out
}

// received counts n bytes read by c, on its listener and the broker, and
// notes when.
func (c *conn) received(n int64) {
	c.b.stats.bytesIn.Add(n)
	c.ln.st.bytesIn.Add(n)
	c.lastSeen.Store(time.Now().UnixNano())
}

// connected counts c on its listener once its CONNECT is accepted, and
// makes it visible to Clients.
func (c *conn) connected() {
	c.ln.st.connected.Add(1)
	c.ln.st.total.Add(1)
	now := time.Now()
	c.view.Store(&ClientStatus{
		ClientID:    c.info.ClientID,
		Username:    c.info.Username,
		Listener:    c.ln.opts.Name,
		Remote:      c.info.Remote,
		Version:     c.ver.String(),
		KeepAlive:   c.keepAlive,
		ConnectedAt: now,
	})
}
