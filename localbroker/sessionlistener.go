package localbroker

import (
	"context"
	"fmt"
)

// A persistent session remembers the listener its client last connected
// on, so that after a restart, while the client is away, the messages
// routed to it are checked against that listener's ACL (with the username
// the session kept) as they would be for a connected client, instead of
// being queued unchecked until the client is back. The record lives beside
// the session's own ("l/<client id>" → listener name) so that the session
// record's format stays as it is.

// listenerPersistence is implemented by a Persistence that keeps the
// listener of each persistent session (NewKVPersistence's does). Without
// it, a restored session has no ACL until its client connects, and what
// was queued for it is checked when it is delivered (see readable).
type listenerPersistence interface {
	// StoreSessionListener records the listener of clientID's last network
	// connection; "" forgets it (the client was in-process).
	StoreSessionListener(clientID, listener string) error
	// LoadSessionListeners returns every recorded listener by client id.
	LoadSessionListeners() (map[string]string, error)
}

const listenerRecordPrefix = "l/"

func (p *kvPersistence) StoreSessionListener(clientID, listener string) error {
	if listener == "" {
		return p.kv.Delete(context.Background(), listenerRecordPrefix+clientID)
	}
	return p.kv.Set(context.Background(), listenerRecordPrefix+clientID, []byte(listener))
}

func (p *kvPersistence) LoadSessionListeners() (map[string]string, error) {
	out := map[string]string{}
	err := p.kv.Scan(listenerRecordPrefix, func(key string, val []byte) error {
		out[key[len(listenerRecordPrefix):]] = string(val)
		return nil
	})
	return out, err
}

// sessionListener returns the listener a link belongs to: its name for a
// network connection, "" for an in-process client.
func sessionListener(l link) string {
	if c, ok := l.(*conn); ok {
		return c.ln.opts.Name
	}
	return ""
}

// storeListener records s's listener when it changed since the last
// record (s.netListener, set by attach). Called without locks held.
func (b *Broker) storeListener(s *session) {
	lp, ok := b.deps.Persistence.(listenerPersistence)
	if !ok {
		return
	}
	b.lnMu.Lock() // one write at a time, so that the last one wins
	defer b.lnMu.Unlock()
	s.mu.Lock()
	name, stored, keep := s.netListener, s.lnStored, s.expiry > 0 && !s.ended
	s.mu.Unlock()
	if !keep || name == stored {
		return
	}
	if err := lp.StoreSessionListener(s.id, name); err != nil {
		b.log.Error("persistence: store session listener", "client_id", s.id, "err", err)
		return
	}
	s.mu.Lock()
	s.lnStored = name
	s.mu.Unlock()
}

// forgetListener deletes the listener record of a session that ended, if
// it has one (a clean session never has: no write for it).
func (b *Broker) forgetListener(s *session) {
	lp, ok := b.deps.Persistence.(listenerPersistence)
	if !ok {
		return
	}
	s.mu.Lock()
	stored := s.lnStored
	s.lnStored = ""
	s.mu.Unlock()
	if stored == "" {
		return
	}
	if err := lp.StoreSessionListener(s.id, ""); err != nil {
		b.log.Error("persistence: delete session listener", "client_id", s.id, "err", err)
	}
}

// restoreListeners gives each session restored from persistence the
// listener of its client's last connection and that listener's ACL. A
// record of a session that is gone, or of a listener no longer configured,
// is left out (and a session without one gets no ACL until its client
// connects).
func (b *Broker) restoreListeners() error {
	lp, ok := b.deps.Persistence.(listenerPersistence)
	if !ok {
		return nil
	}
	recs, err := lp.LoadSessionListeners()
	if err != nil {
		return fmt.Errorf("localbroker: load session listeners: %w", err)
	}
	for id, name := range recs {
		s := b.sessions[id]
		if s == nil {
			_ = lp.StoreSessionListener(id, "") // the session is gone
			continue
		}
		for _, l := range b.listeners {
			if l.opts.Name != name {
				continue
			}
			s.mu.Lock()
			s.netListener, s.lnStored = name, name
			s.info.Listener = name
			s.acl = l.acl.Load()
			s.mu.Unlock()
		}
	}
	return nil
}
