// Package gateway turns a TOML config into a running Outpost: it owns the
// config schema and its validation, builds the components (spool, broker,
// MQTT-SN transports, uplinks) from it, and runs them in dependency order.
//
// # Config
//
// Load reads a TOML file strictly: an unknown key, a value of the wrong type
// or a value out of range is a *ConfigError that names the key and its line
// ("outpost.toml:12: listener[1].address: ..."). Keys the file leaves out
// keep the defaults of Default, which are also the embedded config used when
// no file is given. Relative paths in a file (data_dir, password_file,
// acl_file, and the tls cert_file, key_file and ca_file) are relative to the
// folder that holds the file, not to the working directory.
// configs/outpost.toml in the repository documents every key. WriteTOML
// prints the effective config, with uplink passwords hidden.
//
// # Wiring
//
// New builds the spool (in <data_dir>/spool), then the broker, whose
// retained messages and persistent sessions live in the spool's "broker"
// KV namespace, then one uplink.Bridge per [[uplink]], whose queues are
// spool queues with the uplink's limits. The broker's BeforeAck hook hands
// every QoS 1/2 message to each bridge's BeforeAck, so a publisher is
// acknowledged only once every bridge that exports the topic has it on disk.
//
// # Status
//
// Gateway.Status is a snapshot of the broker's counters, the spool's queues
// and each uplink's state (connected since when, backlog per class, sent,
// acknowledged, dropped, expired, quarantined, drain rate, time to drain).
// A running gateway writes it as JSON to StatusFile in data_dir, replacing
// the file atomically when something changed (checked every few seconds,
// rewritten at least every StatusHeartbeat), and removes it at a clean
// stop. InspectSpool, behind `outpost spool`, reads a stopped gateway's
// spool read-only, and that file while a gateway holds the spool.
//
// # HTTP
//
// With [http] address set, a last component serves Prometheus metrics at
// /metrics (metrics.go: the Status snapshot, per listener and per MQTT-SN
// transport counters, MQTT-SN clients by state, Go runtime metrics),
// /healthz (200 while the process serves), /readyz (200 from Ready until
// the stop begins, 503 otherwise) and a status page at / (statuspage.go:
// web/ embedded, refreshed from /status.json). A password file in
// mosquitto_passwd format puts every path but /healthz and /readyz behind
// basic auth; cert_file and key_file serve HTTPS.
//
// # Lifecycle
//
// New builds the components and starts nothing. Run starts them one after
// the other, each once the one before is ready, and on cancellation stops
// them in reverse order, waiting for each; if one fails to start, those
// already started are stopped again (rollback).
package gateway
