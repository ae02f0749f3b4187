package gateway

import (
	"bytes"
	"cmp"
	"math"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/mqttsn"
	"github.com/outpost-gw/outpost/serialbus"
	"github.com/outpost-gw/outpost/uplink"
)

// promWriter writes the Prometheus text exposition format (version 0.0.4):
// each family once, with its HELP and TYPE lines, then its samples, whose
// label names are sorted and whose values are escaped.
type promWriter struct {
	b    bytes.Buffer
	fams map[string]bool
}

// label is one label of a sample.
type label struct{ name, value string }

// family starts a metric family. typ is "counter" or "gauge".
func (w *promWriter) family(name, typ, help string) {
	if w.fams == nil {
		w.fams = map[string]bool{}
	}
	if w.fams[name] {
		panic("gateway: metric family " + name + " written twice")
	}
	w.fams[name] = true
	w.b.WriteString("# HELP ")
	w.b.WriteString(name)
	w.b.WriteByte(' ')
	w.b.WriteString(escapeHelp(help))
	w.b.WriteString("\n# TYPE ")
	w.b.WriteString(name)
	w.b.WriteByte(' ')
	w.b.WriteString(typ)
	w.b.WriteByte('\n')
}

// sample writes one sample of the family started last (for a counter,
// name ends in "_total").
func (w *promWriter) sample(name string, v float64, labels ...label) {
	w.b.WriteString(name)
	if len(labels) > 0 {
		slices.SortFunc(labels, func(a, b label) int { return cmp.Compare(a.name, b.name) })
		w.b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(l.name)
			w.b.WriteString(`="`)
			w.b.WriteString(escapeLabel(l.value))
			w.b.WriteByte('"')
		}
		w.b.WriteByte('}')
	}
	w.b.WriteByte(' ')
	w.b.WriteString(formatValue(v))
	w.b.WriteByte('\n')
}

// one writes a family with a single unlabelled sample.
func (w *promWriter) one(name, typ, help string, v float64) {
	w.family(name, typ, help)
	w.sample(name, v)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unixSeconds is t as Prometheus timestamps go (0 for the zero time).
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// series is one family whose samples come from a slice, one per element.
type series[T any] struct {
	name, typ, help string
	value           func(*T) float64
}

// writeSeries writes each family of fams over items, labelled by labels.
func writeSeries[T any](w *promWriter, items []T, labels func(*T) []label, fams []series[T]) {
	if len(items) == 0 {
		return
	}
	for _, f := range fams {
		w.family(f.name, f.typ, f.help)
		for i := range items {
			w.sample(f.name, f.value(&items[i]), labels(&items[i])...)
		}
	}
}

func (h *httpServer) metrics(w http.ResponseWriter, _ *http.Request) {
	body := h.g.writeMetrics()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

// writeMetrics returns the gateway's metrics in the Prometheus text format.
func (g *Gateway) writeMetrics() []byte {
	var w promWriter
	st := g.Status()
	g.writeBrokerMetrics(&w, &st)
	g.writeMQTTSNMetrics(&w, &st)
	writeSerialMetrics(&w, st.Serial)
	writeUplinkMetrics(&w, st.Uplinks)
	writeSpoolMetrics(&w, &st.Spool, st.Time)
	writeRuntimeMetrics(&w)
	return w.b.Bytes()
}

func (g *Gateway) writeBrokerMetrics(w *promWriter, st *Status) {
	w.family("outpost_build_info", "gauge", "Build of the running gateway (always 1).")
	w.sample("outpost_build_info", 1, label{"version", st.Version}, label{"goversion", runtime.Version()})
	ready := false
	select {
	case <-g.ready:
		ready = !g.stopping.Load()
	default:
	}
	w.one("outpost_ready", "gauge", "1 when every component has started and the gateway is not stopping.", b2f(ready))
	b := st.Broker
	w.one("outpost_broker_uptime_seconds", "gauge", "Time since the broker started.", b.Uptime.Seconds())
	w.one("outpost_broker_clients_connected", "gauge", "Clients with a live connection, network and in-process (MQTT-SN sessions, uplinks).", float64(b.ClientsConnected))
	w.one("outpost_broker_sessions", "gauge", "Broker sessions, connected or not.", float64(b.ClientsTotal))
	w.one("outpost_broker_connections_total", "counter", "Connections accepted (CONNECT succeeded), network and in-process.", float64(b.ConnectionsTotal))
	w.one("outpost_broker_connections_refused_total", "counter", "CONNECTs refused, and connections closed beyond max_connections.", float64(b.Refused))
	w.one("outpost_broker_messages_received_total", "counter", "PUBLISHes accepted from clients and wills.", float64(b.MessagesReceived))
	w.one("outpost_broker_messages_sent_total", "counter", "Deliveries done: QoS 1/2 acknowledged, QoS 0 handed on.", float64(b.MessagesSent))
	w.one("outpost_broker_messages_dropped_total", "counter", "Messages dropped: a client's queue full, too large for a client, retained store full.", float64(b.MessagesDropped))
	w.one("outpost_broker_messages_expired_total", "counter", "Messages past their Message Expiry Interval before delivery.", float64(b.MessagesExpired))
	w.one("outpost_broker_bytes_received_total", "counter", "Bytes received by the broker.", float64(b.BytesReceived))
	w.one("outpost_broker_bytes_sent_total", "counter", "Bytes written to network clients.", float64(b.BytesSent))
	w.one("outpost_broker_retained_messages", "gauge", "Retained messages stored.", float64(b.Retained))
	w.one("outpost_broker_subscriptions", "gauge", "Subscriptions of every session.", float64(b.Subscriptions))

	if g.broker == nil {
		return
	}
	ls := g.broker.ListenerStats()
	type L = localbroker.ListenerStats
	writeSeries(w, ls, func(l *L) []label { return []label{{"listener", l.Name}, {"type", l.Kind}} }, []series[L]{
		{"outpost_listener_clients_connected", "gauge", "MQTT clients connected on the listener now.", func(l *L) float64 { return float64(l.Connections) }},
		{"outpost_listener_connections_total", "counter", "CONNECTs accepted on the listener.", func(l *L) float64 { return float64(l.ConnectionsTotal) }},
		{"outpost_listener_messages_received_total", "counter", "PUBLISH packets read from the listener's clients.", func(l *L) float64 { return float64(l.MessagesReceived) }},
		{"outpost_listener_messages_sent_total", "counter", "PUBLISH packets written to the listener's clients (a resend counts again).", func(l *L) float64 { return float64(l.MessagesSent) }},
		{"outpost_listener_bytes_received_total", "counter", "Bytes read from the listener's clients.", func(l *L) float64 { return float64(l.BytesReceived) }},
		{"outpost_listener_bytes_sent_total", "counter", "Bytes written to the listener's clients.", func(l *L) float64 { return float64(l.BytesSent) }},
	})
}

// mqttsnStates are the client states counted by outpost_mqttsn_clients,
// each written even at 0 so that a dashboard's series do not vanish.
var mqttsnStates = []string{mqttsn.StateConnecting, mqttsn.StateActive, mqttsn.StateAsleep, mqttsn.StateAwake}

func (g *Gateway) writeMQTTSNMetrics(w *promWriter, st *Status) {
	if g.mqttsn == nil || st.MQTTSN == nil {
		return
	}
	byState := map[string]int{}
	for _, c := range g.mqttsn.Clients() {
		byState[c.State]++
	}
	w.family("outpost_mqttsn_clients", "gauge", "MQTT-SN clients by state (connecting, active, asleep, awake).")
	for _, s := range mqttsnStates {
		w.sample("outpost_mqttsn_clients", float64(byState[s]), label{"state", s})
	}
	sn := st.MQTTSN
	w.one("outpost_mqttsn_saved_sessions", "gauge", "Clients away whose session is kept (CleanSession=false).", float64(sn.SavedSessions))
	w.one("outpost_mqttsn_clients_lost_total", "counter", "Clients lost: keep-alive, sleep or retransmissions ran out.", float64(sn.Lost))
	w.one("outpost_mqttsn_connects_refused_total", "counter", "MQTT-SN CONNECTs refused.", float64(sn.Refused))
	w.one("outpost_mqttsn_malformed_total", "counter", "Datagrams that failed to decode, dropped.", float64(sn.Malformed))
	w.one("outpost_mqttsn_unknown_total", "counter", "Messages from an address without a session.", float64(sn.Unknown))
	w.one("outpost_mqttsn_inbox_full_total", "counter", "Datagrams dropped because their client was too far behind.", float64(sn.InboxFull))
	w.one("outpost_mqttsn_qos_minus1_total", "counter", "QoS -1 PUBLISHes taken by the broker.", float64(sn.QoSMinus1))
	w.one("outpost_mqttsn_retransmissions_total", "counter", "Messages sent again after Tretry.", float64(sn.Retransmissions))
	w.one("outpost_mqttsn_messages_dropped_total", "counter", "Messages not delivered to a client: buffer full, too large, no topic id, refused.", float64(sn.Dropped))
	w.one("outpost_mqttsn_too_large_total", "counter", "Messages not sent because they exceed the transport's MTU.", float64(sn.TooLarge))
	w.one("outpost_mqttsn_send_errors_total", "counter", "Datagrams the transport failed to send.", float64(sn.SendErrors))
	w.one("outpost_mqttsn_socket_drops_total", "counter", "Datagrams the kernel dropped because a UDP socket's receive buffer was full (Linux).", float64(sn.SocketDrops))
	w.one("outpost_mqttsn_denied_total", "counter", "Datagrams from addresses not allowed, and CONNECTs of client ids not allowed.", float64(sn.Denied))
	w.one("outpost_mqttsn_rate_limited_total", "counter", "Messages from addresses without a session over the unconnected rate, dropped.", float64(sn.RateLimited))
	w.one("outpost_mqttsn_not_authorized_total", "counter", "Publishes, subscriptions and wills the MQTT-SN ACL refused.", float64(sn.NotAuthorized))
	w.one("outpost_mqttsn_store_errors_total", "counter", "Failed writes of MQTT-SN sessions to the spool.", float64(sn.StoreErrors))

	ts := g.mqttsn.TransportStats()
	writeSeries(w, ts, func(t *mqttsn.TransportStats) []label { return []label{{"transport", t.Name}} }, []series[mqttsn.TransportStats]{
		{"outpost_mqttsn_datagrams_received_total", "counter", "Datagrams received on the transport.", func(t *mqttsn.TransportStats) float64 { return float64(t.DatagramsIn) }},
		{"outpost_mqttsn_datagrams_sent_total", "counter", "Datagrams sent on the transport.", func(t *mqttsn.TransportStats) float64 { return float64(t.DatagramsOut) }},
		{"outpost_mqttsn_bytes_received_total", "counter", "Bytes of the datagrams received on the transport.", func(t *mqttsn.TransportStats) float64 { return float64(t.BytesIn) }},
		{"outpost_mqttsn_bytes_sent_total", "counter", "Bytes of the datagrams sent on the transport.", func(t *mqttsn.TransportStats) float64 { return float64(t.BytesOut) }},
		{"outpost_mqttsn_messages_received_total", "counter", "PUBLISHes from the transport's clients taken by the broker.", func(t *mqttsn.TransportStats) float64 { return float64(t.PublishIn) }},
		{"outpost_mqttsn_messages_sent_total", "counter", "PUBLISHes to the transport's clients done.", func(t *mqttsn.TransportStats) float64 { return float64(t.PublishOut) }},
	})
}

func writeSerialMetrics(w *promWriter, links []SerialStatus) {
	u := func(f func(*SerialStatus) uint64) func(*SerialStatus) float64 {
		return func(s *SerialStatus) float64 { return float64(f(s)) }
	}
	writeSeries(w, links, func(s *SerialStatus) []label { return []label{{"link", s.Name}} }, []series[SerialStatus]{
		{"outpost_serial_up", "gauge", "1 while the serial link's port is open.", func(s *SerialStatus) float64 { return b2f(s.State == serialbus.StateUp) }},
		{"outpost_serial_reconnects_total", "counter", "Times the port was opened again after it was lost.", u(func(s *SerialStatus) uint64 { return s.Reconnects })},
		{"outpost_serial_frames_received_total", "counter", "Datagrams received from the link.", u(func(s *SerialStatus) uint64 { return s.FramesIn })},
		{"outpost_serial_frames_sent_total", "counter", "Datagrams written to the link.", u(func(s *SerialStatus) uint64 { return s.FramesOut })},
		{"outpost_serial_bytes_received_total", "counter", "Bytes read from the port.", u(func(s *SerialStatus) uint64 { return s.BytesIn })},
		{"outpost_serial_bytes_sent_total", "counter", "Bytes written to the port.", u(func(s *SerialStatus) uint64 { return s.BytesOut })},
		{"outpost_serial_checksum_errors_total", "counter", "Frames with a bad XBee checksum or bridge CRC.", u(func(s *SerialStatus) uint64 { return s.ChecksumErrors })},
		{"outpost_serial_framing_errors_total", "counter", "Frames too long, badly escaped, cut short, malformed or of unknown type.", u(func(s *SerialStatus) uint64 { return s.FramingErrors })},
		{"outpost_serial_queue_full_total", "counter", "Datagrams refused because the send queue was full.", u(func(s *SerialStatus) uint64 { return s.QueueFull })},
		{"outpost_serial_dropped_received_total", "counter", "Datagrams received while the read queue was full.", u(func(s *SerialStatus) uint64 { return s.DroppedIn })},
		{"outpost_serial_dropped_sent_total", "counter", "Queued datagrams longer than a lowered MTU.", u(func(s *SerialStatus) uint64 { return s.DroppedOut })},
		{"outpost_serial_tx_failures_total", "counter", "Transmissions the radio reported failed.", u(func(s *SerialStatus) uint64 { return s.TxFailures })},
		{"outpost_serial_nodes", "gauge", "Radio nodes heard on the link.", func(s *SerialStatus) float64 { return float64(len(s.Nodes)) }},
	})
	first := true
	for _, s := range links {
		for _, node := range slices.Sorted(mapKeys(s.Nodes)) {
			n := s.Nodes[node]
			rssi, ok := nodeRSSI(n.RSSI)
			if !ok {
				continue
			}
			if first {
				w.family("outpost_serial_node_rssi_dbm", "gauge", "Signal strength of the last frame from each radio node, where the radio tells it.")
				first = false
			}
			w.sample("outpost_serial_node_rssi_dbm", float64(rssi), label{"link", s.Name}, label{"node", node})
		}
	}
}

func writeUplinkMetrics(w *promWriter, ups []UplinkStatus) {
	u := func(f func(*UplinkStatus) uint64) func(*UplinkStatus) float64 {
		return func(s *UplinkStatus) float64 { return float64(f(s)) }
	}
	writeSeries(w, ups, func(s *UplinkStatus) []label { return []label{{"uplink", s.Name}} }, []series[UplinkStatus]{
		{"outpost_uplink_connected", "gauge", "1 while the uplink is connected to its cloud broker.", func(s *UplinkStatus) float64 { return b2f(s.Connected) }},
		{"outpost_uplink_state_since_timestamp_seconds", "gauge", "When the uplink entered its state (connecting, online, offline).", func(s *UplinkStatus) float64 { return unixSeconds(s.Since) }},
		{"outpost_uplink_messages_sent_total", "counter", "PUBLISH packets written to the cloud (a resend counts again).", u(func(s *UplinkStatus) uint64 { return s.Sent })},
		{"outpost_uplink_messages_acked_total", "counter", "Messages the cloud acknowledged (QoS 0: written).", u(func(s *UplinkStatus) uint64 { return s.Out })},
		{"outpost_uplink_messages_received_total", "counter", "Messages from the cloud published locally.", u(func(s *UplinkStatus) uint64 { return s.In })},
		{"outpost_uplink_messages_dropped_total", "counter", "Messages not forwarded on purpose (expiries included).", u(func(s *UplinkStatus) uint64 { return s.Dropped })},
		{"outpost_uplink_messages_expired_total", "counter", "Messages dropped because they expired.", u(func(s *UplinkStatus) uint64 { return s.Expired })},
		{"outpost_uplink_messages_quarantined_total", "counter", "Messages the cloud refused for good, moved to quarantine.", u(func(s *UplinkStatus) uint64 { return s.Quarantined })},
		{"outpost_uplink_messages_refused_total", "counter", "Local QoS 1/2 messages refused because the spool did not take them.", u(func(s *UplinkStatus) uint64 { return s.Refused })},
		{"outpost_uplink_subscribe_retries_total", "counter", "Cloud SUBSCRIBE and UNSUBSCRIBE packets of a reload sent again after a failure or refusal.", u(func(s *UplinkStatus) uint64 { return s.SubscribeRetries })},
		{"outpost_uplink_spool_messages", "gauge", "Messages waiting in the uplink's spool queues.", func(s *UplinkStatus) float64 { return float64(s.Depth) }},
		{"outpost_uplink_spool_bytes", "gauge", "Payload bytes waiting in the uplink's spool queues.", func(s *UplinkStatus) float64 { return float64(s.Bytes) }},
		{"outpost_uplink_drain_messages_per_second", "gauge", "Spooled messages the cloud acknowledged per second, recently.", func(s *UplinkStatus) float64 { return s.DrainRate }},
		{"outpost_uplink_drain_eta_seconds", "gauge", "Time to drain the backlog at the drain rate; +Inf when it does not drain.", func(s *UplinkStatus) float64 { return etaSeconds(s.ETA) }},
		{"outpost_uplink_quarantine_messages", "gauge", "Messages in the uplink's quarantine.", func(s *UplinkStatus) float64 { return float64(s.QuarantineDepth) }},
		{"outpost_uplink_quarantine_bytes", "gauge", "Payload bytes in the uplink's quarantine.", func(s *UplinkStatus) float64 { return float64(s.QuarantineBytes) }},
	})
}

// etaSeconds is an uplink's drain time in seconds, +Inf when unknown.
func etaSeconds(eta time.Duration) float64 {
	if eta == uplink.UnknownETA {
		return math.Inf(1)
	}
	return eta.Seconds()
}

func writeSpoolMetrics(w *promWriter, sp *SpoolStatus, now time.Time) {
	w.one("outpost_spool_commits_total", "counter", "Spool transactions committed.", float64(sp.Commits))
	w.one("outpost_spool_syncs_total", "counter", "Spool syncs to stable storage.", float64(sp.Syncs))
	w.one("outpost_spool_lsm_bytes", "gauge", "Disk space of the spool's LSM tables.", float64(sp.LSMBytes))
	w.one("outpost_spool_value_log_bytes", "gauge", "Disk space of the spool's value log.", float64(sp.ValueLogBytes))
	w.one("outpost_spool_no_space", "gauge", "1 while the spool refuses appends for want of disk space.", b2f(sp.NoSpace))
	u := func(f func(*QueueStatus) uint64) func(*QueueStatus) float64 {
		return func(q *QueueStatus) float64 { return float64(f(q)) }
	}
	labels := func(q *QueueStatus) []label {
		return []label{{"queue", q.Name}, {"uplink", q.Uplink}, {"quarantine", strconv.FormatBool(q.Quarantine)}}
	}
	writeSeries(w, sp.Queues, labels, []series[QueueStatus]{
		{"outpost_spool_queue_messages", "gauge", "Messages stored in the queue.", func(q *QueueStatus) float64 { return float64(q.Depth) }},
		{"outpost_spool_queue_bytes", "gauge", "Payload bytes stored in the queue.", func(q *QueueStatus) float64 { return float64(q.Bytes) }},
		{"outpost_spool_queue_oldest_age_seconds", "gauge", "Age of the queue's oldest message; 0 when empty.", func(q *QueueStatus) float64 {
			if q.Oldest.IsZero() {
				return 0
			}
			return max(0, now.Sub(q.Oldest).Seconds())
		}},
		{"outpost_spool_queue_appended_total", "counter", "Messages appended to the queue since start.", u(func(q *QueueStatus) uint64 { return q.Appended })},
		{"outpost_spool_queue_acked_total", "counter", "Messages removed after delivery.", u(func(q *QueueStatus) uint64 { return q.Acked })},
		{"outpost_spool_queue_dropped_total", "counter", "Messages dropped by the drop-oldest policy.", u(func(q *QueueStatus) uint64 { return q.Dropped })},
		{"outpost_spool_queue_expired_total", "counter", "Messages removed by the queue's max_age.", u(func(q *QueueStatus) uint64 { return q.Expired })},
		{"outpost_spool_queue_rejected_total", "counter", "Appends refused: queue full or disk short of space.", u(func(q *QueueStatus) uint64 { return q.Rejected })},
	})
}

// runtimeMetrics are the Go runtime's metrics (runtime/metrics) written
// under the names of the Prometheus Go collector.
var runtimeMetrics = []struct{ key, name, typ, help string }{
	{"/sched/goroutines:goroutines", "go_goroutines", "gauge", "Goroutines that currently exist."},
	{"/sched/gomaxprocs:threads", "go_sched_gomaxprocs_threads", "gauge", "The current GOMAXPROCS setting."},
	{"/memory/classes/total:bytes", "go_memory_classes_total_bytes", "gauge", "Memory mapped by the Go runtime into the process."},
	{"/memory/classes/heap/objects:bytes", "go_memory_classes_heap_objects_bytes", "gauge", "Memory occupied by live and not yet swept heap objects."},
	{"/gc/heap/goal:bytes", "go_gc_heap_goal_bytes", "gauge", "Heap size target for the end of the GC cycle."},
	{"/gc/gomemlimit:bytes", "go_gc_gomemlimit_bytes", "gauge", "Go runtime memory limit (GOMEMLIMIT)."},
	{"/gc/heap/allocs:bytes", "go_gc_heap_allocs_bytes_total", "counter", "Bytes allocated on the heap."},
	{"/gc/heap/allocs:objects", "go_gc_heap_allocs_objects_total", "counter", "Objects allocated on the heap."},
	{"/gc/cycles/total:gc-cycles", "go_gc_cycles_total_gc_cycles_total", "counter", "Completed GC cycles."},
}

var startTime = time.Now()

func writeRuntimeMetrics(w *promWriter) {
	samples := make([]metrics.Sample, len(runtimeMetrics))
	for i, m := range runtimeMetrics {
		samples[i].Name = m.key
	}
	metrics.Read(samples)
	for i, m := range runtimeMetrics {
		var v float64
		switch samples[i].Value.Kind() {
		case metrics.KindUint64:
			v = float64(samples[i].Value.Uint64())
		case metrics.KindFloat64:
			v = samples[i].Value.Float64()
		default:
			continue // not in this Go version
		}
		w.one(m.name, m.typ, m.help, v)
	}
	w.family("go_info", "gauge", "Information about the Go environment.")
	w.sample("go_info", 1, label{"version", runtime.Version()})
	w.one("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.", unixSeconds(startTime))
}
