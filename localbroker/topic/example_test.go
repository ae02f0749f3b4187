package topic_test

import (
	"fmt"
	"slices"

	"github.com/outpost-gw/outpost/localbroker/topic"
)

func ExampleTree() {
	type subOpts struct{ qos byte }
	var subs topic.Tree[string, subOpts] // key: client ID

	subs.Add("sport/tennis/+", "alice", subOpts{qos: 1})
	subs.Add("sport/#", "alice", subOpts{qos: 2}) // overlaps the one above
	subs.Add("sport/#", "bob", subOpts{qos: 0})
	subs.Add("#", "carol", subOpts{qos: 0})

	// Merge per client: one delivery with the highest QoS.
	qos := map[string]byte{}
	subs.Match("sport/tennis/player1", func(client string, o subOpts) {
		qos[client] = max(qos[client], o.qos)
	})
	for _, c := range []string{"alice", "bob", "carol"} {
		fmt.Println(c, qos[c])
	}

	// A filter starting with a wildcard never matches a '$' topic.
	n := 0
	subs.Match("$SYS/uptime", func(string, subOpts) { n++ })
	fmt.Println("$SYS matches:", n)
	// Output:
	// alice 2
	// bob 0
	// carol 0
	// $SYS matches: 0
}

func ExampleRetained() {
	var retained topic.Retained[string]
	retained.Set("home/kitchen/temp", "21.5")
	retained.Set("home/kitchen/hum", "40")
	retained.Set("home/garage/temp", "12.0")
	retained.Set("home", "online")

	var got []string
	retained.Walk("home/#", func(t, v string) bool {
		got = append(got, t+"="+v)
		return true
	})
	slices.Sort(got) // Walk's order is unspecified
	fmt.Println(got)
	// Output:
	// [home/garage/temp=12.0 home/kitchen/hum=40 home/kitchen/temp=21.5 home=online]
}

func ExampleParseShared() {
	group, inner, shared, err := topic.ParseShared("$share/loggers/sensors/+/temp")
	fmt.Println(group, inner, shared, err)
	_, _, shared, err = topic.ParseShared("$share/loggers")
	fmt.Println(shared, err)
	// Output:
	// loggers sensors/+/temp true <nil>
	// true topic: invalid shared subscription filter
}

func ExampleValidFilter() {
	for _, f := range []string{"sport/+/player1", "sport/tennis#", "sport+", ""} {
		fmt.Printf("%q: %v\n", f, topic.ValidFilter(f, 0, 0))
	}
	// Output:
	// "sport/+/player1": <nil>
	// "sport/tennis#": topic: '#' must be alone in the last level
	// "sport+": topic: '+' must be alone in its level
	// "": topic: empty
}
