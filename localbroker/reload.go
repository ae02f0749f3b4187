package localbroker

import (
	"errors"
	"fmt"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

// ListenerAuth is the part of a listener's options that a reload changes
// without closing the listener (see LoadAuth and ApplyAuth).
type ListenerAuth struct {
	AllowAnonymous bool
	PasswordFile   string // "" means no password file (any username accepted)
	ACLFile        string // "" means everything allowed
}

// AuthUpdate is access control read from files by LoadAuth, for ApplyAuth.
type AuthUpdate struct {
	changes []authChange
}

type authChange struct {
	l    *listener
	anon bool
	pw   *auth.PasswordFile
	acl  *auth.ACL
}

// LoadAuth reads the password and ACL files of the listeners named in la
// anew. It changes nothing: ApplyAuth does. It fails, naming the file and
// line (auth.ParseError), when a file cannot be read or parsed, or when a
// listener is unknown; the listeners then keep what they have.
func (b *Broker) LoadAuth(la map[string]ListenerAuth) (*AuthUpdate, error) {
	u := &AuthUpdate{}
	var errs []error
	for name, a := range la {
		var l *listener
		for _, x := range b.listeners {
			if x.opts.Name == name {
				l = x
			}
		}
		if l == nil {
			errs = append(errs, fmt.Errorf("listener %q: no such listener", name))
			continue
		}
		ch := authChange{l: l, anon: a.AllowAnonymous}
		if a.PasswordFile != "" {
			pw, err := auth.LoadPasswordFile(a.PasswordFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("listener %q: %w", name, err))
			}
			ch.pw = pw
		}
		if a.ACLFile != "" {
			acl, err := auth.LoadACLFile(a.ACLFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("listener %q: %w", name, err))
			}
			ch.acl = acl
		}
		u.changes = append(u.changes, ch)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return u, nil
}

// reloadReason is the reason string of the DISCONNECT (MQTT 5) sent to a
// client that a reload no longer admits.
const reloadReason = "credentials no longer accepted after a reload"

// ApplyAuth installs the access control of u, as mosquitto applies its
// password and ACL files on SIGHUP, and returns how many clients it
// disconnected.
//
//   - The new ACL applies at once to the connected clients of the listener
//     and to the offline sessions whose client last connected on it:
//     to their next PUBLISH, SUBSCRIBE and will, and to what is delivered to
//     them. A subscription made under the old ACL stays, but a message on
//     a topic the new ACL does not let the client read is no longer
//     delivered (every delivery is checked for read access, as mosquitto
//     checks at delivery).
//   - A client connected without a username is disconnected when the
//     listener no longer allows anonymous clients.
//   - A client whose username's entry in the password file is gone or
//     different is disconnected (MQTT 5: DISCONNECT 0x98, administrative
//     action). mosquitto checks the password it kept from CONNECT; Outpost
//     keeps no password, so a changed entry (a new password, or the same
//     one hashed again) means connecting again, when the new file checks
//     the password. A password file given to a listener that had none
//     disconnects every client with a username, for the same reason.
//
// Clients whose username comes from their certificate (use_cn_as_username)
// are not checked again: their certificate did not change.
func (b *Broker) ApplyAuth(u *AuthUpdate) int {
	kicked := 0
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range u.changes {
		l := ch.l
		oldPW := l.pw.Load()
		l.anon.Store(ch.anon)
		l.pw.Store(ch.pw)
		l.acl.Store(ch.acl)
		if ch.acl != nil {
			b.checkRead.Store(true)
		}
		for _, s := range b.sessions {
			s.mu.Lock()
			c, ok := s.link.(*conn)
			if s.link == nil && s.netListener == l.opts.Name {
				// Offline, last connected here: what is routed to it
				// meanwhile is checked with the new ACL.
				s.acl = ch.acl
			}
			if !ok || c.ln != l {
				s.mu.Unlock()
				continue
			}
			s.acl = ch.acl
			c.acl.Store(ch.acl)
			if !admitted(l, &s.info, oldPW, ch) {
				c.kickWith(packet.AdministrativeAction, reloadReason)
				kicked++
			}
			s.mu.Unlock()
		}
	}
	return kicked
}

// admitted reports whether a client connected with info still passes the
// listener's anonymous rule and password file after ch.
func admitted(l *listener, info *ClientInfo, oldPW *auth.PasswordFile, ch authChange) bool {
	if l.opts.UseCNAsUsername && info.CertCN != "" {
		return true
	}
	if info.Username == "" {
		return ch.anon
	}
	return ch.pw == nil || ch.pw.SameEntry(oldPW, info.Username)
}

// authState is a listener's anonymous rule and password file, as a
// CONNECT was authenticated against them.
type authState struct {
	anon bool
	pw   *auth.PasswordFile
}

func (l *listener) authState() authState { return authState{l.anon.Load(), l.pw.Load()} }

// stillAdmitted reports whether c, authenticated against before, passes the
// listener's anonymous rule and password file of now: a reload between its
// authentication and its attach did not see its session, so it is judged
// here as ApplyAuth would have judged it.
func (c *conn) stillAdmitted(before authState) bool {
	now := c.ln.authState()
	if now == before {
		return true
	}
	return admitted(c.ln, &c.info, before.pw, authChange{anon: now.anon, pw: now.pw})
}

// setACL gives the connection and its session the ACL a, unless a newer
// connection took the session over.
func (c *conn) setACL(a *auth.ACL) {
	c.acl.Store(a)
	s := c.sess
	s.mu.Lock()
	if l, ok := s.link.(*conn); ok && l == c {
		s.acl = a
	}
	s.mu.Unlock()
}
