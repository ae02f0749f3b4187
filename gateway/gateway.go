package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/mqttsn"
	"github.com/outpost-gw/outpost/serialbus"
	"github.com/outpost-gw/outpost/spool"
	"github.com/outpost-gw/outpost/uplink"
)

// component is one part of the gateway (spool, broker, MQTT-SN transport,
// uplink). Run blocks until ctx is done or the component fails, and returns
// only after every goroutine it started has exited; after ctx is done a clean
// stop returns nil (or context.Canceled, which counts as nil).
type component interface {
	Name() string
	Run(ctx context.Context) error
}

// readier is implemented by components that need time before the next one
// may start (binding sockets, opening a store). Ready is closed once the
// component is useful; a nil channel means "ready as soon as Run is called".
type readier interface {
	Ready() <-chan struct{}
}

// Gateway runs the components of one Outpost process in dependency order.
type Gateway struct {
	log        *slog.Logger
	components []component // start order; stopped in reverse
	ready      chan struct{}
	started    atomic.Bool
	broker     *localbroker.Broker // nil in tests of the lifecycle alone
	store      *spool.Store        // likewise
	spoolDir   string
	bridges    []*uplink.Bridge
	brokerKV   *spool.KV
	mqttsn     *mqttsn.Gateway // nil when [mqttsn] enabled = false
	links      []*serialbus.Link
	http       *httpServer   // nil when [http] address is ""
	stopping   atomic.Bool   // set when the components start to stop
	rl         reloadState   // what Reload works with
	orphanKeep time.Duration // [spool] orphan_keep (see orphans.go)
}

// SetVersion records the build version reported by components ($SYS/broker/version).
func SetVersion(v string) { localbroker.Version = "outpost " + v }

// New builds every component from cfg, in dependency order, and starts
// nothing. A nil logger means slog.Default(). The gateway keeps no reference
// to cfg.
func New(cfg *Config, logger *slog.Logger) (*Gateway, error) {
	if cfg == nil {
		return nil, errors.New("gateway: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}

	// The order is the dependency order: each component may use those before
	// it, and is started only once those are ready. The spool comes first:
	// the broker loads its retained messages and persistent sessions from the
	// spool's "broker" namespace when it starts, and stores them there until
	// it stops, before the spool does. The uplinks follow the broker, whose
	// clients they are. Between the two: the serial links, then the MQTT-SN
	// gateway (a client of the broker too) that serves them and the UDP
	// transports.
	var comps []component

	sopts := cfg.SpoolOptions()
	sopts.Logger = logger // each component adds its own "component" attribute
	store, err := spool.New(sopts)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	comps = append(comps, store)
	// A KV namespace may be taken before the store is open; its calls work
	// once the store is ready, which is before the broker runs.
	brokerKV, err := store.KV(brokerNamespace)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}

	// The broker's BeforeAck hands QoS 1/2 messages to the bridges, which
	// are built after the broker they attach to; the slice is complete
	// before anything runs.
	var bridges []*uplink.Bridge
	bopts := cfg.BrokerOptions()
	bopts.Logger = logger
	deps := localbroker.Deps{
		Persistence: localbroker.NewKVPersistence(brokerKV),
	}
	if len(cfg.Uplinks) > 0 {
		deps.Hooks.BeforeAck = beforeAck(&bridges)
	}
	b, err := localbroker.New(bopts, deps)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	comps = append(comps, brokerComponent{b})

	var sn *mqttsn.Gateway
	var links []*serialbus.Link
	if cfg.MQTTSN.Enabled {
		opts := cfg.MQTTSNOptions()
		opts.Logger = logger
		for i := range cfg.Serials {
			s := &cfg.Serials[i]
			lopts := s.SerialOptions()
			lopts.Logger = logger
			link, err := serialbus.New(lopts)
			if err != nil {
				return nil, fmt.Errorf("serial %s: %w", s.Name, err)
			}
			// A port that cannot be opened does not stop the start: the
			// link retries by itself, and is ready as soon as it runs.
			comps = append(comps, serialComponent{link})
			links = append(links, link)
			opts.Transports = append(opts.Transports, cfg.SerialTransport(s, link))
		}
		if len(opts.Transports) > 0 {
			// The topic ids of CleanSession=false devices outlive a
			// restart, as their broker sessions do.
			snKV, err := store.KV(mqttsnNamespace)
			if err != nil {
				return nil, fmt.Errorf("spool: %w", err)
			}
			sn, err = mqttsn.New(opts, mqttsn.Deps{Broker: b, Store: snKV})
			if err != nil {
				return nil, fmt.Errorf("mqttsn: %w", err)
			}
			comps = append(comps, sn)
		}
	}

	for i := range cfg.Uplinks {
		u := cfg.Uplinks[i]
		opts := u.UplinkOptions()
		opts.Logger = logger
		br, err := newBridge(u, store, b, opts)
		if err != nil {
			return nil, fmt.Errorf("uplink %s: %w", u.Name, err)
		}
		bridges = append(bridges, br)
		comps = append(comps, br)
	}

	g := newGateway(logger, comps)
	g.orphanKeep = time.Duration(cfg.Spool.OrphanKeep)
	if g.rl.cfg, err = cloneConfig(cfg); err != nil {
		return nil, err
	}
	g.broker, g.store, g.bridges, g.spoolDir, g.brokerKV = b, store, bridges, sopts.Dir, brokerKV
	g.mqttsn, g.links = sn, links
	// Last: the status file, once everything it describes runs.
	g.components = append(g.components, &statusWriter{
		g:        g,
		path:     StatusFile(cfg.DataDir),
		interval: statusInterval,
		log:      logger.With("component", "status"),
	})
	// Then the metrics and status page, which show it all, and stop first.
	if cfg.HTTP.Enabled() {
		h, err := newHTTPServer(g, cfg.HTTP, logger)
		if err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
		g.http = h
		g.components = append(g.components, h)
	}
	// Very last: READY=1 to systemd once everything before it is ready.
	g.components = append(g.components, &notifier{g: g, log: logger.With("component", "systemd"),
		period: 10 * time.Second})
	return g, nil
}

// brokerNamespace is the spool KV namespace of the broker's persistence.
const brokerNamespace = "broker"

// mqttsnNamespace is the spool KV namespace of the MQTT-SN gateway's
// sessions.
const mqttsnNamespace = "mqttsn"

func newGateway(logger *slog.Logger, comps []component) *Gateway {
	return &Gateway{
		log:        logger.With("component", "gateway"),
		components: comps,
		ready:      make(chan struct{}),
	}
}

// brokerComponent names the broker in the gateway's component list.
type brokerComponent struct{ *localbroker.Broker }

func (brokerComponent) Name() string { return "broker" }

// Addrs returns the bound address of each of the broker's listeners by name,
// once Ready is closed (a listener on port 0 gets a free port).
func (g *Gateway) Addrs() map[string]net.Addr {
	if g.broker == nil {
		return nil
	}
	return g.broker.Addrs()
}

// MQTTSNAddrs returns the local address of each MQTT-SN transport by name,
// once Ready is closed (a UDP transport on port 0 gets a free port); nil when
// MQTT-SN is off.
func (g *Gateway) MQTTSNAddrs() map[string]net.Addr {
	if g.mqttsn == nil {
		return nil
	}
	return g.mqttsn.Addrs()
}

// HTTPAddr returns the bound address of the metrics and status page server
// once Ready is closed (with port 0 it gets a free port); nil when [http]
// address is "".
func (g *Gateway) HTTPAddr() net.Addr {
	if g.http == nil {
		return nil
	}
	return g.http.Addr()
}

// serialComponent names a serial link in the gateway's component list.
type serialComponent struct{ *serialbus.Link }

func (s serialComponent) Name() string { return "serial/" + s.Link.Name() }

// Ready is closed once every component has started and is ready.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// errStopRequested reports that ctx ended while a component was starting.
var errStopRequested = errors.New("stop requested")

// running is one started component.
type running struct {
	c        component
	cancel   context.CancelFunc
	done     chan struct{} // closed when Run has returned; err is then set
	err      error
	reported bool // err is already part of the error Run returns
}

// Run starts the components one after the other, each once the one before
// it is ready, and then runs until ctx is done, when it stops them in reverse
// order, waiting for each, and returns nil if all stopped cleanly.
//
// If a component fails to start, or stops on its own while the gateway runs,
// Run stops those already started (in reverse order) and returns the
// failure. Run may be called once.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.started.CompareAndSwap(false, true) {
		return errors.New("gateway: Run called more than once")
	}
	exited := make(chan *running, len(g.components))
	var started []*running
	for _, c := range g.components {
		r := g.start(ctx, c, exited)
		started = append(started, r)
		err := g.awaitReady(ctx, r, exited)
		if errors.Is(err, errStopRequested) {
			g.log.Info("stop requested while starting", "starting", c.Name())
			return g.stop(started)
		}
		if err != nil {
			g.log.Error("start failed; stopping what was started", "err", err)
			return errors.Join(err, g.stop(started))
		}
	}
	g.checkOrphanQueues(ctx, g.orphanKeep)
	close(g.ready)
	g.log.Info("gateway ready", "components", len(started))

	select {
	case <-ctx.Done():
		g.log.Info("stopping")
		return g.stop(started)
	case r := <-exited:
		err := r.failure("stopped unexpectedly")
		g.log.Error("component stopped; stopping the others", "err", err)
		return errors.Join(err, g.stop(started))
	}
}

// start runs c in its own goroutine, under a context of its own so that the
// components can be stopped one by one.
func (g *Gateway) start(ctx context.Context, c component, exited chan<- *running) *running {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &running{c: c, cancel: cancel, done: make(chan struct{})}
	g.log.Info("starting", "name", c.Name())
	go func() {
		r.err = c.Run(cctx)
		close(r.done)
		exited <- r
	}()
	return r
}

// awaitReady waits until r is ready, a started component exits, or ctx ends.
func (g *Gateway) awaitReady(ctx context.Context, r *running, exited <-chan *running) error {
	var ready <-chan struct{}
	if rd, ok := r.c.(readier); ok {
		ready = rd.Ready()
	}
	if ready == nil {
		return nil
	}
	select {
	case <-ready:
		return nil
	case x := <-exited:
		if x == r {
			return x.failure("stopped before it was ready")
		}
		return x.failure(fmt.Sprintf("stopped while %s was starting", r.c.Name()))
	case <-ctx.Done():
		return errStopRequested
	}
}

// failure describes a component that exited on its own.
func (r *running) failure(what string) error {
	r.reported = true
	if r.err == nil {
		return fmt.Errorf("%s %s", r.c.Name(), what)
	}
	return fmt.Errorf("%s %s: %w", r.c.Name(), what, r.err)
}

// stop cancels the started components in reverse order, waiting for each to
// return before cancelling the one before it.
func (g *Gateway) stop(started []*running) error {
	g.stopping.Store(true)
	g.stopReloads()
	var errs []error
	for _, r := range slices.Backward(started) {
		t0 := time.Now()
		r.cancel()
		<-r.done
		switch {
		case r.reported:
		case r.err != nil && !errors.Is(r.err, context.Canceled):
			g.log.Error("stopped with an error", "name", r.c.Name(), "err", r.err)
			errs = append(errs, fmt.Errorf("%s: %w", r.c.Name(), r.err))
			continue
		}
		g.log.Info("stopped", "name", r.c.Name(), "took", time.Since(t0).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}
