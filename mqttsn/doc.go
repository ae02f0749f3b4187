// Package mqttsn will hold Outpost's MQTT-SN 1.2 gateway: the codec (in
// mqttsn/packet) and the gateway sessions for battery devices (connect, will,
// register, publish, subscribe, sleep, gateway discovery).
//
// Its transport is any net.PacketConn: a UDP socket, or a serial radio link
// from serialbus whose net.Addr is the radio node address. The package knows
// nothing of serial ports. Each MQTT-SN session is an in-process client of the
// local broker, so QoS, inflight windows, persistent sessions, wills and ACLs
// hold for MQTT-SN devices as they do for network clients.
//
// mqttsn may import only localbroker (its in-process client API); it defines
// the small interface it needs from the broker, and gateway wires it.
package mqttsn
