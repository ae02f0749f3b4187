package localbroker

import (
	"context"
	"net"
)

// STUB — being written.

// Deps are the broker's collaborators; every field may be nil.
type Deps struct {
	Hooks       Hooks
	Persistence Persistence
}

// Hooks are optional functions the broker calls. Nil means "allow".
type Hooks struct{}

// Persistence stores retained messages and persistent sessions.
type Persistence interface{}

// Broker is the MQTT broker core.
type Broker struct{}

// New validates opts and returns a broker that is not yet running.
func New(opts Options, deps Deps) (*Broker, error) { return &Broker{}, nil }

// Run binds the listeners, serves until ctx is done, then shuts down
// gracefully and returns after every goroutine it started has exited.
// It returns a listen error at once if a listener cannot be bound.
func (b *Broker) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Ready is closed once every listener is bound.
func (b *Broker) Ready() <-chan struct{} { return nil }

// Addrs returns the bound address of each listener by name (after Ready).
func (b *Broker) Addrs() map[string]net.Addr { return nil }
