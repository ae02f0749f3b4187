// Package spool will be Outpost's durable store (badger): FIFO queues with
// acknowledgement, size and age limits and a drop policy, for QoS 1/2 messages
// that an uplink rule exports. It also backs the broker's persistence
// (retained messages and persistent sessions).
//
// An append is acknowledged only once its write batch is synced to disk, and
// concurrent appenders share one sync; what Outpost acknowledged survives
// kill -9, power loss and uplink outages within the spool's limits. When the
// spool is full the configured policy (drop oldest, or refuse new) decides,
// and every drop or refusal is counted and logged.
//
// badger's options are sized for a 1 GiB board, not badger's server defaults.
// spool may import only badger.
package spool
