package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-gw/outpost/localbroker/topic"
)

// UplinkConfig is one [[uplink]]: a bridge to one cloud broker, with its
// rules. Keys a [[uplink]] leaves out keep the defaults of DefaultUplink.
type UplinkConfig struct {
	Name           string   `toml:"name"` // letters, digits, '-' and '_'; unique
	URL            string   `toml:"url"`  // mqtt://host[:port] or mqtts://host[:port]
	ClientID       string   `toml:"client_id"`
	Username       string   `toml:"username,omitempty"`
	Password       string   `toml:"password,omitempty"` // never logged; WriteTOML hides it
	CAFile         string   `toml:"ca_file,omitempty"`
	CertFile       string   `toml:"cert_file,omitempty"`
	KeyFile        string   `toml:"key_file,omitempty"`
	ServerName     string   `toml:"server_name,omitempty"`
	ALPN           []string `toml:"alpn,omitempty"`
	KeepAlive      Duration `toml:"keepalive"`      // whole seconds; 0 turns keep alive off
	SessionExpiry  Duration `toml:"session_expiry"` // whole seconds; 0 ends the cloud session with each connection
	ConnectTimeout Duration `toml:"connect_timeout"`
	ReconnectMin   Duration `toml:"reconnect_min"`
	ReconnectMax   Duration `toml:"reconnect_max"`
	DrainTimeout   Duration `toml:"drain_timeout"`
	SpoolTimeout   Duration `toml:"spool_timeout"`
	Window         int      `toml:"window"`
	RateLimit      float64  `toml:"rate_limit"`       // messages per second; 0 means no limit
	RateBurst      int      `toml:"rate_burst"`       // 0 (with no rate limit) means none
	RateLimitBytes Size     `toml:"rate_limit_bytes"` // topic and payload bytes per second; 0 means no limit

	// Limits of each of the bridge's spool queues.
	MaxBytes    Size     `toml:"max_bytes"`    // 0 means no limit
	MaxMessages int64    `toml:"max_messages"` // 0 means no limit
	MaxAge      Duration `toml:"max_age"`      // 0 means no limit
	OnFull      string   `toml:"on_full"`      // "reject_new" or "drop_oldest"

	Rules []RuleConfig `toml:"rule"`
}

// RuleConfig is one [[uplink.rule]]. Keys it leaves out keep the defaults of
// DefaultRule.
type RuleConfig struct {
	Direction string   `toml:"direction"` // "out" (to the cloud) or "in" (from the cloud)
	Local     string   `toml:"local"`     // local topic filter
	Remote    string   `toml:"remote"`    // cloud topic filter; "" means local
	MaxQoS    int      `toml:"max_qos"`   // 0, 1 or 2
	Retain    string   `toml:"retain"`    // "keep" or "clear"
	Priority  int      `toml:"priority"`  // out-rules only: 0 to 999, higher drains first
	QueueQoS0 bool     `toml:"queue_qos0"`
	MaxAge    Duration `toml:"max_age"` // out-rules only; 0 means no limit
}

// Values of the uplink keys.
const (
	RuleOut        = "out"
	RuleIn         = "in"
	RetainKeep     = "keep"
	RetainClear    = "clear"
	OnFullReject   = "reject_new"
	OnFullDropHead = "drop_oldest"

	maxRulePriority  = 999
	maxSessionExpiry = math.MaxUint32 * time.Second
	maxUplinkNameLen = 64
	hiddenPassword   = "(hidden)" // what WriteTOML writes for a password
	defaultMQTTPort  = "1883"
	defaultMQTTSPort = "8883"
)

// DefaultUplink returns an uplink with every key at its default; Name, URL
// and Rules are for the caller to set.
func DefaultUplink() UplinkConfig {
	var u UplinkConfig
	u.setDefaults()
	return u
}

func (u *UplinkConfig) setDefaults() {
	*u = UplinkConfig{
		KeepAlive:      Duration(60 * time.Second),
		SessionExpiry:  Duration(24 * time.Hour),
		ConnectTimeout: Duration(30 * time.Second),
		ReconnectMin:   Duration(time.Second),
		ReconnectMax:   Duration(2 * time.Minute),
		DrainTimeout:   Duration(2 * time.Second),
		SpoolTimeout:   Duration(30 * time.Second),
		Window:         64,
		MaxBytes:       256 * MiB,
		OnFull:         OnFullReject,
	}
}

// DefaultRule returns a rule with every key at its default; Direction and
// Local are for the caller to set.
func DefaultRule() RuleConfig {
	var r RuleConfig
	r.setDefaults()
	return r
}

func (r *RuleConfig) setDefaults() {
	*r = RuleConfig{MaxQoS: 2, Retain: RetainKeep}
}

// isTLSScheme reports whether an uplink URL scheme runs over TLS.
func isTLSScheme(scheme string) bool { return scheme == "mqtts" || scheme == "wss" }

// fillDefaults writes out the uplink defaults that depend on other keys.
func (u *UplinkConfig) fillDefaults() {
	if u.ClientID == "" && u.Name != "" {
		u.ClientID = "outpost-" + u.Name
	}
	if u.RateBurst == 0 && u.RateLimit > 0 {
		u.RateBurst = max(1, int(math.Ceil(u.RateLimit)))
	}
	for i := range u.Rules {
		if u.Rules[i].Remote == "" {
			u.Rules[i].Remote = u.Rules[i].Local
		}
	}
}

func (u *UplinkConfig) resolvePaths(abs func(*string)) {
	abs(&u.CAFile)
	abs(&u.CertFile)
	abs(&u.KeyFile)
}

func validUplinkName(s string) bool {
	if s == "" || len(s) > maxUplinkNameLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validate checks one uplink; key is "uplink[i]". It returns the cloud's
// host:port ("" when the url is bad), to tell uplinks to the same broker
// apart.
func (u *UplinkConfig) validate(p *problems, key string) (endpoint string) {
	if u.Name == "" {
		p.add(key+".name", "is required (letters, digits, '-' and '_')")
	} else if !validUplinkName(u.Name) {
		p.add(key+".name", "%q is not a valid name: use 1 to %d letters, digits, '-' or '_'", u.Name, maxUplinkNameLen)
	}

	endpoint, tlsScheme := u.checkURL(p, key)

	if len(u.ClientID) > 65535 {
		p.add(key+".client_id", "is %d bytes; at most 65535", len(u.ClientID))
	}
	if len(u.Username) > 65535 {
		p.add(key+".username", "is %d bytes; at most 65535", len(u.Username))
	}
	if len(u.Password) > 65535 {
		p.add(key+".password", "is %d bytes; at most 65535", len(u.Password))
	}

	u.validateTLS(p, key, tlsScheme)

	whole := func(k string, d Duration, hi time.Duration, what string) {
		switch {
		case d < 0 || time.Duration(d) > hi:
			p.add(key+"."+k, "%s is out of range (0s to %s%s)", d, Duration(hi), what)
		case time.Duration(d)%time.Second != 0:
			p.add(key+"."+k, "%s is not a whole number of seconds", d)
		}
	}
	positive := func(k string, d Duration) {
		if d <= 0 {
			p.add(key+"."+k, "must be more than 0s, not %s", d)
		}
	}
	whole("keepalive", u.KeepAlive, maxKeepAliveLimit, "")
	whole("session_expiry", u.SessionExpiry, maxSessionExpiry, "")
	positive("connect_timeout", u.ConnectTimeout)
	positive("reconnect_min", u.ReconnectMin)
	positive("reconnect_max", u.ReconnectMax)
	if u.ReconnectMin > 0 && u.ReconnectMax > 0 && u.ReconnectMax < u.ReconnectMin {
		p.add(key+".reconnect_max", "%s is less than reconnect_min (%s)", u.ReconnectMax, u.ReconnectMin)
	}
	positive("drain_timeout", u.DrainTimeout)
	positive("spool_timeout", u.SpoolTimeout)
	if u.Window < 1 || u.Window > 65535 {
		p.add(key+".window", "%d is out of range (1 to 65535)", u.Window)
	}
	if u.RateLimit < 0 {
		p.add(key+".rate_limit", "must not be negative (%v)", u.RateLimit)
	}
	switch {
	case u.RateBurst < 0:
		p.add(key+".rate_burst", "must not be negative (%d)", u.RateBurst)
	case u.RateBurst > 0 && u.RateLimit == 0:
		p.add(key+".rate_burst", "needs rate_limit (without a rate limit there is no burst to bound)")
	case u.RateBurst == 0 && u.RateLimit > 0:
		p.add(key+".rate_burst", "must be at least 1 with a rate_limit")
	}
	if u.RateLimitBytes < 0 {
		p.add(key+".rate_limit_bytes", "must not be negative (%s)", u.RateLimitBytes)
	}
	if u.MaxBytes < 0 {
		p.add(key+".max_bytes", "must not be negative (%s)", u.MaxBytes)
	}
	if u.MaxMessages < 0 {
		p.add(key+".max_messages", "must not be negative (%d)", u.MaxMessages)
	}
	if u.MaxAge < 0 {
		p.add(key+".max_age", "must not be negative (%s)", u.MaxAge)
	}
	switch u.OnFull {
	case OnFullReject, OnFullDropHead:
	default:
		p.add(key+".on_full", "unknown policy %q (use reject_new or drop_oldest)", u.OnFull)
	}

	if len(u.Rules) == 0 {
		p.add(key+".rule", "an uplink needs at least one [[uplink.rule]]")
	}
	for i := range u.Rules {
		u.Rules[i].validate(p, indexKey(key+".rule", i))
	}
	return endpoint
}

// checkURL checks url and returns the cloud's host:port ("" when the url is
// not usable) and whether it runs over TLS.
func (u *UplinkConfig) checkURL(p *problems, key string) (endpoint string, tlsScheme bool) {
	if u.URL == "" {
		p.add(key+".url", `is required (e.g. "mqtts://broker.example.com:8883")`)
		return "", false
	}
	url, err := url.Parse(u.URL)
	if err != nil {
		p.add(key+".url", "%q is not a URL: %v", u.URL, unwrapURLErr(err))
		return "", false
	}
	var port string
	switch url.Scheme {
	case "mqtt":
		port = defaultMQTTPort
	case "mqtts":
		port, tlsScheme = defaultMQTTSPort, true
	case "ws":
		port = "80"
	case "wss":
		port, tlsScheme = "443", true
	default:
		p.add(key+".url", "unknown scheme %q in %q (use mqtt, mqtts, ws or wss)", url.Scheme, u.URL)
		return "", false
	}
	websocket := url.Scheme == "ws" || url.Scheme == "wss"
	switch {
	case url.Hostname() == "":
		p.add(key+".url", "%q has no host", u.URL)
		return "", tlsScheme
	case url.User != nil:
		p.add(key+".url", "put the user name and password in username and password, not in the url")
	case !websocket && (url.Path != "" && url.Path != "/" || url.RawQuery != "" || url.Fragment != ""):
		p.add(key+".url", "%q has a path, query or fragment; an %s url is scheme://host[:port]", u.URL, url.Scheme)
	}
	if ps := url.Port(); ps != "" {
		if n, err := strconv.Atoi(ps); err != nil || n < 1 || n > 65535 {
			p.add(key+".url", "port %q is out of range (1 to 65535)", ps)
			return "", tlsScheme
		}
		port = ps
	}
	return strings.ToLower(url.Hostname()) + ":" + port, tlsScheme
}

func (u *UplinkConfig) validateTLS(p *problems, key string, tlsScheme bool) {
	if !tlsScheme {
		for _, f := range []struct{ k, v string }{
			{"ca_file", u.CAFile}, {"cert_file", u.CertFile}, {"key_file", u.KeyFile}, {"server_name", u.ServerName},
		} {
			if f.v != "" {
				p.add(key+"."+f.k, "applies only to mqtts urls")
			}
		}
		if len(u.ALPN) > 0 {
			p.add(key+".alpn", "applies only to mqtts urls")
		}
		return
	}
	certOK, keyOK := false, false
	switch {
	case u.CertFile != "" && u.KeyFile == "":
		p.add(key+".key_file", "cert_file needs the certificate's private key in key_file")
	case u.CertFile == "" && u.KeyFile != "":
		p.add(key+".cert_file", "key_file needs the client certificate in cert_file")
	}
	if u.CertFile != "" {
		certOK = checkFile(p, key+".cert_file", u.CertFile)
	}
	if u.KeyFile != "" {
		keyOK = checkFile(p, key+".key_file", u.KeyFile)
	}
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(u.CertFile, u.KeyFile); err != nil {
			p.add(key+".cert_file", "cannot load the certificate and key: %v", err)
		}
	}
	if u.CAFile != "" && checkFile(p, key+".ca_file", u.CAFile) {
		if pem, err := os.ReadFile(u.CAFile); err != nil {
			p.add(key+".ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			p.add(key+".ca_file", "%s holds no PEM certificate", u.CAFile)
		}
	}
	if strings.ContainsAny(u.ServerName, " \t/:") {
		p.add(key+".server_name", "%q is not a host name", u.ServerName)
	}
	for i, a := range u.ALPN {
		if a == "" || len(a) > 255 {
			p.add(indexKey(key+".alpn", i), "a protocol name is 1 to 255 bytes, not %d", len(a))
		}
	}
}

func (r *RuleConfig) validate(p *problems, key string) {
	switch r.Direction {
	case RuleOut, RuleIn:
	case "":
		p.add(key+".direction", `is required ("out" to the cloud, "in" from the cloud)`)
	default:
		p.add(key+".direction", "unknown direction %q (use out or in)", r.Direction)
	}
	localOK := checkFilter(p, key+".local", r.Local)
	remote := r.Remote
	if remote == "" {
		remote = r.Local
	}
	remoteOK := checkFilter(p, key+".remote", remote)
	if localOK && remoteOK {
		lp, lt := splitFilter(r.Local)
		rp, rt := splitFilter(remote)
		if lt != rt {
			p.add(key+".remote", "%q does not line up with local %q: after their prefixes (%q and %q) the wildcard parts must be the same (%q and %q)",
				remote, r.Local, lp, rp, lt, rt)
		}
	}
	if r.MaxQoS < 0 || r.MaxQoS > 2 {
		p.add(key+".max_qos", "%d is out of range (0 to 2)", r.MaxQoS)
	}
	switch r.Retain {
	case RetainKeep, RetainClear:
	default:
		p.add(key+".retain", "unknown retain handling %q (use keep or clear)", r.Retain)
	}
	if r.Priority < 0 || r.Priority > maxRulePriority {
		p.add(key+".priority", "%d is out of range (0 to %d)", r.Priority, maxRulePriority)
	}
	if r.MaxAge < 0 {
		p.add(key+".max_age", "must not be negative (%s)", r.MaxAge)
	}
	if r.Direction == RuleIn {
		if r.Priority != 0 {
			p.add(key+".priority", "applies only to out-rules")
		}
		if r.QueueQoS0 {
			p.add(key+".queue_qos0", "applies only to out-rules")
		}
		if r.MaxAge != 0 {
			p.add(key+".max_age", "applies only to out-rules")
		}
	}
}

// checkFilter adds a problem at key when f is not a topic filter a rule can
// use.
func checkFilter(p *problems, key, f string) bool {
	if f == "" {
		p.add(key, "is required (a topic filter, e.g. \"sensors/#\")")
		return false
	}
	if err := topic.ValidFilter(f, 0, 0); err != nil {
		p.add(key, "%q is not a valid topic filter: %v", f, err)
		return false
	}
	if strings.HasPrefix(f, "$share/") {
		p.add(key, "%q is a shared subscription; a rule needs a plain topic filter", f)
		return false
	}
	return true
}

// splitFilter splits a topic filter into the levels before its first
// wildcard level (without the '/' after them) and the rest: "a/b/#" gives
// "a/b" and "#", "+/x" gives "" and "+/x", "a/b" gives "a/b" and "".
func splitFilter(f string) (prefix, tail string) {
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if l == "+" || l == "#" {
			return strings.Join(levels[:i], "/"), strings.Join(levels[i:], "/")
		}
	}
	return f, ""
}

func unwrapURLErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}
