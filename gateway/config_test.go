package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/spool"
	"github.com/outpost-gw/outpost/uplink"
)

// examplesDir returns the absolute path of configs/examples (demo TLS files,
// password file, ACL).
func examplesDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "configs", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeConfig writes doc, with {{ex}} replaced by examplesDir, to a file in a
// fresh temporary folder and returns its path.
func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	doc = strings.ReplaceAll(doc, "{{ex}}", examplesDir(t))
	path := filepath.Join(t.TempDir(), "outpost.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// markedLine returns the 1-based line of doc that holds the marker "#<-".
func markedLine(t *testing.T, doc string) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, "#<-") {
			return i + 1
		}
	}
	t.Fatalf("no #<- marker in:\n%s", doc)
	return 0
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	if c.DataDir != "./outpost-data" || c.Log != (LogConfig{Level: "info", Format: "text"}) {
		t.Errorf("Default() data_dir/log = %q/%+v", c.DataDir, c.Log)
	}
	want := []ListenerConfig{{Name: "default", Type: "tcp", Address: ":1883", AllowAnonymous: true}}
	if !reflect.DeepEqual(c.Listeners, want) {
		t.Errorf("Default().Listeners = %+v; want %+v", c.Listeners, want)
	}
	// Default returns a fresh value each time.
	c.Listeners[0].Name = "changed"
	if Default().Listeners[0].Name != "default" {
		t.Error("Default() shares state between calls")
	}
}

// The defaults of BrokerConfig must give the broker what its own zero values
// mean (see localbroker.Options), except where the config says otherwise.
func TestDefaultBrokerOptions(t *testing.T) {
	opts := Default().BrokerOptions()
	retain := true
	want := localbroker.Options{
		Listeners:           []localbroker.ListenerOptions{{Name: "default", Kind: "tcp", Address: ":1883", AllowAnonymous: true}},
		MaxConnections:      10000,
		MaxPacketSize:       1 << 20,
		ConnectTimeout:      10 * time.Second,
		ReceiveMaximum:      64,
		MaxInflight:         64,
		MaxQueuedMessages:   1000,
		MaxQueuedBytes:      16 << 20,
		MaxOutboundBytes:    4 << 20,
		WriteTimeout:        30 * time.Second,
		MaxTopicLength:      65535,
		MaxTopicLevels:      128,
		MaxKeepAlive:        0,
		MaxSessionExpiry:    0,
		TopicAliasMaximum:   64,
		RetainAvailable:     &retain,
		SysInterval:         10 * time.Second,
		MaxRetainedMessages: 100000,
	}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("BrokerOptions() =\n%+v\nwant\n%+v", opts, want)
	}
}

// Every field of localbroker.Options and ListenerOptions has a config key: a
// config with every key set to a non-default value gives options where every
// field is set. When the broker gains a field, this test fails until the
// config has a key for it.
func TestBrokerOptionsMapsEveryField(t *testing.T) {
	path := writeConfig(t, `
[broker]
max_connections = 7
max_packet_size = "64KiB"
connect_timeout = "3s"
receive_maximum = 8
max_inflight = 9
max_queued_messages = 10
max_queued_bytes = "1MiB"
max_outbound_bytes = "2MiB"
write_timeout = "4s"
max_topic_length = 100
max_topic_levels = 5
max_keepalive = "60s"
max_session_expiry = "1h"
topic_alias_maximum = 11
retain_available = false
sys_interval = "0s"
max_retained_messages = 12

[[listener]]
name = "all"
type = "wss"
address = "127.0.0.1:0"
allow_anonymous = true
password_file = "{{ex}}/demo-passwd"
acl_file = "{{ex}}/demo-acl"
ws_path = "/ws"
[listener.tls]
cert_file = "{{ex}}/demo-server.pem"
key_file = "{{ex}}/demo-server.key"
ca_file = "{{ex}}/demo-ca.pem"
require_client_cert = true
use_cn_as_username = true
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := c.BrokerOptions()
	if *opts.RetainAvailable || opts.SysInterval >= 0 || opts.MaxKeepAlive != 60 {
		t.Errorf("retain %v, sys interval %v, keepalive %d; want false, negative (off), 60",
			*opts.RetainAvailable, opts.SysInterval, opts.MaxKeepAlive)
	}
	checkAllSet(t, "localbroker.Options", reflect.ValueOf(opts), "Logger", "Listeners")
	if len(opts.Listeners) != 1 {
		t.Fatalf("%d listeners", len(opts.Listeners))
	}
	checkAllSet(t, "localbroker.ListenerOptions", reflect.ValueOf(opts.Listeners[0]))
}

// The defaults of SpoolConfig are the spool's own defaults, in data_dir/spool.
func TestDefaultSpoolOptions(t *testing.T) {
	opts := Default().SpoolOptions()
	want := spool.Options{
		Dir:                 filepath.Join("outpost-data", "spool"),
		Sync:                spool.SyncAlways,
		SyncInterval:        spool.DefaultSyncInterval,
		MemTableBytes:       spool.DefaultMemTableBytes,
		BlockCacheBytes:     spool.DefaultBlockCacheBytes,
		IndexCacheBytes:     spool.DefaultIndexCacheBytes,
		ValueLogFileBytes:   spool.DefaultValueLogFileBytes,
		ValueThresholdBytes: spool.DefaultValueThresholdBytes,
		GCInterval:          spool.DefaultGCInterval,
		ExpireInterval:      spool.DefaultExpireInterval,
		MinFreeBytes:        spool.DefaultMinFreeBytes,
		TrimInterval:        spool.DefaultTrimInterval,
	}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("SpoolOptions() =\n%+v\nwant\n%+v", opts, want)
	}
}

// Every field of spool.Options has a config key; "0s" and 0 turn GC and the
// free-space check off, which the spool spells as negative values.
func TestSpoolOptionsMapsEveryField(t *testing.T) {
	path := writeConfig(t, `
data_dir = "state"
[spool]
sync = "interval"
sync_interval = "250ms"
min_free = "1GiB"
memtable_size = "16MiB"
block_cache_size = "1MiB"
index_cache_size = "2MiB"
value_log_file_size = "32MiB"
value_threshold = "4KiB"
gc_interval = "1h"
expire_interval = "5s"
trim_interval = "7s"
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := c.SpoolOptions()
	want := spool.Options{
		Dir:                 filepath.Join(filepath.Dir(path), "state", "spool"),
		Sync:                spool.SyncPeriodic,
		SyncInterval:        250 * time.Millisecond,
		MemTableBytes:       16 << 20,
		BlockCacheBytes:     1 << 20,
		IndexCacheBytes:     2 << 20,
		ValueLogFileBytes:   32 << 20,
		ValueThresholdBytes: 4 << 10,
		GCInterval:          time.Hour,
		ExpireInterval:      5 * time.Second,
		MinFreeBytes:        1 << 30,
		TrimInterval:        7 * time.Second,
	}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("SpoolOptions() =\n%+v\nwant\n%+v", opts, want)
	}
	checkAllSet(t, "spool.Options", reflect.ValueOf(opts), "Logger")

	c.Spool.GCInterval = 0
	c.Spool.MinFree = 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	opts = c.SpoolOptions()
	if opts.GCInterval >= 0 || opts.MinFreeBytes >= 0 {
		t.Errorf("gc_interval 0s and min_free 0 give GCInterval %v and MinFreeBytes %d; want both negative (off)", opts.GCInterval, opts.MinFreeBytes)
	}
	if _, err := spool.New(opts); err != nil {
		t.Errorf("spool.New refuses the options: %v", err)
	}
}

// Every config the validation accepts gives options spool.New accepts, at
// the edges of each range.
func TestSpoolEdgesAreAcceptedBySpool(t *testing.T) {
	for _, edit := range []func(*SpoolConfig){
		func(s *SpoolConfig) { s.MemTableSize = minMemTableSize; s.ValueThreshold = minMemTableSize * 15 / 100 },
		func(s *SpoolConfig) { s.ValueLogFileSize = minValueLogFileSize },
		func(s *SpoolConfig) { s.ValueLogFileSize = maxValueLogFileSize - 1 },
		func(s *SpoolConfig) { s.MemTableSize = 64 * MiB; s.ValueThreshold = maxValueThreshold },
		func(s *SpoolConfig) { s.BlockCacheSize, s.IndexCacheSize, s.ValueThreshold = 1, 1, 1 },
		func(s *SpoolConfig) { s.Sync = "never"; s.SyncInterval = Duration(time.Nanosecond) },
	} {
		c := Default()
		edit(&c.Spool)
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: Validate = %v", c.Spool, err)
			continue
		}
		if _, err := spool.New(c.SpoolOptions()); err != nil {
			t.Errorf("%+v: spool.New = %v", c.Spool, err)
		}
	}
}

func checkAllSet(t *testing.T, what string, v reflect.Value, except ...string) {
	t.Helper()
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if !strings.Contains(strings.Join(except, ","), name) && v.Field(i).IsZero() {
			t.Errorf("%s.%s has no config key (or the config does not set it)", what, name)
		}
	}
}

func TestLoadKeepsDefaultsForMissingKeys(t *testing.T) {
	c, err := Load(writeConfig(t, "[broker]\nmax_connections = 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Broker.MaxConnections = 5
	want.DataDir = filepath.Join(filepath.Dir(c.DataDir), "outpost-data")
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadListenersReplaceTheDefault(t *testing.T) {
	c, err := Load(writeConfig(t, `
[[listener]]
address = "127.0.0.1:1884"
[[listener]]
name = "web"
type = "ws"
address = ":8080"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ListenerConfig{
		{Name: "tcp@127.0.0.1:1884", Type: "tcp", Address: "127.0.0.1:1884"},
		{Name: "web", Type: "ws", Address: ":8080", WSPath: "/mqtt"},
	}
	if !reflect.DeepEqual(c.Listeners, want) {
		t.Errorf("listeners = %+v; want %+v", c.Listeners, want)
	}
}

func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "conf")
	if err := os.MkdirAll(filepath.Join(sub, "auth"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"auth/passwd", "auth/acl"} {
		if err := os.WriteFile(filepath.Join(sub, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := `data_dir = "state"
[[listener]]
address = ":1883"
password_file = "auth/passwd"
acl_file = "/abs/is/kept"
`
	path := filepath.Join(sub, "outpost.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// acl_file is absolute and does not exist: the error shows it unchanged.
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "/abs/is/kept") {
		t.Fatalf("Load = %v; want an error about /abs/is/kept", err)
	}
	doc = strings.Replace(doc, "/abs/is/kept", "auth/acl", 1)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// Load from another working directory, through a relative path.
	t.Chdir(dir)
	c, err := Load(filepath.Join("conf", "outpost.toml"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	if c.DataDir != filepath.Join(sub, "state") || l.PasswordFile != filepath.Join(sub, "auth/passwd") || l.ACLFile != filepath.Join(sub, "auth/acl") {
		t.Errorf("data_dir %q, password_file %q, acl_file %q; want them under %s", c.DataDir, l.PasswordFile, l.ACLFile, sub)
	}
}

// Each case is a document with one problem, on the line marked "#<-"; the
// error must name the file, that line and the key, as "file:line: key: ".
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, key, msg, doc string
	}{
		{"unknown top-level key", "bogus", "unknown key", `
data_dir = "d"
bogus = 1 #<-
`},
		{"unknown broker key", "broker.max_conections", "unknown key", `
[broker]
max_connections = 5
max_conections = 5 #<-
`},
		{"unknown table", "brokr", "unknown key", `
[log]
level = "info"
[brokr] #<-
max_connections = 5
`},
		{"unknown key in the second listener", "listener[1].adress", "unknown key", `
[[listener]]
address = ":1"
[[listener]]
name = "b"
adress = ":2" #<-
`},
		{"unknown key in a tls table", "listener[0].tls.certfile", "unknown key", `
[[listener]]
type = "tls"
address = ":8883"
[listener.tls]
cert_file = "{{ex}}/demo-server.pem"
key_file = "{{ex}}/demo-server.key"
certfile = "x" #<-
`},
		{"string for an integer", "broker.max_connections", "want an integer, got a string", `
[broker]
max_connections = "many" #<-
`},
		{"dotted key", "broker.max_connections", "must be at least 1, not -5", `
data_dir = "d"
broker.max_connections = -5 #<-
`},
		{"wrong type in the first of two listeners", "listener[0].allow_anonymous", "want a boolean (true or false), got a string", `
[[listener]]
address = ":1"
allow_anonymous = "yes" #<-
[[listener]]
address = ":2"
allow_anonymous = true
`},
		{"string for a table", "log", "want a table, got a string", `
log = "debug" #<-
`},
		{"float for an integer", "broker.max_inflight", "want an integer, got a float", `
[broker]
max_inflight = 1.5 #<-
`},
		{"table for a listener array", "listener", "want an array of tables, got a table", `
[listener] #<-
address = ":1"
`},
		{"size with a bad unit", "broker.max_packet_size", `unknown unit "MiBs"`, `
[broker]
max_packet_size = "1MiBs" #<-
`},
		{"negative size", "broker.max_queued_bytes", "must not be negative", `
[broker]
max_queued_bytes = -1 #<-
`},
		{"negative size string", "broker.max_outbound_bytes", "must not be negative", `
[broker]
max_outbound_bytes = "-4MiB" #<-
`},
		{"size as a float", "broker.max_queued_bytes", "got a float", `
[broker]
max_queued_bytes = 1.5 #<-
`},
		{"zero size", "broker.max_outbound_bytes", "must be at least 1 byte", `
[broker]
max_outbound_bytes = 0 #<-
`},
		{"packet size too large", "broker.max_packet_size", "1GiB is out of range (64 to 268435460 bytes)", `
[broker]
max_packet_size = "1GiB" #<-
`},
		{"packet size too small", "broker.max_packet_size", "32B is out of range (64 to 268435460 bytes)", `
[broker]
max_packet_size = 32 #<-
`},
		{"duration without a unit", "broker.connect_timeout", `invalid duration "10"`, `
[broker]
connect_timeout = "10" #<-
`},
		{"duration as an integer", "broker.write_timeout", "want a duration string", `
[broker]
write_timeout = 30 #<-
`},
		{"negative duration", "broker.connect_timeout", "must be more than 0s, not -1s", `
[broker]
connect_timeout = "-1s" #<-
`},
		{"negative session expiry", "broker.max_session_expiry", "must not be negative", `
[broker]
max_session_expiry = "-1h" #<-
`},
		{"negative sys interval", "broker.sys_interval", "must not be negative", `
[broker]
sys_interval = "-10s" #<-
`},
		{"keepalive not in whole seconds", "broker.max_keepalive", "not a whole number of seconds", `
[broker]
max_keepalive = "1500ms" #<-
`},
		{"keepalive too long", "broker.max_keepalive", "out of range (0s to 18h12m15s)", `
[broker]
max_keepalive = "20h" #<-
`},
		{"receive maximum too large", "broker.receive_maximum", "70000 is out of range (1 to 65535)", `
[broker]
receive_maximum = 70000 #<-
`},
		{"zero topic alias maximum", "broker.topic_alias_maximum", "0 is out of range (1 to 65535)", `
[broker]
topic_alias_maximum = 0 #<-
`},
		{"zero max connections", "broker.max_connections", "must be at least 1, not 0", `
[broker]
max_connections = 0 #<-
`},
		{"unknown spool key", "spool.sync_every", "unknown key", `
[spool]
sync = "interval"
sync_every = "1s" #<-
`},
		{"unknown sync policy", "spool.sync", `unknown sync policy "sometimes" (use always, interval or never)`, `
[spool]
sync = "sometimes" #<-
`},
		{"sync policy as a boolean", "spool.sync", "want a string, got a boolean", `
[spool]
sync = true #<-
`},
		{"zero sync interval", "spool.sync_interval", "must be more than 0s, not 0s", `
[spool]
sync = "interval"
sync_interval = "0s" #<-
`},
		{"sync interval without a unit", "spool.sync_interval", `invalid duration "5"`, `
[spool]
sync_interval = "5" #<-
`},
		{"negative min free", "spool.min_free", "must not be negative", `
[spool]
min_free = "-64MiB" #<-
`},
		{"memtable too small", "spool.memtable_size", "must be at least 1MiB, not 512KiB", `
[spool]
memtable_size = "512KiB" #<-
`},
		{"zero block cache", "spool.block_cache_size", "must be at least 1 byte, not 0B", `
[spool]
block_cache_size = 0 #<-
`},
		{"zero index cache", "spool.index_cache_size", "must be at least 1 byte, not 0B", `
[spool]
index_cache_size = "0B" #<-
`},
		{"value log file too large", "spool.value_log_file_size", "2GiB is out of range (at least 1MiB, less than 2GiB)", `
[spool]
value_log_file_size = "2GiB" #<-
`},
		{"value log file too small", "spool.value_log_file_size", "64KiB is out of range", `
[spool]
value_log_file_size = "64KiB" #<-
`},
		{"value threshold above 1MiB", "spool.value_threshold", "2MiB is more than 1MiB", `
[spool]
memtable_size = "64MiB"
value_threshold = "2MiB" #<-
`},
		{"value threshold above 15% of the memtable", "spool.value_threshold", "512KiB is more than 15% of memtable_size (2MiB, so at most 314572 bytes)", `
[spool]
memtable_size = "2MiB"
value_threshold = "512KiB" #<-
`},
		{"zero value threshold", "spool.value_threshold", "must be at least 1 byte", `
[spool]
value_threshold = 0 #<-
`},
		{"negative gc interval", "spool.gc_interval", "must not be negative (-10m)", `
[spool]
gc_interval = "-10m" #<-
`},
		{"zero expire interval", "spool.expire_interval", "must be more than 0s, not 0s", `
[spool]
expire_interval = "0s" #<-
`},
		{"spool given as a string", "spool", "want a table, got a string", `
spool = "/var/spool" #<-
`},
		{"unknown uplink key", "uplink[0].keep_alive", "unknown key", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
keep_alive = "30s" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"unknown key in the second rule", "uplink[0].rule[1].topic", "unknown key", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
[[uplink.rule]]
direction = "in"
topic = "cmd/#" #<-
`},
		{"uplink without a name", "uplink[0].name", "is required", `
[[uplink]] #<-
url = "mqtt://127.0.0.1"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"uplink name with a dot", "uplink[0].name", `"site.7" is not a valid name`, `
[[uplink]]
name = "site.7" #<-
url = "mqtt://127.0.0.1"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"duplicate uplink names", "uplink[1].name", `uplink name "cloud" is already used by uplink[0]`, `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
[[uplink]]
name = "cloud" #<-
url = "mqtt://127.0.0.2"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"same client id at the same broker", "uplink[1].client_id", `uplink[0] connects to broker.example:8883 with the same client id "gw"`, `
[[uplink]]
name = "a"
url = "mqtts://broker.example"
client_id = "gw"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
[[uplink]]
name = "b"
url = "mqtts://BROKER.example:8883"
client_id = "gw" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"uplink without a url", "uplink[0].url", "is required", `
[[uplink]] #<-
name = "cloud"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"unknown scheme", "uplink[0].url", `unknown scheme "http"`, `
[[uplink]]
name = "cloud"
url = "http://broker.example/mqtt" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"url without a scheme", "uplink[0].url", `unknown scheme ""`, `
[[uplink]]
name = "cloud"
url = "broker.example" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"url with a path", "uplink[0].url", "has a path, query or fragment", `
[[uplink]]
name = "cloud"
url = "mqtt://broker.example/x" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"url with a bad port", "uplink[0].url", `port "0" is out of range (1 to 65535)`, `
[[uplink]]
name = "cloud"
url = "mqtt://broker.example:0" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"url with credentials", "uplink[0].url", "put the user name and password in username and password", `
[[uplink]]
name = "cloud"
url = "mqtt://u:p@broker.example" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"tls file on an mqtt url", "uplink[0].ca_file", "applies only to mqtts urls", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
ca_file = "{{ex}}/demo-ca.pem" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"alpn on an mqtt url", "uplink[0].alpn", "applies only to mqtts urls", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
alpn = ["x-amzn-mqtt-ca"] #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"alpn that is not an array", "uplink[0].alpn", "want an array of strings, got a string", `
[[uplink]]
name = "cloud"
url = "mqtts://broker.example"
alpn = "x-amzn-mqtt-ca" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"alpn with a number", "uplink[0].alpn[1]", "want a string, got an integer", `
[[uplink]]
name = "cloud"
url = "mqtts://broker.example"
alpn = ["mqtt", 3] #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"empty alpn protocol", "uplink[0].alpn[0]", "a protocol name is 1 to 255 bytes, not 0", `
[[uplink]]
name = "cloud"
url = "mqtts://broker.example"
alpn = [""] #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"client certificate without a key", "uplink[0].key_file", "cert_file needs the certificate's private key", `
[[uplink]] #<-
name = "cloud"
url = "mqtts://broker.example"
cert_file = "{{ex}}/demo-device.pem"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"client certificate and key that do not match", "uplink[0].cert_file", "cannot load the certificate and key", `
[[uplink]]
name = "cloud"
url = "mqtts://broker.example"
cert_file = "{{ex}}/demo-device.pem" #<-
key_file = "{{ex}}/demo-server.key"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"missing uplink ca file", "uplink[0].ca_file", "no such file or directory", `
[[uplink]]
name = "cloud"
url = "mqtts://broker.example"
ca_file = "nope.pem" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"keepalive in milliseconds", "uplink[0].keepalive", "is not a whole number of seconds", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
keepalive = "1500ms" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"negative session expiry", "uplink[0].session_expiry", "-1h is out of range (0s to ", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
session_expiry = "-1h" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"zero connect timeout", "uplink[0].connect_timeout", "must be more than 0s, not 0s", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
connect_timeout = "0s" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"reconnect max below min", "uplink[0].reconnect_max", "500ms is less than reconnect_min (1s)", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
reconnect_max = "500ms" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"zero window", "uplink[0].window", "0 is out of range (1 to 65535)", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
window = 0 #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"negative rate limit", "uplink[0].rate_limit", "must not be negative (-0.5)", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
rate_limit = -0.5 #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"rate limit as a string", "uplink[0].rate_limit", "want a number, got a string", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
rate_limit = "10/s" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"rate burst without a rate limit", "uplink[0].rate_burst", "needs rate_limit", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
rate_burst = 5 #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"byte rate limit per second", "uplink[0].rate_limit_bytes", `unknown unit "KiB/s"`, `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
rate_limit_bytes = "64KiB/s" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"negative byte rate limit", "uplink[0].rate_limit_bytes", "must not be negative", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
rate_limit_bytes = -1 #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"negative max bytes", "uplink[0].max_bytes", "must not be negative", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
max_bytes = "-1MiB" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"negative max messages", "uplink[0].max_messages", "must not be negative (-1)", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
max_messages = -1 #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"unknown on_full policy", "uplink[0].on_full", `unknown policy "drop-oldest" (use reject_new or drop_oldest)`, `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
on_full = "drop-oldest" #<-
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`},
		{"uplink without rules", "uplink[0].rule", "at least one [[uplink.rule]]", `
[[uplink]] #<-
name = "cloud"
url = "mqtt://127.0.0.1"
`},
		{"rule without a direction", "uplink[0].rule[0].direction", "is required", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]] #<-
local = "a/#"
`},
		{"unknown direction", "uplink[0].rule[0].direction", `unknown direction "both"`, `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "both" #<-
local = "a/#"
`},
		{"rule without a local filter", "uplink[0].rule[0].local", "is required", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]] #<-
direction = "out"
`},
		{"bad local filter", "uplink[0].rule[0].local", `"a/#/b" is not a valid topic filter`, `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "a/#/b" #<-
`},
		{"shared subscription as a filter", "uplink[0].rule[0].local", "is a shared subscription", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "$share/g/a/#" #<-
`},
		{"wildcards that do not line up", "uplink[0].rule[1].remote", `"site7/+/sensors/#" does not line up with local "sensors/#"`, `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
[[uplink.rule]]
direction = "in"
local = "sensors/#"
remote = "site7/+/sensors/#" #<-
`},
		{"max qos 3", "uplink[0].rule[0].max_qos", "3 is out of range (0 to 2)", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
max_qos = 3 #<-
`},
		{"unknown retain handling", "uplink[0].rule[0].retain", `unknown retain handling "drop"`, `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
retain = "drop" #<-
`},
		{"priority too high", "uplink[0].rule[0].priority", "1000 is out of range (0 to 999)", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
priority = 1000 #<-
`},
		{"priority on an in-rule", "uplink[0].rule[0].priority", "applies only to out-rules", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "in"
local = "cmd/#"
priority = 5 #<-
`},
		{"queue_qos0 on an in-rule", "uplink[0].rule[0].queue_qos0", "applies only to out-rules", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "in"
local = "cmd/#"
queue_qos0 = true #<-
`},
		{"negative rule max age", "uplink[0].rule[0].max_age", "must not be negative (-1m)", `
[[uplink]]
name = "cloud"
url = "mqtt://127.0.0.1:1883"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
max_age = "-1m" #<-
`},
		{"uplink as a table", "uplink", "want an array of tables, got a table", `
[uplink] #<-
name = "cloud"
`},
		{"unknown log level", "log.level", `unknown level "verbose"`, `
[log]
level = "verbose" #<-
format = "json"
`},
		{"unknown log format", "log.format", `unknown format "xml"`, `
[log]
format = "xml" #<-
`},
		{"empty data dir", "data_dir", "must not be empty", `
data_dir = "" #<-
`},
		{"no listeners", "listener", "at least one listener", `
listener = [] #<-
`},
		{"unknown listener type", "listener[1].type", `unknown listener type "udp"`, `
[[listener]]
address = ":1"
[[listener]]
address = ":2"
type = "udp" #<-
`},
		{"port out of range", "listener[0].address", `port "70000" is out of range`, `
[[listener]]
name = "a"
address = ":70000" #<-
`},
		{"service name for a port", "listener[0].address", `port "mqtt" is out of range`, `
[[listener]]
address = "localhost:mqtt" #<-
`},
		{"address without a port", "listener[0].address", `"localhost" is not host:port: missing port in address`, `
[[listener]]
address = "localhost" #<-
`},
		{"missing address", "listener[1].address", "is required", `
[[listener]]
address = ":1"
[[listener]] #<-
name = "b"
`},
		{"duplicate listener names", "listener[1].name", `listener name "a" is already used by listener[0]`, `
[[listener]]
name = "a"
address = ":1"
[[listener]]
name = "a" #<-
address = ":2"
`},
		{"duplicate implied names", "listener[1].name", `listener name "tcp@:1" is already used`, `
[[listener]]
address = ":1"
[[listener]] #<-
address = ":1"
`},
		{"tls without a certificate", "listener[0].tls.cert_file", "a tls listener needs a certificate", `
[[listener]] #<-
type = "tls"
address = ":8883"
`},
		{"wss without a key", "listener[0].tls.key_file", "needs the certificate's private key", `
[[listener]]
type = "wss"
address = ":8443"
[listener.tls] #<-
cert_file = "{{ex}}/demo-server.pem"
`},
		{"missing certificate file", "listener[0].tls.cert_file", "no such file or directory", `
[[listener]]
type = "tls"
address = ":8883"
[listener.tls]
cert_file = "nope.pem" #<-
key_file = "{{ex}}/demo-server.key"
`},
		{"certificate and key that do not match", "listener[0].tls.cert_file", "cannot load the certificate and key", `
[[listener]]
type = "tls"
address = ":8883"
[listener.tls]
cert_file = "{{ex}}/demo-ca.pem" #<-
key_file = "{{ex}}/demo-server.key"
`},
		{"ca file that is not PEM", "listener[0].tls.ca_file", "holds no PEM certificate", `
[[listener]]
type = "tls"
address = ":8883"
[listener.tls]
cert_file = "{{ex}}/demo-server.pem"
key_file = "{{ex}}/demo-server.key"
ca_file = "{{ex}}/demo-acl" #<-
`},
		{"client certificates without a CA", "listener[0].tls.require_client_cert", "needs ca_file", `
[[listener]]
type = "tls"
address = ":8883"
[listener.tls]
cert_file = "{{ex}}/demo-server.pem"
key_file = "{{ex}}/demo-server.key"
require_client_cert = true #<-
`},
		{"CN as username without client certificates", "listener[0].tls.use_cn_as_username", "needs require_client_cert", `
[[listener]]
type = "tls"
address = ":8883"
[listener.tls]
cert_file = "{{ex}}/demo-server.pem"
key_file = "{{ex}}/demo-server.key"
ca_file = "{{ex}}/demo-ca.pem"
use_cn_as_username = true #<-
`},
		{"tls settings on a tcp listener", "listener[0].tls", "applies only to tls and wss listeners, not tcp", `
[[listener]]
address = ":1883"
[listener.tls] #<-
cert_file = "{{ex}}/demo-server.pem"
`},
		{"ws path on a tcp listener", "listener[0].ws_path", "applies only to ws and wss listeners", `
[[listener]]
address = ":1883"
ws_path = "/mqtt" #<-
`},
		{"ws path without a slash", "listener[0].ws_path", `"mqtt" must start with /`, `
[[listener]]
type = "ws"
address = ":8080"
ws_path = "mqtt" #<-
`},
		{"missing password file", "listener[0].password_file", "no such file or directory", `
[[listener]]
address = ":1883"
password_file = "passwd" #<-
`},
		{"acl file that is a folder", "listener[0].acl_file", "is not a regular file", `
[[listener]]
address = ":1883"
acl_file = "{{ex}}" #<-
`},
		{"second element of an inline listener array", "listener[1].address", `port "x" is out of range`, `
listener = [
  { name = "a", address = ":1" },
  { name = "b", address = ":x" }, #<-
]
`},
		{"syntax error", "", "expected a comma", `
[broker]
max_connections = [1 2] #<-
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.doc)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted:\n%s", tc.doc)
			}
			prefix := fmt.Sprintf("%s:%d: ", path, markedLine(t, tc.doc))
			if tc.key != "" {
				prefix += tc.key + ": "
			}
			if !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Load error:\n%v\nwant it to contain %q and %q", err, prefix, tc.msg)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("Load error %T is not a *ConfigError", err)
			}
		})
	}
}

// Every problem is reported, in line order, not just the first.
func TestLoadReportsEveryProblem(t *testing.T) {
	path := writeConfig(t, `[broker]
max_connections = -1
nope = 1
[[listener]]
address = ":99999"
type = "tls"
`)
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load accepted a broken file")
	}
	want := []string{
		path + ":2: broker.max_connections: must be at least 1",
		path + ":3: broker.nope: unknown key",
		path + ":4: listener[0].tls.cert_file: ",
		path + ":4: listener[0].tls.key_file: ",
		path + ":5: listener[0].address: ",
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("Load error has %d lines:\n%v\nwant %d", len(got), err, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d of the error = %q; want the prefix %q", i, got[i], want[i])
		}
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	c.Listeners[0].Address = "nowhere"
	err := c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "listener[0].address" || ce.Line != 0 || ce.File != "" {
		t.Fatalf("Validate = %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "listener[0].address: ") {
		t.Errorf("Validate error %q; want it to start with the key", err)
	}
}

func TestConfigErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    ConfigError
		want string
	}{
		{ConfigError{File: "f.toml", Line: 3, Key: "a.b", Msg: "bad"}, "f.toml:3: a.b: bad"},
		{ConfigError{File: "f.toml", Line: 3, Msg: "syntax"}, "f.toml:3: syntax"},
		{ConfigError{File: "f.toml", Key: "a", Msg: "bad"}, "f.toml: a: bad"},
		{ConfigError{Key: "a", Msg: "bad"}, "a: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q; want %q", tc.e, got, tc.want)
		}
	}
}

// roundTrip writes c with WriteTOML and loads the result again.
func roundTrip(t *testing.T, c *Config) *Config {
	t.Helper()
	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "effective.toml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatalf("loading the output of WriteTOML: %v\n%s", err, buf.String())
	}
	return back
}

func TestWriteTOMLRoundTrip(t *testing.T) {
	path := writeConfig(t, `
data_dir = "/srv/outpost"
[log]
level = "debug"
format = "json"
[spool]
sync = "never"
sync_interval = "2s"
min_free = 0
memtable_size = 16777216
block_cache_size = "512KiB"
value_log_file_size = "100MB"
value_threshold = "2KiB"
gc_interval = "0s"
expire_interval = "1m30s"
[broker]
max_connections = 3
max_packet_size = 1000
max_queued_bytes = "16MB"
max_outbound_bytes = 1048577
connect_timeout = "1m30s"
max_keepalive = "5m"
max_session_expiry = "168h"
retain_available = false
sys_interval = "0s"
[[listener]]
name = "plain"
address = "127.0.0.1:0"
[[listener]]
type = "wss"
address = "[::1]:8443"
password_file = "{{ex}}/demo-passwd"
acl_file = "{{ex}}/demo-acl"
[listener.tls]
cert_file = "{{ex}}/demo-server.pem"
key_file = "{{ex}}/demo-server.key"
ca_file = "{{ex}}/demo-ca.pem"
require_client_cert = true
use_cn_as_username = true
[[listener]]
type = "ws"
address = ":8080"
ws_path = "/live"
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if back := roundTrip(t, c); !reflect.DeepEqual(back, c) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, c)
	}

	// The defaults print and load back too (data_dir, being relative, moves
	// with the file).
	d := Default()
	back := roundTrip(t, d)
	back.DataDir = d.DataDir
	if !reflect.DeepEqual(back, d) {
		t.Errorf("round trip of Default():\n%+v\nwant\n%+v", back, d)
	}
}

func TestWriteTOMLIsReadable(t *testing.T) {
	var buf bytes.Buffer
	if err := Default().WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`data_dir = "./outpost-data"`,
		"[spool]\nsync = \"always\"\n",
		`min_free = "64MiB"`,
		`gc_interval = "10m"`,
		"[broker]\nmax_connections = 10000\n",
		`max_packet_size = "1MiB"`,
		`connect_timeout = "10s"`,
		"[[listener]]\nname = \"default\"\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("WriteTOML output lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "[listener.tls]") || strings.Contains(buf.String(), "ws_path") {
		t.Errorf("WriteTOML prints tls or ws settings for a tcp listener:\n%s", buf.String())
	}
}

// configKeys lists every key of the schema, e.g. "broker.max_connections",
// "listener.tls.cert_file" (array elements without an index).
func configKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		key := joinKey(prefix, name)
		ft := t.Field(i).Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			keys = append(keys, configKeys(ft, key)...)
		} else {
			keys = append(keys, key)
		}
	}
	return keys
}

// Every file in configs/ loads and validates.
func TestExampleConfigsLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "configs", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d files in configs/; want outpost.toml, secure-lan.toml and any others", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("loaded, but Validate fails: %v", err)
			}
			if _, err := New(c, nil); err != nil {
				t.Fatalf("gateway.New: %v", err)
			}
			// The same back, but the uplink passwords, which WriteTOML hides.
			back := roundTrip(t, c)
			for i := range back.Uplinks {
				if c.Uplinks[i].Password != "" && back.Uplinks[i].Password == hiddenPassword {
					back.Uplinks[i].Password = c.Uplinks[i].Password
				}
			}
			if !reflect.DeepEqual(back, c) {
				t.Errorf("round trip:\n%+v\nwant\n%+v", back, c)
			}
		})
	}
}

// configs/outpost.toml holds the defaults and documents every key.
func TestReferenceConfigIsTheDefault(t *testing.T) {
	path := filepath.Join("..", "configs", "outpost.toml")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	dir, _ := filepath.Abs(filepath.Dir(path))
	want.DataDir = filepath.Join(dir, "outpost-data")
	if !reflect.DeepEqual(c, want) {
		t.Errorf("configs/outpost.toml gives\n%+v\nnot the defaults\n%+v", c, want)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range configKeys(reflect.TypeFor[Config](), "") {
		leaf := key[strings.LastIndexByte(key, '.')+1:]
		// Set, or shown commented out ("#key = ..."), after a comment.
		re := regexp.MustCompile(`(?m)^# .*\n#?` + regexp.QuoteMeta(leaf) + ` = `)
		if !re.Match(data) {
			t.Errorf("configs/outpost.toml does not document %s (want a comment, then %q or \"#%s = \")", key, leaf+" = ", leaf)
		}
	}
}

// An uplink's keys left out keep their defaults (explicit zero values keep
// their meaning: keepalive "0s" is off), client_id and remote are filled in,
// and the config prints and loads back the same, except the password, which
// WriteTOML hides.
func TestLoadUplinks(t *testing.T) {
	path := writeConfig(t, `
[[uplink]]
name = "aws"
url = "mqtts://example-ats.iot.eu-west-1.amazonaws.com:443"
cert_file = "{{ex}}/demo-device.pem"
key_file = "{{ex}}/demo-device.key"
alpn = ["x-amzn-mqtt-ca"]
keepalive = "0s"
rate_limit = 2.5
username = "site7"
password = "s3cret"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
remote = "site7/sensors/#"
[[uplink.rule]]
direction = "in"
local = "cmd/#"
remote = "cmd/site7/#"
max_qos = 0

[[uplink]]
name = "backup"
url = "mqtt://10.0.0.2"
rate_limit = 10
rate_burst = 3
rate_limit_bytes = "64KiB"
on_full = "drop_oldest"
[[uplink.rule]]
direction = "out"
local = "alarms/+"
priority = 9
queue_qos0 = true
max_age = "1h"
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ex := examplesDir(t)
	aws := DefaultUplink()
	aws.Name, aws.URL, aws.ClientID = "aws", "mqtts://example-ats.iot.eu-west-1.amazonaws.com:443", "outpost-aws"
	aws.CertFile, aws.KeyFile = filepath.Join(ex, "demo-device.pem"), filepath.Join(ex, "demo-device.key")
	aws.ALPN = []string{"x-amzn-mqtt-ca"}
	aws.KeepAlive = 0
	aws.RateLimit, aws.RateBurst = 2.5, 3
	aws.Username, aws.Password = "site7", "s3cret"
	out, in := DefaultRule(), DefaultRule()
	out.Direction, out.Local, out.Remote = "out", "sensors/#", "site7/sensors/#"
	in.Direction, in.Local, in.Remote, in.MaxQoS = "in", "cmd/#", "cmd/site7/#", 0
	aws.Rules = []RuleConfig{out, in}

	backup := DefaultUplink()
	backup.Name, backup.URL, backup.ClientID = "backup", "mqtt://10.0.0.2", "outpost-backup"
	backup.RateLimit, backup.RateBurst, backup.OnFull = 10, 3, "drop_oldest"
	backup.RateLimitBytes = 64 * KiB
	alarms := DefaultRule()
	alarms.Direction, alarms.Local, alarms.Remote = "out", "alarms/+", "alarms/+"
	alarms.Priority, alarms.QueueQoS0, alarms.MaxAge = 9, true, Duration(time.Hour)
	backup.Rules = []RuleConfig{alarms}

	if want := []UplinkConfig{aws, backup}; !reflect.DeepEqual(c.Uplinks, want) {
		t.Fatalf("uplinks =\n%+v\nwant\n%+v", c.Uplinks, want)
	}

	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "s3cret") || !strings.Contains(buf.String(), `password = "(hidden)"`) {
		t.Errorf("WriteTOML does not hide the password:\n%s", buf.String())
	}
	if c.Uplinks[0].Password != "s3cret" {
		t.Error("WriteTOML changed the config's password")
	}
	back := roundTrip(t, c)
	back.Uplinks[0].Password = "s3cret"
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, c)
	}
}

// Defaults of the uplink keys apply to each [[uplink]] and [[uplink.rule]],
// also in inline arrays of tables.
func TestUplinkDefaultsInInlineTables(t *testing.T) {
	c, err := Load(writeConfig(t, `
uplink = [{ name = "a", url = "mqtt://h", rule = [{ direction = "out", local = "x/#" }] }]
`))
	if err != nil {
		t.Fatal(err)
	}
	u := c.Uplinks[0]
	if u.Window != 64 || u.OnFull != "reject_new" || u.Rules[0].MaxQoS != 2 || u.Rules[0].Retain != "keep" {
		t.Errorf("defaults missing: %+v", u)
	}
}

// Every field of uplink.Options and uplink.Rule has a config key: a config
// with every key set to a non-default value gives options where every field
// is set. When the bridge gains a field, this test fails until the config
// has a key for it.
func TestUplinkOptionsMapsEveryField(t *testing.T) {
	path := writeConfig(t, `
[[uplink]]
name = "all"
url = "mqtts://cloud.example:8884"
client_id = "gw-1"
username = "u"
password = "p"
ca_file = "{{ex}}/demo-ca.pem"
cert_file = "{{ex}}/demo-device.pem"
key_file = "{{ex}}/demo-device.key"
server_name = "cloud.example"
alpn = ["mqtt"]
keepalive = "30s"
session_expiry = "1h"
connect_timeout = "5s"
reconnect_min = "2s"
reconnect_max = "1m"
drain_timeout = "3s"
spool_timeout = "4s"
window = 8
rate_limit = 0.5
rate_burst = 2
rate_limit_bytes = "64KiB"
max_bytes = "1MiB"
max_messages = 1000
max_age = "24h"
on_full = "drop_oldest"
[[uplink.rule]]
direction = "out"
local = "a/#"
remote = "b/a/#"
max_qos = 1
retain = "clear"
priority = 3
queue_qos0 = true
max_age = "10m"
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &c.Uplinks[0]
	opts := u.UplinkOptions()
	checkAllSet(t, "uplink.Options", reflect.ValueOf(opts), "Logger")
	if len(opts.Rules) != 1 {
		t.Fatalf("%d rules", len(opts.Rules))
	}
	checkAllSet(t, "uplink.Rule", reflect.ValueOf(opts.Rules[0]))
	if r := opts.Rules[0]; *r.MaxQoS != 1 || r.Retain != "clear" || r.Direction != "out" {
		t.Errorf("rule %+v", r)
	}
	if l := u.QueueLimits(); l != (spool.Limits{MaxBytes: 1 << 20, MaxMessages: 1000, MaxAge: 24 * time.Hour, OnFull: spool.DropOldest}) {
		t.Errorf("QueueLimits() = %+v", l)
	}
	if l := u.QuarantineLimits(); l != (spool.Limits{MaxBytes: 1 << 20, MaxMessages: 1000, OnFull: spool.DropOldest}) {
		t.Errorf("QuarantineLimits() = %+v", l)
	}

	// "0s" turns keep alive off and ends the cloud session with each
	// connection: the bridge spells both as negative.
	u.KeepAlive, u.SessionExpiry, u.OnFull = 0, 0, "reject_new"
	opts = u.UplinkOptions()
	if opts.KeepAlive >= 0 || opts.SessionExpiry >= 0 {
		t.Errorf("keepalive and session_expiry 0s give %v and %v; want both negative", opts.KeepAlive, opts.SessionExpiry)
	}
	if l := u.QueueLimits(); l.OnFull != spool.RejectNew {
		t.Errorf("on_full reject_new gives %q", l.OnFull)
	}
	if _, err := uplink.New(opts, uplink.Deps{Broker: nopBroker{}, OpenQueue: func(string) (uplink.Queue, error) { return nil, nil }}); err != nil {
		t.Errorf("uplink.New refuses the options: %v", err)
	}
}

// nopBroker satisfies uplink.Broker for uplink.New, which only validates.
type nopBroker struct{ uplink.Broker }

// MQTT over websockets to the cloud: ws:// and wss:// with a path, TLS
// settings allowed for wss.
func TestLoadWebsocketUplink(t *testing.T) {
	c, err := Load(writeConfig(t, `
[[uplink]]
name = "ws"
url = "wss://broker.example.com/mqtt"
server_name = "broker.example.com"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := c.Uplinks[0].UplinkOptions()
	if opts.URL != "wss://broker.example.com/mqtt" || opts.ServerName != "broker.example.com" {
		t.Fatalf("uplink options %+v", opts)
	}
	if _, err := Load(writeConfig(t, `
[[uplink]]
name = "plain"
url = "ws://broker.example.com:8080/mqtt"
[[uplink.rule]]
direction = "out"
local = "sensors/#"
`)); err != nil {
		t.Fatal(err)
	}
}
