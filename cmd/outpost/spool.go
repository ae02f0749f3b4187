package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outpost-gw/outpost/gateway"
)

const spoolHelp = `Usage: outpost spool [-c FILE | -data DIR] [-v] [-n N] [-recover]
       outpost spool drop [-c FILE | -data DIR] QUEUE...

Shows the spool in the gateway's data directory: for each queue its depth,
bytes, the age of its oldest message and its range of sequence numbers, and
for the queues of an uplink which uplink and priority class they belong to;
for each uplink's quarantine (messages the cloud refused for good) how many
it holds, and with -v the first N of them: topic, QoS, size and the cloud's
reason code, never the payload.

The data directory is data_dir of the config FILE, or DIR, or without
either ./outpost-data (the default of "outpost run").

On a stopped gateway the spool is opened read-only; a gateway cannot start
on it for that moment. While a gateway runs, it holds the spool, and
outpost shows the status that gateway writes to status.json in its data
directory instead, with the state of each uplink and the time it was
written. A spool that was not closed cleanly (the gateway was killed, or
the power failed) must be replayed first, as the gateway does when it
starts: -recover does that, writing to the spool what that start would.

Queues of an uplink, or of an out-rule priority, that the config (-c, or
the running gateway's) no longer has are marked "orphan": they do not drain. The gateway keeps them for
[spool] orphan_keep after their newest message (7 days by default), so that
putting the uplink back drains them. "outpost spool drop QUEUE..." drops
queues with their messages at once, on a stopped gateway.

Exit status: 0 on success, 1 when the spool cannot be read, 2 on a usage or
config error.

Flags:
`

const spoolDropHelp = `Usage: outpost spool drop [-c FILE | -data DIR] QUEUE...

Drops the named spool queues with every message in them, for good: the
queues of an uplink or out-rule priority that was removed from the config
(shown as "orphan" by "outpost spool"). The gateway must be stopped. It
prints how many messages each queue held.

Exit status: 0 when every queue was dropped, 1 when the spool cannot be
opened or a queue does not exist, 2 on a usage or config error.

Flags:
`

// cmdSpoolDrop is "outpost spool drop".
func cmdSpoolDrop(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("spool drop", spoolDropHelp, stderr)
	file := fs.String("c", "", "config `FILE` (TOML) whose data_dir holds the spool")
	dataDir := fs.String("data", "", "data directory `DIR` (instead of the config's data_dir)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	names := fs.Args()
	if len(names) == 0 {
		fmt.Fprintln(stderr, "outpost spool drop: name at least one queue (\"outpost spool\" lists them)")
		return exitUsage
	}
	cfg, code := spoolConfig(*file, *dataDir, stderr)
	if cfg == nil {
		return code
	}
	counts, err := gateway.DropSpoolQueues(context.Background(), cfg, names, nil)
	for i, n := range counts {
		fmt.Fprintf(stdout, "dropped %s: %d messages\n", names[i], n)
	}
	switch {
	case errors.Is(err, gateway.ErrNoSpool):
		fmt.Fprintf(stderr, "outpost spool drop: no spool in %s\n", cfg.SpoolDir())
		return exitFailure
	case errors.Is(err, gateway.ErrSpoolLocked):
		fmt.Fprintf(stderr, "outpost spool drop: a running gateway holds the spool in %s; stop it first\n", cfg.SpoolDir())
		return exitFailure
	case err != nil:
		fmt.Fprintf(stderr, "outpost spool drop: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// spoolConfig returns the config of FILE (or the defaults) with data_dir
// replaced by dataDir when it is not "", or nil and an exit code.
func spoolConfig(file, dataDir string, stderr io.Writer) (*gateway.Config, int) {
	cfg := gateway.Default()
	if file != "" {
		var err error
		if cfg, err = gateway.Load(file); err != nil {
			fmt.Fprintln(stderr, err)
			return nil, exitUsage
		}
	}
	if dataDir != "" {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, exitUsage
		}
		cfg.DataDir = abs
	}
	return cfg, exitOK
}

func cmdSpool(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "drop" {
		return cmdSpoolDrop(args[1:], stdout, stderr)
	}
	fs := newFlagSet("spool", spoolHelp, stderr)
	file := fs.String("c", "", "config `FILE` (TOML) whose data_dir holds the spool")
	dataDir := fs.String("data", "", "data directory `DIR` (instead of the config's data_dir)")
	verbose := fs.Bool("v", false, "list the first N quarantined messages of each uplink")
	n := fs.Int("n", 10, "list the first `N` quarantined messages of each uplink with -v")
	recover := fs.Bool("recover", false, "replay a spool that was not closed cleanly before reading it")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *n < 1 {
		fmt.Fprintln(stderr, "outpost spool: -n must be at least 1")
		return exitUsage
	}
	cfg, code := spoolConfig(*file, *dataDir, stderr)
	if cfg == nil {
		return code
	}
	samples := 0
	if *verbose {
		samples = *n
	}
	rep, err := gateway.InspectSpool(context.Background(), cfg, gateway.InspectOptions{Samples: samples, Recover: *recover})
	switch {
	case errors.Is(err, gateway.ErrNoSpool):
		fmt.Fprintf(stderr, "outpost spool: no spool in %s (has a gateway run with data_dir %s?)\n", cfg.SpoolDir(), cfg.DataDir)
		return exitFailure
	case errors.Is(err, gateway.ErrSpoolNeedsRecovery):
		fmt.Fprintf(stderr, "outpost spool: the spool in %s was not closed cleanly (the gateway was killed, or the power failed).\n"+
			"Start the gateway, which recovers it, or run \"outpost spool -recover\" to replay it now, as the gateway would.\n", cfg.SpoolDir())
		return exitFailure
	case errors.Is(err, gateway.ErrNoStatus):
		fmt.Fprintf(stderr, "outpost spool: %v; it writes it once it has started, try again in a few seconds\n", err)
		return exitFailure
	case err != nil:
		fmt.Fprintf(stderr, "outpost spool: %v\n", err)
		return exitFailure
	}
	if *file == "" && !rep.Live {
		// Without the config, which uplinks exist is not known.
		for i := range rep.Status.Spool.Queues {
			rep.Status.Spool.Queues[i].Orphan = false
		}
	}
	printSpool(stdout, rep, *verbose, time.Now())
	return exitOK
}

// printSpool writes the report for people; now is the time of the reading.
func printSpool(w io.Writer, rep *gateway.SpoolReport, verbose bool, now time.Time) {
	st := rep.Status
	if rep.Live {
		age := now.Sub(st.Time)
		fmt.Fprintf(w, "Spool %s: in use by a running gateway (pid %d, %s).\n", st.Spool.Dir, st.PID, st.Version)
		fmt.Fprintf(w, "Its status as of %s ago (%s)", fmtAge(age), st.Time.Local().Format(time.DateTime))
		if age > 3*gateway.StatusHeartbeat {
			fmt.Fprintf(w, ": old, the gateway may be stuck")
		}
		fmt.Fprintln(w, ".")
	} else {
		fmt.Fprintf(w, "Spool %s: no gateway runs on it; read from disk", st.Spool.Dir)
		if rep.Recovered {
			fmt.Fprint(w, " after replaying what a crash left")
		}
		fmt.Fprintln(w, ".")
	}
	fmt.Fprintf(w, "On disk: %s of tables, %s of value log.\n", fmtBytes(st.Spool.LSMBytes), fmtBytes(st.Spool.ValueLogBytes))

	queues := slices.Clone(st.Spool.Queues)
	slices.SortStableFunc(queues, queueOrder)
	fmt.Fprintln(w)
	if len(queues) == 0 {
		fmt.Fprintln(w, "No queues: nothing was ever spooled.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "QUEUE\tUPLINK\tCLASS\tDEPTH\tBYTES\tOLDEST\tSEQUENCE")
		for _, q := range queues {
			uplink, class := "-", "-"
			if q.Uplink != "" {
				uplink, class = q.Uplink, fmt.Sprintf("priority %d", q.Priority)
				if q.Quarantine {
					class = "quarantine"
				}
				if q.Orphan {
					class += " (orphan)"
				}
			}
			oldest, seqs := "-", fmt.Sprintf("empty, next %d", q.Next)
			if q.Depth > 0 {
				oldest = fmtAge(st.Time.Sub(q.Oldest))
				seqs = fmt.Sprintf("%d-%d", q.First, q.Last)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", q.Name, uplink, class, q.Depth, fmtBytes(q.Bytes), oldest, seqs)
		}
		tw.Flush()
	}

	for _, u := range st.Uplinks {
		fmt.Fprintln(w)
		state := "offline"
		if u.Connected {
			state = "connected"
		} else if u.State != "" {
			state = string(u.State)
		}
		fmt.Fprintf(w, "Uplink %s: %s since %s (%s)", u.Name, state, u.Since.Local().Format(time.DateTime), fmtAge(st.Time.Sub(u.Since)))
		if u.LastError != "" && !u.Connected {
			fmt.Fprintf(w, "; last error: %s", u.LastError)
		}
		fmt.Fprintln(w, ".")
		eta := "unknown"
		switch {
		case u.Depth == 0:
			eta = "none"
		case u.ETA >= 0:
			eta = fmtAge(u.ETA)
		}
		fmt.Fprintf(w, "  waiting %d (%s), drain %.1f msg/s, time to drain %s\n", u.Depth, fmtBytes(u.Bytes), u.DrainRate, eta)
		fmt.Fprintf(w, "  sent %d, acknowledged %d, dropped %d (expired %d), quarantined %d, refused %d, in %d\n",
			u.Sent, u.Out, u.Dropped, u.Expired, u.Quarantined, u.Refused, u.In)
	}

	for _, q := range queues {
		if !q.Quarantine {
			continue
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Quarantine of uplink %s: %s (%s)", q.Uplink, plural(q.Depth, "message"), fmtBytes(q.Bytes))
		if q.Depth == 0 {
			fmt.Fprintln(w, ".")
			continue
		}
		if !verbose {
			fmt.Fprintln(w, "; -v lists them.")
			continue
		}
		fmt.Fprintf(w, "; the first %d:\n", len(q.Quarantined))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  SEQ\tQUARANTINED\tTOPIC\tQOS\tSIZE\tREASON")
		for _, m := range q.Quarantined {
			if m.Error != "" {
				fmt.Fprintf(tw, "  %d\t%s\t(unreadable: %s)\t\t\t\n", m.Seq, m.Time.Local().Format(time.DateTime), m.Error)
				continue
			}
			reason := "-"
			if m.Reason != 0 {
				reason = fmt.Sprintf("0x%02X %s", m.Reason, m.ReasonText)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s\n", m.Seq, m.Time.Local().Format(time.DateTime), m.Topic, m.QoS, fmtBytes(int64(m.Size)), reason)
		}
		tw.Flush()
	}
}

// queueOrder sorts the queues of each uplink together, highest class
// first and quarantine last, and other queues after them by name.
func queueOrder(a, b gateway.QueueStatus) int {
	switch {
	case a.Uplink == "" && b.Uplink == "":
		return cmp.Compare(a.Name, b.Name)
	case a.Uplink == "":
		return 1
	case b.Uplink == "":
		return -1
	}
	return cmp.Or(cmp.Compare(a.Uplink, b.Uplink), cmpBool(a.Quarantine, b.Quarantine), cmp.Compare(b.Priority, a.Priority))
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// fmtBytes writes n in B, KiB, MiB or GiB.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 2 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, []string{"KiB", "MiB", "GiB"}[i])
}

// fmtAge writes d to the second ("0s" below), without trailing zero units.
func fmtAge(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
