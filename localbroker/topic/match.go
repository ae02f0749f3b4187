package topic

import "strings"

// Match reports whether the topic filter matches the topic name. Both are
// assumed valid (see ValidFilter and ValidName); Match reports false when
// either is empty and never panics on invalid input, but its answer for an
// invalid filter or name is unspecified.
//
// '+' matches exactly one level, '#' matches the rest of the topic including
// its parent level, so "sport/#" matches "sport" (§4.7.1.2), and a filter
// starting with '+' or '#' does not match a topic starting with '$'
// [MQTT-4.7.2-1]. Shared subscriptions must be split with ParseShared first.
// Match does not allocate.
func Match(filter, topic string) bool {
	if filter == "" || topic == "" {
		return false
	}
	if topic[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false // [MQTT-4.7.2-1]
	}
	for {
		// Both filter and topic start at the beginning of a level.
		fl, frest, fmore := cutLevel(filter)
		if fl == "#" {
			return true // [MQTT-4.7.1-1]: '#' is the last level
		}
		tl, trest, tmore := cutLevel(topic)
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore:
			return !tmore
		case !tmore:
			// The topic has no level left; only a trailing "#" matches
			// the parent level (§4.7.1.2).
			return frest == "#"
		}
		filter, topic = frest, trest
	}
}

// cutLevel splits s at its first '/': level is the first level, rest what
// follows the separator, more whether there was a separator (so that "a/"
// has the two levels "a" and "").
func cutLevel(s string) (level, rest string, more bool) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
