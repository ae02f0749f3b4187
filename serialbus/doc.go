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
// A Link (New, then Run) owns one port: one reader goroutine that decodes
// and demultiplexes, one writer goroutine fed by a bounded queue that paces
// the radio (Options.MinGap, Options.DutyCycle), and reconnection with
// backoff when the port cannot be opened or vanishes. At start-up it asks an
// XBee for AP, AO, NP, SH and SL (checking the API mode, learning the MTU)
// and a bridge board for its STATUS. Stats counts frames, bytes, damaged
// frames, refusals, drops and transmit failures, and keeps the last RSSI and
// SNR of each node.
//
// serialbus may import only the standard library and go.bug.st/serial.
package serialbus
