package localbroker

import (
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// Message is an application message inside the broker. A Message is
// immutable once published: the broker and every subscriber share it.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte // the publisher's QoS
	Retain  bool

	// MQTT 5.0 properties passed through to subscribers: PayloadFormat,
	// ContentType, ResponseTopic, CorrelationData and User. Other fields are
	// ignored; message expiry is carried by ExpiresAt.
	Props packet.Properties

	ExpiresAt time.Time // zero: never expires [MQTT-3.3.2-5]
	Created   time.Time

	// Origin is the client id of the publisher ("" for the broker itself);
	// used for No Local [MQTT-3.8.3-3].
	Origin string
}

// expired reports whether m is past its expiry at now.
func (m *Message) expired(now time.Time) bool {
	return !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt)
}

// passThrough keeps only the properties forwarded to subscribers
// [MQTT-3.3.2-4] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20].
func passThrough(in *packet.Properties) packet.Properties {
	var p packet.Properties
	for _, id := range []packet.PropID{packet.PropPayloadFormat, packet.PropContentType,
		packet.PropResponseTopic, packet.PropCorrelationData} {
		if in.Has(id) {
			p.Set(id)
		}
	}
	p.PayloadFormat = in.PayloadFormat
	p.ContentType = in.ContentType
	p.ResponseTopic = in.ResponseTopic
	p.CorrelationData = in.CorrelationData
	if len(in.User) > 0 {
		p.Set(packet.PropUser)
		p.User = in.User
	}
	return p
}

// Will is a client's will message with its delay.
type Will struct {
	Message
	Delay  time.Duration // 5.0 Will Delay Interval
	Expiry time.Duration // 5.0 Message Expiry Interval, counted from publication; 0 none
}

// ClientInfo describes a connected client to hooks.
type ClientInfo struct {
	ClientID string
	Username string
	Listener string // listener name; "inproc" for in-process clients
	Remote   string // remote address; "" for in-process clients
	Version  packet.Version
	CertCN   string // TLS client certificate common name, if any
}

// Access is what a client wants to do with a topic.
type Access int

// Access kinds.
const (
	AccessRead      Access = iota // receive a message on a topic
	AccessWrite                   // publish to a topic
	AccessSubscribe               // subscribe with a filter
)

// Hooks are optional functions the broker calls. A nil field allows.
type Hooks struct {
	// Authenticate is called for every CONNECT after the listener's own
	// password-file check passed. Returning a failure reason code
	// (BadUsernameOrPassword, NotAuthorized, ...) refuses the connection.
	Authenticate func(c *ClientInfo, password []byte) packet.ReasonCode

	// Authorize is called after the listener's ACL allowed the access.
	Authorize func(c *ClientInfo, topic string, access Access) bool

	// BeforeAck runs synchronously for every QoS 1/2 PUBLISH that was
	// authorized, before the message is routed and before the publisher is
	// acknowledged (PUBACK / PUBREC). The spool's durable handoff plugs in
	// here: when BeforeAck returns, the message must be safe. A non-nil
	// error refuses the message: a 5.0 publisher gets the error's reason
	// code when it is a *packet.Error (QuotaExceeded, ImplementationSpecific
	// otherwise); a 3.1.1 publisher gets no acknowledgement (it retries).
	BeforeAck func(c *ClientInfo, m *Message) error
}
