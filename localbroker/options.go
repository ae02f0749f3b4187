package localbroker

import (
	"log/slog"
	"time"
)

// Listener kinds.
const (
	KindTCP = "tcp"
	KindTLS = "tls"
	KindWS  = "ws"  // websockets over plain TCP, path WSPath, subprotocol "mqtt"
	KindWSS = "wss" // websockets over TLS
)

// ListenerOptions describes one network listener. Every listener speaks
// MQTT 3.1.1 and 5.0 (chosen by each CONNECT's protocol level).
type ListenerOptions struct {
	Name    string // used in logs, metrics and $SYS; "" means Kind+"@"+Address
	Kind    string // KindTCP (default when ""), KindTLS, KindWS, KindWSS
	Address string // host:port; ":0" picks a free port (see Broker.Addrs)

	// TLS (KindTLS, KindWSS).
	CertFile          string // server certificate chain (PEM)
	KeyFile           string // server private key (PEM)
	CAFile            string // CA bundle for client certificates; "" means no client certificates asked
	RequireClientCert bool   // refuse the TLS handshake without a client certificate signed by CAFile
	UseCNAsUsername   bool   // the client certificate's subject CN becomes the username (password not checked)

	WSPath string // websocket path; "" means "/mqtt"

	// Authentication and authorization, per listener.
	AllowAnonymous bool   // accept CONNECT without a username
	PasswordFile   string // mosquitto_passwd format; "" means no password file (any username accepted)
	ACLFile        string // mosquitto ACL syntax; "" means everything allowed
}

// Options are the broker's settings. The zero value of each field means the
// documented default.
type Options struct {
	Listeners []ListenerOptions

	MaxConnections      int           // open network connections; 0 means 10000; new ones beyond are refused (0x9F/0x89)
	MaxPacketSize       int           // bytes, both directions; 0 means 1 MiB (absolute max 268435460)
	ConnectTimeout      time.Duration // a socket that sends no CONNECT in this time is closed; 0 means 10s
	ReceiveMaximum      uint16        // QoS 1/2 PUBLISHes a client may have unacknowledged towards us; 0 means 64
	MaxInflight         uint16        // QoS 1/2 deliveries in flight towards a client (capped by its receive maximum); 0 means 64
	MaxQueuedMessages   int           // per session, messages waiting beyond the inflight window; 0 means 1000
	MaxQueuedBytes      int64         // per session, payload bytes waiting; 0 means 16 MiB
	MaxOutboundBytes    int64         // per connection, encoded bytes waiting for the socket; 0 means 4 MiB
	WriteTimeout        time.Duration // a client that takes no bytes for this long is a slow consumer and is disconnected; 0 means 30s
	MaxTopicLength      int           // bytes; 0 means 65535
	MaxTopicLevels      int           // levels in a topic name or filter; 0 means 128
	MaxKeepAlive        uint16        // seconds; a 5.0 client asking more (or 0) gets Server Keep Alive; 0 means 65535 (no cap)
	MaxSessionExpiry    time.Duration // caps a client's session expiry; 0 means no cap
	TopicAliasMaximum   uint16        // aliases a 5.0 client may use towards us; 0 means 64
	RetainAvailable     *bool         // nil means true
	SysInterval         time.Duration // $SYS publish period; 0 means 10s; negative disables $SYS
	MaxRetainedMessages int           // 0 means 100000; a new retained topic beyond is not stored (counted)

	Logger *slog.Logger // nil means slog.Default()
}
