package gateway

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/mqttsn"
	"github.com/outpost-gw/outpost/serialbus"
)

// A file without [[mqttsn.udp]] keeps the default transport; one with
// [[mqttsn.udp]] replaces it; udp = [] leaves none; keys a [[mqttsn.udp]] or
// [[serial]] leaves out keep their defaults, and those that depend on others
// are filled in.
func TestLoadMQTTSNTransports(t *testing.T) {
	c, err := Load(writeConfig(t, "[mqttsn]\ngateway_id = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultMQTTSN()
	want.GatewayID = 3
	if !reflect.DeepEqual(c.MQTTSN, want) {
		t.Errorf("MQTTSN = %+v; want %+v", c.MQTTSN, want)
	}

	c, err = Load(writeConfig(t, `
[[mqttsn.udp]]
address = "127.0.0.1:1886"
[[mqttsn.udp]]
name = "v6"
address = "[::1]:1885"
[[serial]]
device = "/dev/ttyUSB0"
framing = "xbee"
[[serial]]
usb_vid = "0403"
usb_pid = "6015"
framing = "bridge"
`))
	if err != nil {
		t.Fatal(err)
	}
	wantUDP := []MQTTSNUDPConfig{{Name: "udp@127.0.0.1:1886", Address: "127.0.0.1:1886"}, {Name: "v6", Address: "[::1]:1885"}}
	if !reflect.DeepEqual(c.MQTTSN.UDP, wantUDP) {
		t.Errorf("UDP = %+v; want %+v", c.MQTTSN.UDP, wantUDP)
	}
	xbee, bridge := DefaultSerial(), DefaultSerial()
	xbee.Name, xbee.Device, xbee.Framing, xbee.Baud, xbee.BitRate, xbee.MTU = "/dev/ttyUSB0", "/dev/ttyUSB0", "xbee", 9600, 9600, 256
	bridge.Name, bridge.USBVID, bridge.USBPID, bridge.Framing, bridge.Baud, bridge.BitRate, bridge.MTU = "usb:0403:6015", "0403", "6015", "bridge", 115200, 115200, 255
	if want := []SerialConfig{xbee, bridge}; !reflect.DeepEqual(c.Serials, want) {
		t.Errorf("Serials =\n%+v\nwant\n%+v", c.Serials, want)
	}
	if back := roundTrip(t, c); !reflect.DeepEqual(back, c) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, c)
	}

	c, err = Load(writeConfig(t, "[mqttsn]\nudp = []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.MQTTSN.UDP) != 0 {
		t.Errorf("udp = [] gives %+v; want no UDP transport", c.MQTTSN.UDP)
	}
	if back := roundTrip(t, c); len(back.MQTTSN.UDP) != 0 {
		t.Errorf("udp = [] prints as a config with %+v", back.MQTTSN.UDP)
	}
}

// Every field of mqttsn.Options, mqttsn.Transport and serialbus.Options
// has a config key: a config with every key set to a non-default value
// gives options where every field is set.
func TestMQTTSNOptionsMapsEveryField(t *testing.T) {
	c, err := Load(writeConfig(t, `
[mqttsn]
enabled = true
gateway_id = 9
keep_alive_grace = 2.5
retry_interval = "12s"
retries = 4
max_clients = 50
max_topics_per_client = 60
max_buffered = 70
session_expiry = "2h"
advertise_interval = "15m"
client_id_prefix = "sn-"
acl_file = "{{ex}}/demo-acl"
unconnected_rate = 2.5
unconnected_burst = 5
unconnected_sources = 100
[mqttsn.usernames]
"sensor-*" = "sensors"
[mqttsn.predefined]
1 = "a/b"
0x0020 = "c/d"
[mqttsn.client_predefined.node-7]
3 = "e/f"
[[mqttsn.udp]]
name = "lan"
address = "127.0.0.1:0"
mtu = 512
allow_qos_minus1 = true
broadcast = "255.255.255.255:1885"
allow_client_ids = ["sensor-*"]
allow_addresses = ["192.168.1.0/24", "10.0.0.1", "node:0013a201@192.168.1.20"]
[[serial]]
name = "radio"
device = "/dev/ttyAMA0"
usb_vid = "0403"
usb_pid = "6015"
usb_serial = "D30A9X4B"
baud = 57600
framing = "bridge"
mtu = 200
min_gap = "5ms"
duty_cycle = 0.01
bit_rate = 5470
queue_len = 8
reconnect_min = "1s"
reconnect_max = "30s"
idle_gap = "40ms"
allow_qos_minus1 = true
allow_client_ids = ["node-?"]
allow_addresses = ["0013a20040a1b2c3"]
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := c.MQTTSNOptions()
	checkAllSet(t, "mqttsn.Options", reflect.ValueOf(opts), "Logger", "Transports")
	if want := map[uint16]string{1: "a/b", 0x20: "c/d"}; !reflect.DeepEqual(opts.Predefined, want) {
		t.Errorf("Predefined = %v; want %v", opts.Predefined, want)
	}
	if want := map[string]map[uint16]string{"node-7": {3: "e/f"}}; !reflect.DeepEqual(opts.ClientPredefined, want) {
		t.Errorf("ClientPredefined = %v; want %v", opts.ClientPredefined, want)
	}
	if len(opts.Transports) != 1 {
		t.Fatalf("%d transports", len(opts.Transports))
	}
	checkAllSet(t, "mqttsn.Transport", reflect.ValueOf(opts.Transports[0]), "Conn") // Conn: serial links only
	if b := opts.Transports[0].Broadcast; b.String() != "255.255.255.255:1885" {
		t.Errorf("Broadcast = %v", b)
	}

	s := &c.Serials[0]
	sopts := s.SerialOptions()
	checkAllSet(t, "serialbus.Options", reflect.ValueOf(sopts), "Logger")
	checkAllSet(t, "serialbus.USBMatch", reflect.ValueOf(sopts.USB))
	if sopts.DutyCycle != 0.01 || sopts.MinGap != 5*time.Millisecond || sopts.Framing != "bridge" {
		t.Errorf("SerialOptions() = %+v", sopts)
	}
	link, err := serialbus.New(sopts)
	if err != nil {
		t.Fatalf("serialbus.New refuses the options: %v", err)
	}
	tr := c.SerialTransport(s, link)
	if tr.Name != "radio" || tr.Conn != link || tr.ClientIDPrefix != "sn-" || !tr.AllowQoSMinus1 ||
		!reflect.DeepEqual(tr.AllowClientIDs, []string{"node-?"}) || !reflect.DeepEqual(tr.AllowAddrs, []string{"0013a20040a1b2c3"}) {
		t.Errorf("SerialTransport() = %+v", tr)
	}
	opts.Transports = append(opts.Transports, tr)
	if _, err := mqttsn.New(opts, mqttsn.Deps{Broker: nopSNBroker{}}); err != nil {
		t.Errorf("mqttsn.New refuses the options: %v", err)
	}

	// session_expiry "0s" is "never", unconnected_rate 0 "no limit": mqttsn
	// spells them negative.
	c.MQTTSN.SessionExpiry = 0
	c.MQTTSN.UnconnectedRate = 0
	if o := c.MQTTSNOptions(); o.SessionExpiry >= 0 || o.UnconnectedRate >= 0 {
		t.Errorf("session_expiry 0s gives %v, unconnected_rate 0 %v; want both negative", o.SessionExpiry, o.UnconnectedRate)
	}
}

// nopSNBroker satisfies mqttsn.Broker for mqttsn.New, which only validates.
type nopSNBroker struct{}

func (nopSNBroker) Attach(localbroker.ClientOptions) (*localbroker.Client, bool, error) {
	return nil, false, errors.New("not in this test")
}

// Mistakes in [mqttsn], [[mqttsn.udp]] and [[serial]] name the key and its
// line.
func TestLoadMQTTSNErrors(t *testing.T) {
	cases := []struct {
		name, key, msg, doc string
	}{
		{"unknown mqttsn key", "mqttsn.retry", "unknown key", `
[mqttsn]
retry = 3 #<-
`},
		{"gateway id", "mqttsn.gateway_id", "out of range (0 to 255)", `
[mqttsn]
gateway_id = 256 #<-
`},
		{"grace below 1", "mqttsn.keep_alive_grace", "at least 1", `
[mqttsn]
keep_alive_grace = 0.5 #<-
`},
		{"retry interval", "mqttsn.retry_interval", "more than 0s", `
[mqttsn]
retry_interval = "0s" #<-
`},
		{"retries", "mqttsn.retries", "at least 1", `
[mqttsn]
retries = 0 #<-
`},
		{"max clients", "mqttsn.max_clients", "at least 1", `
[mqttsn]
max_clients = 0 #<-
`},
		{"max topics", "mqttsn.max_topics_per_client", "1 to 65534", `
[mqttsn]
max_topics_per_client = 65535 #<-
`},
		{"max buffered", "mqttsn.max_buffered", "at least 1", `
[mqttsn]
max_buffered = -1 #<-
`},
		{"session expiry", "mqttsn.session_expiry", "negative", `
[mqttsn]
session_expiry = "-1s" #<-
`},
		{"advertise interval", "mqttsn.advertise_interval", "at least 1s", `
[mqttsn]
advertise_interval = "500ms" #<-
`},
		{"reserved predefined id", "mqttsn.predefined.0", "not a topic id", `
[mqttsn.predefined]
1 = "a"
0 = "b" #<-
`},
		{"predefined id out of range", "mqttsn.predefined.65536", "not a topic id", `
[mqttsn.predefined]
65536 = "b" #<-
`},
		{"predefined wildcard", "mqttsn.predefined.2", "not a topic name", `
[mqttsn]
predefined = { 1 = "a", 2 = "b/#" } #<-
`},
		{"predefined not a string", "mqttsn.predefined.1", "want a string", `
[mqttsn.predefined]
1 = 5 #<-
`},
		{"same id twice", "mqttsn.predefined.0x1", "also given", `
[mqttsn.predefined]
1 = "a"
0x1 = "b" #<-
`},
		{"client predefined", "mqttsn.client_predefined.node-7.x", "not a topic id", `
[mqttsn.client_predefined.node-7]
x = "a" #<-
`},
		{"udp address", "mqttsn.udp[1].address", "not host:port", `
[[mqttsn.udp]]
address = ":1885"
[[mqttsn.udp]]
address = "1885" #<-
`},
		{"udp mtu", "mqttsn.udp[0].mtu", "out of range", `
[[mqttsn.udp]]
mtu = 4 #<-
`},
		{"udp broadcast", "mqttsn.udp[0].broadcast", "not a UDP address", `
[[mqttsn.udp]]
broadcast = "everyone" #<-
`},
		{"udp duplicate name", "mqttsn.udp[1].name", "already used by mqttsn.udp[0]", `
[[mqttsn.udp]]
address = ":1885"
[[mqttsn.udp]] #<-
address = ":1885"
`},
		{"unknown udp key", "mqttsn.udp[0].port", "unknown key", `
[[mqttsn.udp]]
port = 1885 #<-
`},
		{"serial without a port", "serial[1].device", "device (a path) or usb_vid", `
[[serial]]
device = "/dev/ttyUSB0"
[[serial]] #<-
framing = "raw"
`},
		{"serial framing", "serial[0].framing", "unknown framing", `
[[serial]]
device = "/dev/ttyUSB0"
framing = "xbee3" #<-
`},
		{"serial duty cycle", "serial[0].duty_cycle", "out of range (0 to 1", `
[[serial]]
device = "/dev/ttyUSB0"
duty_cycle = 1.5 #<-
`},
		{"serial baud", "serial[0].baud", "more than 0", `
[[serial]]
device = "/dev/ttyUSB0"
baud = -9600 #<-
`},
		{"serial mtu beyond the framing", "serial[0].mtu", "out of range (8 to", `
[[serial]]
device = "/dev/ttyUSB0"
framing = "bridge"
mtu = 1024 #<-
`},
		{"serial usb id", "serial[0].usb_vid", "hex USB id", `
[[serial]]
usb_vid = "FTDI" #<-
`},
		{"serial reconnect", "serial[0].reconnect_max", "less than reconnect_min", `
[[serial]]
device = "/dev/ttyUSB0"
reconnect_min = "5s"
reconnect_max = "1s" #<-
`},
		{"serial name used by a udp transport", "serial[0].name", `"default" is already used by mqttsn.udp[0]`, `
[[serial]]
name = "default" #<-
device = "/dev/ttyUSB0"
`},
		{"acl file missing", "mqttsn.acl_file", "no such file", `
[mqttsn]
acl_file = "missing.acl" #<-
`},
		{"acl file not an ACL", "mqttsn.acl_file", "unknown keyword", `
[mqttsn]
acl_file = "{{ex}}/demo-passwd" #<-
`},
		{"empty username", "mqttsn.usernames.sensor-1", "not a username", `
[mqttsn.usernames]
sensor-1 = "" #<-
`},
		{"username of an id too long", "mqttsn.usernames.abcdefghijklmnopqrstuvwxyz", "23 octets", `
[mqttsn]
usernames = { abcdefghijklmnopqrstuvwxyz = "u" } #<-
`},
		{"negative unconnected rate", "mqttsn.unconnected_rate", "must not be negative", `
[mqttsn]
unconnected_rate = -1.0 #<-
`},
		{"unconnected burst", "mqttsn.unconnected_burst", "at least 1", `
[mqttsn]
unconnected_burst = 0 #<-
`},
		{"unconnected sources", "mqttsn.unconnected_sources", "at least 1", `
[mqttsn]
unconnected_sources = 0 #<-
`},
		{"udp allowed address", "mqttsn.udp[0].allow_addresses[1]", "neither an IP address nor a CIDR prefix", `
[[mqttsn.udp]]
allow_addresses = ["10.0.0.0/8", "10.0.0.0/40"] #<-
`},
		{"udp allowed node id", "mqttsn.udp[0].allow_addresses[1]", "node id of", `
[[mqttsn.udp]]
allow_addresses = ["node:0a0b@10.0.0.0/8", "node:0a0@10.0.0.1"] #<-
`},
		{"udp allowed node's forwarder", "mqttsn.udp[0].allow_addresses[1]", "neither an IP address nor a CIDR prefix", `
[[mqttsn.udp]]
allow_addresses = ["node:0a0b@fd00::/8", "node:0a0b@forwarder-7"] #<-
`},
		{"udp allowed node without a forwarder", "mqttsn.udp[0].allow_addresses[0]", "neither an IP address nor a CIDR prefix", `
[[mqttsn.udp]]
allow_addresses = ["node:0a0b"] #<-
`},
		{"udp allowed client id", "mqttsn.udp[0].allow_client_ids[0]", "not a client id or pattern", `
[[mqttsn.udp]]
allow_client_ids = [""] #<-
`},
		{"serial allowed address", "serial[0].allow_addresses[0]", "not a node address", `
[[serial]]
device = "/dev/ttyUSB0"
framing = "xbee"
allow_addresses = ["node-7"] #<-
`},
		{"serial allowed node's forwarder", "serial[0].allow_addresses[1]", "not a node address", `
[[serial]]
device = "/dev/ttyUSB0"
framing = "xbee"
allow_addresses = ["node:01@0013a20040a1b2c3", "node:01@10.0.0.1"] #<-
`},
		{"serial allowed address on the raw framing", "serial[0].allow_addresses[0]", "not for the raw framing", `
[[serial]]
device = "/dev/ttyUSB0"
allow_addresses = ["00aa"] #<-
`},
		{"unknown serial key", "serial[0].parity", "unknown key", `
[[serial]]
device = "/dev/ttyUSB0"
parity = "none" #<-
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.doc)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted:\n%s", tc.doc)
			}
			prefix := fmt.Sprintf("%s:%d: %s: ", path, markedLine(t, tc.doc), tc.key)
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

// A config built in code: the serial link's transport takes the link's MTU
// and broadcast address (mqttsn asks the Conn), so SerialTransport sets
// neither.
func TestSerialTransportLeavesMTUToTheLink(t *testing.T) {
	c := Default()
	s := DefaultSerial()
	s.Device = "/dev/null"
	c.Serials = []SerialConfig{s}
	c.fillDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tr := c.SerialTransport(&c.Serials[0], &net.UDPConn{})
	if tr.MTU != 0 || tr.Broadcast != nil || tr.Addr != "" {
		t.Errorf("SerialTransport() = %+v; want MTU, Broadcast and Addr left to the link", tr)
	}
}
