// Package packet encodes and decodes MQTT-SN 1.2 messages (MQTT-SN 1.2 §5):
// every message of §5.4 and the forwarder encapsulation of §5.5.
//
// # Decoding
//
// Decode takes one whole datagram and returns one message. The decoded values
// ALIAS the datagram: every []byte field of a decoded message (ClientID,
// TopicName, Data, WillMsg, GwAdd, NodeID, ...) points into b, so the caller
// must neither modify nor reuse b while the message is in use, and must copy
// what it keeps longer (a client id stored in a session table, a topic name
// handed to the broker). Empty optional fields decode as nil.
//
// DecodePublish and DecodeInto decode into a caller's value and allocate
// nothing; Decode allocates only the message value itself. DecodeHeader reads
// the header alone, SplitEncapsulated the encapsulation header alone.
//
// # Encoding
//
// Append appends a message to a caller's buffer; AppendPublish does so for
// PUBLISH without the interface conversion, so a Publish on the caller's stack
// stays there. Size returns the encoded length. Append writes the 1-octet
// Length form when the whole message fits in 255 octets and the 3-octet form
// otherwise (§5.2.1). A message must pass Validate to be encoded; for one that
// does not, the bytes are unspecified. Validate enforces the same rules as the
// decoder, so what Validate accepts decodes to an equal value.
//
// # What the decoder rejects
//
// Every rejection is an *Error whose Kind is one of the Err values of this
// package (test with errors.Is). The choices the specification leaves open:
//
//   - Length (§5.2.1). The Length field must equal the datagram length
//     (ErrLength, both when the datagram is shorter and when it is longer).
//     The 3-octet form is accepted for any length of at least 4, also below
//     256: the specification says shorter messages "may" use the 1-octet form,
//     not that they must. Append always writes the shortest form, so such an
//     input re-encodes to different (canonical) bytes.
//   - Flags (§5.3.4). A flag the message's table marks "not used" must be 0
//     (ErrFlags); the flags a message carries are listed on its type. The
//     decoder does not ignore them, so that a value round-trips exactly and a
//     confused peer is noticed early.
//   - QoS 0b11 (-1) is allowed only in PUBLISH, and there only with a
//     pre-defined topic id or a short topic name (§6.8, ErrTopicIDType
//     otherwise). In WILLTOPIC, WILLTOPICUPD, SUBSCRIBE and SUBACK it is
//     ErrQoS. TopicIdType 0b11 is reserved (ErrTopicIDType).
//   - ProtocolId must be 0x01 (§5.3.8, ErrProtocolID).
//   - ClientId (CONNECT, and PINGREQ when present) must be 1 to 23 octets of
//     UTF-8 without U+0000 (§5.3.1, ErrClientID). Topic names (REGISTER,
//     SUBSCRIBE, UNSUBSCRIBE, WILLTOPIC, WILLTOPICUPD) must be non-empty UTF-8
//     without U+0000 (§5.3.12, ErrTopicName). A short topic name is exactly two
//     octets (§6.7, ErrShortTopic). WillMsg, Data and GwAdd are opaque.
//   - ReturnCode values 0x04 to 0xFF are reserved (§5.3.10, ErrReturnCode).
//   - Fixed-size messages with too few octets are ErrTruncated, with too many
//     ErrTrailing. The empty WILLTOPIC and WILLTOPICUPD are exactly 2 octets;
//     a Flags octet without a topic is ErrTopicName. DISCONNECT is 2 or 4
//     octets.
//   - Encapsulation (§5.5). Its Length covers the encapsulation header only
//     and has the 1-octet form (the 3-octet form is ErrEncapsulation); the
//     reserved bits 7-2 of Ctrl must be 0, the encapsulated message must be
//     present and must not itself be an encapsulation (all ErrEncapsulation).
//     The Wireless Node Id may be empty. Errors of the inner message keep
//     their kind and are marked as inner (Error.Encapsulated).
//
// Left to the gateway session, because the answer is a return code rather
// than a dropped datagram, or because only the session knows the direction:
// topic id values 0x0000 and 0xFFFF (§5.3.11 says "should not be used"; a
// gateway answers a PUBLISH with an unknown id with PUBACK "invalid topic
// ID"), MsgId 0, a non-zero MsgId with QoS 0 or -1, wildcards in topic names,
// QoS -1 sent by a gateway, and GwAdd present or absent by sender.
package packet
