package gateway

import (
	"cmp"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/mqttsn"
	"github.com/outpost-gw/outpost/mqttsn/packet"
	"github.com/outpost-gw/outpost/serialbus"
)

// MQTTSNConfig is the [mqttsn] table: the MQTT-SN gateway for devices on UDP
// ([[mqttsn.udp]]) and on serial radios ([[serial]]). Each key maps to the
// mqttsn.Options field of the similar name (see MQTTSNOptions).
type MQTTSNConfig struct {
	Enabled            bool     `toml:"enabled"`
	GatewayID          int      `toml:"gateway_id"`       // 0 to 255
	KeepAliveGrace     float64  `toml:"keep_alive_grace"` // at least 1
	RetryInterval      Duration `toml:"retry_interval"`   // Tretry
	Retries            int      `toml:"retries"`          // Nretry
	MaxClients         int      `toml:"max_clients"`
	MaxTopicsPerClient int      `toml:"max_topics_per_client"`
	MaxBuffered        int      `toml:"max_buffered"`
	SessionExpiry      Duration `toml:"session_expiry"`     // 0 means never
	AdvertiseInterval  Duration `toml:"advertise_interval"` // 0 means no ADVERTISE
	ClientIDPrefix     string   `toml:"client_id_prefix"`
	ACLFile            string   `toml:"acl_file"`

	// Usernames maps ClientIds (exact, or patterns with * and ?) to broker
	// usernames, for the ACL.
	Usernames map[string]string `toml:"usernames,omitempty"`

	UnconnectedRate    float64 `toml:"unconnected_rate"` // per source address and second; 0 means no limit
	UnconnectedBurst   int     `toml:"unconnected_burst"`
	UnconnectedSources int     `toml:"unconnected_sources"`

	// Predefined maps topic ids (decimal, or hex with 0x) to topic names for
	// every client; ClientPredefined does so per MQTT-SN ClientId.
	Predefined       map[string]string            `toml:"predefined,omitempty"`
	ClientPredefined map[string]map[string]string `toml:"client_predefined,omitempty"`

	UDP []MQTTSNUDPConfig `toml:"udp"`
}

// MQTTSNUDPConfig is one [[mqttsn.udp]] transport.
type MQTTSNUDPConfig struct {
	Name           string `toml:"name"`    // "" means "udp@<address>"
	Address        string `toml:"address"` // host:port; port 0 picks a free port
	MTU            int    `toml:"mtu"`     // 0 means 65507
	AllowQoSMinus1 bool   `toml:"allow_qos_minus1"`
	Broadcast      string `toml:"broadcast,omitempty"` // host:port of ADVERTISE; "" means none

	AllowClientIDs []string `toml:"allow_client_ids,omitempty"` // none means every ClientId
	AllowAddresses []string `toml:"allow_addresses,omitempty"`  // IPs and CIDR prefixes; none means every address
}

// SerialConfig is one [[serial]]: a serial port carrying MQTT-SN datagrams,
// served by the MQTT-SN gateway. Each key maps to the serialbus.Options field
// of the similar name (see SerialOptions).
type SerialConfig struct {
	Name           string   `toml:"name"` // "" means device, or "usb:<vid>:<pid>"
	Device         string   `toml:"device,omitempty"`
	USBVID         string   `toml:"usb_vid,omitempty"`
	USBPID         string   `toml:"usb_pid,omitempty"`
	USBSerial      string   `toml:"usb_serial,omitempty"`
	Baud           int      `toml:"baud"`    // 0 means 9600 for XBee, 115200 else
	Framing        string   `toml:"framing"` // raw, xbee, xbee-api1 or bridge
	MTU            int      `toml:"mtu"`     // 0 means the framing's default
	MinGap         Duration `toml:"min_gap"`
	DutyCycle      float64  `toml:"duty_cycle"` // 0 to 1; 0 means no limit
	BitRate        int      `toml:"bit_rate"`   // 0 means baud
	QueueLen       int      `toml:"queue_len"`
	ReconnectMin   Duration `toml:"reconnect_min"`
	ReconnectMax   Duration `toml:"reconnect_max"`
	IdleGap        Duration `toml:"idle_gap"` // raw framing; 0 means 32 byte-times, at least 20ms
	AllowQoSMinus1 bool     `toml:"allow_qos_minus1"`
	AllowClientIDs []string `toml:"allow_client_ids,omitempty"` // none means every ClientId
	AllowAddresses []string `toml:"allow_addresses,omitempty"`  // node addresses (hex); none means every node
}

const defaultMQTTSNAddress = ":1885"

// defaultMQTTSN spells out the defaults documented on mqttsn.Options, with
// one UDP transport on :1885.
func defaultMQTTSN() MQTTSNConfig {
	return MQTTSNConfig{
		Enabled:            true,
		KeepAliveGrace:     mqttsn.DefaultKeepAliveGrace,
		RetryInterval:      Duration(mqttsn.DefaultTretry),
		Retries:            mqttsn.DefaultNretry,
		MaxClients:         mqttsn.DefaultMaxClients,
		MaxTopicsPerClient: mqttsn.DefaultMaxTopics,
		MaxBuffered:        mqttsn.DefaultMaxBuffered,
		SessionExpiry:      Duration(mqttsn.DefaultSessionExpiry),
		UnconnectedRate:    mqttsn.DefaultUnconnectedRate,
		UnconnectedBurst:   mqttsn.DefaultUnconnectedBurst,
		UnconnectedSources: mqttsn.DefaultUnconnectedSources,
		UDP:                []MQTTSNUDPConfig{{Name: "default", Address: defaultMQTTSNAddress}},
	}
}

// setDefaults gives a [[mqttsn.udp]] its defaults before the file's keys.
func (u *MQTTSNUDPConfig) setDefaults() {
	*u = MQTTSNUDPConfig{Address: defaultMQTTSNAddress}
}

// setDefaults gives a [[serial]] its defaults before the file's keys.
func (s *SerialConfig) setDefaults() {
	*s = SerialConfig{
		Framing:      serialbus.FramingRaw,
		QueueLen:     32,
		ReconnectMin: Duration(250 * time.Millisecond),
		ReconnectMax: Duration(10 * time.Second),
	}
}

// fillDefaults writes out the defaults that depend on other keys.
func (m *MQTTSNConfig) fillDefaults() {
	for i := range m.UDP {
		if u := &m.UDP[i]; u.Name == "" && u.Address != "" {
			u.Name = "udp@" + u.Address
		}
	}
}

func (s *SerialConfig) fillDefaults() {
	if s.Name == "" {
		s.Name = s.Device
		if s.Name == "" && s.USBVID != "" {
			s.Name = "usb:" + s.USBVID + ":" + s.USBPID
		}
	}
	if s.Baud == 0 {
		s.Baud = 115200
		if s.Framing == serialbus.FramingXBee || s.Framing == serialbus.FramingXBeeAPI1 {
			s.Baud = 9600
		}
	}
	if s.MTU == 0 {
		switch s.Framing {
		case serialbus.FramingRaw:
			s.MTU = 1024
		case serialbus.FramingXBee, serialbus.FramingXBeeAPI1:
			s.MTU = 256
		case serialbus.FramingBridge:
			s.MTU = 255
		}
	}
	if s.BitRate == 0 {
		s.BitRate = s.Baud
	}
}

func (m *MQTTSNConfig) validate(p *problems, serials []SerialConfig) {
	if m.GatewayID < 0 || m.GatewayID > 255 {
		p.add("mqttsn.gateway_id", "%d is out of range (0 to 255)", m.GatewayID)
	}
	if m.KeepAliveGrace < 1 {
		p.add("mqttsn.keep_alive_grace", "must be at least 1, not %v", m.KeepAliveGrace)
	}
	if m.RetryInterval <= 0 {
		p.add("mqttsn.retry_interval", "must be more than 0s, not %s", m.RetryInterval)
	}
	if m.Retries < 1 {
		p.add("mqttsn.retries", "must be at least 1, not %d", m.Retries)
	}
	if m.MaxClients < 1 {
		p.add("mqttsn.max_clients", "must be at least 1, not %d", m.MaxClients)
	}
	if m.MaxTopicsPerClient < 1 || m.MaxTopicsPerClient > 0xFFFE {
		p.add("mqttsn.max_topics_per_client", "%d is out of range (1 to 65534)", m.MaxTopicsPerClient)
	}
	if m.MaxBuffered < 1 {
		p.add("mqttsn.max_buffered", "must be at least 1, not %d", m.MaxBuffered)
	}
	if m.SessionExpiry < 0 {
		p.add("mqttsn.session_expiry", "must not be negative (%s)", m.SessionExpiry)
	}
	if m.AdvertiseInterval < 0 || m.AdvertiseInterval > 0 && time.Duration(m.AdvertiseInterval) < time.Second {
		p.add("mqttsn.advertise_interval", "%s is out of range (0s for none, or at least 1s)", m.AdvertiseInterval)
	}
	if strings.ContainsRune(m.ClientIDPrefix, 0) {
		p.add("mqttsn.client_id_prefix", "must not hold U+0000")
	}
	if m.ACLFile != "" && checkFile(p, "mqttsn.acl_file", m.ACLFile) {
		if _, err := auth.LoadACLFile(m.ACLFile); err != nil {
			p.add("mqttsn.acl_file", "%v", err)
		}
	}
	for _, id := range slices.Sorted(mapKeys(m.Usernames)) {
		checkClientIDRule(p, joinKey("mqttsn.usernames", id), id)
		if u := m.Usernames[id]; u == "" || strings.ContainsRune(u, 0) || len(u) > 65535 {
			p.add(joinKey("mqttsn.usernames", id), "%q is not a username (not empty, no U+0000)", u)
		}
	}
	if !(m.UnconnectedRate >= 0) {
		p.add("mqttsn.unconnected_rate", "must not be negative (%v); 0 means no limit", m.UnconnectedRate)
	}
	if m.UnconnectedBurst < 1 {
		p.add("mqttsn.unconnected_burst", "must be at least 1, not %d", m.UnconnectedBurst)
	}
	if m.UnconnectedSources < 1 {
		p.add("mqttsn.unconnected_sources", "must be at least 1, not %d", m.UnconnectedSources)
	}
	checkPredefined(p, "mqttsn.predefined", m.Predefined)
	for _, cid := range slices.Sorted(mapKeys(m.ClientPredefined)) {
		checkPredefined(p, joinKey("mqttsn.client_predefined", cid), m.ClientPredefined[cid])
	}

	names := map[string]string{} // transport name -> key of its table
	for i := range m.UDP {
		u := &m.UDP[i]
		key := indexKey("mqttsn.udp", i)
		checkHostPort(p, key+".address", u.Address, `":1885"`)
		if u.MTU != 0 && (u.MTU < 8 || u.MTU > 65507) {
			p.add(key+".mtu", "%d is out of range (0 for 65507, or 8 to 65507)", u.MTU)
		}
		if u.Broadcast != "" {
			if _, err := net.ResolveUDPAddr("udp", u.Broadcast); err != nil {
				p.add(key+".broadcast", "%q is not a UDP address: %v", u.Broadcast, unwrapAddrErr(err))
			}
		}
		checkAllowIDs(p, key+".allow_client_ids", u.AllowClientIDs)
		for j, a := range u.AllowAddresses {
			akey := indexKey(key+".allow_addresses", j)
			fwd, ok := checkNodeRule(p, akey, a)
			if !ok {
				continue
			}
			if _, err := netip.ParsePrefix(fwd); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(fwd); err != nil {
				p.add(akey, "%q is neither an IP address nor a CIDR prefix (e.g. \"192.168.1.0/24\"), nor \"node:<hex>@\" and one of them", a)
			}
		}
		name := cmp.Or(u.Name, "udp@"+u.Address)
		if k, dup := names[name]; dup {
			p.add(key+".name", "transport name %q is already used by %s", name, k)
		} else {
			names[name] = key
		}
	}
	for i := range serials {
		s := &serials[i]
		key := indexKey("serial", i)
		s.validate(p, key)
		checkAllowIDs(p, key+".allow_client_ids", s.AllowClientIDs)
		for j, a := range s.AllowAddresses {
			akey := indexKey(key+".allow_addresses", j)
			fwd, ok := checkNodeRule(p, akey, a)
			if !ok {
				continue
			}
			if _, err := hex.DecodeString(fwd); err != nil || fwd == "" || s.Framing == serialbus.FramingRaw {
				p.add(akey, "%q is not a node address: hex digits (e.g. \"0013a20040a1b2c3\"), or \"node:<hex>@\" and one, not for the raw framing", a)
			}
		}
		if s.Name == "" {
			continue
		}
		if k, dup := names[s.Name]; dup {
			p.add(key+".name", "transport name %q is already used by %s", s.Name, k)
		} else {
			names[s.Name] = key
		}
	}
}

// checkNodeRule checks the node part of an allow_addresses entry of the
// form "node:<hex>@<forwarder>" (one Wireless Node Id behind a forwarder,
// MQTT-SN 1.2 §5.5) and returns the forwarder's address; another entry is
// returned as it is. ok is false when the node part is wrong (reported).
func checkNodeRule(p *problems, key, a string) (fwd string, ok bool) {
	rest, isNode := strings.CutPrefix(a, "node:")
	if !isNode {
		return a, true
	}
	nodeHex, fwd, _ := strings.Cut(rest, "@")
	if b, err := hex.DecodeString(nodeHex); err != nil || len(b) == 0 || len(b) > packet.MaxNodeIDLen {
		p.add(key, "%q: the node id of \"node:<hex>@<forwarder>\" is not 1 to %d octets in hex (e.g. \"node:0013a201@192.168.1.20\")", a, packet.MaxNodeIDLen)
		return "", false
	}
	return fwd, true
}

// checkAllowIDs checks an allowlist of ClientIds and patterns.
func checkAllowIDs(p *problems, key string, ids []string) {
	for j, id := range ids {
		checkClientIDRule(p, indexKey(key, j), id)
	}
}

func checkClientIDRule(p *problems, key, id string) {
	if id == "" || strings.ContainsRune(id, 0) || !utf8.ValidString(id) {
		p.add(key, "%q is not a client id or pattern (not empty, UTF-8 without U+0000)", id)
	} else if !strings.ContainsAny(id, "*?") && len(id) > 23 {
		p.add(key, "%q is longer than an MQTT-SN ClientId (23 octets)", id)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// parseTopicID reads a pre-defined topic id: decimal, or hex with 0x.
func parseTopicID(s string) (uint16, bool) {
	n, err := strconv.ParseUint(s, 0, 16)
	if err != nil || n == 0 || n == 0xFFFF { // MQTT-SN 1.2 §5.3.11: 0x0000 and 0xFFFF are reserved
		return 0, false
	}
	return uint16(n), true
}

func checkPredefined(p *problems, key string, m map[string]string) {
	seen := map[uint16]string{}
	keys := slices.Collect(mapKeys(m))
	slices.SortFunc(keys, func(a, b string) int { // in document order
		return cmp.Or(cmp.Compare(p.pos.line(joinKey(key, a)), p.pos.line(joinKey(key, b))), cmp.Compare(a, b))
	})
	for _, k := range keys {
		id, ok := parseTopicID(k)
		if !ok {
			p.add(joinKey(key, k), "%q is not a topic id (1 to 65534, decimal or 0x hex)", k)
			continue
		}
		if other, dup := seen[id]; dup {
			p.add(joinKey(key, k), "topic id %d is also given as %q", id, other)
			continue
		}
		seen[id] = k
		if t := m[k]; t == "" || strings.ContainsAny(t, "+#\x00") || len(t) > 65535 {
			p.add(joinKey(key, k), "%q is not a topic name (no wildcards, not empty)", t)
		}
	}
}

// checkHostPort checks a host:port address at key.
func checkHostPort(p *problems, key, addr, example string) {
	if addr == "" {
		p.add(key, "is required (host:port, e.g. %s)", example)
	} else if host, port, err := net.SplitHostPort(addr); err != nil {
		p.add(key, "%q is not host:port: %v", addr, unwrapAddrErr(err))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(key, "port %q is out of range (0 to 65535)", port)
	} else if strings.ContainsAny(host, " \t") {
		p.add(key, "host %q is not valid", host)
	}
}

func (s *SerialConfig) validate(p *problems, key string) {
	if s.Device == "" && s.USBVID == "" {
		p.add(key+".device", "a serial link needs device (a path) or usb_vid to find its port by")
	}
	if s.Device == "" && s.USBVID == "" && (s.USBPID != "" || s.USBSerial != "") {
		p.add(key+".usb_vid", "usb_pid and usb_serial need usb_vid")
	}
	for _, f := range []struct{ k, v string }{{"usb_vid", s.USBVID}, {"usb_pid", s.USBPID}} {
		if f.v != "" {
			if _, err := strconv.ParseUint(f.v, 16, 16); err != nil || len(f.v) > 4 {
				p.add(key+"."+f.k, "%q is not a 4-digit hex USB id (e.g. \"0403\")", f.v)
			}
		}
	}
	maxMTU := 0
	switch s.Framing {
	case serialbus.FramingRaw:
		maxMTU = serialbus.DefaultRawMax
	case serialbus.FramingXBee, serialbus.FramingXBeeAPI1:
		maxMTU = serialbus.MaxXBeeLength - 14
	case serialbus.FramingBridge:
		maxMTU = serialbus.DefaultBridgeMax - (1 + 3 + 3 + serialbus.BridgeMaxNode + 2)
	default:
		p.add(key+".framing", "unknown framing %q (use raw, xbee, xbee-api1 or bridge)", s.Framing)
	}
	if s.Baud < 1 {
		p.add(key+".baud", "must be more than 0, not %d", s.Baud)
	}
	if maxMTU > 0 && (s.MTU < 8 || s.MTU > maxMTU) {
		p.add(key+".mtu", "%d is out of range (8 to %d for the %s framing)", s.MTU, maxMTU, s.Framing)
	}
	if s.MinGap < 0 {
		p.add(key+".min_gap", "must not be negative (%s)", s.MinGap)
	}
	if !(s.DutyCycle >= 0 && s.DutyCycle <= 1) {
		p.add(key+".duty_cycle", "%v is out of range (0 to 1, e.g. 0.01 for 1%%)", s.DutyCycle)
	}
	if s.BitRate < 1 {
		p.add(key+".bit_rate", "must be more than 0, not %d", s.BitRate)
	}
	if s.QueueLen < 1 {
		p.add(key+".queue_len", "must be at least 1, not %d", s.QueueLen)
	}
	if s.ReconnectMin <= 0 {
		p.add(key+".reconnect_min", "must be more than 0s, not %s", s.ReconnectMin)
	}
	if s.ReconnectMax <= 0 {
		p.add(key+".reconnect_max", "must be more than 0s, not %s", s.ReconnectMax)
	} else if s.ReconnectMax < s.ReconnectMin {
		p.add(key+".reconnect_max", "%s is less than reconnect_min (%s)", s.ReconnectMax, s.ReconnectMin)
	}
	if s.IdleGap < 0 {
		p.add(key+".idle_gap", "must not be negative (%s)", s.IdleGap)
	}
}

// predefinedIDs converts a validated [mqttsn.predefined] table.
func predefinedIDs(m map[string]string) map[uint16]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[uint16]string, len(m))
	for k, v := range m {
		if id, ok := parseTopicID(k); ok {
			out[id] = v
		}
	}
	return out
}

// MQTTSNOptions returns the MQTT-SN gateway's options for c, with its UDP
// transports; the serial links' transports are for the caller to add (see
// SerialTransport). Logger is left nil for the caller to set.
func (c *Config) MQTTSNOptions() mqttsn.Options {
	m := c.MQTTSN
	opts := mqttsn.Options{
		GatewayID:          byte(m.GatewayID),
		KeepAliveGrace:     m.KeepAliveGrace,
		Tretry:             time.Duration(m.RetryInterval),
		Nretry:             m.Retries,
		MaxClients:         m.MaxClients,
		MaxTopicsPerClient: m.MaxTopicsPerClient,
		MaxBuffered:        m.MaxBuffered,
		SessionExpiry:      time.Duration(m.SessionExpiry),
		AdvertiseInterval:  time.Duration(m.AdvertiseInterval),
		Predefined:         predefinedIDs(m.Predefined),
		ACLFile:            m.ACLFile,
		Usernames:          m.Usernames,
		UnconnectedRate:    m.UnconnectedRate,
		UnconnectedBurst:   m.UnconnectedBurst,
		UnconnectedSources: m.UnconnectedSources,
	}
	if opts.UnconnectedRate == 0 {
		opts.UnconnectedRate = -1 // the config's 0 is "no limit"; mqttsn's 0 means its default
	}
	if opts.SessionExpiry == 0 {
		opts.SessionExpiry = -1 // the config's 0 is "never"; mqttsn's 0 means its default
	}
	for cid, ids := range m.ClientPredefined {
		if opts.ClientPredefined == nil {
			opts.ClientPredefined = map[string]map[uint16]string{}
		}
		opts.ClientPredefined[cid] = predefinedIDs(ids)
	}
	for _, u := range m.UDP {
		t := mqttsn.Transport{
			Name:           u.Name,
			Addr:           u.Address,
			MTU:            u.MTU,
			ClientIDPrefix: m.ClientIDPrefix,
			AllowQoSMinus1: u.AllowQoSMinus1,
			AllowClientIDs: u.AllowClientIDs,
			AllowAddrs:     u.AllowAddresses,
		}
		if u.Broadcast != "" {
			if a, err := net.ResolveUDPAddr("udp", u.Broadcast); err == nil {
				t.Broadcast = a
			}
		}
		opts.Transports = append(opts.Transports, t)
	}
	return opts
}

// SerialOptions returns the options of the serial link s. Logger is left nil
// for the caller to set.
func (s *SerialConfig) SerialOptions() serialbus.Options {
	return serialbus.Options{
		Name:         s.Name,
		Device:       s.Device,
		USB:          serialbus.USBMatch{VID: s.USBVID, PID: s.USBPID, Serial: s.USBSerial},
		Baud:         s.Baud,
		Framing:      s.Framing,
		MTU:          s.MTU,
		MinGap:       time.Duration(s.MinGap),
		DutyCycle:    s.DutyCycle,
		BitRate:      s.BitRate,
		QueueLen:     s.QueueLen,
		ReconnectMin: time.Duration(s.ReconnectMin),
		ReconnectMax: time.Duration(s.ReconnectMax),
		IdleGap:      time.Duration(s.IdleGap),
	}
}

// SerialTransport returns the MQTT-SN transport of the serial link s, whose
// datagrams go through conn (the serialbus.Link): the link's MTU and
// broadcast address apply.
func (c *Config) SerialTransport(s *SerialConfig, conn net.PacketConn) mqttsn.Transport {
	return mqttsn.Transport{
		Name:           s.Name,
		Conn:           conn,
		ClientIDPrefix: c.MQTTSN.ClientIDPrefix,
		AllowQoSMinus1: s.AllowQoSMinus1,
		AllowClientIDs: s.AllowClientIDs,
		AllowAddrs:     s.AllowAddresses,
	}
}

// DefaultSerial returns a serial link with every key at its default; Device
// (or the USB keys) is for the caller to set.
func DefaultSerial() SerialConfig {
	var s SerialConfig
	s.setDefaults()
	return s
}
