// Command outpost runs the Outpost edge MQTT gateway.
//
//	outpost run [-c FILE]    run the gateway
//	outpost check -c FILE    validate a config file, print the effective config
//	outpost spool [-c FILE]  show the spool's queues (also -data DIR)
//	outpost version          print version, commit and Go version
//	outpost sn pub|sub       MQTT-SN client for testing devices and links
//
// Exit status: 0 on success, 1 on a failure while running, 2 on a usage or
// config error.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/outpost-gw/outpost/gateway"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = "" // "" means the VCS revision recorded by the Go toolchain, if any
)

// shutdownTimeout bounds a graceful stop; beyond it outpost exits 1.
const shutdownTimeout = 10 * time.Second

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(outpost(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: outpost <command> [flags]

Commands:
  run [-c FILE]    run the gateway (on the embedded defaults without -c)
  check -c FILE    validate a config file and print the effective config
  spool [-c FILE]  show the spool's queues, of a stopped or a running gateway
  version          print the version, commit and Go version

Run "outpost <command> -h" for the details of a command.
`

func outpost(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "spool":
		return cmdSpool(rest, stdout, stderr)
	case "version":
		return cmdVersion(rest, stdout, stderr)
	case "sn":
		return cmdSN(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "outpost: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// parseFlags parses args into fs, which takes no positional arguments. It
// returns false and the exit status when the command must end here.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false // the flag package has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "outpost %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

func newFlagSet(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		fs.PrintDefaults()
	}
	return fs
}

const runHelp = `Usage: outpost run [-c FILE]

Runs the gateway until SIGINT or SIGTERM. Without -c it runs on the embedded
defaults: an MQTT broker on :1883 that accepts anonymous clients, with its
data in ./outpost-data. Logs go to the standard error, or to journald as
structured entries when outpost runs as a systemd service.

SIGHUP reads the config FILE again and applies, without a restart, [log]
level, the listeners' allow_anonymous, password_file and acl_file, [mqttsn]
acl_file and usernames, and [http] password_file (their files are read
again), and each uplink's [[uplink.rule]] list; it logs the other changed
keys as needing a restart. An invalid file changes nothing: the
error is logged and the gateway runs on.

On the first SIGINT or SIGTERM the gateway stops gracefully, component by
component in reverse start order. On shutdown the broker disconnects clients
with reason 0x8B (server shutting down); their wills are published as for any
server-side disconnect, as MQTT 5 requires (MQTT-3.1.2-8). outpost exits 0
once everything has stopped cleanly, or 1 if that fails or takes more than
10s. A second signal exits 1 at once, without waiting.

Exit status: 0 after a clean stop, 1 on a failure, 2 on a usage or config
error.

Flags:
`

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlagSet("run", runHelp, stderr)
	file := fs.String("c", "", "config `FILE` (TOML); without it, the embedded defaults")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg := gateway.Default()
	if *file != "" {
		var err error
		if cfg, err = gateway.Load(*file); err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
	}
	logging := gateway.NewLogging(cfg.Log, stderr)
	log := logging.Logger
	gw, err := gateway.New(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	gw.SetReload(*file, logging.Level)

	// Every signal reaches both channels. sigs counts them: the first one
	// also cancels ctx, a second one ends the process at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	gateway.SetVersion(version)
	log.Info("outpost starting", "version", version, "config", cmp.Or(*file, "embedded defaults"), "journald", logging.Journal)
	// SIGHUP (systemctl reload) reloads the config; it must not end the
	// process, also not while the gateway starts (Reload then says it is
	// not running yet).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	go func() {
		for {
			select {
			case <-hup:
				gw.Reload()
			case <-ctx.Done():
				return
			}
		}
	}()

	select {
	case err := <-done:
		if err != nil {
			log.Error("outpost failed", "err", err)
			return exitFailure
		}
		return exitOK
	case <-ctx.Done():
	}
	log.Info("stopping; a second signal exits at once", "timeout", shutdownTimeout)
	timeout := time.NewTimer(shutdownTimeout)
	defer timeout.Stop()
	return awaitStop(log, done, sigs, timeout.C)
}

// awaitStop waits, after the first signal, for the gateway's Run to return
// (on done), and returns the exit status: exitOK for a clean stop, else
// exitFailure, also when a second signal comes (sigs also holds the first
// one) or the timeout fires first.
func awaitStop(log *slog.Logger, done <-chan error, sigs <-chan os.Signal, timeout <-chan time.Time) int {
	signals := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("outpost stopped with errors", "err", err)
				return exitFailure
			}
			log.Info("outpost stopped")
			return exitOK
		case sig := <-sigs:
			if signals++; signals > 1 { // the first one is the signal that cancelled ctx
				log.Error("second signal; exiting without waiting", "signal", sig.String())
				return exitFailure
			}
		case <-timeout:
			log.Error("graceful stop took too long; exiting", "timeout", shutdownTimeout)
			return exitFailure
		}
	}
}

const checkHelp = `Usage: outpost check -c FILE

Validates the config FILE and, when it is valid, prints the effective config
(every key, defaults included, relative paths made absolute) as TOML on the
standard output. An invalid file is reported with the key and line of each
problem, and outpost exits 2.

Flags:
`

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", checkHelp, stderr)
	file := fs.String("c", "", "config `FILE` (TOML) to check; required")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *file == "" {
		fmt.Fprintln(stderr, "outpost check: -c FILE is required")
		fs.Usage()
		return exitUsage
	}
	cfg, err := gateway.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	// Building the gateway checks what the components check of their options.
	if _, err := gateway.New(cfg, slog.New(slog.DiscardHandler)); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *file, err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "# Effective configuration of %s: every key, defaults included.\n\n", *file)
	if err := cfg.WriteTOML(stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	return exitOK
}

const versionHelp = `Usage: outpost version

Prints the version, the commit it was built from and the Go version.

`

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", versionHelp, stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(stdout, "outpost %s (commit %s, %s %s/%s)\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// buildCommit returns commit, or else the VCS revision the toolchain stamped
// into the binary, or "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	return "unknown"
}
