package topic

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
	// One pass over both strings. Wildcards count only at the start of a
	// filter level; j follows the topic.
	j := 0
	for i := 0; i < len(filter); i++ {
		c := filter[i]
		if (c == '+' || c == '#') && (i == 0 || filter[i-1] == '/') {
			if c == '#' {
				return true // [MQTT-4.7.1-1]: '#' is the last level
			}
			for j < len(topic) && topic[j] != '/' {
				j++ // '+' takes one whole topic level, possibly empty
			}
			continue
		}
		if j == len(topic) {
			// The topic has no level left; only a trailing "/#"
			// matches the parent level (§4.7.1.2).
			return filter[i:] == "/#"
		}
		if topic[j] != c {
			return false
		}
		j++
	}
	return j == len(topic)
}

// cutLevel splits s at its first '/': level is the first level, rest what
// follows the separator, more whether there was a separator (so that "a/"
// has the two levels "a" and "").
//
// Levels are short, so a plain loop beats strings.IndexByte's call and
// setup.
func cutLevel(s string) (level, rest string, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
