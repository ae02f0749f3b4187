package localbroker

import "github.com/outpost-gw/outpost/localbroker/auth"

// readable reports whether the session's client may read m now, by the
// ACL and identity of its current connection. Called with s.mu held.
//
// Routing checks every delivery, but a queued message waits: for an
// offline session (one restored from persistence has no ACL until its
// client is back), for a reload that changes the ACL, or for a client
// that takes the session over under another username. So a message
// leaving the queue, and one resent from the window, is checked again
// here. Only the ACL is asked: the Authorize hook was asked at routing
// with the same client id and username, and it is user code that must
// not run under the session's lock.
func (s *session) readable(m *Message) bool {
	acl := s.acl
	if acl == nil {
		return true
	}
	return acl.Check(s.info.ClientID, s.info.Username, m.Topic, auth.Read)
}

// notReadable counts and logs, once per connection, a delivery that the
// session's ACL refuses at the time of sending. Called with s.mu held.
func (s *session) notReadable(m *Message) {
	s.b.stats.dropped.Add(1)
	if s.aclDropGen != s.gen {
		s.aclDropGen = s.gen
		s.b.log.Info("queued message not delivered: the client may not read its topic", "client_id", s.id, "topic", m.Topic)
	}
}
