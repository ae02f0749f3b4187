package localbroker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func pwLine(t *testing.T, user, password string) string {
	t.Helper()
	h, err := auth.HashPassword([]byte(password), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + h + "\n"
}

// A reload of the auth files reaches the clients already connected: a
// subscription the new ACL forbids stops receiving, a publish it forbids
// is refused, one it now allows goes through, and a client whose password
// entry changed is disconnected with 0x98 while the others stay.
func TestApplyAuthToConnectedClients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	alice, bob := pwLine(t, "alice", "a"), pwLine(t, "bob", "b")
	writeFile(t, pw, alice+bob)
	writeFile(t, acl, "user alice\ntopic readwrite a/#\ntopic read secret/#\nuser bob\ntopic readwrite #\n")
	b, addr := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "l", Address: "127.0.0.1:0", PasswordFile: pw, ACLFile: acl}}})

	a := mustConnect(t, addr, packet.V5, "alice", withUser("alice", "a"))
	bb := mustConnect(t, addr, packet.V5, "bob", withUser("bob", "b"))
	a.subscribe(1, "secret/#", 0)
	bb.publish(0, "secret/x", "before", 0, false)
	a.expectPublish("secret/x", "before")

	// Alice loses secret/# and gains b/#; bob's password is hashed anew.
	writeFile(t, acl, "user alice\ntopic readwrite a/#\ntopic write b/#\nuser bob\ntopic readwrite #\n")
	writeFile(t, pw, alice+pwLine(t, "bob", "b"))
	u, err := b.LoadAuth(map[string]ListenerAuth{"l": {PasswordFile: pw, ACLFile: acl}})
	if err != nil {
		t.Fatal(err)
	}
	if n := b.ApplyAuth(u); n != 1 {
		t.Errorf("ApplyAuth disconnected %d clients, want 1 (bob)", n)
	}
	if code, saw := bb.expectClosed(5 * time.Second); !saw || code != packet.AdministrativeAction {
		t.Errorf("bob: DISCONNECT %v (seen %v), want administrative action", code, saw)
	}

	c := mustConnect(t, addr, packet.V5, "carol", withUser("bob", "b"))
	c.publish(0, "secret/x", "after", 0, false) // alice's subscription stays, but may not read
	a.subscribe(2, "a/#", 0)
	c.publish(0, "a/2", "flows", 0, false)
	a.expectPublish("a/2", "flows") // not secret/x: the new ACL holds it back
	a.send(&packet.Publish{Topic: "b/1", QoS: 1, PacketID: 7, Payload: []byte("x")})
	if ack := expect[*packet.Ack](a); ack.ReasonCode >= 0x80 {
		t.Errorf("publish to b/1 after the reload: %s, want success", ack.ReasonCode)
	}
	a.send(&packet.Publish{Topic: "secret/y", QoS: 1, PacketID: 8, Payload: []byte("x")})
	if ack := expect[*packet.Ack](a); ack.ReasonCode != packet.NotAuthorized {
		t.Errorf("publish to secret/y after the reload: %s, want not authorized", ack.ReasonCode)
	}
}

// A file that does not parse fails LoadAuth with its name and line, and
// the broker keeps its access control.
func TestLoadAuthBadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	writeFile(t, acl, "topic read #\n")
	b, addr := startBroker(t, Options{Listeners: []ListenerOptions{
		{Name: "l", Address: "127.0.0.1:0", AllowAnonymous: true, ACLFile: acl}}})
	writeFile(t, acl, "topic read #\nbogus line\n")
	_, err := b.LoadAuth(map[string]ListenerAuth{"l": {AllowAnonymous: true, ACLFile: acl}})
	var pe *auth.ParseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), acl+":2") {
		t.Fatalf("LoadAuth = %v, want a parse error at %s:2", err, acl)
	}
	if _, err := b.LoadAuth(map[string]ListenerAuth{"nope": {}}); err == nil {
		t.Error("LoadAuth of an unknown listener succeeded")
	}
	c := mustConnect(t, addr, packet.V5, "x")
	c.subscribe(1, "t", 0)
	c.publish(0, "t", "still", 0, false)
	c.expectNothing(200 * time.Millisecond) // the old ACL: read only, so the publish is dropped
}
