package packet

// Error construction helpers. Decoders report every rejection as an *Error
// whose Code is the MQTT 5.0 reason code the receiver must close with.
//
// MQTT 3.1.1 has no reason codes on DISCONNECT; there every rejection just
// closes the connection. Under 3.1.1 (and 3.1) the decoders therefore report
// the 5.0-only codes ProtocolError, TopicNameInvalid and TopicAliasInvalid as
// MalformedPacket, so that a 3.1.1 error always reads "malformed packet"
// (PacketTooLarge and UnsupportedProtocolVersion keep their codes).

// newError returns an *Error for a packet decoded under v.
func newError(v Version, code ReasonCode, msg string) *Error {
	if v != V5 {
		switch code {
		case ProtocolError, TopicNameInvalid, TopicAliasInvalid:
			code = MalformedPacket
		}
	}
	return &Error{Code: code, Msg: msg}
}

func malformed(msg string) *Error { return &Error{Code: MalformedPacket, Msg: msg} }
