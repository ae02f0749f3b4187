// Package mqttsn is Outpost's MQTT-SN 1.2 gateway for battery devices: the
// codec lives in mqttsn/packet, the gateway sessions here (Gateway).
//
// Its transport is any net.PacketConn: a UDP socket, or a serial radio link
// from serialbus whose net.Addr is the radio node address. The package knows
// nothing of serial ports; it uses a Conn's MTU() and Broadcast() methods
// when it has them. mqttsn may import only localbroker: it defines the small
// Broker interface it needs (Attach), and gateway wires it.
//
// # Sessions
//
// The gateway is transparent (MQTT-SN 1.2 §3.1): each client is its own
// in-process broker client, attached with ClientID = Transport.ClientIDPrefix
// + ClientId, CleanStart = CleanSession and, when CleanSession is off,
// Options.SessionExpiry. QoS flows, inflight windows, persistent sessions,
// wills, ACLs and the durable handoff hold for devices as for LAN clients.
// A client's PUBLISH at QoS 1 or 2 is acknowledged (PUBACK, PUBREC) only
// after the broker's Publish returned, that is after the spool has it.
//
// A client is connecting (will handshake), active, asleep or awake
// (§6.14). Disconnected and lost clients are removed; what a CleanSession=false
// client keeps at the gateway (topic ids, will data, QoS 2 ids awaiting
// PUBREL) is saved for Options.SessionExpiry, and, with Deps.Store, kept
// across a restart of the process: written when the client registers a
// topic id (before REGACK or SUBACK), changes its will, connects, goes
// away, and at shutdown. Its subscriptions and queued messages are the
// broker's. A CONNECT with a ClientId known at another
// address takes the session over; a CONNECT from an address that another
// ClientId held makes that other client lost. A CONNECT from an active or
// sleeping client with CleanSession=false keeps its broker session and the
// messages buffered for it.
//
// Keep-alive and sleep are supervised with Options.KeepAliveGrace (1.5 ×
// the Duration by default, §7.2): a client silent for longer is lost and its
// will published. A client that connects with a keep-alive Duration of 0 is
// never supervised: it holds its place (one of Options.MaxClients) until it
// disconnects, connects again, or fails an exchange the gateway starts. Every exchange the gateway starts (REGISTER, PUBLISH at
// QoS 1/2, PUBREL, WILLTOPICREQ, WILLMSGREQ) is retransmitted every Tretry,
// a PUBLISH with DUP, Nretry times; then the client is lost (§6.13). The
// gateway has one such exchange outstanding per client at a time (§6.6).
//
// # Topics
//
// Topic ids are per client (§7.3). A client's REGISTER, and a SUBSCRIBE to a
// name without wildcards, assign ids it keeps. Towards the client a message
// goes by pre-defined id when its topic has one (Options.ClientPredefined,
// then Options.Predefined), as a short topic name when its topic has two
// octets, and otherwise by a normal id, which the gateway REGISTERs first
// when the client has not been told it in the current connection (§6.10):
// a wildcard match, or any topic after a reconnection. When the table is
// full (MaxTopicsPerClient), ids the gateway assigned for wildcard matches
// are reused, least recently used first. A client that refuses a REGISTER
// is unsubscribed from that name; one that answers "invalid topic ID" gets
// the REGISTER and the message again, once.
//
// Return codes: "invalid topic ID" (0x02) for a PUBLISH on an unknown
// normal or pre-defined id whatever its QoS (§6.6, §6.7), and for a
// SUBSCRIBE to an unknown pre-defined id; "congestion" (0x01) when a limit
// is hit (MaxClients, MaxTopicsPerClient) or the broker refuses for lack of
// room (QuotaExceeded, a failed durable handoff); "not supported" (0x03)
// for what the broker refuses for good (not authorized, a bad topic).
//
// # Sleeping clients, QoS -1, discovery, forwarders
//
// Messages for an asleep client are buffered (MaxBuffered, QoS 0 included)
// and sent when it wakes with a PINGREQ carrying its ClientId, from any
// address, followed by PINGRESP (§6.14). QoS -1 PUBLISH (§6.8) is taken
// from any address on a transport with AllowQoSMinus1, with a pre-defined
// id of Options.Predefined or a short topic name, and published at QoS 0 by
// a broker client of the transport. SEARCHGW is answered with GWINFO;
// ADVERTISE goes to the transport's broadcast address every
// AdvertiseInterval (§6.1). Clients behind a forwarder (§5.5) are keyed by
// the forwarder's address and their Wireless Node Id and answered
// encapsulated. Nothing larger than the transport's MTU is sent: such a
// message is dropped, counted (Stats.TooLarge) and logged at most every few
// seconds; as §6.10 says, its publish is silently aborted.
//
// A message from an address without a session gets DISCONNECT (§6.12), so
// that the client connects again; a PUBREL gets PUBCOMP. Malformed datagrams
// are dropped and counted (Stats.Malformed).
//
// # Security and limits
//
// Per transport, Transport.AllowClientIDs (exact ids and '*'/'?' patterns)
// and Transport.AllowAddrs (IP prefixes for UDP, node addresses for a
// serial link) say who is served: a datagram from another address is
// dropped unanswered ("node:<hex>@<forwarder>" allows one Wireless Node Id
// behind a forwarder), a CONNECT with another ClientId gets CONNACK
// "rejected: not supported" (both counted in Stats.Denied). Options.Usernames
// gives a device a broker username, and Options.ACLFile an ACL in
// mosquitto's syntax that checks its publishes, subscriptions, will and
// deliveries with that username, as the broker's listeners check their
// clients; a refusal is answered with 0x03 and counted (Stats.NotAuthorized).
// Both can change while the gateway runs (the gateway's SIGHUP reload):
// LoadAccess reads them, and SetAccess gives connected clients the new ACL
// at once and disconnects those whose username changes.
// Traffic from addresses without a session (SEARCHGW, QoS -1, messages
// answered with DISCONNECT or PUBCOMP, a CONNECT that makes a client or
// moves one to another address) goes through a token bucket per
// source address (Options.UnconnectedRate) kept in a bounded table, so that
// a flood from spoofed addresses costs neither memory nor answers
// (Stats.RateLimited). Each refusal is logged at most every few seconds.
//
// # Goroutines
//
// Run starts one reader per transport, a fixed pool of workers (enough that
// the session store writes and durable handoffs they wait for share their
// syncs) and one timer goroutine. A reader decodes each datagram, answers connectionless
// messages and appends the others to their client's inbox; the broker's
// deliveries go to the client's own queue from the Deliver callback. A
// worker runs a client with work (never two workers the same client), so a
// client's messages are handled in order and a reader never waits for the
// broker's durable handoff. The timer goroutine keeps every client's next
// deadline in one heap and schedules the client when it passes. There is no
// goroutine per client.
//
// # Wiring (for gateway)
//
// The gateway's config maps [mqttsn] to Options: gateway_id, keep_alive_grace,
// retry_interval (Tretry), retries (Nretry), max_clients,
// max_topics_per_client, max_buffered, session_expiry, advertise_interval,
// acl_file, unconnected_rate (0: no limit), unconnected_burst,
// unconnected_sources, [mqttsn.usernames], [mqttsn.predefined] (id =
// "topic") and [mqttsn.client_predefined.<ClientId>]; client_id_prefix goes
// to every Transport. Each [[mqttsn.udp]] is a Transport with Addr, MTU,
// AllowQoSMinus1, Broadcast, AllowClientIDs and AllowAddrs (IP prefixes);
// each [[serial]] (with allow_client_ids and allow_addresses, node
// addresses) is a serialbus.Link given as Transport.Conn (whose MTU and
// broadcast address are used). Deps.Broker is the *localbroker.Broker,
// Deps.Store the spool's KV namespace "mqttsn". The gateway starts after the
// broker and the serial links, and stops before them.
package mqttsn
