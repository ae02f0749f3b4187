// Package uplink will bridge chosen topic trees between the local broker and
// cloud brokers with paho.golang: out-rules that drain the spool to the cloud,
// and in-rules that bring cloud messages to the LAN through the broker's
// in-process client API.
//
// A spooled message is removed only when the cloud broker acknowledged it
// (PUBACK, or PUBCOMP for QoS 2), never when it was merely written to the
// socket. Order is preserved per rule; a window of in-flight messages keeps a
// long-latency link busy, and a rate limit keeps a metered link affordable.
// Each failure is classified: retried (network) or quarantined (refused for
// good); no message is lost silently.
//
// uplink may import localbroker, spool and paho.golang.
package uplink
