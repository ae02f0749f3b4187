package mqttsn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
)

// DefaultAddr is the UDP address a Transport without Conn and Addr listens on.
const DefaultAddr = "[::]:1885"

// Defaults of Options.
const (
	DefaultTretry         = 10 * time.Second // MQTT-SN 1.2 §7.2: 10 to 15 s
	DefaultNretry         = 3                // MQTT-SN 1.2 §7.2: 3 to 5
	DefaultKeepAliveGrace = 1.5
	DefaultMaxClients     = 10000
	DefaultMaxTopics      = 1000
	DefaultMaxBuffered    = 100
	DefaultSessionExpiry  = 24 * time.Hour

	DefaultUnconnectedRate    = 10.0 // messages per second per source address
	DefaultUnconnectedBurst   = 20
	DefaultUnconnectedSources = 4096
)

// maxUDP is the largest UDP payload over IPv4, the MTU of a transport that
// states none.
const maxUDP = 65507

// Broker is what the gateway needs from the local broker: an in-process
// client per MQTT-SN device. *localbroker.Broker implements it.
type Broker interface {
	Attach(localbroker.ClientOptions) (*localbroker.Client, bool, error)
}

// Deps are the gateway's collaborators.
type Deps struct {
	Broker Broker // required
	// Store keeps the topic ids, will data and QoS 2 state of clients with
	// CleanSession=false across a restart; nil keeps them in memory only.
	Store Store
}

// Transport is one datagram network the gateway serves: a UDP socket, or a
// serial radio link (serialbus) whose addresses are node addresses.
type Transport struct {
	// Name appears in logs and in the broker's ClientInfo.Listener as
	// "mqttsn/"+Name; "" means "udp@"+Addr, or "transport<i>" with Conn.
	Name string

	// Conn is the datagram socket. It must support SetReadDeadline (Run
	// uses it to stop the reader); the gateway does not close it. When nil,
	// the gateway opens a UDP socket on Addr (with SO_BROADCAST) and closes
	// it when Run returns.
	Conn net.PacketConn
	// Addr is the UDP address to listen on when Conn is nil; "" means
	// DefaultAddr ("[::]:1885").
	Addr string

	// MTU is the largest datagram the gateway sends on this transport,
	// forwarder encapsulation included; a larger message is not sent
	// (counted in Stats.TooLarge, logged at most every few seconds). 0 means
	// Conn's own MTU() when it has one (a serialbus.Link), else 65507 (the
	// largest UDP payload).
	MTU int

	// ClientIDPrefix is put before each device's ClientId to form its
	// broker client id, so that devices cannot take over LAN clients'
	// sessions (e.g. "sn-"). "" means none.
	ClientIDPrefix string

	// AllowQoSMinus1 accepts PUBLISH with QoS -1 from any address (MQTT-SN
	// 1.2 §6.8), with a pre-defined topic id (Options.Predefined) or a
	// short topic name. When false they are dropped and counted.
	AllowQoSMinus1 bool

	// Broadcast is where ADVERTISE goes every Options.AdvertiseInterval.
	// nil means Conn's Broadcast() when it has one (a serialbus.Link), else
	// no ADVERTISE on this transport.
	Broadcast net.Addr

	// AllowClientIDs, when not empty, lists the ClientIds (without
	// ClientIDPrefix) that may connect on this transport: exact ids, or
	// patterns where '*' matches any run of characters and '?' one. Any
	// other CONNECT gets CONNACK "rejected: not supported" (counted in
	// Stats.Denied, logged at most every few seconds).
	AllowClientIDs []string

	// AllowAddrs, when not empty, lists the source addresses served on this
	// transport: IP addresses and CIDR prefixes ("192.168.1.0/24",
	// "fd00::/8") for UDP, node addresses as the link writes them (hex,
	// compared ignoring case) for a serial link. A datagram from any other
	// address is dropped unanswered (counted in Stats.Denied). Behind a
	// forwarder (§5.5) the forwarder's address is checked, which allows
	// every node behind it; "node:<hex>@<forwarder>" (e.g.
	// "node:0013a201@192.168.1.20", with an address or prefix as above after
	// the '@') allows only the client with that Wireless Node Id behind the
	// forwarders it names: their datagrams that are not encapsulated, or
	// encapsulate another node, are dropped as from an address not allowed.
	AllowAddrs []string
}

// Options configure a Gateway. Zero values mean the documented defaults.
type Options struct {
	// Transports are served by one reader goroutine each. None means one
	// UDP transport on DefaultAddr.
	Transports []Transport

	// GatewayID is the GwId of ADVERTISE and GWINFO (MQTT-SN 1.2 §5.3.6);
	// 0 is a valid id.
	GatewayID byte

	// KeepAliveGrace multiplies a client's keep-alive Duration and a
	// sleeping client's sleep Duration: silent for longer, the client is
	// lost and its will published (MQTT-SN 1.2 §6.14, §7.2). 0 means 1.5.
	KeepAliveGrace float64

	// Tretry is the time the gateway waits for a client's answer to
	// REGISTER, PUBLISH (QoS 1/2), PUBREL, WILLTOPICREQ and WILLMSGREQ
	// before retransmitting (with DUP for PUBLISH); after Nretry
	// retransmissions the client is lost (MQTT-SN 1.2 §6.13). 0 means 10s,
	// 0 for Nretry means 3.
	Tretry time.Duration
	Nretry int

	// MaxClients bounds the clients connected at once (active, asleep or
	// connecting); a CONNECT beyond it gets CONNACK "rejected: congestion".
	// 0 means 10000.
	MaxClients int

	// MaxTopicsPerClient bounds the topic ids registered per client. A
	// REGISTER or SUBSCRIBE that needs a new id beyond it is answered with
	// "rejected: congestion"; towards the client the least recently used id
	// the gateway assigned is reused. 0 means 1000 (at most 65534).
	MaxTopicsPerClient int

	// MaxBuffered bounds the messages waiting to go to one client, asleep
	// or awake (QoS 0 included: the oldest QoS 0 message makes room for a
	// QoS 1/2 one, a new QoS 0 one is dropped when full; counted). It also
	// caps the client's broker receive maximum. 0 means 100.
	MaxBuffered int

	// SessionExpiry is how long the broker session, the topic ids and the
	// will data of a client that connected with CleanSession=false outlive
	// its connection. 0 means 24h; negative means forever.
	SessionExpiry time.Duration

	// Predefined maps pre-defined topic ids to topic names for every client
	// (MQTT-SN 1.2 §6.7); ClientPredefined maps them per ClientId (without
	// the transport's prefix) and takes precedence.
	Predefined       map[uint16]string
	ClientPredefined map[string]map[uint16]string

	// Usernames maps ClientIds (without the transport's prefix; exact, or
	// patterns with '*' and '?' as in Transport.AllowClientIDs) to the
	// username the client has at the broker, so that the ACL's "user"
	// blocks and the broker's Authorize hook apply to it. An exact id wins,
	// then the pattern with the most literal characters. A client without
	// one has no username (the ACL's anonymous block).
	Usernames map[string]string

	// ACLFile is an ACL file in mosquitto's syntax (as a listener's) that
	// checks every MQTT-SN client's publishes, subscriptions, will and
	// deliveries, with its broker client id and username; QoS -1 messages
	// are checked as the anonymous block. A refusal is answered with
	// "rejected: not supported" (0x03) in PUBACK, SUBACK, CONNACK (will
	// topic) or WILLTOPICRESP, and counted in Stats.NotAuthorized. ""
	// means no ACL.
	ACLFile string

	// UnconnectedRate limits the messages per second taken from one source
	// address without a session: SEARCHGW, QoS -1 PUBLISH, those the
	// gateway answers with DISCONNECT or PUBCOMP (§6.12), and a CONNECT
	// unless it comes from the address its ClientId is connected at (a new
	// client, or one moving to another address). A token bucket of
	// UnconnectedBurst per address, in a table of at most
	// UnconnectedSources addresses (the least recently seen makes room
	// once its bucket has refilled; until then a new address is refused,
	// so that a flood from spoofed addresses gets no more than that many
	// addresses at the rate); what is over the limit is dropped unanswered
	// and counted in Stats.RateLimited. 0 means 10 per second, a burst of 20 and 4096
	// addresses; a negative rate means no limit.
	UnconnectedRate    float64
	UnconnectedBurst   int
	UnconnectedSources int

	// AdvertiseInterval is the period of ADVERTISE on each transport with a
	// broadcast address (MQTT-SN 1.2 §6.1 recommends more than 15 min);
	// 0 means no ADVERTISE.
	AdvertiseInterval time.Duration

	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if len(o.Transports) == 0 {
		o.Transports = []Transport{{}}
	}
	if o.KeepAliveGrace == 0 {
		o.KeepAliveGrace = DefaultKeepAliveGrace
	}
	if o.Tretry == 0 {
		o.Tretry = DefaultTretry
	}
	if o.Nretry == 0 {
		o.Nretry = DefaultNretry
	}
	if o.MaxClients == 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.MaxTopicsPerClient == 0 {
		o.MaxTopicsPerClient = DefaultMaxTopics
	}
	if o.MaxBuffered == 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	if o.SessionExpiry == 0 {
		o.SessionExpiry = DefaultSessionExpiry
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.UnconnectedRate == 0 {
		o.UnconnectedRate = DefaultUnconnectedRate
	}
	if o.UnconnectedBurst == 0 {
		o.UnconnectedBurst = DefaultUnconnectedBurst
	}
	if o.UnconnectedSources == 0 {
		o.UnconnectedSources = DefaultUnconnectedSources
	}
	switch {
	case o.UnconnectedBurst < 1 || o.UnconnectedSources < 1:
		return errors.New("mqttsn: unconnected burst and sources must be at least 1")
	case o.KeepAliveGrace < 1:
		return fmt.Errorf("mqttsn: keep-alive grace %v below 1", o.KeepAliveGrace)
	case o.Tretry < 0, o.Nretry < 0, o.MaxClients < 0, o.MaxBuffered < 0, o.AdvertiseInterval < 0:
		return errors.New("mqttsn: negative value in options")
	case o.MaxTopicsPerClient < 0 || o.MaxTopicsPerClient > 0xFFFE:
		return fmt.Errorf("mqttsn: max topics per client %d outside 1 to 65534", o.MaxTopicsPerClient)
	case o.AdvertiseInterval > 0 && o.AdvertiseInterval < time.Second:
		return fmt.Errorf("mqttsn: advertise interval %v below 1s", o.AdvertiseInterval)
	}
	names := map[string]bool{}
	for i := range o.Transports {
		t := &o.Transports[i]
		if t.Conn == nil && t.Addr == "" {
			t.Addr = DefaultAddr
		}
		if t.Name == "" {
			if t.Conn == nil {
				t.Name = "udp@" + t.Addr
			} else {
				t.Name = fmt.Sprintf("transport%d", i)
			}
		}
		if names[t.Name] {
			return fmt.Errorf("mqttsn: duplicate transport name %q", t.Name)
		}
		names[t.Name] = true
		if t.MTU < 0 {
			return fmt.Errorf("mqttsn: transport %q: negative MTU", t.Name)
		}
		if t.MTU > 0 && t.MTU < 8 {
			return fmt.Errorf("mqttsn: transport %q: MTU %d below 8 octets", t.Name, t.MTU)
		}
		if strings.ContainsAny(t.ClientIDPrefix, "\x00") {
			return fmt.Errorf("mqttsn: transport %q: client id prefix holds U+0000", t.Name)
		}
		if _, err := newIDMatcher(t.AllowClientIDs); err != nil {
			return fmt.Errorf("mqttsn: transport %q: %w", t.Name, err)
		}
		if _, err := newAddrMatcher(t.AllowAddrs); err != nil {
			return fmt.Errorf("mqttsn: transport %q: %w", t.Name, err)
		}
	}
	if _, err := newUsernames(o.Usernames); err != nil {
		return fmt.Errorf("mqttsn: usernames: %w", err)
	}
	if err := checkPredefined(o.Predefined); err != nil {
		return err
	}
	for cid, m := range o.ClientPredefined {
		if err := checkPredefined(m); err != nil {
			return fmt.Errorf("%w (client %q)", err, cid)
		}
	}
	return nil
}

func checkPredefined(m map[uint16]string) error {
	for id, name := range m {
		switch {
		case id == 0 || id == 0xFFFF: // MQTT-SN 1.2 §5.3.11: not to be used
			return fmt.Errorf("mqttsn: pre-defined topic id 0x%04X is reserved", id)
		case !validTopicName(name):
			return fmt.Errorf("mqttsn: pre-defined topic id 0x%04X: %q is not a topic name", id, name)
		}
	}
	return nil
}
