package gateway

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/mqttsn"
	"github.com/outpost-gw/outpost/serialbus"
	"github.com/outpost-gw/outpost/uplink"
)

// The status page: web/index.html loads web/status.css and web/status.js
// from this server (nothing from elsewhere, so it works on a LAN without
// internet), and the script fetches /status.json every 2 seconds.
//
//go:embed web
var webFS embed.FS

// PageStatus is what /status.json serves: the gateway as the status page
// shows it. Durations are in seconds.
type PageStatus struct {
	Time          time.Time
	Version       string
	UptimeSeconds float64
	Ready         bool
	Listeners     []localbroker.ListenerStats
	Transports    []mqttsn.TransportStats `json:",omitempty"` // MQTT-SN
	// TransportClients counts the MQTT-SN clients of each transport.
	TransportClients map[string]int `json:",omitempty"`
	// Clients are the first pageMaxClients clients (MQTT, then MQTT-SN);
	// ClientsTotal counts them all.
	Clients      []PageClient
	ClientsTotal int
	Serial       []PageSerial
	Uplinks      []PageUplink
	Spool        PageSpool
}

// PageClient is one MQTT or MQTT-SN client.
type PageClient struct {
	Protocol  string // "MQTT" or "MQTT-SN"
	ClientID  string
	Link      string // the listener or MQTT-SN transport
	Remote    string
	State     string    // "connected" (MQTT), or the MQTT-SN state
	LastSeen  time.Time // its last packet
	RSSI      *int16    `json:",omitempty"` // dBm of its last frame, where the radio tells it
	SNR       *float64  `json:",omitempty"` // dB, likewise
	KeepAlive float64   // seconds; 0 none
}

// PageSerial is one serial link.
type PageSerial struct {
	Name       string
	State      string // "up" or "down"
	Device     string
	FramesIn   uint64
	FramesOut  uint64
	Errors     uint64 // checksum, framing and transmit failures
	Reconnects uint64
	Nodes      int
}

// PageUplink is one uplink and its backlog.
type PageUplink struct {
	Name        string
	State       string // connecting, online, offline
	Since       time.Time
	LastError   string `json:",omitempty"`
	Depth       int64  // spooled messages waiting
	Bytes       int64
	DrainRate   float64  // messages per second
	ETASeconds  *float64 // time to drain; null when it does not drain
	Quarantined int64    // messages in quarantine
	Dropped     uint64
}

// PageSpool is the spool as a whole.
type PageSpool struct {
	NoSpace      bool
	Messages     int64 // in every queue
	Bytes        int64
	OldestSecond float64 // age of the oldest message of any queue; 0 when empty
}

// pageMaxClients bounds the clients that /status.json lists: the page
// asks every 2 seconds, and a gateway may have thousands of sleeping
// devices. The metrics count them all.
var pageMaxClients = 500

// pageStatus builds the status page's data from Status and the client
// lists of the broker and the MQTT-SN gateway.
func (g *Gateway) pageStatus() PageStatus {
	st := g.Status()
	ps := PageStatus{
		Time: st.Time, Version: st.Version, UptimeSeconds: st.Broker.Uptime.Seconds(),
		Listeners: []localbroker.ListenerStats{}, Clients: []PageClient{}, Serial: []PageSerial{}, Uplinks: []PageUplink{},
	}
	select {
	case <-g.ready:
		ps.Ready = !g.stopping.Load()
	default:
	}
	if g.broker != nil {
		ps.Listeners = g.broker.ListenerStats()
		for _, c := range g.broker.Clients() {
			if ps.ClientsTotal++; len(ps.Clients) >= pageMaxClients {
				continue
			}
			ps.Clients = append(ps.Clients, PageClient{Protocol: "MQTT", ClientID: c.ClientID, Link: c.Listener,
				Remote: c.Remote, State: "connected", LastSeen: c.LastSeen, KeepAlive: c.KeepAlive.Seconds()})
		}
	}
	nodes := map[string]map[string]serialbus.NodeStats{} // by serial link (= transport) name
	for _, s := range st.Serial {
		nodes[s.Name] = s.Nodes
		ps.Serial = append(ps.Serial, PageSerial{Name: s.Name, State: s.State.String(), Device: s.Device,
			FramesIn: s.FramesIn, FramesOut: s.FramesOut, Errors: s.ChecksumErrors + s.FramingErrors + s.TxFailures,
			Reconnects: s.Reconnects, Nodes: len(s.Nodes)})
	}
	if g.mqttsn != nil {
		ps.Transports = g.mqttsn.TransportStats()
		ps.TransportClients = map[string]int{}
		for _, c := range g.mqttsn.Clients() {
			ps.TransportClients[c.Transport]++
			if ps.ClientsTotal++; len(ps.Clients) >= pageMaxClients {
				continue
			}
			pc := PageClient{Protocol: "MQTT-SN", ClientID: c.ClientID, Link: c.Transport, Remote: c.Remote,
				State: c.State, LastSeen: c.LastHeard, KeepAlive: c.KeepAlive.Seconds()}
			if n, ok := nodes[c.Transport][c.Remote]; ok {
				if r, ok := nodeRSSI(n.RSSI); ok {
					pc.RSSI = &r
				}
				if n.SNR != serialbus.SNRUnknown {
					snr := float64(n.SNR) / 4
					pc.SNR = &snr
				}
			}
			ps.Clients = append(ps.Clients, pc)
		}
	}
	for _, u := range st.Uplinks {
		pu := PageUplink{Name: u.Name, State: string(u.State), Since: u.Since, LastError: u.LastError,
			Depth: u.Depth, Bytes: u.Bytes, DrainRate: u.DrainRate, Quarantined: u.QuarantineDepth, Dropped: u.Dropped}
		if u.ETA != uplink.UnknownETA {
			eta := u.ETA.Seconds()
			pu.ETASeconds = &eta
		}
		ps.Uplinks = append(ps.Uplinks, pu)
	}
	ps.Spool.NoSpace = st.Spool.NoSpace
	for _, q := range st.Spool.Queues {
		ps.Spool.Messages += q.Depth
		ps.Spool.Bytes += q.Bytes
		if !q.Oldest.IsZero() {
			ps.Spool.OldestSecond = max(ps.Spool.OldestSecond, st.Time.Sub(q.Oldest).Seconds())
		}
	}
	return ps
}

// nodeRSSI returns a node's RSSI, unless the radio did not tell it.
func nodeRSSI(r int16) (int16, bool) { return r, r != serialbus.RSSIUnknown }

func (h *httpServer) statusJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(h.g.pageStatus()); err != nil {
		h.log.Debug("status.json not sent", "err", err)
	}
}

func (h *httpServer) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, webFS, "web/index.html")
}

// staticHandler serves the files of web/ at /static/ (the page's script
// and style), without a listing of the folder.
func staticHandler() http.Handler {
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the folder is embedded: cannot happen
	}
	files := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
}
