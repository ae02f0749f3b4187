package gateway

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/packet"
	"github.com/outpost-gw/outpost/spool"
	"github.com/outpost-gw/outpost/uplink"
)

// seedQuarantine puts records refused with reason 0x87 into the quarantine
// of uplink name, in the spool of cfg, as a bridge would have.
func seedQuarantine(t *testing.T, cfg *Config, name string, topics ...string) {
	t.Helper()
	s, err := spool.New(cfg.SpoolOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-s.Ready()
	q, err := s.Queue(uplink.QuarantineName(name), spool.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		rec := uplink.Record{Topic: topic, QoS: 1, Payload: []byte("secret payload " + strings.Repeat("x", 105)), Reason: 0x87}
		if _, err := q.Append(ctx, uplink.AppendRecord(nil, &rec)); err != nil {
			t.Fatal(err)
		}
	}
}

func queueStatus(t *testing.T, st Status, name string) QueueStatus {
	t.Helper()
	for _, q := range st.Spool.Queues {
		if q.Name == name {
			return q
		}
	}
	t.Fatalf("no queue %s in %+v", name, st.Spool.Queues)
	return QueueStatus{}
}

// A gateway whose uplink cannot reach its cloud shows the backlog in
// Status and in its status file, which InspectSpool reads while the
// gateway holds the spool; once it stopped, InspectSpool reads the spool
// itself and finds the same queues.
func TestStatusAndInspectSpool(t *testing.T) {
	defer func(d time.Duration) { statusInterval = d }(statusInterval)
	statusInterval = 20 * time.Millisecond

	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	u := DefaultUplink()
	u.Name, u.URL = "cloud", "mqtt://"+freeAddr(t) // nothing listens
	u.ReconnectMin, u.ReconnectMax = Duration(time.Hour), Duration(time.Hour)
	for _, r := range []struct {
		local string
		prio  int
	}{{"alarms/#", 9}, {"sensors/#", 5}} {
		rule := DefaultRule()
		rule.Direction, rule.Local, rule.Priority = RuleOut, r.local, r.prio
		u.Rules = append(u.Rules, rule)
	}
	cfg.Uplinks = []UplinkConfig{u}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := InspectSpool(context.Background(), cfg, InspectOptions{}); !errors.Is(err, ErrNoSpool) {
		t.Fatalf("InspectSpool before the gateway ever ran: %v; want ErrNoSpool", err)
	}
	seedQuarantine(t, cfg, "cloud", "site/a", "site/b")

	g, stop := startGateway(t, cfg)
	pub := dialMQTT(t, g.Addrs()["default"], "pub", true, 0)
	before := time.Now()
	for _, m := range []string{"sensors/1", "sensors/2", "sensors/3", "alarms/1", "alarms/2"} {
		pub.publish(m, "v", false)
	}
	pub.close()

	st := g.Status()
	if len(st.Uplinks) != 1 {
		t.Fatalf("uplinks %+v", st.Uplinks)
	}
	up := st.Uplinks[0]
	if up.Name != "cloud" || up.Connected || up.Depth != 5 || up.ETA != uplink.UnknownETA || up.QuarantineDepth != 2 {
		t.Errorf("uplink status %+v: want cloud, not connected, 5 waiting, unknown ETA, 2 quarantined", up)
	}
	if st.Broker.MessagesReceived < 5 || st.PID != os.Getpid() || st.Spool.Dir != cfg.SpoolDir() {
		t.Errorf("status: broker %+v, pid %d, spool dir %s", st.Broker, st.PID, st.Spool.Dir)
	}
	p5 := queueStatus(t, st, uplink.QueueName("cloud", 5))
	if p5.Uplink != "cloud" || p5.Priority != 5 || p5.Quarantine || p5.Depth != 3 || p5.First != 1 || p5.Last != 3 ||
		p5.Oldest.Before(before.Add(-time.Second)) {
		t.Errorf("queue p5: %+v", p5)
	}
	quar := queueStatus(t, st, uplink.QuarantineName("cloud"))
	if !quar.Quarantine || quar.Uplink != "cloud" || quar.Depth != 2 || len(quar.Quarantined) != 2 {
		t.Fatalf("quarantine: %+v", quar)
	}
	want := QuarantinedMessage{Seq: 1, Time: quar.Quarantined[0].Time, Topic: "site/a", QoS: 1, Size: 120, Reason: 0x87,
		ReasonText: packet.ReasonCode(0x87).String()}
	if quar.Quarantined[0] != want {
		t.Errorf("quarantined message %+v; want %+v", quar.Quarantined[0], want)
	}

	// The status file, as InspectSpool reads it while the gateway runs.
	var rep *SpoolReport
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		rep, err = InspectSpool(context.Background(), cfg, InspectOptions{Samples: 1})
		if err == nil && queueStatus(t, rep.Status, uplink.QueueName("cloud", 9)).Depth == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InspectSpool of the running gateway: %+v, %v; want the 2 alarms waiting", rep, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !rep.Live || rep.Status.PID != os.Getpid() || time.Since(rep.Status.Time) > 10*time.Second {
		t.Errorf("live report: live %v, pid %d, time %v", rep.Live, rep.Status.PID, rep.Status.Time)
	}
	if q := queueStatus(t, rep.Status, uplink.QuarantineName("cloud")); len(q.Quarantined) != 1 || q.Quarantined[0].Topic != "site/a" {
		t.Errorf("live quarantine with 1 sample: %+v", q)
	}
	if len(rep.Status.Uplinks) != 1 || rep.Status.Uplinks[0].Depth != 5 {
		t.Errorf("live uplinks %+v", rep.Status.Uplinks)
	}
	data, err := os.ReadFile(StatusFile(cfg.DataDir))
	if err != nil || bytes.Contains(data, []byte("secret")) {
		t.Errorf("status file (%v) holds a payload:\n%s", err, data)
	}

	stop()
	if _, err := os.Stat(StatusFile(cfg.DataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status file after a clean stop: %v", err)
	}
	rep, err = InspectSpool(context.Background(), cfg, InspectOptions{Samples: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Live || rep.Recovered || len(rep.Status.Uplinks) != 0 {
		t.Errorf("report of a stopped gateway: %+v", rep)
	}
	if got := queueStatus(t, rep.Status, uplink.QueueName("cloud", 5)); got.Depth != 3 || got.First != 1 || got.Last != 3 || got.Next != 4 || got.Priority != 5 || got.Uplink != "cloud" {
		t.Errorf("stopped queue p5: %+v", got)
	}
	q := queueStatus(t, rep.Status, uplink.QuarantineName("cloud"))
	if len(q.Quarantined) != 2 || q.Quarantined[1].Topic != "site/b" || q.Quarantined[1].Size != 120 || q.Quarantined[1].Reason != 0x87 {
		t.Errorf("stopped quarantine: %+v", q)
	}
}
