package topic

import "testing"

type matchCase struct {
	spec   string
	filter string
	topic  string
	want   bool
}

// matchCases drive TestMatch and, through the Tree and Retained, their
// tests too: every implementation of matching must agree with these.
var matchCases = []matchCase{
	// Exact levels; matching is case sensitive and byte exact.
	{"exact", "sport/tennis/player1", "sport/tennis/player1", true},
	{"exact", "sport/tennis/player1", "sport/tennis/player2", false},
	{"exact", "sport/tennis", "sport/tennis/player1", false},
	{"exact", "sport/tennis/player1", "sport/tennis", false},
	{"exact", "ACCOUNTS", "Accounts", false},
	{"exact", "sport", "sport/", false},
	{"exact", "sport/", "sport", false},
	{"exact", "sport/", "sport/", true},
	{"exact", "a", "ab", false},
	{"exact", "ab", "a", false},
	// §4.7.1.2 examples: '#' matches the parent and any number of levels.
	{"MQTT-4.7.1-1", "sport/tennis/player1/#", "sport/tennis/player1", true},
	{"MQTT-4.7.1-1", "sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"MQTT-4.7.1-1", "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"MQTT-4.7.1-1", "sport/tennis/player1/#", "sport/tennis/player2", false},
	{"MQTT-4.7.1-1", "sport/tennis/player1/#", "sport/tennis", false},
	{"MQTT-4.7.1-1", "sport/#", "sport", true},
	{"MQTT-4.7.1-1", "sport/#", "sport/", true},
	{"MQTT-4.7.1-1", "sport/#", "sports", false},
	{"MQTT-4.7.1-1", "sport/#", "spor", false},
	{"MQTT-4.7.1-1", "#", "sport", true},
	{"MQTT-4.7.1-1", "#", "/", true},
	{"MQTT-4.7.1-1", "#", "a/b/c/d", true},
	{"MQTT-4.7.1-1", "/#", "/", true},
	{"MQTT-4.7.1-1", "/#", "/a/b", true},
	{"MQTT-4.7.1-1", "/#", "a", false},
	{"MQTT-4.7.1-1", "a/b/#", "a", false},
	// §4.7.1.3 examples: '+' matches exactly one level, possibly empty.
	{"MQTT-4.7.1-2", "sport/tennis/+", "sport/tennis/player1", true},
	{"MQTT-4.7.1-2", "sport/tennis/+", "sport/tennis/player2", true},
	{"MQTT-4.7.1-2", "sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"MQTT-4.7.1-2", "sport/+", "sport", false},
	{"MQTT-4.7.1-2", "sport/+", "sport/", true},
	{"MQTT-4.7.1-2", "+", "sport", true},
	{"MQTT-4.7.1-2", "+", "/", false},
	{"MQTT-4.7.1-2", "+/+", "/finance", true},
	{"MQTT-4.7.1-2", "/+", "/finance", true},
	{"MQTT-4.7.1-2", "+", "/finance", false},
	{"MQTT-4.7.1-2", "+/tennis/#", "sport/tennis/player1/ranking", true},
	{"MQTT-4.7.1-2", "+/tennis/#", "sport/tennis", true},
	{"MQTT-4.7.1-2", "+/tennis/#", "sport/golf", false},
	{"MQTT-4.7.1-2", "+/+/+", "a/b", false},
	{"MQTT-4.7.1-2", "+/+", "a/b/c", false},
	{"MQTT-4.7.1-2", "+/#", "a", true},
	{"MQTT-4.7.1-2", "a/+/#", "a", false},
	{"MQTT-4.7.1-2", "a/+/#", "a/b", true},
	// Empty levels.
	{"empty-level", "a//b", "a//b", true},
	{"empty-level", "a/+/b", "a//b", true},
	{"empty-level", "a/b", "a//b", false},
	{"empty-level", "a//b", "a/b", false},
	{"empty-level", "/a", "/a", true},
	{"empty-level", "/a", "a", false},
	{"empty-level", "+/a", "/a", true},
	{"empty-level", "/", "/", true},
	{"empty-level", "+/+", "/", true},
	{"empty-level", "//", "//", true},
	{"empty-level", "/+/", "//", true},
	{"empty-level", "a//#", "a/", true},
	{"empty-level", "a//#", "a", false},
	{"empty-level", "a//#", "a//", true},
	// [MQTT-4.7.2-1]: a leading wildcard does not match a leading '$'.
	{"MQTT-4.7.2-1", "#", "$SYS/monitor/Clients", false},
	{"MQTT-4.7.2-1", "+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"MQTT-4.7.2-1", "$SYS/#", "$SYS/monitor/Clients", true},
	{"MQTT-4.7.2-1", "$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"MQTT-4.7.2-1", "$SYS/#", "$SYS", true},
	{"MQTT-4.7.2-1", "+", "$", false},
	{"MQTT-4.7.2-1", "#", "$", false},
	{"MQTT-4.7.2-1", "$", "$", true},
	{"MQTT-4.7.2-1", "#", "a/$SYS", true},
	{"MQTT-4.7.2-1", "a/+", "a/$SYS", true},
	{"MQTT-4.7.2-1", "+/#", "$x/y", false},
	// Not UTF-8 aware beyond bytes: levels compare as bytes.
	{"utf8", "caf\u00e9/+", "caf\u00e9/x", true},
	{"utf8", "cafe/+", "caf\u00e9/x", false},
	// Empty inputs are invalid and match nothing.
	{"MQTT-4.7.3-1", "", "a", false},
	{"MQTT-4.7.3-1", "#", "", false},
	{"MQTT-4.7.3-1", "", "", false},
}

func TestMatch(t *testing.T) {
	for _, c := range matchCases {
		t.Run(c.spec+"/"+c.filter+"~"+c.topic, func(t *testing.T) {
			if got := Match(c.filter, c.topic); got != c.want {
				t.Errorf("Match(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		for _, c := range matchCases {
			Match(c.filter, c.topic)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs = %v, want 0", allocs)
	}
}
