// Package serialbus will move datagrams over serial ports (go.bug.st/serial):
// plain UART, XBee radios and bridge boards. It owns the framings (raw, XBee
// API modes 1 and 2, SLIP with CRC for the bridge framing, and the MQTT-SN
// forwarder encapsulation), port discovery and hot-plug.
//
// A link is exposed as a net.PacketConn whose net.Addr is the radio node
// address, so mqttsn can serve it like a UDP socket. serialbus knows nothing of
// MQTT-SN. One writer per port paces the radio.
//
// serialbus may import only the standard library and go.bug.st/serial.
package serialbus
