// Package uplink bridges chosen topic trees between the local broker and a
// cloud broker with paho.golang: out-rules drain the spool to the cloud,
// in-rules bring cloud messages to the LAN through the broker's in-process
// client API. One Bridge serves one cloud broker.
//
// # Out path
//
// Bridge.BeforeAck is the broker's Hooks.BeforeAck. A QoS 1/2 message that
// matches an out-rule is encoded as a Record (topic mapped, QoS capped,
// retain per rule, MQTT 5.0 properties, expiry) and appended to the spool
// queue of the rule's priority class (QueueName); the publisher is
// acknowledged only once the spool has it durably, and is refused
// (QuotaExceeded, or no ack under 3.1.1) when the spool does not take it.
// QoS 0 messages reach the bridge through an in-process subscription: they
// are sent at once while online, spooled while offline when the rule says
// QueueQoS0, and dropped (counted) otherwise.
//
// # Drain
//
// While connected, the drain loop publishes from the queues, highest class
// first and in order per queue, keeping up to Window messages in flight
// (capped by the cloud's Receive Maximum) and pacing them with RateLimit
// (messages per second) and RateBytes (topic and payload bytes per second).
// A spooled message is removed only when the cloud acknowledged it (PUBACK,
// or PUBCOMP for QoS 2), never when it was merely written to the socket.
// The MQTT session state lives as long as Run, across connections: when the
// cloud resumes the session, unacknowledged PUBLISH and PUBREL packets are
// resent with their packet identifiers; when it does not, everything
// unacknowledged is sent again from the head of each queue. QoS 1
// duplicates are possible, as MQTT allows; losses are not.
//
// Failures are classified. A network failure or a DISCONNECT reconnects
// with exponential backoff and jitter. A PUBACK/PUBREC that refuses one
// message for good (0x87 not authorized, 0x90 topic name invalid, 0x95
// packet too large, 0x99 payload format invalid, 0x9A, 0x9B) moves it to
// the quarantine queue (QuarantineName), counted and logged once per
// episode; 0x97 quota exceeded pauses the class with backoff and retries;
// 0x80 and 0x83, which say nothing of the cause, are retried a few times
// and then quarantined. Messages that were in flight behind a retried one
// may arrive before it.
//
// A spool queue of this bridge whose priority class no out-rule has any
// more, found at the start (a restart with changed rules), drains after
// every configured class, under the topics its messages were spooled with,
// and is dropped once the cloud acknowledged all of it (Deps.QueueNames,
// ClassStats.Leftover). A cloud SUBSCRIBE or UNSUBSCRIBE of a reload that
// fails or that the cloud refuses is retried with backoff while the link
// is up (Stats.SubscribeRetries), and subscribed again at each connection.
//
// # In path
//
// The bridge subscribes at the cloud to the in-rules' remote filters (No
// Local, Retain As Published), maps each message to its local topic, and
// publishes it locally through the in-process client "outpost-uplink-" +
// Name; the cloud is acknowledged only after the local Publish returned.
// Loops are prevented both ways: the bridge's own local publications are
// skipped by BeforeAck and by its QoS 0 subscription (No Local), and the
// cloud subscription has No Local.
//
// # Wiring
//
// The gateway gives each bridge the broker and a way to open spool queues,
// and routes the broker's BeforeAck hook to every bridge:
//
//	br, err := uplink.New(opts, uplink.Deps{
//		Broker:    broker,
//		OpenQueue: func(name string) (uplink.Queue, error) { return store.Queue(name, limits) },
//	})
//	hooks.BeforeAck = func(c *localbroker.ClientInfo, m *localbroker.Message) error {
//		return br.BeforeAck(c, m) // each bridge in turn
//	}
//
// Start order is spool, broker, bridges; stop order the reverse.
//
// # QoS 2 exactly once
//
// With Deps.Flights (the gateway gives each bridge the spool KV namespace
// "uplink.<name>"), each QoS 2 flight to the cloud is recorded: its packet
// identifier is reserved and "PUBLISH sent" is written (one synced write
// for a window's worth) before the PUBLISH goes out; "PUBREC received" is
// written before the PUBREL goes out; after the PUBCOMP the message is
// acked in the spool, then the record goes (neither synced: a power cut
// that undoes them makes a restart send the PUBREL again, which the cloud
// answers with PUBCOMP). A restarted bridge loads the records and, when
// the cloud resumes the session (Clean Start off, SessionExpiry long
// enough), resends each PUBLISH with its packet identifier and DUP, or its
// PUBREL, so the cloud delivers each message once [MQTT-4.3.3]. A record
// whose message is gone from the spool (dropped by drop-oldest, expired,
// its priority class removed) only releases its identifier with a PUBREL.
// No other identifier is used while a record holds it.
//
// Where it degrades to at least once, and why:
//
//   - The cloud has no session at the reconnection (its session expired,
//     SessionExpiry 0s, the cloud restarted without persistence): every
//     message not completed goes again from the spool as a new message. A
//     cloud that delivers on receiving the PUBLISH (method A of the
//     specification) then delivers twice each of them that it had
//     received; one that delivers on the PUBREL (method B, mosquitto's
//     way) only those whose PUBREL it had taken but whose PUBCOMP did not
//     reach the bridge.
//   - The spool's sync is "interval" or "never": a power cut (not a kill -9
//     or crash, whose writes the kernel keeps) may lose the last records,
//     and the bridge cannot know what the cloud holds.
//   - A power cut even with sync "always": the spool's ack of a completed
//     message is committed without a forced sync, while deleting its
//     flight record is synced with the next window's records. If the
//     delete reached the disk and the ack did not, the message is still in
//     the spool with no record, and goes again under a new identifier.
//   - Without a FlightStore (Deps.Flights nil): the session lives in
//     memory; after a restart each identifier is released with a PUBREL
//     before its first use, and a QoS 2 message in flight at the crash may
//     arrive twice.
//   - Inbound (cloud to LAN) QoS 2: a message is published locally before
//     its PUBREC goes; a crash between the two makes the cloud send it
//     again, and it is published locally twice.
//
// # Limits
//
// ResponseTopic is passed unchanged, not mapped through the rules.
//
// uplink may import localbroker, spool and paho.golang.
package uplink
