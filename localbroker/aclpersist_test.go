package localbroker

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
)

// aclBroker runs a broker with persistence in the spool at dir and one
// listener "tcp" whose ACL file is acl (any username admitted).
func aclBroker(t *testing.T, dir, acl string) (*Broker, string, func()) {
	t.Helper()
	st, stopSpool := openSpool(t, dir)
	kv, err := st.KV("broker")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Listeners: []ListenerOptions{{Name: "tcp", Address: "127.0.0.1:0", AllowAnonymous: true, ACLFile: acl}},
		Logger: testLogger(), SysInterval: -1}, Deps{Persistence: NewKVPersistence(kv)})
	if err != nil {
		t.Fatal(err)
	}
	stop := runUntilStopped(t, "broker", b.Run, b.Ready())
	return b, b.Addrs()["tcp"].String(), func() { stop(); stopSpool() }
}

// A persistent session restored after a restart has no connection, but it
// knows the listener its client last connected on: what is routed to it
// while it is away is checked against that listener's ACL, and what was
// queued is checked again against the client's ACL when it is delivered. A
// message on a topic the client may not read never reaches it, and what it
// may read still comes, in order.
func TestRestoredSessionDeliveryCheckedAgainstACL(t *testing.T) {
	for _, v := range versions() {
		t.Run(vname(v), func(t *testing.T) {
			dir := t.TempDir()
			acl := filepath.Join(t.TempDir(), "acl")
			writeFile(t, acl, "user alice\ntopic read cmd/alice/#\n\nuser pub\ntopic write cmd/#\n")
			b, addr, stop := aclBroker(t, dir, acl)
			sub := mustConnect(t, addr, v, "alice", withUser("alice", ""), withClean(false), withExpiry(3600))
			sub.subscribe(1, "cmd/#", 1) // a wildcard: granted, filtered at delivery
			sub.disconnect()
			waitOffline(t, b, "alice")
			stop()

			b, addr, _ = aclBroker(t, dir, acl)
			pub := mustConnect(t, addr, packet.V5, "pub", withUser("pub", ""))
			pub.publish(1, "cmd/bob/secret", "for bob only", 1, false)
			pub.publish(2, "cmd/alice/go", "for alice", 1, false)
			pub.disconnect()
			// The restored session knows its listener: the message it may
			// not read is not even queued.
			if q := queuedTopics(b, "alice"); len(q) != 1 || q[0] != "cmd/alice/go" {
				t.Errorf("queued for the offline session: %q; want only cmd/alice/go", q)
			}

			sub, ca := connect(t, addr, v, "alice", withUser("alice", ""), withClean(false), withExpiry(3600))
			if !ca.SessionPresent {
				t.Fatal("persistent session lost across the restart")
			}
			// Had the first message gone out, it would come first.
			sub.expectPublish("cmd/alice/go", "for alice")

			// Live traffic is checked as before.
			pub = mustConnect(t, addr, packet.V5, "pub", withUser("pub", ""))
			pub.publish(3, "cmd/bob/again", "no", 1, false)
			pub.publish(4, "cmd/alice/again", "yes", 1, false)
			sub.expectPublish("cmd/alice/again", "yes")
		})
	}
}

// A client that takes a session over under another username does not get
// the messages in flight or queued for the one before it that its own ACL
// does not let it read.
func TestTakeoverUnderAnotherUserCheckedAgainstACL(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	writeFile(t, acl, "user alice\ntopic read cmd/#\n\nuser mallory\ntopic read cmd/public/#\n\nuser pub\ntopic write cmd/#\n")
	b, addr := startBroker(t, Options{Listeners: []ListenerOptions{{Name: "tcp", Address: "127.0.0.1:0", AllowAnonymous: true, ACLFile: acl}}})
	sub := mustConnect(t, addr, packet.V5, "shared-id", withUser("alice", ""), withClean(false), withExpiry(3600))
	sub.subscribe(1, "cmd/#", 1)
	pub := mustConnect(t, addr, packet.V5, "pub", withUser("pub", ""))
	pub.publish(1, "cmd/private/a", "in flight", 1, false)
	if p := expect[*packet.Publish](sub); p.Topic != "cmd/private/a" {
		t.Fatalf("alice got %q", p.Topic) // left unacknowledged: in flight
	}
	sub.disconnect()
	waitOffline(t, b, "shared-id")
	pub.publish(2, "cmd/private/b", "queued", 1, false)
	pub.publish(3, "cmd/public/c", "for anyone", 1, false)

	m, ca := connect(t, addr, packet.V5, "shared-id", withUser("mallory", ""), withClean(false), withExpiry(3600))
	if !ca.SessionPresent {
		t.Fatal("session not resumed")
	}
	// Both private messages would come first.
	m.expectPublish("cmd/public/c", "for anyone")
}

// queuedTopics returns the topics queued for the session id.
func queuedTopics(b *Broker, id string) []string {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, om := range s.queue {
		out = append(out, om.msg.Topic)
	}
	return out
}

// A reload of the ACL reaches the offline sessions of the listener too:
// what is routed to them afterwards is checked with the new ACL.
func TestApplyAuthToOfflineSessions(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(t.TempDir(), "acl")
	writeFile(t, acl, "user alice\ntopic read cmd/#\n\nuser pub\ntopic write cmd/#\n")
	b, addr, _ := aclBroker(t, dir, acl)
	sub := mustConnect(t, addr, packet.V5, "alice", withUser("alice", ""), withClean(false), withExpiry(3600))
	sub.subscribe(1, "cmd/#", 1)
	sub.disconnect()
	waitOffline(t, b, "alice")

	writeFile(t, acl, "user alice\ntopic read cmd/alice/#\n\nuser pub\ntopic write cmd/#\n")
	u, err := b.LoadAuth(map[string]ListenerAuth{"tcp": {AllowAnonymous: true, ACLFile: acl}})
	if err != nil {
		t.Fatal(err)
	}
	b.ApplyAuth(u)
	pub := mustConnect(t, addr, packet.V5, "pub", withUser("pub", ""))
	pub.publish(1, "cmd/bob/x", "no longer", 1, false)
	pub.publish(2, "cmd/alice/y", "still", 1, false)
	if q := queuedTopics(b, "alice"); len(q) != 1 || q[0] != "cmd/alice/y" {
		t.Errorf("queued for the offline session: %q; want only cmd/alice/y", q)
	}
}

// countingKV counts the writes of a KVStore.
type countingKV struct {
	KVStore
	mu     sync.Mutex
	writes map[string]int
}

func (c *countingKV) Set(ctx context.Context, key string, val []byte) error {
	c.count(key)
	return c.KVStore.Set(ctx, key, val)
}

func (c *countingKV) Delete(ctx context.Context, key string) error {
	c.count(key)
	return c.KVStore.Delete(ctx, key)
}

func (c *countingKV) count(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes[key[:2]]++
}

// The listener record costs a write when a persistent session's client
// connects on a listener other than the one recorded, and when the session
// ends; a clean session's client costs none.
func TestSessionListenerRecordWrites(t *testing.T) {
	st, _ := openSpool(t, t.TempDir())
	kv, err := st.KV("broker")
	if err != nil {
		t.Fatal(err)
	}
	ckv := &countingKV{KVStore: kv, writes: map[string]int{}}
	_, addr := startBroker(t, Options{}, Deps{Persistence: NewKVPersistence(ckv)})
	for range 3 {
		c := mustConnect(t, addr, packet.V5, "clean")
		c.subscribe(1, "a", 1)
		c.disconnect()
		p := mustConnect(t, addr, packet.V5, "keeper", withClean(false), withExpiry(3600))
		p.subscribe(1, "a", 1)
		p.disconnect()
	}
	ended := mustConnect(t, addr, packet.V5, "keeper", withClean(true)) // ends the session
	ended.disconnect()
	eventually(t, 5*time.Second, "the listener record deleted", func() bool {
		ckv.mu.Lock()
		defer ckv.mu.Unlock()
		return ckv.writes[listenerRecordPrefix] == 2
	})
	if recs, err := NewKVPersistence(kv).(listenerPersistence).LoadSessionListeners(); err != nil || len(recs) != 0 {
		t.Errorf("listener records %v (%v) after the session ended; want none", recs, err)
	}
}

// A reload that comes between a client's authentication and the binding
// of its session has not seen the client: the connection checks itself
// against the listener's new password file and, no longer admitted, is
// disconnected with 0x98 as ApplyAuth would have done.
func TestReloadBetweenAuthenticationAndAttach(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	writeFile(t, pw, pwLine(t, "alice", "old"))
	var b *Broker
	var once sync.Once
	hooks := Hooks{Authenticate: func(c *ClientInfo, _ []byte) packet.ReasonCode {
		once.Do(func() { // the reload, right after the password file passed alice
			writeFile(t, pw, pwLine(t, "alice", "new"))
			u, err := b.LoadAuth(map[string]ListenerAuth{"l": {PasswordFile: pw}})
			if err != nil {
				panic(err)
			}
			b.ApplyAuth(u)
		})
		return packet.Success
	}}
	b, addr := startBroker(t, Options{Listeners: []ListenerOptions{{Name: "l", Address: "127.0.0.1:0", PasswordFile: pw}}}, Deps{Hooks: hooks})
	c := mustConnect(t, addr, packet.V5, "alice", withUser("alice", "old"))
	if code, saw := c.expectClosed(5 * time.Second); !saw || code != packet.AdministrativeAction {
		t.Errorf("DISCONNECT %v (seen %v); want administrative action", code, saw)
	}
	mustConnect(t, addr, packet.V5, "alice", withUser("alice", "new")) // the new password is taken
}
