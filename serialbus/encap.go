package serialbus

import "fmt"

// MQTT-SN 1.2 §5.5 forwarder encapsulation:
//
//	Length (1) | MsgType 0xFE (1) | Ctrl (1) | Wireless Node Id (Length-3) | MQTT-SN message
//
// Length counts the octets up to the end of the Wireless Node Id, itself
// included. Ctrl bits 1..0 are the broadcast radius, bits 7..2 are reserved.
const (
	encapType     = 0xFE
	encapHeader   = 3    // Length, MsgType, Ctrl
	encapMaxNode  = 252  // Length is one octet: 255 - 3
	encapRadius   = 0x03 // Ctrl bits that carry the radius
	encapReserved = 0xFC // Ctrl bits that must be zero
)

// AppendEncapsulated appends an MQTT-SN forwarder-encapsulated packet (MQTT-SN
// 1.2 §5.5) to dst: the header with the wireless node id and the broadcast
// radius (0-3), then msg unchanged. node must hold 1 to 252 bytes and msg at
// least one.
func AppendEncapsulated(dst []byte, radius byte, node, msg []byte) ([]byte, error) {
	if err := checkEncap(radius, node, msg, encapMaxNode); err != nil {
		return dst, err
	}
	dst = append(dst, byte(encapHeader+len(node)), encapType, radius)
	dst = append(dst, node...)
	return append(dst, msg...), nil
}

// DecodeEncapsulated splits an MQTT-SN forwarder-encapsulated packet (MQTT-SN
// 1.2 §5.5) into the radius, the wireless node id and the inner MQTT-SN
// message. node and msg alias b. Reserved Ctrl bits must be zero, the node id
// must be at least one byte and the inner message must not be empty; the
// inner message is otherwise not looked at.
func DecodeEncapsulated(b []byte) (radius byte, node, msg []byte, err error) {
	return decodeEncap(b, encapMaxNode)
}

func decodeEncap(b []byte, maxNode int) (radius byte, node, msg []byte, err error) {
	if len(b) < encapHeader {
		return 0, nil, nil, fmt.Errorf("%w: encapsulation of %d bytes is shorter than its header", ErrMalformed, len(b))
	}
	n := int(b[0])
	switch {
	case b[1] != encapType: // MQTT-SN 1.2 §5.5: MsgType is 0xFE
		return 0, nil, nil, fmt.Errorf("%w: encapsulation MsgType 0x%02x, want 0xfe", ErrMalformed, b[1])
	case b[2]&encapReserved != 0: // MQTT-SN 1.2 §5.5 Table 29: bits 7..2 reserved
		return 0, nil, nil, fmt.Errorf("%w: reserved Ctrl bits set (0x%02x)", ErrMalformed, b[2])
	case n <= encapHeader || n-encapHeader > maxNode:
		return 0, nil, nil, fmt.Errorf("%w: encapsulation Length %d gives a node id of %d bytes (1 to %d allowed)", ErrMalformed, n, n-encapHeader, maxNode)
	case n >= len(b):
		return 0, nil, nil, fmt.Errorf("%w: encapsulation Length %d leaves no MQTT-SN message in %d bytes", ErrMalformed, n, len(b))
	}
	return b[2] & encapRadius, b[encapHeader:n], b[n:], nil
}

func checkEncap(radius byte, node, msg []byte, maxNode int) error {
	switch {
	case radius&^encapRadius != 0:
		return fmt.Errorf("%w: radius %d does not fit in 2 bits", ErrMalformed, radius)
	case len(node) == 0 || len(node) > maxNode:
		return fmt.Errorf("%w: node id of %d bytes (1 to %d allowed)", ErrMalformed, len(node), maxNode)
	case len(msg) == 0:
		return fmt.Errorf("%w: empty MQTT-SN message", ErrMalformed)
	}
	return nil
}
