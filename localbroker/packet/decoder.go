package packet

import "encoding/binary"

// decoder reads the fields of one packet body. Every method names the field
// it reads so that a truncated packet is reported precisely; the names are
// constants, so nothing is allocated unless decoding fails.
type decoder struct {
	b []byte
	i int
	v Version
}

func (d *decoder) rest() int { return len(d.b) - d.i }

func truncated(what string) *Error { return malformed(what + ": truncated") }

func (d *decoder) byte1(what string) (byte, error) {
	if d.i >= len(d.b) {
		return 0, truncated(what)
	}
	c := d.b[d.i]
	d.i++
	return c, nil
}

func (d *decoder) uint16(what string) (uint16, error) {
	if d.rest() < 2 {
		return 0, truncated(what)
	}
	x := binary.BigEndian.Uint16(d.b[d.i:])
	d.i += 2
	return x, nil
}

func (d *decoder) uint32(what string) (uint32, error) {
	if d.rest() < 4 {
		return 0, truncated(what)
	}
	x := binary.BigEndian.Uint32(d.b[d.i:])
	d.i += 4
	return x, nil
}

func (d *decoder) varint(what string) (int, error) {
	x, n := parseVarint(d.b[d.i:])
	if n < 0 {
		return 0, varintError(n, what)
	}
	d.i += n
	return x, nil
}

// binary reads Binary Data: a two-byte length and that many bytes (aliased).
func (d *decoder) binary(what string) ([]byte, error) {
	if d.rest() < 2 {
		return nil, truncated(what)
	}
	n := int(binary.BigEndian.Uint16(d.b[d.i:]))
	if d.rest()-2 < n {
		return nil, truncated(what)
	}
	s := d.b[d.i+2 : d.i+2+n : d.i+2+n]
	d.i += 2 + n
	return s, nil
}

// string reads a UTF-8 Encoded String and checks it [MQTT-1.5.3-1]
// [MQTT-1.5.3-2] (5.0: [MQTT-1.5.4-1] [MQTT-1.5.4-2]).
func (d *decoder) string(what string) (string, error) {
	b, err := d.binary(what)
	if err != nil {
		return "", err
	}
	if !validUTF8(b) {
		return "", malformed(what + ": invalid UTF-8 or U+0000 [MQTT-1.5.3-1] [MQTT-1.5.3-2]")
	}
	return aliasString(b), nil
}

// packetID reads a packet identifier, which must not be 0 [MQTT-2.3.1-1]
// (5.0: [MQTT-2.2.1-3], [MQTT-2.2.1-4]; acknowledgements carry the
// identifier of the packet they answer, [MQTT-2.2.1-5] [MQTT-2.2.1-6]).
func (d *decoder) packetID() (uint16, error) {
	id, err := d.uint16("packet identifier")
	if err != nil {
		return 0, err
	}
	if id == 0 {
		return 0, newError(d.v, ProtocolError, "packet identifier 0 [MQTT-2.3.1-1] [MQTT-2.2.1-3]")
	}
	return id, nil
}

// end checks that the whole body was used.
func (d *decoder) end(what string) error {
	if d.i != len(d.b) {
		return malformed(what + ": bytes left over after the last field")
	}
	return nil
}
