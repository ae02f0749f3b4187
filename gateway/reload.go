package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/outpost-gw/outpost/localbroker"
)

// reloadState is what Reload works with.
type reloadState struct {
	// mu is held by a reload from its first check to its last
	// notification, and by the gateway's stop before it stops anything
	// (stopReloads): a reload either runs wholly before the stop, or sees
	// it and changes nothing.
	mu sync.Mutex
	// stop is cancelled when the gateway starts to stop: a reload waiting
	// on a bridge gives up instead of holding the stop back.
	stop       context.Context
	cancelStop context.CancelFunc
	stopOnce   sync.Once
	waiting    atomic.Int32   // Reload calls waiting for mu (for tests)
	cfg        *Config        // in force: New's, with the reloaded keys applied
	path       string         // the config file; "" means the embedded defaults
	level      *slog.LevelVar // [log] level; nil: the level is not reloadable
	// note is what the periodic STATUS line keeps saying after a reload
	// that left keys needing a restart or that failed; "" when none.
	note atomic.Pointer[string]
}

// reloadNote is the end of the STATUS line while the last reload left
// something for a restart: "; <the reload's status>".
func (g *Gateway) reloadNote() string {
	if n := g.rl.note.Load(); n != nil && *n != "" {
		return "; " + *n
	}
	return ""
}

// SetReload tells Reload which config file to read again (outpost run's
// -c; "" for the embedded defaults) and the level variable of the root
// logger, which [log] level sets (see NewLogging). Call it before Run.
func (g *Gateway) SetReload(path string, level *slog.LevelVar) {
	g.rl.mu.Lock()
	defer g.rl.mu.Unlock()
	g.rl.path, g.rl.level = path, level
}

// ReloadResult says what a reload did.
type ReloadResult struct {
	// Err is why the new config was not taken: it did not load or
	// validate (a *ConfigError with file and line), or an auth file did not
	// parse. The gateway then runs on as before.
	Err error
	// Applied lists what changed without a restart: reloadable keys, and
	// "auth files" when password or ACL files were read again.
	Applied []string
	// Restart lists the keys that changed and take effect only at the next
	// start, such as "listener[0].address" or "uplink[0].url".
	Restart []string
	// Disconnected counts the clients that the new anonymous rule or
	// password file no longer admits.
	Disconnected int
}

// Status is the one-line summary of r, for systemd's STATUS= and the log.
func (r ReloadResult) Status() string {
	if r.Err != nil {
		first, _, _ := strings.Cut(r.Err.Error(), "\n")
		return "reload failed, running on the previous config: " + first
	}
	var b strings.Builder
	b.WriteString("reloaded")
	if len(r.Applied) > 0 {
		b.WriteString(": applied " + strings.Join(r.Applied, ", "))
	} else {
		b.WriteString(": nothing to apply")
	}
	if r.Disconnected > 0 {
		fmt.Fprintf(&b, "; %d clients disconnected by the new auth files", r.Disconnected)
	}
	if len(r.Restart) > 0 {
		b.WriteString("; restart needed for " + strings.Join(r.Restart, ", "))
	}
	return b.String()
}

// Reload answers SIGHUP (systemctl reload): it reads the config file again
// and applies what can change while running, and tells systemd about it
// (RELOADING=1 with MONOTONIC_USEC, then READY=1 with a STATUS= line that
// says what happened), as Type=notify-reload expects.
//
// Applied at once: [log] level; every listener's allow_anonymous,
// password_file and acl_file, whose files are read again even when the
// keys did not change (see localbroker.Broker.ApplyAuth for what happens to
// connected clients); each uplink's [[uplink.rule]] list (see
// uplink.Bridge.SetRules); [mqttsn] acl_file, read again like the
// listeners', and usernames (see mqttsn.Gateway.SetAccess); [http]
// password_file, read again likewise (the server forgets the credentials
// it had checked). Any other changed key is logged and listed as needing a
// restart. A file that does not load or validate, or an auth
// file that does not parse, changes nothing: the error is logged with its
// file and line, and the gateway runs on with the config it has.
func (g *Gateway) Reload() ReloadResult {
	g.rl.waiting.Add(1)
	g.rl.mu.Lock()
	g.rl.waiting.Add(-1)
	defer g.rl.mu.Unlock()
	ready := false
	select {
	case <-g.ready:
		ready = !g.stopping.Load()
	default:
	}
	if !ready {
		// The components are starting (or stopping); a bridge may be
		// between reading its rules and subscribing for them.
		err := errors.New("the gateway is not running (starting or stopping); reload again once it runs")
		g.log.Warn("reload refused", "err", err)
		return ReloadResult{Err: err}
	}
	notify := os.Getenv("NOTIFY_SOCKET") != ""
	if notify {
		g.sdNotify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec() + "\nSTATUS=reloading the configuration")
	}
	r := g.reload(g.rl.stopContext())
	switch {
	case r.Err != nil:
		g.log.Error("reload failed; running on the previous config", "err", r.Err)
	case len(r.Restart) > 0:
		g.log.Warn("config reloaded; some changes need a restart", "applied", r.Applied, "restart_needed", r.Restart, "disconnected", r.Disconnected)
	default:
		g.log.Info("config reloaded", "applied", r.Applied, "disconnected", r.Disconnected)
	}
	note := ""
	if r.Err != nil || len(r.Restart) > 0 {
		note = time.Now().Format("15:04:05") + " " + r.Status()
	}
	g.rl.note.Store(&note)
	if notify {
		g.sdNotify(daemon.SdNotifyReady + "\nSTATUS=" + r.Status())
	}
	return r
}

func (g *Gateway) sdNotify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		g.log.Warn("systemd notify failed", "err", err)
	}
}

// stopContext returns the context that stopReloads cancels.
func (r *reloadState) stopContext() context.Context {
	r.stopOnce.Do(func() { r.stop, r.cancelStop = context.WithCancel(context.Background()) })
	return r.stop
}

// stopReloads is called by the gateway's stop once g.stopping is set: it
// makes a reload in progress give up waiting on bridges, and waits for it
// to return, so that no reload changes a component that is stopping and no
// READY=1 of a reload follows the notifier's STOPPING=1. Reloads after it
// see g.stopping and are refused.
func (g *Gateway) stopReloads() {
	g.rl.stopContext()
	g.rl.cancelStop()
	g.rl.mu.Lock()
	g.rl.mu.Unlock() // nothing to do under it: this waits for the reload in progress
}

// reload reads the config file again and applies it; g.rl.mu is held.
func (g *Gateway) reload(stop context.Context) ReloadResult {
	old := g.rl.cfg
	if old == nil {
		return ReloadResult{Err: fmt.Errorf("gateway built without a config")}
	}
	g.log.Info("reload requested", "config", g.rl.path)
	if g.rl.path == "" {
		// The embedded defaults cannot change; their listener has no
		// auth files.
		return ReloadResult{}
	}
	cfg, err := Load(g.rl.path)
	if err != nil {
		return ReloadResult{Err: err}
	}
	var r ReloadResult
	for _, key := range diffConfig(old, cfg) {
		if reloadable(key) {
			r.Applied = append(r.Applied, key)
		} else {
			r.Restart = append(r.Restart, key)
		}
	}

	// Prepare what can fail before changing anything.
	var auth *localbroker.AuthUpdate
	if g.broker != nil {
		la := map[string]localbroker.ListenerAuth{}
		files := false
		for _, l := range cfg.Listeners {
			if !slices.ContainsFunc(old.Listeners, func(o ListenerConfig) bool { return o.Name == l.Name }) {
				continue // a new listener: needs a restart
			}
			la[l.Name] = localbroker.ListenerAuth{AllowAnonymous: l.AllowAnonymous, PasswordFile: l.PasswordFile, ACLFile: l.ACLFile}
			files = files || l.PasswordFile != "" || l.ACLFile != ""
		}
		if auth, err = g.broker.LoadAuth(la); err != nil {
			return ReloadResult{Err: err}
		}
		if files {
			r.Applied = append(r.Applied, "auth files")
		}
	}
	snAccess, err := g.loadMQTTSNAccess(cfg)
	if err != nil {
		return ReloadResult{Err: err}
	}
	httpAuth, err := g.loadHTTPAuth(cfg)
	if err != nil {
		return ReloadResult{Err: err}
	}

	// Apply.
	if g.rl.level != nil {
		g.rl.level.Set(logLevel(cfg.Log.Level))
	}
	old.Log.Level = cfg.Log.Level
	if auth != nil {
		r.Disconnected = g.broker.ApplyAuth(auth)
	}
	g.applyMQTTSNAccess(snAccess, cfg, &r)
	g.applyHTTPAuth(httpAuth, cfg, &r)
	for i := range old.Listeners {
		o := &old.Listeners[i]
		if j := slices.IndexFunc(cfg.Listeners, func(l ListenerConfig) bool { return l.Name == o.Name }); j >= 0 {
			n := cfg.Listeners[j]
			o.AllowAnonymous, o.PasswordFile, o.ACLFile = n.AllowAnonymous, n.PasswordFile, n.ACLFile
		}
	}
	for i := range old.Uplinks {
		o := &old.Uplinks[i]
		j := slices.IndexFunc(cfg.Uplinks, func(u UplinkConfig) bool { return u.Name == o.Name })
		if j < 0 || reflect.DeepEqual(o.Rules, cfg.Uplinks[j].Rules) || i >= len(g.bridges) {
			continue
		}
		n := &cfg.Uplinks[j]
		ctx, cancel := context.WithTimeout(stop, time.Duration(o.ConnectTimeout)+5*time.Second)
		_, err := g.bridges[i].SetRules(ctx, n.UplinkOptions().Rules)
		cancel()
		if err != nil {
			// Load validated the rules: this is not expected. The
			// bridge keeps its rules; say so.
			g.log.Error("uplink rules not applied", "uplink", o.Name, "err", err)
			r.Restart = append(r.Restart, fmt.Sprintf("uplink[%d].rule", i))
			continue
		}
		o.Rules = slices.Clone(n.Rules)
	}
	return r
}

// reloadableKeys are the config keys (as diffConfig names them) that
// Reload applies without a restart.
var reloadableKeys = regexp.MustCompile(`^(log\.level|listener\[\d+\]\.(allow_anonymous|password_file|acl_file)|uplink\[\d+\]\.rule(\[.*)?|mqttsn\.(acl_file|usernames)|http\.password_file)$`)

func reloadable(key string) bool { return reloadableKeys.MatchString(key) }

// diffConfig lists the keys whose values differ between a and b, named as
// in the file ("spool.sync", "listener[0].address", "uplink[1].rule[0].local").
// A list of tables that changed length is one key ("listener",
// "uplink[0].rule").
func diffConfig(a, b *Config) []string {
	var keys []string
	diffValue(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &keys)
	return keys
}

func diffValue(a, b reflect.Value, key string, keys *[]string) {
	switch a.Kind() {
	case reflect.Struct:
		t := a.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				name = f.Name
			}
			if key != "" {
				name = key + "." + name
			}
			diffValue(a.Field(i), b.Field(i), name, keys)
		}
	case reflect.Slice, reflect.Map:
		if a.Len() == 0 && b.Len() == 0 {
			return // nil and empty are the same to the config
		}
		if a.Kind() == reflect.Map || a.Len() != b.Len() || a.Type().Elem().Kind() != reflect.Struct {
			if !reflect.DeepEqual(a.Interface(), b.Interface()) {
				*keys = append(*keys, key)
			}
			return
		}
		for i := range a.Len() {
			diffValue(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", key, i), keys)
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*keys = append(*keys, key)
		}
	}
}

// cloneConfig returns a deep copy of c, which Reload compares the next
// config with.
func cloneConfig(c *Config) (*Config, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("gateway: copy config: %w", err)
	}
	var out Config
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("gateway: copy config: %w", err)
	}
	return &out, nil
}
