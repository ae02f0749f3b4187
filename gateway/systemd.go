package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/localbroker/packet"
)

// notifier speaks systemd's notify protocol when the gateway runs under a
// Type=notify unit (NOTIFY_SOCKET set); otherwise it does nothing. It is
// the last component, so READY=1 goes out only once every listener is bound
// and the spool is open. WATCHDOG=1 is sent only after a probe shows the
// gateway makes progress: a message goes through the broker to an
// in-process subscriber, and the spool answers a read. A wedged broker or
// spool therefore stops the pings and systemd restarts the service.
type notifier struct {
	g      *Gateway
	log    *slog.Logger
	period time.Duration // STATUS refresh when the watchdog is off
}

// probeTopic starts with '$' so that no "#" subscriber sees the probes
// [MQTT-4.7.2-1].
const probeTopic = "$outpost/watchdog"

func (n *notifier) Name() string { return "systemd" }

func (n *notifier) Run(ctx context.Context) error {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		<-ctx.Done()
		return nil
	}
	notify := func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			n.log.Warn("systemd notify failed", "err", err)
		}
	}
	watchdog, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog settings unreadable", "err", err)
	}
	probe, err := n.newProbe()
	if err != nil {
		return fmt.Errorf("watchdog probe: %w", err)
	}
	defer probe.Close(false)

	// READY=1 once the gateway counts itself ready (it closes g.ready
	// right after starting this last component), so that a reload that
	// systemd sends as soon as it reads READY=1 is not refused as early.
	select {
	case <-n.g.ready:
	case <-ctx.Done():
		return nil
	}
	notify(daemon.SdNotifyReady + "\nSTATUS=" + n.g.statusLine())
	every := n.period
	if watchdog > 0 {
		every = watchdog / 3
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-ctx.Done():
			notify(daemon.SdNotifyStopping + "\nSTATUS=stopping")
			return nil
		case <-t.C:
		}
		state := "STATUS=" + n.g.statusLine()
		if watchdog > 0 {
			if err := n.check(ctx, probe, seq, every); err != nil {
				n.log.Warn("watchdog probe failed; not pinging systemd", "err", err)
			} else {
				state = daemon.SdNotifyWatchdog + "\n" + state
			}
		}
		notify(state)
	}
}

func (n *notifier) newProbe() (*localbroker.Client, error) {
	if n.g.broker == nil {
		return nil, fmt.Errorf("no broker")
	}
	c, _, err := n.g.broker.Attach(localbroker.ClientOptions{ClientID: "outpost-watchdog", CleanStart: true, MaxBuffered: 4})
	if err != nil {
		return nil, err
	}
	if _, err := c.Subscribe(context.Background(), []packet.Subscription{{Filter: probeTopic}}, 0); err != nil {
		c.Close(false)
		return nil, err
	}
	return c, nil
}

// check sends one probe through the broker and reads from the spool.
func (n *notifier) check(ctx context.Context, c *localbroker.Client, seq int, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	want := strconv.Itoa(seq)
	if _, err := c.Publish(ctx, &localbroker.Message{Topic: probeTopic, Payload: []byte(want)}); err != nil {
		return fmt.Errorf("broker publish: %w", err)
	}
	for {
		d, err := c.Next(ctx)
		if err != nil {
			return fmt.Errorf("broker delivery: %w", err)
		}
		if string(d.Message.Payload) == want {
			break // older probes may still be queued
		}
	}
	if n.g.brokerKV != nil {
		if _, _, err := n.g.brokerKV.Get("watchdog"); err != nil {
			return fmt.Errorf("spool read: %w", err)
		}
	}
	return nil
}

// statusLine is the one-line summary shown by `systemctl status`.
func (g *Gateway) statusLine() string {
	if g.broker == nil {
		return "running"
	}
	st := g.broker.Stats()
	online, depth := 0, int64(0)
	for _, b := range g.bridges {
		bs := b.Stats()
		if bs.Connected {
			online++
		}
		depth += bs.Depth
	}
	return fmt.Sprintf("%d clients, uplinks %d/%d online, spool depth %d",
		st.ClientsConnected, online, len(g.bridges), depth) + g.reloadNote()
}
