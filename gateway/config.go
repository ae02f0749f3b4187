package gateway

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/spool"
)

// Config is the whole gateway configuration, as written in the TOML file.
// Keys are snake_case; configs/outpost.toml documents every one.
//
// Unlike the components' option structs, a Config holds explicit values: Default
// fills in every default, so the effective config printed by WriteTOML says
// what the gateway really uses.
type Config struct {
	// DataDir holds the gateway's durable state (spool, broker persistence).
	DataDir   string           `toml:"data_dir"`
	Log       LogConfig        `toml:"log"`
	Spool     SpoolConfig      `toml:"spool"`
	Broker    BrokerConfig     `toml:"broker"`
	Listeners []ListenerConfig `toml:"listener"`
	MQTTSN    MQTTSNConfig     `toml:"mqttsn"`
	HTTP      HTTPConfig       `toml:"http"`
	Serials   []SerialConfig   `toml:"serial,omitempty"`
	Uplinks   []UplinkConfig   `toml:"uplink,omitempty"`
}

// LogConfig sets up logging (see NewLogger).
type LogConfig struct {
	Level  string `toml:"level"`  // "debug", "info", "warn" or "error"
	Format string `toml:"format"` // "text" or "json"
}

// SpoolConfig is the [spool] table: the durable store in <data_dir>/spool
// that holds the uplinks' queues and the broker's retained messages and
// persistent sessions. Each key maps to the spool.Options field of the
// similar name (see SpoolOptions).
type SpoolConfig struct {
	Sync             string   `toml:"sync"`                // "always", "interval" or "never"
	SyncInterval     Duration `toml:"sync_interval"`       // period of sync = "interval"
	MinFree          Size     `toml:"min_free"`            // 0 turns the free-space check off
	MemTableSize     Size     `toml:"memtable_size"`       // each of badger's two memtables
	BlockCacheSize   Size     `toml:"block_cache_size"`    // badger's block cache
	IndexCacheSize   Size     `toml:"index_cache_size"`    // table indexes and bloom filters
	ValueLogFileSize Size     `toml:"value_log_file_size"` // one value-log file; also the largest message
	ValueThreshold   Size     `toml:"value_threshold"`     // values this large go to the value log
	GCInterval       Duration `toml:"gc_interval"`         // value-log GC period; 0 turns GC off
	ExpireInterval   Duration `toml:"expire_interval"`     // period of dropping expired messages
	TrimInterval     Duration `toml:"trim_interval"`       // period of paging out mapped files; 0 turns it off
	OrphanKeep       Duration `toml:"orphan_keep"`         // queues of removed uplinks are dropped at start after this; 0 keeps them
}

// BrokerConfig holds the broker's limits; each key maps to the
// localbroker.Options field of the same name.
type BrokerConfig struct {
	MaxConnections      int      `toml:"max_connections"`
	MaxPacketSize       Size     `toml:"max_packet_size"`
	ConnectTimeout      Duration `toml:"connect_timeout"`
	ReceiveMaximum      int      `toml:"receive_maximum"`
	MaxInflight         int      `toml:"max_inflight"`
	MaxQueuedMessages   int      `toml:"max_queued_messages"`
	MaxQueuedBytes      Size     `toml:"max_queued_bytes"`
	MaxOutboundBytes    Size     `toml:"max_outbound_bytes"`
	WriteTimeout        Duration `toml:"write_timeout"`
	MaxTopicLength      int      `toml:"max_topic_length"`
	MaxTopicLevels      int      `toml:"max_topic_levels"`
	MaxKeepAlive        Duration `toml:"max_keepalive"`      // whole seconds; 0 means no cap
	MaxSessionExpiry    Duration `toml:"max_session_expiry"` // 0 means no cap
	TopicAliasMaximum   int      `toml:"topic_alias_maximum"`
	RetainAvailable     bool     `toml:"retain_available"`
	SysInterval         Duration `toml:"sys_interval"` // 0 disables $SYS
	MaxRetainedMessages int      `toml:"max_retained_messages"`
}

// ListenerConfig is one [[listener]].
type ListenerConfig struct {
	Name           string    `toml:"name"`    // "" means "<type>@<address>"
	Type           string    `toml:"type"`    // "tcp" (when ""), "tls", "ws" or "wss"
	Address        string    `toml:"address"` // host:port; port 0 picks a free port
	AllowAnonymous bool      `toml:"allow_anonymous"`
	PasswordFile   string    `toml:"password_file,omitempty"`
	ACLFile        string    `toml:"acl_file,omitempty"`
	WSPath         string    `toml:"ws_path,omitempty"` // ws and wss only; "" means "/mqtt"
	TLS            TLSConfig `toml:"tls,omitempty"`     // tls and wss only
}

// TLSConfig is a listener's [listener.tls] table.
type TLSConfig struct {
	CertFile          string `toml:"cert_file,omitempty"`
	KeyFile           string `toml:"key_file,omitempty"`
	CAFile            string `toml:"ca_file,omitempty"`
	RequireClientCert bool   `toml:"require_client_cert,omitempty"`
	UseCNAsUsername   bool   `toml:"use_cn_as_username,omitempty"`
}

// Listener types.
const (
	ListenerTCP = localbroker.KindTCP
	ListenerTLS = localbroker.KindTLS
	ListenerWS  = localbroker.KindWS
	ListenerWSS = localbroker.KindWSS
)

const (
	minPacketSize      = 64        // the broker's floor: smaller would refuse ordinary CONNECTs
	maxPacketSizeLimit = 268435460 // MQTT's largest packet: 1 + 4 + 268435455 bytes
	maxKeepAliveLimit  = 65535 * time.Second
	defaultWSPath      = "/mqtt"
)

// Default returns the embedded configuration used when no file is given: one
// tcp listener "default" on :1883 that accepts anonymous clients, data in
// ./outpost-data (relative to the working directory), and the broker's
// default limits.
func Default() *Config {
	return &Config{
		DataDir: "./outpost-data",
		Log:     LogConfig{Level: "info", Format: "text"},
		Spool:   defaultSpool(),
		Broker:  defaultBroker(),
		Listeners: []ListenerConfig{{
			Name:           "default",
			Type:           ListenerTCP,
			Address:        ":1883",
			AllowAnonymous: true,
		}},
		MQTTSN: defaultMQTTSN(),
	}
}

// defaultSpool spells out the defaults documented on spool.Options.
func defaultSpool() SpoolConfig {
	return SpoolConfig{
		Sync:             string(spool.SyncAlways),
		SyncInterval:     Duration(spool.DefaultSyncInterval),
		MinFree:          spool.DefaultMinFreeBytes,
		MemTableSize:     spool.DefaultMemTableBytes,
		BlockCacheSize:   spool.DefaultBlockCacheBytes,
		IndexCacheSize:   spool.DefaultIndexCacheBytes,
		ValueLogFileSize: spool.DefaultValueLogFileBytes,
		ValueThreshold:   spool.DefaultValueThresholdBytes,
		GCInterval:       Duration(spool.DefaultGCInterval),
		ExpireInterval:   Duration(spool.DefaultExpireInterval),
		TrimInterval:     Duration(spool.DefaultTrimInterval),
		OrphanKeep:       Duration(DefaultOrphanKeep),
	}
}

// defaultBroker spells out the defaults documented on localbroker.Options.
func defaultBroker() BrokerConfig {
	return BrokerConfig{
		MaxConnections:      10000,
		MaxPacketSize:       1 * MiB,
		ConnectTimeout:      Duration(10 * time.Second),
		ReceiveMaximum:      64,
		MaxInflight:         64,
		MaxQueuedMessages:   1000,
		MaxQueuedBytes:      16 * MiB,
		MaxOutboundBytes:    4 * MiB,
		WriteTimeout:        Duration(30 * time.Second),
		MaxTopicLength:      65535,
		MaxTopicLevels:      128,
		MaxKeepAlive:        0,
		MaxSessionExpiry:    0,
		TopicAliasMaximum:   64,
		RetainAvailable:     true,
		SysInterval:         Duration(10 * time.Second),
		MaxRetainedMessages: 100000,
	}
}

// Load reads and validates the TOML file at path. Keys the file leaves out
// keep their defaults (see Default); a file without any [[listener]] gets the
// default listener. Relative paths in the file (data_dir, password_file,
// acl_file and the tls files) are relative to the folder of the file, and Load
// makes them absolute.
//
// Every problem is a *ConfigError naming the key and its line; when there are
// several, the error joins them (errors.Join), one per line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	cfg := Default()
	p := &problems{file: path}
	if err := decodeTOML(string(data), p, cfg); err != nil {
		return nil, err
	}
	// A key that failed to decode keeps its default, so the checks below
	// still make sense: all problems are reported at once.
	cfg.resolvePaths(dir)
	cfg.fillDefaults()
	cfg.validate(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// resolvePaths makes the relative paths of c relative to dir.
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.MQTTSN.ACLFile)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		abs(&l.PasswordFile)
		abs(&l.ACLFile)
		abs(&l.TLS.CertFile)
		abs(&l.TLS.KeyFile)
		abs(&l.TLS.CAFile)
	}
	for i := range c.Uplinks {
		c.Uplinks[i].resolvePaths(abs)
	}
	c.HTTP.resolvePaths(abs)
}

// fillDefaults writes out the defaults that depend on other keys, so the
// effective config shows them.
func (c *Config) fillDefaults() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Type == "" {
			l.Type = ListenerTCP
		}
		if l.WSPath == "" && (l.Type == ListenerWS || l.Type == ListenerWSS) {
			l.WSPath = defaultWSPath
		}
		if l.Name == "" && l.Address != "" {
			l.Name = l.Type + "@" + l.Address
		}
	}
	c.MQTTSN.fillDefaults()
	for i := range c.Serials {
		c.Serials[i].fillDefaults()
	}
	for i := range c.Uplinks {
		c.Uplinks[i].fillDefaults()
	}
}

// Validate checks c as Load does (without line numbers, which only a file has).
func (c *Config) Validate() error {
	p := &problems{}
	c.validate(p)
	return p.err()
}

func (c *Config) validate(p *problems) {
	if c.DataDir == "" {
		p.add("data_dir", "must not be empty")
	}
	c.Log.validate(p)
	c.Spool.validate(p)
	c.Broker.validate(p)
	if len(c.Listeners) == 0 {
		p.add("listener", "at least one listener is needed")
	}
	names := map[string]int{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		key := indexKey("listener", i)
		l.validate(p, key)
		name := l.Name
		if name == "" {
			name = cmp.Or(l.Type, ListenerTCP) + "@" + l.Address
		}
		if j, dup := names[name]; dup {
			p.add(key+".name", "listener name %q is already used by listener[%d]", name, j)
		} else {
			names[name] = i
		}
	}
	c.MQTTSN.validate(p, c.Serials)
	c.HTTP.validate(p)
	c.validateUplinks(p)
}

func (c *Config) validateUplinks(p *problems) {
	names := map[string]int{}
	clients := map[string]int{} // host:port and client id -> uplink
	for i := range c.Uplinks {
		u := &c.Uplinks[i]
		key := indexKey("uplink", i)
		endpoint := u.validate(p, key)
		if u.Name != "" {
			if j, dup := names[u.Name]; dup {
				p.add(key+".name", "uplink name %q is already used by uplink[%d]", u.Name, j)
			} else {
				names[u.Name] = i
			}
		}
		clientID := cmp.Or(u.ClientID, "outpost-"+u.Name)
		if endpoint != "" {
			// Two bridges with one client id at one broker would take the
			// session from each other, over and over.
			k := endpoint + " " + clientID
			if j, dup := clients[k]; dup {
				p.add(key+".client_id", "uplink[%d] connects to %s with the same client id %q", j, endpoint, clientID)
			} else {
				clients[k] = i
			}
		}
	}
}

func (l LogConfig) validate(p *problems) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "unknown level %q (use debug, info, warn or error)", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		p.add("log.format", "unknown format %q (use text or json)", l.Format)
	}
}

// Limits of the spool's sizes, from badger and the spool (see spool.Options).
const (
	minMemTableSize     = 1 * MiB
	minValueLogFileSize = 1 * MiB
	maxValueLogFileSize = 2 * GiB // exclusive
	maxValueThreshold   = 1 * MiB // badger refuses more
)

func (s SpoolConfig) validate(p *problems) {
	switch spool.SyncPolicy(s.Sync) {
	case spool.SyncAlways, spool.SyncPeriodic, spool.SyncNever:
	default:
		p.add("spool.sync", "unknown sync policy %q (use always, interval or never)", s.Sync)
	}
	if s.SyncInterval <= 0 {
		p.add("spool.sync_interval", "must be more than 0s, not %s", s.SyncInterval)
	}
	if s.MinFree < 0 {
		p.add("spool.min_free", "must not be negative (%s)", s.MinFree)
	}
	if s.MemTableSize < minMemTableSize {
		p.add("spool.memtable_size", "must be at least %s, not %s", minMemTableSize, s.MemTableSize)
	}
	if s.BlockCacheSize < 1 {
		p.add("spool.block_cache_size", "must be at least 1 byte, not %s", s.BlockCacheSize)
	}
	if s.IndexCacheSize < 1 {
		p.add("spool.index_cache_size", "must be at least 1 byte, not %s", s.IndexCacheSize)
	}
	if s.ValueLogFileSize < minValueLogFileSize || s.ValueLogFileSize >= maxValueLogFileSize {
		p.add("spool.value_log_file_size", "%s is out of range (at least %s, less than %s)", s.ValueLogFileSize, minValueLogFileSize, maxValueLogFileSize)
	}
	// badger refuses a value threshold above 1 MiB or above its largest
	// transaction, 15% of a memtable.
	switch maxTxn := s.MemTableSize * 15 / 100; {
	case s.ValueThreshold < 1:
		p.add("spool.value_threshold", "must be at least 1 byte, not %s", s.ValueThreshold)
	case s.ValueThreshold > maxValueThreshold:
		p.add("spool.value_threshold", "%s is more than %s", s.ValueThreshold, maxValueThreshold)
	case s.MemTableSize >= minMemTableSize && s.ValueThreshold > maxTxn:
		p.add("spool.value_threshold", "%s is more than 15%% of memtable_size (%s, so at most %d bytes)", s.ValueThreshold, s.MemTableSize, maxTxn)
	}
	if s.GCInterval < 0 {
		p.add("spool.gc_interval", "must not be negative (%s)", s.GCInterval)
	}
	if s.OrphanKeep < 0 {
		p.add("spool.orphan_keep", "must not be negative, not %s", s.OrphanKeep)
	}
	if s.ExpireInterval <= 0 {
		p.add("spool.expire_interval", "must be more than 0s, not %s", s.ExpireInterval)
	}
}

func (b BrokerConfig) validate(p *problems) {
	intRange := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			p.add("broker."+key, "%d is out of range (%d to %d)", v, lo, hi)
		}
	}
	positive := func(key string, v int) {
		if v < 1 {
			p.add("broker."+key, "must be at least 1, not %d", v)
		}
	}
	positiveSize := func(key string, v Size) {
		if v < 1 {
			p.add("broker."+key, "must be at least 1 byte, not %s", v)
		}
	}
	positiveDur := func(key string, d Duration) {
		if d <= 0 {
			p.add("broker."+key, "must be more than 0s, not %s", d)
		}
	}
	nonNegativeDur := func(key string, d Duration) {
		if d < 0 {
			p.add("broker."+key, "must not be negative (%s)", d)
		}
	}
	positive("max_connections", b.MaxConnections)
	if b.MaxPacketSize < minPacketSize || b.MaxPacketSize > maxPacketSizeLimit {
		p.add("broker.max_packet_size", "%s is out of range (%d to %d bytes)", b.MaxPacketSize, minPacketSize, maxPacketSizeLimit)
	}
	positiveDur("connect_timeout", b.ConnectTimeout)
	intRange("receive_maximum", b.ReceiveMaximum, 1, 65535)
	intRange("max_inflight", b.MaxInflight, 1, 65535)
	positive("max_queued_messages", b.MaxQueuedMessages)
	positiveSize("max_queued_bytes", b.MaxQueuedBytes)
	positiveSize("max_outbound_bytes", b.MaxOutboundBytes)
	positiveDur("write_timeout", b.WriteTimeout)
	intRange("max_topic_length", b.MaxTopicLength, 1, 65535)
	positive("max_topic_levels", b.MaxTopicLevels)
	switch {
	case b.MaxKeepAlive < 0 || time.Duration(b.MaxKeepAlive) > maxKeepAliveLimit:
		p.add("broker.max_keepalive", "%s is out of range (0s to %s)", b.MaxKeepAlive, Duration(maxKeepAliveLimit))
	case time.Duration(b.MaxKeepAlive)%time.Second != 0:
		p.add("broker.max_keepalive", "%s is not a whole number of seconds", b.MaxKeepAlive)
	}
	nonNegativeDur("max_session_expiry", b.MaxSessionExpiry)
	intRange("topic_alias_maximum", b.TopicAliasMaximum, 1, 65535)
	nonNegativeDur("sys_interval", b.SysInterval)
	positive("max_retained_messages", b.MaxRetainedMessages)
}

func (l *ListenerConfig) validate(p *problems, key string) {
	typ := cmp.Or(l.Type, ListenerTCP)
	isTLS, isWS := false, false
	switch typ {
	case ListenerTCP:
	case ListenerTLS:
		isTLS = true
	case ListenerWS:
		isWS = true
	case ListenerWSS:
		isTLS, isWS = true, true
	default:
		p.add(key+".type", "unknown listener type %q (use tcp, tls, ws or wss)", l.Type)
	}

	if l.Address == "" {
		p.add(key+".address", "is required (host:port, e.g. \":1883\")")
	} else if host, port, err := net.SplitHostPort(l.Address); err != nil {
		p.add(key+".address", "%q is not host:port: %v", l.Address, unwrapAddrErr(err))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(key+".address", "port %q is out of range (0 to 65535)", port)
	} else if strings.ContainsAny(host, " \t") {
		p.add(key+".address", "host %q is not valid", host)
	}

	if l.PasswordFile != "" {
		checkFile(p, key+".password_file", l.PasswordFile)
	}
	if l.ACLFile != "" {
		checkFile(p, key+".acl_file", l.ACLFile)
	}

	if l.WSPath != "" {
		if !isWS {
			p.add(key+".ws_path", "applies only to ws and wss listeners, not %s", typ)
		} else if !strings.HasPrefix(l.WSPath, "/") {
			p.add(key+".ws_path", "%q must start with /", l.WSPath)
		}
	}

	t := l.TLS
	tkey := key + ".tls"
	if !isTLS {
		if t != (TLSConfig{}) {
			p.add(tkey, "applies only to tls and wss listeners, not %s", typ)
		}
		return
	}
	certOK, keyOK := false, false
	if t.CertFile == "" {
		p.add(tkey+".cert_file", "a %s listener needs a certificate (PEM)", typ)
	} else {
		certOK = checkFile(p, tkey+".cert_file", t.CertFile)
	}
	if t.KeyFile == "" {
		p.add(tkey+".key_file", "a %s listener needs the certificate's private key (PEM)", typ)
	} else {
		keyOK = checkFile(p, tkey+".key_file", t.KeyFile)
	}
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			p.add(tkey+".cert_file", "cannot load the certificate and key: %v", err)
		}
	}
	if t.CAFile != "" && checkFile(p, tkey+".ca_file", t.CAFile) {
		if pem, err := os.ReadFile(t.CAFile); err != nil {
			p.add(tkey+".ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			p.add(tkey+".ca_file", "%s holds no PEM certificate", t.CAFile)
		}
	}
	if t.RequireClientCert && t.CAFile == "" {
		p.add(tkey+".require_client_cert", "needs ca_file, the CA that signs the client certificates")
	}
	if t.UseCNAsUsername && !t.RequireClientCert {
		p.add(tkey+".use_cn_as_username", "needs require_client_cert = true")
	}
}

// checkFile reports whether path is a readable regular file, adding a
// problem at key when it is not.
func checkFile(p *problems, key, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		p.add(key, "%v", err)
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		p.add(key, "%v", err)
		return false
	}
	if !st.Mode().IsRegular() {
		p.add(key, "%s is not a regular file", path)
		return false
	}
	return true
}

func unwrapAddrErr(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}

// SpoolDir is the spool's folder: "spool" in data_dir.
func (c *Config) SpoolDir() string { return filepath.Join(c.DataDir, "spool") }

// SpoolOptions returns the spool's options for c. Logger is left nil for the
// caller to set.
func (c *Config) SpoolOptions() spool.Options {
	s := c.Spool
	opts := spool.Options{
		Dir:                 c.SpoolDir(),
		Sync:                spool.SyncPolicy(s.Sync),
		SyncInterval:        time.Duration(s.SyncInterval),
		MemTableBytes:       int64(s.MemTableSize),
		BlockCacheBytes:     int64(s.BlockCacheSize),
		IndexCacheBytes:     int64(s.IndexCacheSize),
		ValueLogFileBytes:   int64(s.ValueLogFileSize),
		ValueThresholdBytes: int64(s.ValueThreshold),
		GCInterval:          time.Duration(s.GCInterval),
		ExpireInterval:      time.Duration(s.ExpireInterval),
		MinFreeBytes:        int64(s.MinFree),
		TrimInterval:        time.Duration(s.TrimInterval),
	}
	// The config's 0 turns these off; the spool's 0 means its default.
	if opts.GCInterval == 0 {
		opts.GCInterval = -1
	}
	if opts.TrimInterval == 0 {
		opts.TrimInterval = -1
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = -1
	}
	return opts
}

// BrokerOptions returns the broker's options for c. Logger is left nil for
// the caller to set.
func (c *Config) BrokerOptions() localbroker.Options {
	b := c.Broker
	sys := time.Duration(b.SysInterval)
	if sys == 0 {
		sys = -1 // the config's 0 disables $SYS; the broker's 0 means its default
	}
	retain := b.RetainAvailable
	opts := localbroker.Options{
		MaxConnections:      b.MaxConnections,
		MaxPacketSize:       int(b.MaxPacketSize),
		ConnectTimeout:      time.Duration(b.ConnectTimeout),
		ReceiveMaximum:      uint16(b.ReceiveMaximum),
		MaxInflight:         uint16(b.MaxInflight),
		MaxQueuedMessages:   b.MaxQueuedMessages,
		MaxQueuedBytes:      int64(b.MaxQueuedBytes),
		MaxOutboundBytes:    int64(b.MaxOutboundBytes),
		WriteTimeout:        time.Duration(b.WriteTimeout),
		MaxTopicLength:      b.MaxTopicLength,
		MaxTopicLevels:      b.MaxTopicLevels,
		MaxKeepAlive:        uint16(time.Duration(b.MaxKeepAlive) / time.Second),
		MaxSessionExpiry:    time.Duration(b.MaxSessionExpiry),
		TopicAliasMaximum:   uint16(b.TopicAliasMaximum),
		RetainAvailable:     &retain,
		SysInterval:         sys,
		MaxRetainedMessages: b.MaxRetainedMessages,
	}
	for _, l := range c.Listeners {
		opts.Listeners = append(opts.Listeners, localbroker.ListenerOptions{
			Name:              l.Name,
			Kind:              cmp.Or(l.Type, ListenerTCP),
			Address:           l.Address,
			CertFile:          l.TLS.CertFile,
			KeyFile:           l.TLS.KeyFile,
			CAFile:            l.TLS.CAFile,
			RequireClientCert: l.TLS.RequireClientCert,
			UseCNAsUsername:   l.TLS.UseCNAsUsername,
			WSPath:            l.WSPath,
			AllowAnonymous:    l.AllowAnonymous,
			PasswordFile:      l.PasswordFile,
			ACLFile:           l.ACLFile,
		})
	}
	return opts
}

// WriteTOML writes c as a TOML document that Load reads back to the same
// Config (for `outpost check`, which prints the effective config).
//
// Uplink passwords are written as "(hidden)", so that the output can be shown
// and shared: put them back before using it as a config.
func (c *Config) WriteTOML(w io.Writer) error {
	out := *c
	out.Uplinks = slices.Clone(c.Uplinks)
	for i := range out.Uplinks {
		if out.Uplinks[i].Password != "" {
			out.Uplinks[i].Password = hiddenPassword
		}
	}
	enc := toml.NewEncoder(w)
	enc.Indent = ""
	if err := enc.Encode(&out); err != nil {
		return fmt.Errorf("gateway: encode config: %w", err)
	}
	return nil
}
