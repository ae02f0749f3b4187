package gateway

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// diffConfig names the changed keys as the file does, and Reload's split
// into applied and restart-needed keys follows reloadableKeys.
func TestDiffConfig(t *testing.T) {
	a := testConfig()
	a.Uplinks = []UplinkConfig{DefaultUplink()}
	a.Uplinks[0].Name = "cloud"
	a.Uplinks[0].Rules = []RuleConfig{DefaultRule()}
	b, err := cloneConfig(a)
	if err != nil {
		t.Fatal(err)
	}
	if keys := diffConfig(a, b); len(keys) != 0 {
		t.Fatalf("a copy differs in %v", keys)
	}
	b.Log.Level = "debug"
	b.Log.Format = "json"
	b.Listeners[0].ACLFile = "/etc/acl"
	b.Listeners[0].Address = ":1884"
	b.Spool.Sync = "never"
	b.Uplinks[0].Rules[0].Local = "x/#"
	b.Uplinks[0].URL = "mqtt://elsewhere"
	b.MQTTSN.Predefined = map[string]string{"1": "a"}
	b.Listeners = append(b.Listeners, ListenerConfig{Name: "second"})
	want := []string{"log.level", "log.format", "spool.sync", "listener", "mqttsn.predefined", "uplink[0].url", "uplink[0].rule[0].local"}
	got := diffConfig(a, b)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("diffConfig = %v, want %v", got, want)
	}
	for key, want := range map[string]bool{
		"log.level": true, "log.format": false, "listener[2].acl_file": true, "listener[0].password_file": true,
		"listener[0].allow_anonymous": true, "listener[0].address": false, "listener": false,
		"uplink[0].rule": true, "uplink[1].rule[3].max_qos": true, "uplink[0].url": false, "uplink[0].rulex": false,
		"mqttsn.acl_file": true, "mqttsn.usernames": true, "mqttsn.predefined": false, "spool.sync": false,
		"http.password_file": true, "http.address": false, "http.cert_file": false,
	} {
		if got := reloadable(key); got != want {
			t.Errorf("reloadable(%q) = %v, want %v", key, got, want)
		}
	}
}

// Reload of a running gateway from its file, under a fake systemd: a
// changed level applies, a changed address is listed as needing a
// restart, a broken file changes nothing, and each reload is framed by
// RELOADING=1 (with MONOTONIC_USEC) and READY=1 with a STATUS line.
func TestReloadNotifiesAndApplies(t *testing.T) {
	g, file, lv, next, _, _ := reloadGateway(t, reloadConf("info", "127.0.0.1:0"))
	read := func(want string) string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if s := next(time.Until(deadline)); strings.Contains(s, want) {
				return s
			}
		}
		t.Fatalf("no notification with %q", want)
		return ""
	}

	writeConf(t, file, reloadConf("debug", "127.0.0.1:1"))
	r := g.Reload()
	if r.Err != nil || !slices.Equal(r.Applied, []string{"log.level"}) || !slices.Equal(r.Restart, []string{"listener[0].address"}) {
		t.Fatalf("Reload = %+v", r)
	}
	if lv.Level() != slog.LevelDebug {
		t.Errorf("level %v after the reload, want debug", lv.Level())
	}
	if s := read("RELOADING=1"); !strings.Contains(s, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", s)
	}
	if s := read("READY=1"); !strings.Contains(s, "STATUS=reloaded: applied log.level; restart needed for listener[0].address") {
		t.Errorf("READY=1 %q", s)
	}

	writeConf(t, file, reloadConf("loud", "127.0.0.1:1"))
	r = g.Reload()
	if r.Err == nil || !strings.Contains(r.Err.Error(), file+":3:") || !strings.Contains(r.Err.Error(), "log.level") {
		t.Fatalf("Reload of a broken file = %+v, want an error at %s:3 log.level", r, file)
	}
	if lv.Level() != slog.LevelDebug {
		t.Errorf("level %v after a broken reload, want debug still", lv.Level())
	}
	read("RELOADING=1")
	if s := read("READY=1"); !strings.Contains(s, "STATUS=reload failed, running on the previous config: "+file+":3:") {
		t.Errorf("READY=1 %q", s)
	}

	// The same file again: nothing new to apply; the address still needs
	// the restart it needed.
	writeConf(t, file, reloadConf("debug", "127.0.0.1:1"))
	if r := g.Reload(); r.Err != nil || len(r.Applied) != 0 || !slices.Equal(r.Restart, []string{"listener[0].address"}) {
		t.Fatalf("second Reload = %+v", r)
	}
	// The periodic STATUS line keeps saying so until a restart.
	if s := g.statusLine(); !strings.Contains(s, "spool depth 0; ") || !strings.HasSuffix(s, "restart needed for listener[0].address") {
		t.Errorf("status line %q", s)
	}
}
