package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/outpost-gw/outpost/gateway"
)

const snHelp = `Usage: outpost sn pub|sub [flags]

An MQTT-SN client for testing devices and links.

  outpost sn pub -t TOPIC -m MESSAGE [-q QOS] [-r]   publish one message
  outpost sn sub -t TOPIC [-n COUNT] [-W TIMEOUT]     print "topic payload" lines

Exit status: 0 on success, 1 on a failure or when sub's -W timeout passes,
2 on a usage error.

Flags:
`

func cmdSN(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "pub" && args[0] != "sub") {
		fmt.Fprint(stderr, snHelp)
		return exitUsage
	}
	sub := args[0] == "sub"
	fs := newFlagSet("sn "+args[0], snHelp, stderr)
	var o gateway.SNOptions
	fs.StringVar(&o.Gateway, "gw", "127.0.0.1:1885", "MQTT-SN gateway `host:port` (UDP)")
	fs.StringVar(&o.ClientID, "id", "", "client `id` (default outpost-sn-PID)")
	fs.StringVar(&o.Topic, "t", "", "topic `name` (sub: wildcards allowed)")
	pre := fs.Int("p", 0, "pre-defined topic `id`")
	fs.StringVar(&o.Short, "s", "", "two-character short topic `name`")
	fs.IntVar(&o.QoS, "q", 0, "`QoS`: -1 (pub only), 0, 1 or 2")
	fs.BoolVar(&o.Retain, "r", false, "pub: retain the message")
	msg := fs.String("m", "", "pub: the `message`")
	persistent := fs.Bool("c", false, "keep the session (clean session off)")
	fs.DurationVar(&o.KeepAlive, "k", 60*time.Second, "keep alive `duration`")
	fs.StringVar(&o.WillTopic, "will-topic", "", "will `topic`")
	willMsg := fs.String("will-msg", "", "will `message`")
	fs.DurationVar(&o.Sleep, "sleep", 0, "sub: sleep for `duration` and wake with PINGREQ for the buffered messages")
	fs.IntVar(&o.Count, "n", 0, "sub: exit after `count` messages (0: never)")
	wait := fs.Duration("W", 0, "sub: exit 1 after `timeout` (0: never)")
	if code, ok := parseFlags(fs, args[1:]); !ok {
		return code
	}
	o.Message, o.WillMsg, o.Persistent = []byte(*msg), []byte(*willMsg), *persistent
	set := 0
	for _, b := range []bool{o.Topic != "", *pre != 0, o.Short != ""} {
		if b {
			set++
		}
	}
	switch {
	case set != 1:
		fmt.Fprintln(stderr, "outpost sn: give one of -t, -p, -s")
		return exitUsage
	case *pre < 0 || *pre > 0xFFFF:
		fmt.Fprintln(stderr, "outpost sn: -p must be 1..65535")
		return exitUsage
	case o.QoS < -1 || o.QoS > 2 || (sub && o.QoS < 0):
		fmt.Fprintln(stderr, "outpost sn: -q must be -1 (pub only), 0, 1 or 2")
		return exitUsage
	}
	o.Predefined = uint16(*pre)
	if o.ClientID == "" {
		o.ClientID = "outpost-sn-" + strconv.Itoa(os.Getpid())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	if sub {
		if *wait > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *wait)
			defer cancel()
		}
		err = gateway.SNSub(ctx, o, stdout)
	} else {
		err = gateway.SNPub(ctx, o)
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "outpost sn sub: timeout after %v\n", *wait)
		return exitFailure
	case errors.Is(err, context.Canceled):
		return exitOK
	default:
		fmt.Fprintf(stderr, "outpost sn %s: %v\n", args[0], err)
		return exitFailure
	}
}
