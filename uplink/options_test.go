package uplink

import (
	"strings"
	"testing"
	"time"
)

func TestRuleMapping(t *testing.T) {
	tests := []struct {
		local, remote string
		topic, mapped string // local topic and its cloud topic
		fails         bool
	}{
		{"sensors/#", "site7/sensors/#", "sensors/a/t", "site7/sensors/a/t", false},
		{"sensors/#", "site7/sensors/#", "sensors", "site7/sensors", false},
		{"sensors/+/temp", "site7/s/+/temp", "sensors/boiler/temp", "site7/s/boiler/temp", false},
		{"#", "site7/#", "a/b", "site7/a/b", false},
		{"lan/#", "#", "lan/x/y", "x/y", false},
		{"lan/#", "#", "lan", "", true}, // the parent level has no cloud name
		{"+/x", "site7/+/x", "a/x", "site7/a/x", false},
		{"a/b", "c/d/e", "a/b", "c/d/e", false},
		{"a/b", "", "a/b", "a/b", false},
		{"a/+/c/#", "z/+/c/#", "a/1/c/2/3", "z/1/c/2/3", false},
	}
	for _, tt := range tests {
		r, err := compileRule(Rule{Direction: Out, Local: tt.local, Remote: tt.remote})
		if err != nil {
			t.Fatalf("compileRule(%q, %q): %v", tt.local, tt.remote, err)
		}
		if matchRule([]*rule{r}, tt.topic, false) == nil {
			t.Fatalf("%q does not match %q", tt.local, tt.topic)
		}
		got, ok := r.toRemote(tt.topic)
		if ok == tt.fails || got != tt.mapped {
			t.Errorf("%q -> %q: toRemote(%q) = %q, %v; want %q, %v", tt.local, r.Remote, tt.topic, got, ok, tt.mapped, !tt.fails)
		}
		if tt.fails {
			continue
		}
		if matchRule([]*rule{r}, got, true) == nil {
			t.Errorf("remote filter %q does not match mapped %q", r.Remote, got)
		}
		back, ok := r.toLocal(got)
		if !ok || back != tt.topic {
			t.Errorf("toLocal(%q) = %q, %v; want %q", got, back, ok, tt.topic)
		}
	}
}

func TestRuleValidation(t *testing.T) {
	bad := []struct {
		rule Rule
		want string
	}{
		{Rule{Direction: "up", Local: "a"}, "direction"},
		{Rule{Direction: Out, Local: ""}, "local filter"},
		{Rule{Direction: Out, Local: "a/#", Remote: "b/+"}, "wildcard parts"},
		{Rule{Direction: Out, Local: "a/+/c", Remote: "b/+/d"}, "wildcard parts"},
		{Rule{Direction: Out, Local: "a/#", Remote: "b"}, "wildcard parts"},
		{Rule{Direction: Out, Local: "a/b#"}, "local filter"},
		{Rule{Direction: Out, Local: "$share/g/a"}, "shared"},
		{Rule{Direction: Out, Local: "a", MaxQoS: QoS(3)}, "MaxQoS"},
		{Rule{Direction: Out, Local: "a", Retain: "maybe"}, "retain"},
		{Rule{Direction: Out, Local: "a", Priority: -1}, "priority"},
		{Rule{Direction: Out, Local: "a", MaxAge: -time.Second}, "MaxAge"},
		{Rule{Direction: In, Local: "a", QueueQoS0: true}, "out-rules only"},
	}
	for _, tt := range bad {
		_, err := compileRule(tt.rule)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("compileRule(%+v) = %v; want an error about %q", tt.rule, err, tt.want)
		}
	}
}

func TestOptionsDefaultsAndErrors(t *testing.T) {
	s, err := Options{Name: "cloud", URL: "mqtts://example.com", Rules: []Rule{
		{Direction: Out, Local: "a/#", Priority: 1},
		{Direction: Out, Local: "b/#", Priority: 5},
		{Direction: Out, Local: "c/#", Priority: 1},
		{Direction: In, Local: "cmd/#", Remote: "site/cmd/#"},
	}}.compile()
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "example.com:8883" || s.ClientID != "outpost-cloud" || s.Window != DefaultWindow ||
		s.KeepAlive != DefaultKeepAlive || s.ReconnectMin != DefaultReconnectMin || s.RateBurst != 1 {
		t.Errorf("defaults not applied: %+v", s)
	}
	if len(s.prios) != 2 || s.prios[0] != 5 || s.prios[1] != 1 {
		t.Errorf("prios = %v, want [5 1]", s.prios)
	}
	if len(s.out) != 3 || len(s.in) != 1 {
		t.Errorf("%d out and %d in rules", len(s.out), len(s.in))
	}
	for _, o := range []Options{
		{URL: "mqtt://h", Rules: []Rule{{Direction: Out, Local: "a"}}},
		{Name: "a.b", URL: "mqtt://h", Rules: []Rule{{Direction: Out, Local: "a"}}},
		{Name: "x", URL: "http://h", Rules: []Rule{{Direction: Out, Local: "a"}}},
		{Name: "x", URL: "mqtt://h"},
		{Name: "x", URL: "mqtt://h", CertFile: "c", Rules: []Rule{{Direction: Out, Local: "a"}}},
		{Name: "x", URL: "mqtt://h", Window: -1, Rules: []Rule{{Direction: Out, Local: "a"}}},
		{Name: "x", URL: "mqtt://h", ReconnectMin: time.Minute, ReconnectMax: time.Second, Rules: []Rule{{Direction: Out, Local: "a"}}},
	} {
		if _, err := o.compile(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if got := QueueName("cloud", 5); got != "uplink.cloud.p5" {
		t.Errorf("QueueName = %q", got)
	}
}

func TestBackoffBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for n := range 20 {
		d := backoff(n, lo, hi)
		want := min(hi, lo<<min(n, 30))
		if d < want/2 || d > want {
			t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
		}
	}
}

func TestBucket(t *testing.T) {
	k := newLimiter(10, 2, 0)
	now := time.Unix(1000, 0)
	if k.take(now, 1) != 0 || k.take(now, 1) != 0 {
		t.Fatal("burst of 2 not available")
	}
	if w := k.take(now, 1); w <= 0 || w > 100*time.Millisecond {
		t.Fatalf("third take waits %v, want (0, 100ms]", w)
	}
	if k.take(now.Add(100*time.Millisecond), 1) != 0 {
		t.Fatal("no token after 100ms at 10/s")
	}
	var none *limiter
	if none.take(now, 1<<30) != 0 {
		t.Fatal("nil limiter waits")
	}
	if newLimiter(0, 0, 0) != nil {
		t.Fatal("a limiter without limits")
	}
}

func TestParseQueueName(t *testing.T) {
	for _, tc := range []struct {
		queue      string
		bridge     string
		prio       int
		quarantine bool
		ok         bool
	}{
		{QueueName("aws", 10), "aws", 10, false, true},
		{QueueName("a-b_c", 0), "a-b_c", 0, false, true},
		{QuarantineName("hive"), "hive", 0, true, true},
		{"uplink.x.p999", "x", 999, false, true},
		{"uplink.x.p1000", "", 0, false, false},
		{"uplink.x.p01", "", 0, false, false},
		{"uplink.x.p-1", "", 0, false, false},
		{"uplink.x.q1", "", 0, false, false},
		{"uplink.a.b.p1", "", 0, false, false},
		{"uplink..p1", "", 0, false, false},
		{"uplink.x", "", 0, false, false},
		{"other", "", 0, false, false},
	} {
		b, p, q, ok := ParseQueueName(tc.queue)
		if b != tc.bridge || p != tc.prio || q != tc.quarantine || ok != tc.ok {
			t.Errorf("ParseQueueName(%q) = %q, %d, %v, %v; want %q, %d, %v, %v", tc.queue, b, p, q, ok, tc.bridge, tc.prio, tc.quarantine, tc.ok)
		}
	}
}
