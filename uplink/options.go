package uplink

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-gw/outpost/localbroker/topic"
)

// Directions of a Rule.
const (
	Out = "out" // local broker -> cloud, through the spool
	In  = "in"  // cloud -> local broker
)

// Retain handling of a Rule.
const (
	RetainKeep  = "keep"  // forward the retain flag as published (the default)
	RetainClear = "clear" // always forward with the retain flag cleared
)

// Defaults for the zero values of Options.
const (
	DefaultKeepAlive      = 60 * time.Second
	DefaultSessionExpiry  = 24 * time.Hour
	DefaultConnectTimeout = 30 * time.Second
	DefaultReconnectMin   = time.Second
	DefaultReconnectMax   = 2 * time.Minute
	DefaultWindow         = 64
	DefaultDrainTimeout   = 2 * time.Second
	DefaultSpoolTimeout   = 30 * time.Second
)

// Options configure one Bridge (one cloud broker). The zero value of every
// field but Name, URL and Rules means the documented default.
type Options struct {
	// Name names the bridge in logs, metrics and its spool queues
	// (QueueName). Letters, digits, '-' and '_' only. Required.
	Name string

	// URL is the cloud broker: mqtt://host:port (default port 1883),
	// mqtts://host:port (8883), or MQTT over websockets ws://host:port/path
	// (80) and wss://host:port/path (443), where the path "" means
	// "/mqtt". Required.
	URL string

	// ClientID at the cloud; "" means "outpost-" + Name. Keep it stable:
	// the cloud session (in-rule subscriptions and what the cloud queued
	// while the link was down) belongs to it.
	ClientID string
	Username string
	Password string // never logged

	// TLS for mqtts and wss. CAFile "" trusts the system roots. CertFile and KeyFile
	// give a client certificate (mTLS, AWS IoT style). ServerName "" means
	// the host of URL. ALPN sets the protocols offered in the handshake
	// (AWS IoT on port 443 wants "x-amzn-mqtt-ca").
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
	ALPN       []string

	// KeepAlive is the MQTT keep alive; 0 means 60s, negative turns it off.
	KeepAlive time.Duration
	// SessionExpiry is the cloud session's expiry interval, asked at every
	// CONNECT with Clean Start off, so that the cloud keeps the in-rule
	// subscriptions and queues their messages across an outage; 0 means
	// 24h, negative means the session ends with each connection.
	SessionExpiry time.Duration
	// ConnectTimeout bounds dialing, the TLS handshake and waiting for
	// CONNACK (and SUBACK); 0 means 30s.
	ConnectTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between connection attempts, and the pause of a queue after
	// the cloud asked to retry a message later; 0 means 1s and 2m.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// Window is the number of QoS 1/2 messages in flight to the cloud
	// (published, not yet acknowledged), capped by the cloud's Receive
	// Maximum (mosquitto announces its max_inflight_messages, 20 by
	// default; HiveMQ Cloud 10; AWS IoT Core 100); 0 means 64. A window
	// of 16 drained a 100k backlog to a local mosquitto at about half the
	// rate of 64: every round waits for a round trip to the cloud.
	Window int
	// RateLimit caps the publishes to the cloud, in messages per second
	// (a token bucket holding RateBurst tokens); 0 means no limit.
	RateLimit float64
	// RateBurst is the bucket size; 0 means max(1, RateLimit).
	RateBurst int
	// RateBytes caps the bytes published to the cloud per second, counting
	// each message's topic and payload, for a link metered by volume; 0
	// means no limit. Its bucket holds one second's worth: after a quiet
	// spell up to RateBytes go out at once, and a message larger than
	// that waits for a full bucket and then goes (it is never stuck), its
	// excess paid off before the next one. With RateLimit too, a message
	// waits for both.
	RateBytes int64

	// DrainTimeout is how long Run waits at shutdown for the messages in
	// flight to be acknowledged before it disconnects; 0 means 2s.
	// Whatever is not acknowledged stays in the spool and is sent again.
	DrainTimeout time.Duration
	// SpoolTimeout bounds one BeforeAck append to the spool; 0 means 30s.
	SpoolTimeout time.Duration

	// Rules say what crosses the bridge. At least one.
	Rules []Rule

	// Logger receives the bridge's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Rule maps a topic tree between the local broker and the cloud.
//
// Local and Remote are topic filters whose wildcard parts are identical;
// the levels before the first wildcard are prefixes that replace each
// other: Local "sensors/#" with Remote "site7/sensors/#" maps the local
// topic "sensors/a/t" to "site7/sensors/a/t" and back. Without wildcard a
// rule maps one topic to one topic. Remote "" means the same as Local.
//
// The first rule of a direction that matches a topic is used.
type Rule struct {
	Direction string // Out or In; required
	Local     string // local topic filter; required
	Remote    string // cloud topic filter; "" means Local

	// MaxQoS caps the QoS on the far side (the cloud for out-rules, the
	// local broker for in-rules); nil means 2. See QoS.
	MaxQoS *byte
	// Retain is RetainKeep ("" too) or RetainClear.
	Retain string

	// Priority is the out-rule's class: messages of higher classes drain
	// first. Each class has its own spool queue (QueueName). 0..999.
	Priority int
	// QueueQoS0 spools QoS 0 messages of an out-rule while the cloud is
	// unreachable; without it QoS 0 is sent only while online and is
	// dropped (counted) otherwise.
	QueueQoS0 bool
	// MaxAge drops spooled messages of an out-rule that waited longer than
	// this (counted); 0 means no limit.
	MaxAge time.Duration
}

// QoS returns a pointer to q, for Rule.MaxQoS.
func QoS(q byte) *byte { return &q }

// QueueName is the spool queue of one priority class of a bridge.
func QueueName(bridge string, priority int) string {
	return fmt.Sprintf("uplink.%s.p%d", bridge, priority)
}

// QuarantineName is the spool queue where a bridge keeps the messages that
// the cloud refused for good.
func QuarantineName(bridge string) string { return "uplink." + bridge + ".quarantine" }

// ParseQueueName tells which bridge a spool queue belongs to, and whether
// it is a priority class (QueueName) or the quarantine (QuarantineName);
// ok is false for a queue of no bridge.
func ParseQueueName(queue string) (bridge string, priority int, quarantine, ok bool) {
	rest, found := strings.CutPrefix(queue, "uplink.")
	if !found {
		return "", 0, false, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 || !validName(rest[:i]) {
		return "", 0, false, false
	}
	bridge, class := rest[:i], rest[i+1:]
	if class == "quarantine" {
		return bridge, 0, true, true
	}
	digits, found := strings.CutPrefix(class, "p")
	p, err := strconv.Atoi(digits)
	if !found || err != nil || p < 0 || p > maxPriority || strconv.Itoa(p) != digits {
		return "", 0, false, false
	}
	return bridge, p, false, true
}

// rule is a validated Rule with its mapping.
type rule struct {
	Rule
	maxQoS    byte
	clear     bool   // RetainClear
	localPre  string // levels before the first wildcard, without trailing '/'
	remotePre string
	tail      string // from the first wildcard level on; "" for a single topic
}

// settings are Options with defaults applied and rules compiled.
type settings struct {
	Options
	scheme, addr, host string
	url                *url.URL
	out, in            []*rule
	prios              []int // priority classes of the out-rules, highest first
}

const maxPriority = 999

func (o Options) compile() (*settings, error) {
	s := &settings{Options: o}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !validName(o.Name) {
		bad("Name %q: want 1 to 64 letters, digits, '-' or '_'", o.Name)
	}
	if o.URL == "" {
		bad("URL is required")
	} else if u, err := url.Parse(o.URL); err != nil {
		bad("URL: %v", err)
	} else {
		s.scheme = u.Scheme
		port := ""
		switch u.Scheme {
		case "mqtt", "tcp":
			port = "1883"
		case "mqtts", "ssl", "tls":
			port = "8883"
		case "ws":
			port = "80"
		case "wss":
			port = "443"
		default:
			bad("URL %q: scheme %q, want mqtt, mqtts, ws or wss", o.URL, u.Scheme)
		}
		s.url = u
		s.host = u.Hostname()
		if s.host == "" {
			bad("URL %q has no host", o.URL)
		}
		if u.Port() != "" {
			port = u.Port()
		}
		s.addr = joinHostPort(s.host, port)
	}
	if s.ClientID == "" {
		s.ClientID = "outpost-" + o.Name
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		bad("CertFile and KeyFile go together")
	}
	dflt := func(name string, v *time.Duration, d time.Duration, negOK bool) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0 && !negOK:
			bad("%s %v is negative", name, *v)
		}
	}
	dflt("KeepAlive", &s.KeepAlive, DefaultKeepAlive, true)
	dflt("SessionExpiry", &s.SessionExpiry, DefaultSessionExpiry, true)
	dflt("ConnectTimeout", &s.ConnectTimeout, DefaultConnectTimeout, false)
	dflt("ReconnectMin", &s.ReconnectMin, DefaultReconnectMin, false)
	dflt("ReconnectMax", &s.ReconnectMax, DefaultReconnectMax, false)
	dflt("DrainTimeout", &s.DrainTimeout, DefaultDrainTimeout, false)
	dflt("SpoolTimeout", &s.SpoolTimeout, DefaultSpoolTimeout, false)
	if s.ReconnectMax < s.ReconnectMin {
		bad("ReconnectMax %v is below ReconnectMin %v", s.ReconnectMax, s.ReconnectMin)
	}
	if s.KeepAlive > 65535*time.Second {
		bad("KeepAlive %v is above 65535s", s.KeepAlive)
	}
	switch {
	case s.Window == 0:
		s.Window = DefaultWindow
	case s.Window < 0 || s.Window > 65535:
		bad("Window %d: want 1..65535", s.Window)
	}
	if s.RateLimit < 0 || s.RateBurst < 0 || s.RateBytes < 0 {
		bad("RateLimit %v, RateBurst %d and RateBytes %d may not be negative", s.RateLimit, s.RateBurst, s.RateBytes)
	}
	if s.RateBurst == 0 {
		s.RateBurst = max(1, int(s.RateLimit))
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	rs, rerrs := compileRules(o.Rules)
	s.out, s.in, s.prios = rs.out, rs.in, rs.prios
	errs = append(errs, rerrs...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("uplink: invalid options: %w", err)
	}
	return s, nil
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func compileRule(r Rule) (*rule, error) {
	cr := &rule{Rule: r, maxQoS: 2}
	switch r.Direction {
	case Out, In:
	default:
		return nil, fmt.Errorf("direction %q: want %q or %q", r.Direction, Out, In)
	}
	if r.Remote == "" {
		cr.Remote = r.Local
	}
	if err := topic.ValidFilter(cr.Local, 0, 0); err != nil {
		return nil, fmt.Errorf("local filter %q: %v", cr.Local, err)
	}
	if err := topic.ValidFilter(cr.Remote, 0, 0); err != nil {
		return nil, fmt.Errorf("remote filter %q: %v", cr.Remote, err)
	}
	if strings.HasPrefix(cr.Local, "$share/") || strings.HasPrefix(cr.Remote, "$share/") {
		return nil, errors.New("shared subscriptions are not bridge filters")
	}
	lp, lt := splitFilter(cr.Local)
	rp, rt := splitFilter(cr.Remote)
	if lt != rt {
		return nil, fmt.Errorf("local %q and remote %q differ after their prefixes (%q and %q): the wildcard parts must be the same", cr.Local, cr.Remote, lt, rt)
	}
	cr.localPre, cr.remotePre, cr.tail = lp, rp, lt
	if r.MaxQoS != nil {
		if *r.MaxQoS > 2 {
			return nil, fmt.Errorf("MaxQoS %d", *r.MaxQoS)
		}
		cr.maxQoS = *r.MaxQoS
	}
	switch r.Retain {
	case "", RetainKeep:
	case RetainClear:
		cr.clear = true
	default:
		return nil, fmt.Errorf("retain %q: want %q or %q", r.Retain, RetainKeep, RetainClear)
	}
	if r.Priority < 0 || r.Priority > maxPriority {
		return nil, fmt.Errorf("priority %d: want 0..%d", r.Priority, maxPriority)
	}
	if r.MaxAge < 0 {
		return nil, fmt.Errorf("negative MaxAge %v", r.MaxAge)
	}
	if r.Direction == In && (r.Priority != 0 || r.QueueQoS0 || r.MaxAge != 0) {
		return nil, errors.New("Priority, QueueQoS0 and MaxAge apply to out-rules only")
	}
	return cr, nil
}

// splitFilter splits a filter into the levels before its first wildcard
// level (without the separating '/') and the rest from that level on.
// "a/b/#" gives "a/b" and "#"; "+/x" gives "" and "+/x"; "a/b" gives "a/b"
// and "".
func splitFilter(f string) (prefix, tail string) {
	start := 0
	for {
		end := strings.IndexByte(f[start:], '/')
		lvl := f[start:]
		if end >= 0 {
			lvl = f[start : start+end]
		}
		if lvl == "+" || lvl == "#" {
			if start == 0 {
				return "", f
			}
			return f[:start-1], f[start:]
		}
		if end < 0 {
			return f, ""
		}
		start += end + 1
	}
}

// mapTopic maps a topic that matches the filter with prefix from to the
// filter with prefix to. A topic that equals the prefix (the parent level
// that "#" matches) maps to the other prefix; it fails when that prefix is
// empty.
func (r *rule) mapTopic(t, from, to string) (string, bool) {
	if r.tail == "" {
		return to, true
	}
	var rest string
	switch {
	case from == "":
		rest = t
	case t == from:
		if to == "" {
			return "", false
		}
		return to, true
	default:
		rest = t[len(from)+1:]
	}
	if to == "" {
		return rest, true
	}
	return to + "/" + rest, true
}

// toRemote maps a local topic matching r.Local.
func (r *rule) toRemote(t string) (string, bool) { return r.mapTopic(t, r.localPre, r.remotePre) }

// toLocal maps a cloud topic matching r.Remote.
func (r *rule) toLocal(t string) (string, bool) { return r.mapTopic(t, r.remotePre, r.localPre) }

// retain applies the rule's retain handling to a flag.
func (r *rule) retain(flag bool) bool { return flag && !r.clear }

func matchRule(rules []*rule, t string, remote bool) *rule {
	for _, r := range rules {
		f := r.Local
		if remote {
			f = r.Remote
		}
		if topic.Match(f, t) {
			return r
		}
	}
	return nil
}
