package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
	"github.com/outpost-gw/outpost/mqttsn/client"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// httpTestConfig is a gateway on free loopback ports with the HTTP server
// on, MQTT-SN with pre-defined topic id 5, and an uplink "cloud" exporting
// sensors/# to cloudURL.
func httpTestConfig(t *testing.T, cloudURL string) *Config {
	t.Helper()
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	cfg.MQTTSN.Predefined = map[string]string{"5": "sensors/node1/temp"}
	cfg.HTTP.Address = "127.0.0.1:0"
	if cloudURL != "" {
		u := DefaultUplink()
		u.Name, u.URL = "cloud", cloudURL
		u.ReconnectMin, u.ReconnectMax = Duration(50*time.Millisecond), Duration(200*time.Millisecond)
		r := DefaultRule()
		r.Direction, r.Local = RuleOut, "sensors/#"
		u.Rules = []RuleConfig{r}
		cfg.Uplinks = []UplinkConfig{u}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// httpGet fetches url with optional basic auth and returns the status and
// body.
func httpGet(t *testing.T, url, user, pass string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	c := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// --- a parser of the Prometheus text format, strict enough to catch our
// mistakes -------------------------------------------------------------------

var (
	metricNameRe = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRe  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parseMetrics parses an exposition and returns each series ("name" or
// `name{a="x",b="y"}` with the labels sorted) and its value. It reports
// every breach of the format: a sample without HELP and TYPE before it, a
// family split or declared twice, a bad name, unsorted or repeated labels,
// a bad escape, a duplicate series, a counter not named _total, a counter
// whose name without _total is another family's.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	types := map[string]string{}
	helps := map[string]bool{}
	done := map[string]bool{} // families already left
	cur := ""
	if !strings.HasSuffix(text, "\n") {
		t.Errorf("the exposition does not end with a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		n := i + 1
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, _ := strings.Cut(rest, " ")
			if helps[name] {
				t.Errorf("line %d: second HELP for %s", n, name)
			}
			if strings.Contains(strings.NewReplacer(`\\`, "", `\n`, "").Replace(help), `\`) {
				t.Errorf("line %d: bad escape in HELP %q", n, help)
			}
			helps[name] = true
			if cur != "" && cur != name {
				done[cur] = true
			}
			cur = name
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if _, dup := types[name]; dup {
				t.Errorf("line %d: second TYPE for %s", n, name)
			}
			if !slices.Contains([]string{"counter", "gauge"}, typ) {
				t.Errorf("line %d: type %q", n, typ)
			}
			if typ == "counter" && !strings.HasSuffix(name, "_total") {
				t.Errorf("line %d: counter %s is not named *_total", n, name)
			}
			types[name] = typ
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			t.Errorf("line %d: unexpected %q", n, line)
			continue
		}
		name, labels, value, err := parseSample(line)
		if err != nil {
			t.Errorf("line %d: %v: %q", n, err, line)
			continue
		}
		if !metricNameRe.MatchString(name) {
			t.Errorf("line %d: bad metric name %q", n, name)
		}
		if types[name] == "" || !helps[name] {
			t.Errorf("line %d: sample of %s without HELP and TYPE before it", n, name)
		}
		if done[name] || (cur != name) {
			t.Errorf("line %d: sample of %s outside its family's group", n, name)
		}
		key := name
		if len(labels) > 0 {
			var parts []string
			for i, l := range labels {
				if !labelNameRe.MatchString(l[0]) {
					t.Errorf("line %d: bad label name %q", n, l[0])
				}
				if i > 0 && labels[i-1][0] >= l[0] {
					t.Errorf("line %d: labels not sorted or repeated: %q then %q", n, labels[i-1][0], l[0])
				}
				parts = append(parts, fmt.Sprintf("%s=%q", l[0], l[1]))
			}
			key += "{" + strings.Join(parts, ",") + "}"
		}
		if _, dup := out[key]; dup {
			t.Errorf("line %d: series %s twice", n, key)
		}
		out[key] = value
	}
	// OpenMetrics names a counter's family without _total: a gauge of that
	// name would be a second family of the same name.
	for name, typ := range types {
		if base, ok := strings.CutSuffix(name, "_total"); ok && typ == "counter" && types[base] != "" {
			t.Errorf("counter %s and %s %s share a family name in OpenMetrics", name, types[base], base)
		}
	}
	return out
}

// parseSample parses `name{label="value",...} value`, unescaping the label
// values.
func parseSample(line string) (string, [][2]string, float64, error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", nil, 0, errors.New("no value")
	}
	name, rest := line[:i], line[i:]
	var labels [][2]string
	if rest[0] == '{' {
		rest = rest[1:]
		for rest != "" && rest[0] != '}' {
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return "", nil, 0, errors.New("label without =\"")
			}
			lname := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			for {
				if rest == "" {
					return "", nil, 0, errors.New("unterminated label value")
				}
				c := rest[0]
				rest = rest[1:]
				if c == '"' {
					break
				}
				if c == '\n' {
					return "", nil, 0, errors.New("raw newline in a label value")
				}
				if c == '\\' {
					if rest == "" {
						return "", nil, 0, errors.New("escape at the end")
					}
					switch rest[0] {
					case '\\':
						val.WriteByte('\\')
					case '"':
						val.WriteByte('"')
					case 'n':
						val.WriteByte('\n')
					default:
						return "", nil, 0, fmt.Errorf("bad escape \\%c", rest[0])
					}
					rest = rest[1:]
					continue
				}
				val.WriteByte(c)
			}
			labels = append(labels, [2]string{lname, val.String()})
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			}
		}
		if rest == "" {
			return "", nil, 0, errors.New("unterminated labels")
		}
		rest = rest[1:]
	}
	vs, ok := strings.CutPrefix(rest, " ")
	if !ok || strings.Contains(vs, " ") {
		return "", nil, 0, errors.New("want one space, then the value (no timestamp)")
	}
	var v float64
	switch vs {
	case "+Inf":
		v = math.Inf(1)
	case "-Inf":
		v = math.Inf(-1)
	case "NaN":
		v = math.NaN()
	default:
		var err error
		if v, err = strconv.ParseFloat(vs, 64); err != nil {
			return "", nil, 0, err
		}
	}
	return name, labels, v, nil
}

// The writer escapes HELP and label values, sorts labels, and writes
// special values as the format spells them.
func TestPromWriter(t *testing.T) {
	var w promWriter
	w.family("x_total", "counter", "a \\ back\nslash")
	w.sample("x_total", 3, label{"z", "q\"uote"}, label{"a", "new\nline\\"})
	w.one("y", "gauge", "inf", math.Inf(1))
	w.one("z", "gauge", "small", 0.25)
	want := "# HELP x_total a \\\\ back\\nslash\n# TYPE x_total counter\n" +
		"x_total{a=\"new\\nline\\\\\",z=\"q\\\"uote\"} 3\n" +
		"# HELP y inf\n# TYPE y gauge\ny +Inf\n# HELP z small\n# TYPE z gauge\nz 0.25\n"
	if got := w.b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	m := parseMetrics(t, want)
	if v := m[`x_total{a="new\nline\\",z="q\"uote"}`]; v != 3 {
		t.Errorf("parsed %v", m)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a family written twice does not panic")
			}
		}()
		w.family("y", "gauge", "again")
	}()
}

// snClient connects an MQTT-SN client to the gateway's UDP transport.
func snClient(t *testing.T, g *Gateway, id string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Addr: g.MQTTSNAddrs()["default"].String(), ClientID: id, CleanSession: true, KeepAlive: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("MQTT-SN connect %s: %v", id, err)
	}
	return c
}

func snPublish(t *testing.T, c *client.Client, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Publish(ctx, client.Topic{Predefined: 5}, packet.QoS1, false, []byte(payload)); err != nil {
		t.Fatalf("MQTT-SN publish: %v", err)
	}
}

// metricsOf fetches /metrics and parses it.
func metricsOf(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, hdr, body := httpGet(t, base+"/metrics", "", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	return parseMetrics(t, body)
}

// After real MQTT and MQTT-SN traffic with the uplink's cloud down, the
// counters of the listener, the transport, the clients by state and the
// uplink's spool show it, and the exposition is well formed.
func TestMetricsAfterTraffic(t *testing.T) {
	cfg := httpTestConfig(t, "mqtt://"+freeAddr(t)) // nothing listens: the messages stay spooled
	g, stop := startGateway(t, cfg)
	base := "http://" + g.HTTPAddr().String()

	m0 := metricsOf(t, base)
	for _, k := range []string{
		`outpost_ready`,
		`outpost_listener_clients_connected{listener="default",type="tcp"}`,
		`outpost_mqttsn_clients{state="active"}`,
		`outpost_mqttsn_datagrams_received_total{transport="default"}`,
		`outpost_uplink_connected{uplink="cloud"}`,
		`outpost_uplink_spool_messages{uplink="cloud"}`,
		`go_goroutines`,
		`go_memory_classes_heap_objects_bytes`,
		`go_gc_cycles_total_gc_cycles_total`,
	} {
		if _, ok := m0[k]; !ok {
			t.Errorf("no series %s in /metrics", k)
		}
	}
	if m0["outpost_ready"] != 1 || m0[`outpost_uplink_connected{uplink="cloud"}`] != 0 || m0["go_goroutines"] < 1 {
		t.Errorf("ready %v, uplink connected %v, goroutines %v; want 1, 0, > 0",
			m0["outpost_ready"], m0[`outpost_uplink_connected{uplink="cloud"}`], m0["go_goroutines"])
	}

	pub := dialMQTT(t, g.Addrs()["default"], "pub", true, 0)
	pub.publish("sensors/lan", "1", false)
	pub.publish("other/lan", "2", false)
	sn := snClient(t, g, "node1")
	snPublish(t, sn, "21.5")

	// A counter moves after its datagram is out: the client may have the
	// answer first.
	want := map[string]float64{
		`outpost_listener_connections_total{listener="default",type="tcp"}`:       1,
		`outpost_listener_messages_received_total{listener="default",type="tcp"}`: 2,
		`outpost_mqttsn_messages_received_total{transport="default"}`:             1,
		`outpost_mqttsn_datagrams_received_total{transport="default"}`:            2, // CONNECT, PUBLISH
		`outpost_mqttsn_datagrams_sent_total{transport="default"}`:                2, // CONNACK, PUBACK
		`outpost_uplink_spool_messages{uplink="cloud"}`:                           2, // sensors/lan and the sensor's
		`outpost_broker_messages_received_total`:                                  3,
	}
	var m1 map[string]float64
	delta := func(k string) float64 { return m1[k] - m0[k] }
	deadline := time.Now().Add(10 * time.Second)
	for {
		m1 = metricsOf(t, base)
		moved := true
		for k, w := range want {
			moved = moved && delta(k) == w
		}
		if moved || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for k, w := range want {
		if d := delta(k); d != w {
			t.Errorf("%s moved by %v; want %v", k, d, w)
		}
	}
	if m1[`outpost_listener_clients_connected{listener="default",type="tcp"}`] != 1 ||
		m1[`outpost_mqttsn_clients{state="active"}`] != 1 || m1[`outpost_mqttsn_clients{state="asleep"}`] != 0 {
		t.Errorf("connected now: %v MQTT, %v MQTT-SN active, %v asleep; want 1, 1, 0",
			m1[`outpost_listener_clients_connected{listener="default",type="tcp"}`],
			m1[`outpost_mqttsn_clients{state="active"}`], m1[`outpost_mqttsn_clients{state="asleep"}`])
	}
	if delta(`outpost_listener_bytes_received_total{listener="default",type="tcp"}`) <= 0 ||
		delta(`outpost_mqttsn_bytes_received_total{transport="default"}`) <= 0 {
		t.Error("the byte counters did not move")
	}
	if eta := m1[`outpost_uplink_drain_eta_seconds{uplink="cloud"}`]; !math.IsInf(eta, 1) {
		t.Errorf("drain ETA %v with the cloud down; want +Inf", eta)
	}
	var queued float64
	for k, v := range m1 {
		if strings.HasPrefix(k, "outpost_spool_queue_messages{") && strings.Contains(k, `uplink="cloud"`) && strings.Contains(k, `quarantine="false"`) {
			queued += v
		}
	}
	if queued != 2 {
		t.Errorf("the cloud's spool queues hold %v messages; want 2", queued)
	}
	pub.close()
	stop()
}

// /healthz answers while the server serves; /readyz only once every
// component is ready, and no more from the moment the gateway stops.
func TestHealthAndReadiness(t *testing.T) {
	cfg := httpTestConfig(t, "")
	g, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := g.http.handler()
	get := func(path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code
	}
	if c := get("/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("/readyz before Run: %d; want 503", c)
	}
	if c := get("/healthz"); c != http.StatusOK {
		t.Errorf("/healthz: %d; want 200", c)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := runGateway(ctx, g)
	waitFor(t, g.Ready(), "the gateway to be ready")
	base := "http://" + g.HTTPAddr().String()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nothing": 404} {
		if code, _, body := httpGet(t, base+path, "", ""); code != want {
			t.Errorf("GET %s: %d %q; want %d", path, code, body, want)
		}
	}
	if code, hdr, body := httpGet(t, base+"/", "", ""); code != 200 || !strings.Contains(body, "/static/status.js") ||
		!strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("GET /: %d, CSP %q, page %q", code, hdr.Get("Content-Security-Policy"), body)
	}
	if code, _, body := httpGet(t, base+"/static/status.js", "", ""); code != 200 || !strings.Contains(body, "/status.json") {
		t.Errorf("GET /static/status.js: %d %q", code, body)
	}
	cancel()
	if err := waitFor(t, done, "the gateway to stop"); err != nil {
		t.Errorf("Run = %v", err)
	}
	if c := get("/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the stop: %d; want 503", c)
	}
	if _, err := net.DialTimeout("tcp", g.HTTPAddr().String(), time.Second); err == nil {
		t.Error("the HTTP server still accepts connections after the stop")
	}
}

// writePasswordFile writes a mosquitto_passwd file with user and password.
func writePasswordFile(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := auth.HashPassword([]byte(password), 0)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "http.passwd")
	if err := os.WriteFile(p, []byte(user+":"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// With a password file every path but /healthz and /readyz asks for basic
// auth, over HTTPS with a certificate.
func TestHTTPBasicAuthAndTLS(t *testing.T) {
	cfg := httpTestConfig(t, "")
	cfg.HTTP.PasswordFile = writePasswordFile(t, "admin", "s3cret")
	ex := examplesDir(t)
	cfg.HTTP.CertFile, cfg.HTTP.KeyFile = filepath.Join(ex, "demo-server.pem"), filepath.Join(ex, "demo-server.key")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, stop := startGateway(t, cfg)
	base := "https://" + g.HTTPAddr().String()
	for _, tc := range []struct {
		path, user, pass string
		want             int
	}{
		{"/metrics", "", "", 401},
		{"/metrics", "admin", "wrong", 401},
		{"/metrics", "nobody", "s3cret", 401},
		{"/metrics", "admin", "s3cret", 200},
		{"/metrics", "admin", "s3cret", 200}, // from the cache
		{"/", "", "", 401},
		{"/", "admin", "s3cret", 200},
		{"/status.json", "", "", 401},
		{"/status.json", "admin", "s3cret", 200},
		{"/static/status.js", "", "", 401},
		{"/nothing", "", "", 401},
		{"/healthz", "", "", 200},
		{"/readyz", "", "", 200},
	} {
		code, hdr, _ := httpGet(t, base+tc.path, tc.user, tc.pass)
		if code != tc.want {
			t.Errorf("GET %s as %q/%q: %d; want %d", tc.path, tc.user, tc.pass, code, tc.want)
		}
		if code == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("GET %s: 401 without a Basic challenge", tc.path)
		}
	}
	// Plain HTTP gets no page.
	if resp, err := http.Get("http://" + g.HTTPAddr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served /healthz on the HTTPS port")
		}
	}
	stop()
}

// The [http] keys are checked like the others: each problem names its key
// and line, all at once.
func TestHTTPConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.passwd")
	if err := os.WriteFile(empty, []byte("# nobody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.passwd")
	if err := os.WriteFile(bad, []byte("admin:plaintext\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ex := examplesDir(t)
	cases := []struct{ name, doc, key, msg string }{
		{"address", `address = "9100"`, "http.address", "is not host:port"},
		{"port", `address = ":99999"`, "http.address", "out of range"},
		{"missing password file", `password_file = "nope"`, "http.password_file", "no such file"},
		{"empty password file", `password_file = "` + empty + `"`, "http.password_file", "holds no user"},
		{"bad password file", `password_file = "` + bad + `"`, "http.password_file", "bad.passwd:1"},
		{"cert without key", `cert_file = "` + ex + `/demo-server.pem"`, "http.cert_file", "needs key_file"},
		{"key without cert", `key_file = "` + ex + `/demo-server.key"`, "http.key_file", "needs cert_file"},
		{"mismatched pair", `cert_file = "` + ex + `/demo-server.pem"` + "\n" + `key_file = "` + ex + `/demo-device.key"`, "http.cert_file", "cannot load"},
		{"unknown key", `adress = ":9100"`, "http.adress", "unknown key"},
		{"wrong type", `address = 9100`, "http.address", "want a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, "[http]\n"+tc.doc+"\n")
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.key || ce.Line < 2 || !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("error %q; want key %s, a line, and %q", err, tc.key, tc.msg)
			}
		})
	}

	// All at once, one per line.
	path := writeConfig(t, "[http]\naddress = \"x\"\npassword_file = \"nope\"\nkey_file = \"k\"\n")
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(err.Error()))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 || !strings.Contains(lines[0], ":2: http.address") || !strings.Contains(lines[1], ":3: http.password_file") ||
		!strings.Contains(lines[2], ":4: http.key_file") {
		t.Errorf("errors:\n%s\nwant http.address, http.password_file, http.key_file on lines 2, 3, 4", err)
	}

	// Off by default; a relative path is relative to the file.
	if Default().HTTP.Enabled() {
		t.Error("the embedded defaults turn the HTTP server on")
	}
	pw := writePasswordFile(t, "u", "p")
	if err := os.Rename(pw, filepath.Join(dir, "rel.passwd")); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "outpost.toml")
	if err := os.WriteFile(cfgPath, []byte("[http]\naddress = \":0\"\npassword_file = \"rel.passwd\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.PasswordFile != filepath.Join(dir, "rel.passwd") {
		t.Errorf("password_file %q; want it next to the config", c.HTTP.PasswordFile)
	}
}

// The HTTP server starts after every other component and stops first; a
// port it cannot bind fails the start, and what started is stopped again.
func TestHTTPServerInTheLifecycle(t *testing.T) {
	cfg := httpTestConfig(t, "")
	g, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range g.components {
		names = append(names, c.Name())
	}
	if i := slices.Index(names, "http"); i < 0 || i != len(names)-2 || names[len(names)-1] != "systemd" {
		t.Errorf("components %v; want http last but the systemd notifier", names)
	}

	off := testConfig()
	off.DataDir = t.TempDir()
	if g, err := New(off, testLogger(t)); err != nil || g.HTTPAddr() != nil || slices.ContainsFunc(g.components, func(c component) bool { return c.Name() == "http" }) {
		t.Errorf("with [http] address = \"\": err %v; want no HTTP server", err)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg = httpTestConfig(t, "")
	cfg.HTTP.Address = busy.Addr().String()
	g, err = New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = waitFor(t, runGateway(context.Background(), g), "the start to fail")
	if err == nil || !strings.Contains(err.Error(), "http") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run = %v; want the HTTP server's bind failure", err)
	}
}
