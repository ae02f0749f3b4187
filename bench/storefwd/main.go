// Command storefwd is the store-and-forward benchmark of `make bench-spool`
// and `make bench-uplink` (scripts/bench-spool.sh, scripts/bench-uplink.sh).
// It runs the real outpost binary and Debian's mosquitto on 127.0.0.1, and
// speaks raw MQTT 3.1.1 to them.
//
//	storefwd spool   durable appends through the broker with the cloud
//	                 down, for 1, 16 and 64 QoS 1 publishers (sync always
//	                 and never, and mosquitto's bridge for reference); then
//	                 1,000,000 messages spooled: fill rate, resident set,
//	                 bytes on disk per message, stop time, restart to ready
//	                 after SIGTERM and after kill -9
//	storefwd uplink  a backlog of -n messages drained to a local mosquitto
//	                 (window 16, and 64, the default) against mosquitto's own bridge with
//	                 persistence on; then a kill -9 of the edge broker with
//	                 the backlog acknowledged: how much each keeps
//
// Every message is a QoS 1 PUBLISH with a 100-byte payload (a 10-digit
// number and filler) on sensors/t, which the edge maps to site7/sensors/t.
// The cloud counts distinct numbers at a subscriber with a persistent
// session, made before the outage, so nothing the edge delivers escapes it.
// Drain time runs from the edge's connection to the cloud (the cloud's log
// line "New client connected ... as <id>") to the last new message at the
// subscriber.
//
// Publishers keep -window PUBLISHes unacknowledged each. The machine is
// shared and noisy: compare the ratios printed beside the numbers, not the
// numbers. Every run stops by itself (-timeout).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	outpost, mosquitto string
	pubs               []int
	window             int
	warmup, duration   time.Duration
	million            int
	n                  int
	root               string
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "spool" && os.Args[1] != "uplink") {
		fmt.Fprintln(os.Stderr, "usage: storefwd spool|uplink [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fl := flag.NewFlagSet(mode, flag.ExitOnError)
	var cfg config
	var pubs string
	fl.StringVar(&cfg.outpost, "outpost", "bin/outpost", "the outpost binary")
	fl.StringVar(&cfg.mosquitto, "mosquitto", "/usr/sbin/mosquitto", "Debian's mosquitto")
	fl.StringVar(&pubs, "publishers", "1,16,64", "spool: publisher counts of the append rate")
	fl.IntVar(&cfg.window, "window", 16, "unacknowledged PUBLISHes per publisher")
	fl.DurationVar(&cfg.warmup, "warmup", time.Second, "spool: publishing before the append rate is measured")
	fl.DurationVar(&cfg.duration, "duration", 5*time.Second, "spool: measured time of the append rate")
	fl.IntVar(&cfg.million, "million", 1000000, "spool: messages of the memory, disk and restart test")
	fl.IntVar(&cfg.n, "n", 100000, "uplink: messages of the backlog")
	timeout := fl.Duration("timeout", 30*time.Minute, "the process exits with status 3 after this long")
	_ = fl.Parse(os.Args[2:])
	for f := range strings.SplitSeq(pubs, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 {
			fatalf("-publishers %q: want counts like 1,16,64", pubs)
		}
		cfg.pubs = append(cfg.pubs, p)
	}
	time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "storefwd: still running after %v; giving up\n", *timeout)
		os.Exit(3)
	})
	root, err := os.MkdirTemp("", "storefwd-")
	if err != nil {
		fatalf("%v", err)
	}
	cfg.root = root
	defer os.RemoveAll(root)
	if mode == "spool" {
		err = benchSpool(&cfg)
	} else {
		err = benchUplink(&cfg)
	}
	if err != nil {
		os.RemoveAll(root)
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "storefwd: "+format+"\n", args...)
	os.Exit(1)
}

// step prints progress to stderr, apart from the tables on stdout.
func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "-- "+format+"\n", args...)
}

// dir returns a new folder under the run's root.
func (c *config) dir(name string) string {
	d, err := os.MkdirTemp(c.root, name+"-")
	if err != nil {
		fatalf("%v", err)
	}
	return d
}

func ports(n int) ([]int, error) {
	var out []int
	for range n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// edge is a broker under test at the edge: outpost or mosquitto's bridge.
type edge struct {
	kind string // "outpost" or "mosquitto"
	p    *proc
	addr string
	oc   outpostConf
	mc   mosquittoConf
}

// startEdge starts a fresh edge of kind ("outpost-always",
// "outpost-never" or "mosquitto") whose cloud is on cloudPort.
func (c *config) startEdge(kind string, cloudPort, window int) (*edge, time.Duration, error) {
	pp, err := ports(1)
	if err != nil {
		return nil, 0, err
	}
	switch kind {
	case "outpost-always", "outpost-never":
		oc := outpostConf{dir: c.dir("outpost"), port: pp[0], cloudPort: cloudPort, sync: strings.TrimPrefix(kind, "outpost-"), window: window}
		p, ready, err := startOutpost(c.outpost, oc)
		if err != nil {
			return nil, 0, err
		}
		return &edge{kind: "outpost", p: p, addr: oc.addr(), oc: oc}, ready, nil
	case "mosquitto":
		mc := mosquittoConf{dir: c.dir("edge"), port: pp[0], bridgeTo: cloudPort, persisted: true}
		p, err := startMosquitto(c.mosquitto, mc)
		if err != nil {
			return nil, 0, err
		}
		return &edge{kind: "mosquitto", p: p, addr: mc.addr(), mc: mc}, 0, nil
	}
	return nil, 0, fmt.Errorf("unknown edge %q", kind)
}

// restart starts the edge again on the same data; ready is the time to
// "gateway ready" for outpost and to a listening port for mosquitto.
func (e *edge) restart(c *config) (time.Duration, error) {
	if e.kind == "outpost" {
		p, ready, err := startOutpost(c.outpost, e.oc)
		if err != nil {
			return 0, err
		}
		e.p = p
		return ready, nil
	}
	p, err := startMosquitto(c.mosquitto, e.mc)
	if err != nil {
		return 0, err
	}
	e.p = p
	t, err := waitListening(e.mc.addr(), time.Minute)
	return t.Sub(p.start), err
}

// fill publishes messages 1..n with P publishers and returns the rate at
// which the edge acknowledged them.
func (c *config) fill(addr string, P, n int) (float64, error) {
	start := time.Now()
	ps, err := startPublishers(addr, "fill", "sensors/t", P, c.window, n)
	if err != nil {
		return 0, err
	}
	defer ps.close()
	if err := ps.wait(30 * time.Minute); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// appendRate measures the acknowledged QoS 1 messages per second of P
// publishers at a fresh edge with the cloud down.
func (c *config) appendRate(kind string, P int) (float64, error) {
	down, err := ports(1)
	if err != nil {
		return 0, err
	}
	e, _, err := c.startEdge(kind, down[0], 16)
	if err != nil {
		return 0, err
	}
	defer e.p.stop(syscall.SIGKILL)
	ps, err := startPublishers(e.addr, "pub", "sensors/t", P, c.window, 0)
	if err != nil {
		return 0, err
	}
	defer ps.close()
	time.Sleep(c.warmup)
	a0, t0 := ps.acked.Load(), time.Now()
	time.Sleep(c.duration)
	a1, t1 := ps.acked.Load(), time.Now()
	if err := ps.firstErr(); err != nil {
		return 0, err
	}
	return float64(a1-a0) / t1.Sub(t0).Seconds(), nil
}

func benchSpool(c *config) error {
	type row struct {
		P                    int
		always, never, mosqu float64
	}
	var rows []row
	for _, P := range c.pubs {
		r := row{P: P}
		for _, k := range []struct {
			kind string
			dst  *float64
		}{{"outpost-always", &r.always}, {"outpost-never", &r.never}, {"mosquitto", &r.mosqu}} {
			step("append rate: %s, %d publishers", k.kind, P)
			v, err := c.appendRate(k.kind, P)
			if err != nil {
				return fmt.Errorf("%s with %d publishers: %w", k.kind, P, err)
			}
			*k.dst = v
		}
		rows = append(rows, r)
	}

	M := c.million
	P := 64
	step("outpost: %d messages with %d publishers, sync always", M, P)
	down, err := ports(1)
	if err != nil {
		return err
	}
	e, _, err := c.startEdge("outpost-always", down[0], 16)
	if err != nil {
		return err
	}
	defer e.p.stop(syscall.SIGKILL)
	var o, m million
	o.fillRate, err = c.fill(e.addr, P, M)
	if err != nil {
		return fmt.Errorf("outpost fill: %w", err)
	}
	time.Sleep(2 * time.Second) // let the background work of the fill settle
	o.mem = memory(e.p.pid())
	time.Sleep(10 * time.Second) // Go gives freed heap back to the system over time
	o.memLater = memory(e.p.pid())
	if o.depth, err = spooledDepth(e.oc.dataDir(), time.Now(), 30*time.Second); err != nil {
		return err
	}
	spoolDir := filepath.Join(e.oc.dataDir(), "spool")
	o.diskRun, _ = diskUsage(spoolDir)
	e.p.stop(syscall.SIGKILL)
	step("outpost: restart after kill -9 with %d queued", o.depth)
	if o.readyKill, err = e.restart(c); err != nil {
		return err
	}
	if o.depthKill, err = spooledDepth(e.oc.dataDir(), e.p.start, 30*time.Second); err != nil {
		return err
	}
	o.stop = e.p.stop(syscall.SIGTERM)
	o.diskStop, _ = diskUsage(spoolDir)
	step("outpost: restart after SIGTERM")
	if o.ready, err = e.restart(c); err != nil {
		return err
	}
	o.memRestart = memory(e.p.pid())
	if o.depthRestart, err = spooledDepth(e.oc.dataDir(), e.p.start, 30*time.Second); err != nil {
		return err
	}
	e.p.stop(syscall.SIGTERM)

	step("mosquitto bridge: %d messages with %d publishers", M, P)
	me, _, err := c.startEdge("mosquitto", down[0], 0)
	if err != nil {
		return err
	}
	defer me.p.stop(syscall.SIGKILL)
	if m.fillRate, err = c.fill(me.addr, P, M); err != nil {
		return fmt.Errorf("mosquitto fill: %w", err)
	}
	time.Sleep(2 * time.Second)
	m.mem = memory(me.p.pid())
	m.diskRun, _ = diskUsage(me.mc.dir)
	step("mosquitto: stop (saves its database)")
	m.stop = me.p.stop(syscall.SIGTERM) // saves the in-memory database
	m.diskStop, _ = diskUsage(me.mc.dir)
	step("mosquitto: restart with the saved database")
	if m.ready, err = me.restart(c); err != nil {
		return err
	}
	m.memRestart = memory(me.p.pid())
	me.p.stop(syscall.SIGKILL)

	fmt.Printf("\nDurable appends through the broker: QoS 1 PUBLISHes acknowledged per second, %d-byte payloads,\n", payloadSize)
	fmt.Printf("an out-rule to a cloud that is down, each publisher with %d unacknowledged (%v measured after %v).\n", c.window, c.duration, c.warmup)
	fmt.Printf("mosquitto's bridge acknowledges from memory (persistence saves every 30 min or at exit): a reference, not a peer.\n\n")
	fmt.Printf("%-11s %14s %14s %14s %13s %13s\n", "publishers", "sync=always", "sync=never", "mosquitto", "always/never", "always/mosq")
	for _, r := range rows {
		fmt.Printf("%-11d %14.0f %14.0f %14.0f %13.2f %13.2f\n", r.P, r.always, r.never, r.mosqu, ratio(r.always, r.never), ratio(r.always, r.mosqu))
	}

	fmt.Printf("\n%d messages queued (%d publishers; outpost sync=always; mosquitto bridge with persistence)\n\n", M, P)
	fmt.Printf("%-44s %14s %14s %8s\n", "", "outpost", "mosquitto", "ratio")
	line := func(name string, a, b float64, format string) {
		r := "-" // nothing to compare with
		if strings.Trim(fmt.Sprintf(format, b), "0.") != "" {
			r = fmt.Sprintf("%.2f", ratio(a, b))
		}
		fmt.Printf("%-44s %14s %14s %8s\n", name, fmt.Sprintf(format, a), fmt.Sprintf(format, b), r)
	}
	line("fill rate (msg/s)", o.fillRate, m.fillRate, "%.0f")
	line("resident set after the fill (MiB)", mib(o.mem.rss), mib(m.mem.rss), "%.1f")
	line("  of which anonymous (heap, stacks)", mib(o.mem.anon), mib(m.mem.anon), "%.1f")
	line("  of which mapped files", mib(o.mem.file), mib(m.mem.file), "%.1f")
	fmt.Printf("%-44s %14.1f %14s\n", "resident set 10 s later (MiB)", mib(o.memLater.rss), "-")
	fmt.Printf("%-44s %14.1f %14s\n", "  of which anonymous", mib(o.memLater.anon), "-")
	line("peak resident set (MiB)", mib(o.mem.peak), mib(m.mem.peak), "%.1f")
	line("disk while running (MiB)", mib(o.diskRun), mib(m.diskRun), "%.1f")
	line("disk after SIGTERM (MiB)", mib(o.diskStop), mib(m.diskStop), "%.1f")
	line("disk per message after SIGTERM (bytes)", float64(o.diskStop)/float64(M), float64(m.diskStop)/float64(M), "%.0f")
	line("stop after SIGTERM (s)", o.stop.Seconds(), m.stop.Seconds(), "%.2f")
	line("restart to ready after SIGTERM (s)", o.ready.Seconds(), m.ready.Seconds(), "%.3f")
	line("resident set right after the restart (MiB)", mib(o.memRestart.rss), mib(m.memRestart.rss), "%.1f")
	fmt.Printf("%-44s %14.3f %14s\n", "restart to ready after kill -9 (s)", o.readyKill.Seconds(), "(loses all)")
	fmt.Printf("%-44s %14d %14s\n", "queued after kill -9 and restart", o.depthKill, "-")
	fmt.Printf("%-44s %14d %14s\n", "queued after SIGTERM and restart", o.depthRestart, "-")
	fmt.Printf("(outpost ready: the \"gateway ready\" log line; mosquitto: its port accepts connections. ratio = outpost / mosquitto)\n")

	var at64 float64
	for _, r := range rows {
		if r.P == 64 {
			at64 = r.always
		}
	}
	fmt.Printf("\nGoals\n\n%-44s %10s %12s %8s\n", "", "goal", "measured", "ratio")
	goals := []goal{
		{"durable appends/s, 64 publishers", ">=", 20000, at64, "%.0f"},
		{fmt.Sprintf("resident set, %s spooled, 12 s after (MiB)", count(M)), "<=", 100, mib(o.memLater.rss), "%.1f"},
		{"... 2 s after the fill (MiB)", "<=", 100, mib(o.mem.rss), "%.1f"},
		{fmt.Sprintf("restart to ready with %s queued (s)", count(M)), "<=", 2, o.ready.Seconds(), "%.3f"},
		{"... after kill -9 (s)", "<=", 2, o.readyKill.Seconds(), "%.3f"},
	}
	printGoals(goals)
	if o.depth != int64(M) || o.depthRestart != int64(M) || o.depthKill != int64(M) {
		return fmt.Errorf("outpost queued %d, %d after the restart, %d after kill -9; want %d each", o.depth, o.depthRestart, o.depthKill, M)
	}
	return nil
}

// million is what the 1,000,000 message test measures of one broker.
type million struct {
	fillRate               float64
	mem, memLater          mem // 2 s and 12 s after the fill
	memRestart             mem
	diskRun, diskStop      int64
	stop, ready, readyKill time.Duration
	depth, depthRestart    int64
	depthKill              int64
}

type goal struct {
	name     string
	op       string // ">=" or "<="
	target   float64
	measured float64
	format   string
}

func printGoals(goals []goal) {
	for _, g := range goals {
		r := ratio(g.measured, g.target)
		if g.op == "<=" {
			r = ratio(g.target, g.measured)
		}
		verdict := "met"
		if r < 1 {
			verdict = "MISSED"
		}
		fmt.Printf("%-44s %10s %12s %8.2f  %s\n", g.name, g.op+" "+fmt.Sprintf(g.format, g.target), fmt.Sprintf(g.format, g.measured), r, verdict)
	}
	fmt.Println("(ratio above 1: better than the goal)")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// count writes 1000000 as 1M and 100000 as 100k.
func count(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// cloud is mosquitto as the cloud broker, with persistence, and a
// subscriber session on site7/# made while it first ran.
type cloud struct {
	mc mosquittoConf
	p  *proc
}

const subID = "cloud-sub"

func (c *config) newCloud() (*cloud, error) {
	pp, err := ports(1)
	if err != nil {
		return nil, err
	}
	cl := &cloud{mc: mosquittoConf{dir: c.dir("cloud"), port: pp[0], inflight: 1000, persisted: true}}
	p, err := startMosquitto(c.mosquitto, cl.mc)
	if err != nil {
		return nil, err
	}
	err = createSession(cl.mc.addr(), subID, "site7/#")
	p.stop(syscall.SIGTERM)
	return cl, err
}

// start starts the cloud with the saved session and connects the
// subscriber.
func (cl *cloud) start(c *config, n int) (*subscriber, error) {
	p, err := startMosquitto(c.mosquitto, cl.mc)
	if err != nil {
		return nil, err
	}
	cl.p = p
	return resumeSession(cl.mc.addr(), subID, n)
}

// drainResult is one drain of a backlog.
type drainResult struct {
	fillRate float64
	got      int
	drain    time.Duration // from the edge's connection to the last new message
	ready    time.Duration // restart to ready after kill -9
}

// drainRun fills a backlog of n at a fresh edge while the cloud is down,
// optionally kills the edge with SIGKILL and restarts it, then brings the
// cloud back and counts what arrives.
func (c *config) drainRun(kind string, window int, kill bool) (drainResult, error) {
	var r drainResult
	n := c.n
	cl, err := c.newCloud()
	if err != nil {
		return r, err
	}
	e, _, err := c.startEdge(kind, cl.mc.port, window)
	if err != nil {
		return r, err
	}
	defer func() { e.p.stop(syscall.SIGKILL) }()
	if r.fillRate, err = c.fill(e.addr, 64, n); err != nil {
		return r, fmt.Errorf("%s fill: %w", kind, err)
	}
	if kill {
		e.p.stop(syscall.SIGKILL)
		if r.ready, err = e.restart(c); err != nil {
			return r, err
		}
	}
	sub, err := cl.start(c, n)
	if err != nil {
		return r, err
	}
	defer cl.p.stop(syscall.SIGKILL)
	defer sub.close()
	who := "as outpost-cloud"
	if e.kind == "mosquitto" {
		who = "as " + bridgeID
	}
	t0, err := cl.p.waitSeen(who, 30*time.Second)
	if err != nil {
		return r, err
	}
	// All of it, or as much as comes before 10 s pass without a new one.
	got, last := sub.waitAll(n, 10*time.Second, 10*time.Minute)
	r.got = got
	if !last.IsZero() {
		r.drain = last.Sub(t0)
	}
	if !kill && got < n {
		return r, fmt.Errorf("%s delivered %d of %d", kind, got, n)
	}
	return r, nil
}

func benchUplink(c *config) error {
	n := c.n
	type named struct {
		name string
		r    drainResult
	}
	var drains []named
	for _, d := range []struct {
		name, kind string
		window     int
	}{
		{"outpost (window 16)", "outpost-always", 16},
		{"outpost (window 64, default)", "outpost-always", 64},
		{"mosquitto bridge (20 in flight)", "mosquitto", 0},
	} {
		step("drain of %d: %s", n, d.name)
		r, err := c.drainRun(d.kind, d.window, false)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		drains = append(drains, named{d.name, r})
	}
	step("kill -9 of outpost with %d acknowledged", n)
	ok, err := c.drainRun("outpost-always", 16, true)
	if err != nil {
		return fmt.Errorf("outpost kill: %w", err)
	}
	step("kill -9 of mosquitto's bridge with %d acknowledged", n)
	mk, err := c.drainRun("mosquitto", 0, true)
	if err != nil {
		return fmt.Errorf("mosquitto kill: %w", err)
	}

	fmt.Printf("\nA backlog of %d QoS 1 messages (%d-byte payloads) made while the cloud was down, drained to a local\n", n, payloadSize)
	fmt.Printf("mosquitto and counted at a cloud subscriber; drain time from the edge's connection to the last message.\n")
	fmt.Printf("Fill: 64 publishers, %d unacknowledged each (outpost: sync=always; mosquitto: from memory).\n\n", c.window)
	fmt.Printf("%-40s %12s %10s %12s\n", "", "fill msg/s", "drain s", "drain msg/s")
	rate := func(r drainResult) float64 { return float64(r.got) / r.drain.Seconds() }
	for _, d := range drains {
		fmt.Printf("%-40s %12.0f %10.2f %12.0f\n", d.name, d.r.fillRate, d.r.drain.Seconds(), rate(d.r))
	}
	mo := drains[len(drains)-1].r
	for _, d := range drains[:len(drains)-1] {
		fmt.Printf("%-40s %12.2f %10.2f %12.2f\n", "ratio "+strings.TrimPrefix(d.name, "outpost ")+" / mosquitto", ratio(d.r.fillRate, mo.fillRate), ratio(d.r.drain.Seconds(), mo.drain.Seconds()), ratio(rate(d.r), rate(mo)))
	}

	fmt.Printf("\nkill -9 of the edge broker with %d messages acknowledged, restart, cloud back\n\n", n)
	fmt.Printf("%-40s %10s %10s %14s %10s\n", "", "kept", "lost", "ready s", "drain s")
	fmt.Printf("%-40s %10d %10d %14.3f %10.2f\n", "outpost (sync=always)", ok.got, n-ok.got, ok.ready.Seconds(), ok.drain.Seconds())
	fmt.Printf("%-40s %10d %10d %14.3f %10.2f\n", "mosquitto bridge (persistence on)", mk.got, n-mk.got, mk.ready.Seconds(), mk.drain.Seconds())
	fmt.Printf("(mosquitto writes its persistence file every autosave_interval, 1800 s by default, and at a clean exit)\n")

	fmt.Printf("\nGoals\n\n%-44s %10s %12s %8s\n", "", "goal", "measured", "ratio")
	printGoals([]goal{
		{"drain msg/s to a local mosquitto (default)", ">=", 20000, rate(drains[1].r), "%.0f"},
		{"... with window 16", ">=", 20000, rate(drains[0].r), "%.0f"},
	})
	if ok.got != n {
		return errors.New("outpost lost acknowledged messages across kill -9")
	}
	return nil
}
