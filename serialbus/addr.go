package serialbus

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Networks of the addresses of a Link, as Addr.Network reports them.
const (
	NetworkXBee   = "xbee"   // 64-bit (or 16-bit) XBee addresses
	NetworkBridge = "bridge" // wireless node ids behind a bridge board
	NetworkSerial = "serial" // the one device on a raw UART
)

// Addr is the address of a radio node behind a Link: the 64-bit address of
// an XBee (or its 16-bit address for 802.15.4 RX16 frames), the wireless
// node id behind a bridge board, or the port itself for the raw framing,
// where one device sits on the line. Addr values are comparable and may be
// map keys; String gives a stable text form (lower-case hex, or the link's
// name for the raw framing).
type Addr struct {
	network string
	id      string // the address bytes, or a name when text is set
	text    bool
}

// XBeeAddr returns the address of the XBee with 64-bit address a.
func XBeeAddr(a uint64) Addr {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], a)
	return Addr{network: NetworkXBee, id: string(b[:])}
}

// XBeeAddr16 returns the address of an 802.15.4 XBee with 16-bit address a.
func XBeeAddr16(a uint16) Addr {
	return Addr{network: NetworkXBee, id: string([]byte{byte(a >> 8), byte(a)})}
}

// BridgeAddr returns the address of the node with wireless node id node
// (1 to BridgeMaxNode bytes) behind a bridge board.
func BridgeAddr(node []byte) Addr { return Addr{network: NetworkBridge, id: string(node)} }

func portAddr(name string) Addr { return Addr{network: NetworkSerial, id: name, text: true} }

// Network returns "xbee", "bridge" or "serial".
func (a Addr) Network() string { return a.network }

// String returns the address as lower-case hex (16 digits for a 64-bit XBee
// address), or the link's name for the raw framing.
func (a Addr) String() string {
	if a.text {
		return a.id
	}
	return hex.EncodeToString([]byte(a.id))
}

// Bytes returns a copy of the address bytes (nil for the raw framing).
func (a Addr) Bytes() []byte {
	if a.text {
		return nil
	}
	return []byte(a.id)
}

// IsBroadcast reports whether a is a broadcast address: the XBee 64-bit
// broadcast 000000000000FFFF or 16-bit FFFF, a bridge node id of FF bytes
// only, or the port address of the raw framing (its one device hears
// everything).
func (a Addr) IsBroadcast() bool {
	switch {
	case a.text:
		return a.network == NetworkSerial
	case a.network == NetworkXBee && len(a.id) == 8:
		return binary.BigEndian.Uint64([]byte(a.id)) == XBeeBroadcast64
	case len(a.id) == 0:
		return false
	}
	return strings.Count(a.id, "\xff") == len(a.id)
}

// ParseAddr parses the String form of an address of the given network. For
// "serial" any text is the address.
func ParseAddr(network, s string) (Addr, error) {
	if network == NetworkSerial {
		return portAddr(s), nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return Addr{}, fmt.Errorf("serialbus: %s address %q: %w", network, s, err)
	}
	a := Addr{network: network, id: string(b)}
	return a, a.check()
}

// check tells whether a Link of a's network can send to a.
func (a Addr) check() error {
	switch a.network {
	case NetworkXBee:
		if !a.text && (len(a.id) == 8 || len(a.id) == 2) {
			return nil
		}
		return fmt.Errorf("serialbus: xbee address %q is neither 8 nor 2 bytes", a.String())
	case NetworkBridge:
		if !a.text && len(a.id) >= 1 && len(a.id) <= BridgeMaxNode {
			return nil
		}
		return fmt.Errorf("serialbus: bridge node id %q is not 1 to %d bytes", a.String(), BridgeMaxNode)
	case NetworkSerial:
		return nil
	}
	return fmt.Errorf("serialbus: unknown network %q", a.network)
}
