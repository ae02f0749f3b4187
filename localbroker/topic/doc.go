// Package topic is the broker's topic machinery: validation of topic names
// and topic filters, wildcard matching, the subscription trie (Tree) and the
// retained-message store (Retained).
//
// Levels are the substrings between '/' separators; "a//b" has three levels
// ("a", "", "b") and "/a" has two ("", "a"). The single-level wildcard '+'
// matches exactly one level, possibly empty; the multi-level wildcard '#'
// matches any number of levels, including zero, so "sport/#" matches "sport"
// (MQTT 5.0 §4.7.1.2). A filter whose first character is a wildcard never
// matches a topic name whose first character is '$' [MQTT-4.7.2-1].
//
// Statements are cited with their MQTT 5.0 numbers; where MQTT 3.1.1 numbers
// the same rule differently, the 3.1.1 number follows in parentheses.
//
// Matching walks strings by index and allocates nothing: Match, Tree.Match,
// Retained.Get and Retained.Walk are meant for the publish path.
package topic
