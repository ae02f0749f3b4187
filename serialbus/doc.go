// Package serialbus moves datagrams over serial ports: plain UARTs, Digi XBee
// radios and Outpost's radio bridge boards. A Link exposes one port as a
// net.PacketConn whose net.Addr is the radio node address, so that mqttsn can
// serve it as it serves a UDP socket. serialbus knows nothing of MQTT-SN
// beyond the Length field and the forwarder encapsulation that frame it.
//
// The framings are pure codecs, each with a stream decoder that takes the
// byte stream in chunks of any size, checks a maximum frame length before it
// buffers, and resynchronises after noise:
//
//   - bridge: SLIP (RFC 1055) frames of type, payload and CRC-16/CCITT-FALSE,
//     carrying MQTT-SN forwarder-encapsulated datagrams (BridgeDecoder,
//     DecodeBridge, AppendBridge; BRIDGE-PROTOCOL.md specifies it);
//   - xbee: Digi API frames, unescaped (AP=1) or escaped (AP=2) (XBeeDecoder,
//     DecodeXBee, AppendXBee);
//   - raw: bare MQTT-SN packets back to back, split by their Length field
//     (RawDecoder, AppendRaw).
//
// serialbus may import only the standard library and go.bug.st/serial.
package serialbus
