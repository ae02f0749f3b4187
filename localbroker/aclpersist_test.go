package localbroker

import (
	"path/filepath"
	"testing"

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

// A persistent session restored after a restart has no connection, so no
// listener ACL, until its client comes back. What was queued for it in the
// meantime is checked against the client's ACL when it is delivered: a
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

			_, addr, _ = aclBroker(t, dir, acl)
			pub := mustConnect(t, addr, packet.V5, "pub", withUser("pub", ""))
			pub.publish(1, "cmd/bob/secret", "for bob only", 1, false)
			pub.publish(2, "cmd/alice/go", "for alice", 1, false)
			pub.disconnect()

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
