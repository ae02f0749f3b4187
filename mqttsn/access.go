package mqttsn

import (
	"fmt"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// Access is the access control of the gateway's clients that can change
// while it runs: the ACL (Options.ACLFile) and the mapping of ClientIds to
// broker usernames (Options.Usernames). LoadAccess makes one; SetAccess
// installs it.
type Access struct {
	acl   *auth.ACL  // nil: no ACL
	users *usernames // nil: no username for any client
}

// LoadAccess reads the ACL file aclFile ("" means no ACL) and checks the
// usernames mapping, as New does with Options.ACLFile and
// Options.Usernames. It changes nothing. An ACL file that does not parse
// fails with an error that names the file and line (auth.ParseError).
func LoadAccess(aclFile string, users map[string]string) (*Access, error) {
	a := &Access{}
	var err error
	if a.users, err = newUsernames(users); err != nil {
		return nil, fmt.Errorf("mqttsn: usernames: %w", err)
	}
	if aclFile != "" {
		if a.acl, err = auth.LoadACLFile(aclFile); err != nil {
			return nil, fmt.Errorf("mqttsn: %w", err)
		}
	}
	return a, nil
}

// SetAccess installs a, as Broker.ApplyAuth installs a listener's reloaded
// ACL file (SIGHUP), and returns how many connected clients the new
// usernames mapping gives another username.
//
//   - The new ACL applies at once to every client, connected or asleep: to
//     its next PUBLISH, SUBSCRIBE and will update, and to every message
//     delivered to it from now on, what the broker keeps queued for it
//     included. A subscription made under the old ACL stays, but a message
//     the new ACL does not let the client read is no longer delivered. QoS
//     -1 publishes are checked with it too.
//   - A client whose username by the new mapping differs from the one it
//     connected with is sent DISCONNECT (MQTT-SN 1.2 §6.12) and removed
//     without publishing its will, as the broker disconnects a client whose
//     password entry changed: it connects again under its new username (a
//     client with CleanSession=false keeps its session). A client connecting
//     from now on gets the new username.
//
// Safe to call from any goroutine while the gateway runs.
func (g *Gateway) SetAccess(a *Access) int {
	g.acc.Store(a)
	for _, tr := range g.trs {
		if c := tr.minus1.Load(); c != nil {
			c.SetACL(a.acl)
		}
	}
	g.mu.Lock()
	cs := make([]*client, 0, len(g.byID))
	for _, c := range g.byID {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	renamed := 0
	for _, c := range cs {
		bc := c.bcRef.Load()
		if bc == nil {
			continue
		}
		bc.SetACL(a.acl)
		if bc.Username() != a.users.of(c.id) {
			renamed++
			c.enqueue(inItem{reauth: true})
		}
	}
	return renamed
}

// access returns the access control in force.
func (g *Gateway) access() *Access { return g.acc.Load() }

// setBroker makes bc (nil: none) the client's broker client. A bc just
// attached with the access control acc is brought up to date with a
// SetAccess that ran meanwhile and may not have seen it: SetAccess stores
// the new access before it looks at the clients, and this looks at the
// access after it stored bc, so one of the two gives bc the latest ACL.
func (c *client) setBroker(bc *localbroker.Client, acc *Access) {
	c.bc = bc
	c.bcRef.Store(bc)
	if bc == nil {
		return
	}
	for {
		cur := c.g.access()
		if cur == acc {
			break
		}
		bc.SetACL(cur.acl)
		acc = cur
	}
	if bc.Username() != acc.users.of(c.id) {
		c.enqueue(inItem{reauth: true})
	}
}

// checkUsername ends a connected client whose username by the mapping in
// force is no longer the one it is attached with (see SetAccess).
func (c *client) checkUsername() {
	if c.bc == nil {
		return
	}
	want := c.g.access().users.of(c.id)
	if c.bc.Username() == want {
		return
	}
	c.logger().Info("the client's username changed with the usernames mapping: disconnected, to connect again under the new one",
		"username", c.bc.Username(), "new_username", want)
	_ = c.send(&packet.Disconnect{})
	c.end(false)
}
