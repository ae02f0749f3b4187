package localbroker

import (
	"context"
	"runtime"
	"strconv"
	"time"
)

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Uptime           time.Duration
	ClientsConnected int64 // network and in-process clients with a live connection
	ClientsTotal     int64 // sessions, connected or not
	ConnectionsTotal int64 // connections accepted since start
	Refused          int64 // CONNECTs refused
	MessagesReceived int64 // PUBLISHes accepted from clients and wills
	MessagesSent     int64 // QoS 1/2 deliveries acknowledged, plus QoS 0 handed to sockets
	MessagesDropped  int64 // queue overflow, oversize for the client, retained store full
	MessagesExpired  int64
	BytesReceived    int64
	BytesSent        int64
	Retained         int
	Subscriptions    int
}

// Stats returns the current counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	sessions := len(b.sessions)
	b.mu.Unlock()
	return Stats{
		Uptime:           time.Since(b.start),
		ClientsConnected: b.stats.connected.Load(),
		ClientsTotal:     int64(sessions),
		ConnectionsTotal: b.stats.total.Load(),
		Refused:          b.stats.refused.Load(),
		MessagesReceived: b.stats.received.Load(),
		MessagesSent:     b.stats.sent.Load(),
		MessagesDropped:  b.stats.dropped.Load(),
		MessagesExpired:  b.stats.expired.Load(),
		BytesReceived:    b.stats.bytesIn.Load(),
		BytesSent:        b.stats.bytesOut.Load(),
		Retained:         b.retained.Len(),
		Subscriptions:    b.subs.Len(),
	}
}

// sysLoop publishes $SYS topics (mosquitto's names where they exist) as
// retained messages every SysInterval.
func (b *Broker) sysLoop(ctx context.Context) {
	b.sysPublish("$SYS/broker/version", Version)
	t := time.NewTicker(b.opts.SysInterval)
	defer t.Stop()
	b.publishSys()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.publishSys()
		}
	}
}

func (b *Broker) publishSys() {
	st := b.Stats()
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for _, kv := range [...][2]string{
		{"$SYS/broker/uptime", i(int64(st.Uptime/time.Second)) + " seconds"},
		{"$SYS/broker/clients/connected", i(st.ClientsConnected)},
		{"$SYS/broker/clients/total", i(st.ClientsTotal)},
		{"$SYS/broker/clients/disconnected", i(max(st.ClientsTotal-st.ClientsConnected, 0))},
		{"$SYS/broker/messages/received", i(st.MessagesReceived)},
		{"$SYS/broker/messages/sent", i(st.MessagesSent)},
		{"$SYS/broker/messages/dropped", i(st.MessagesDropped)},
		{"$SYS/broker/bytes/received", i(st.BytesReceived)},
		{"$SYS/broker/bytes/sent", i(st.BytesSent)},
		{"$SYS/broker/retained messages/count", i(int64(st.Retained))},
		{"$SYS/broker/subscriptions/count", i(int64(st.Subscriptions))},
		{"$SYS/broker/heap/current", i(int64(ms.HeapAlloc))},
	} {
		b.sysPublish(kv[0], kv[1])
	}
}

func (b *Broker) sysPublish(t, v string) {
	m := &Message{Topic: t, Payload: []byte(v), Retain: true, Created: time.Now()}
	b.retained.Set(t, m) // not persisted: $SYS describes this process
	b.route(m)
}
