package gateway

import (
	"context"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/spool"
	"github.com/outpost-gw/outpost/uplink"
)

// UplinkOptions returns the options of the uplink u. Logger is left nil for
// the caller to set.
func (u *UplinkConfig) UplinkOptions() uplink.Options {
	opts := uplink.Options{
		Name:           u.Name,
		URL:            u.URL,
		ClientID:       u.ClientID,
		Username:       u.Username,
		Password:       u.Password,
		CAFile:         u.CAFile,
		CertFile:       u.CertFile,
		KeyFile:        u.KeyFile,
		ServerName:     u.ServerName,
		ALPN:           append([]string(nil), u.ALPN...),
		KeepAlive:      time.Duration(u.KeepAlive),
		SessionExpiry:  time.Duration(u.SessionExpiry),
		ConnectTimeout: time.Duration(u.ConnectTimeout),
		ReconnectMin:   time.Duration(u.ReconnectMin),
		ReconnectMax:   time.Duration(u.ReconnectMax),
		Window:         u.Window,
		RateLimit:      u.RateLimit,
		RateBurst:      u.RateBurst,
		RateBytes:      int64(u.RateLimitBytes),
		DrainTimeout:   time.Duration(u.DrainTimeout),
		SpoolTimeout:   time.Duration(u.SpoolTimeout),
	}
	// The config's "0s" turns these off; the bridge's 0 means its default.
	if opts.KeepAlive == 0 {
		opts.KeepAlive = -1
	}
	if opts.SessionExpiry == 0 {
		opts.SessionExpiry = -1
	}
	for _, r := range u.Rules {
		opts.Rules = append(opts.Rules, uplink.Rule{
			Direction: r.Direction,
			Local:     r.Local,
			Remote:    r.Remote,
			MaxQoS:    uplink.QoS(byte(r.MaxQoS)),
			Retain:    r.Retain,
			Priority:  r.Priority,
			QueueQoS0: r.QueueQoS0,
			MaxAge:    time.Duration(r.MaxAge),
		})
	}
	return opts
}

// QueueLimits returns the limits of each spool queue of the uplink's
// priority classes.
func (u *UplinkConfig) QueueLimits() spool.Limits {
	l := spool.Limits{
		MaxBytes:    int64(u.MaxBytes),
		MaxMessages: u.MaxMessages,
		MaxAge:      time.Duration(u.MaxAge),
		OnFull:      spool.RejectNew,
	}
	if u.OnFull == OnFullDropHead {
		l.OnFull = spool.DropOldest
	}
	return l
}

// QuarantineLimits returns the limits of the uplink's quarantine queue,
// where the bridge keeps the messages the cloud refused for good: the size
// limits of the other queues, and the oldest are dropped (counted) to make
// room, so that a full quarantine never stops the drain.
func (u *UplinkConfig) QuarantineLimits() spool.Limits {
	return spool.Limits{
		MaxBytes:    int64(u.MaxBytes),
		MaxMessages: u.MaxMessages,
		OnFull:      spool.DropOldest,
	}
}

// newBridge builds the bridge of u, whose queues are in store.
func newBridge(u UplinkConfig, store *spool.Store, b *localbroker.Broker, opts uplink.Options) (*uplink.Bridge, error) {
	limits, quarantine := u.QueueLimits(), u.QuarantineLimits()
	quarantineName := uplink.QuarantineName(u.Name)
	flights, err := store.KV(FlightsNamespace(u.Name))
	if err != nil {
		return nil, err
	}
	return uplink.New(opts, uplink.Deps{
		Broker:     b,
		Flights:    flights,
		QueueNames: store.QueueNames,
		DropQueue: func(ctx context.Context, name string) error {
			_, err := store.DropQueue(ctx, name)
			return err
		},
		OpenQueue: func(name string) (uplink.Queue, error) {
			lim := limits
			if name == quarantineName {
				lim = quarantine
			}
			q, err := store.Queue(name, lim)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return q, nil
		},
	})
}

// FlightsNamespace is the spool KV namespace where the uplink called name
// keeps its QoS 2 flights (uplink.Deps.Flights).
func FlightsNamespace(name string) string { return "uplink." + name }

// beforeAck hands each QoS 1/2 message to every bridge's BeforeAck, in the
// order of the config: the publisher is acknowledged only when every bridge
// whose out-rules match has the message in the spool. The first refusal
// refuses the message; the publisher sends it again, so a bridge that took
// it already may get it twice (at least once, never lost).
//
// bridges is read at each call; New completes it before the broker runs.
func beforeAck(bridges *[]*uplink.Bridge) func(*localbroker.ClientInfo, *localbroker.Message) error {
	return func(c *localbroker.ClientInfo, m *localbroker.Message) error {
		for _, br := range *bridges {
			if err := br.BeforeAck(c, m); err != nil {
				return err
			}
		}
		return nil
	}
}
