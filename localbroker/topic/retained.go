package topic

import (
	"strings"
	"sync"
)

// Retained stores one value per topic name, such as the retained message of
// each topic, and finds the stored topics that a topic filter matches by
// walking a trie level by level (not by scanning every topic).
//
// The zero Retained is empty and ready to use. A Retained is safe for
// concurrent use; it must not be copied after first use.
type Retained[V any] struct {
	mu   sync.RWMutex
	root rnode[V]
	n    int
}

// rnode is one level of the retained trie. topic is the topic name of the
// node (the levels from the root to it) and name its last level; both are
// cut from one private copy of a topic given to Set.
type rnode[V any] struct {
	parent   *rnode[V]
	name     string
	topic    string
	children map[string]*rnode[V]
	val      V
	has      bool
}

// Set stores v for topic, replacing any value stored before. topic is
// assumed to be a valid topic name (see ValidName); Set ignores "". Set
// allocates only when topic is new to the trie.
func (r *Retained[V]) Set(topic string, v V) {
	if topic == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := &r.root
	var owned string // clone of topic that new node strings are cut from
	off := 0
	rest := topic
	for {
		lvl, rs, more := cutLevel(rest)
		c := n.children[lvl]
		if c == nil {
			if owned == "" {
				owned = strings.Clone(topic)
			}
			end := off + len(lvl)
			c = &rnode[V]{parent: n, name: owned[off:end], topic: owned[:end]}
			if n.children == nil {
				n.children = make(map[string]*rnode[V])
			}
			n.children[c.name] = c
		}
		n = c
		if !more {
			break
		}
		off += len(lvl) + 1
		rest = rs
	}
	if !n.has {
		r.n++
	}
	n.val, n.has = v, true
}

// lookup returns the node of topic, or nil. The caller holds r.mu.
func (r *Retained[V]) lookup(topic string) *rnode[V] {
	if topic == "" {
		return nil
	}
	n := &r.root
	for {
		lvl, rest, more := cutLevel(topic)
		if n = n.children[lvl]; n == nil || !more {
			return n
		}
		topic = rest
	}
}

// Get returns the value stored for topic. Get does not allocate.
func (r *Retained[V]) Get(topic string) (v V, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.lookup(topic); n != nil && n.has {
		return n.val, true
	}
	return v, false
}

// Delete removes the value stored for topic and reports whether there was
// one. Nodes left without a value or children are pruned.
func (r *Retained[V]) Delete(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.lookup(topic)
	if n == nil || !n.has {
		return false
	}
	var zero V
	n.val, n.has = zero, false
	r.n--
	for n != &r.root && !n.has && len(n.children) == 0 {
		p := n.parent
		delete(p.children, n.name)
		if len(p.children) == 0 {
			p.children = nil
		}
		n.parent = nil
		n = p
	}
	return true
}

// Len returns the number of stored topics.
func (r *Retained[V]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// Walk calls fn for every stored topic that filter matches (see Match), in
// no particular order, until fn returns false. A filter starting with a
// wildcard skips topics starting with '$' [MQTT-4.7.2-1]. filter is assumed
// valid (see ValidFilter); an empty filter matches nothing.
//
// Walk holds the read lock while it calls fn, so fn must not call any
// method of the same Retained (a waiting Set would deadlock it). Walk does
// not allocate.
func (r *Retained[V]) Walk(filter string, fn func(topic string, v V) bool) {
	if filter == "" {
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.root.walk(filter, true, fn)
}

// walk matches filter, which holds at least one level, against the children
// of n. It returns false once fn has asked to stop.
func (n *rnode[V]) walk(filter string, root bool, fn func(string, V) bool) bool {
	lvl, rest, more := cutLevel(filter)
	switch {
	case lvl == "#" && !more:
		// '#' matches the parent level too (§4.7.1.2): "a/#" matches "a".
		if n.has && !fn(n.topic, n.val) {
			return false
		}
		for name, c := range n.children {
			if root && name != "" && name[0] == '$' {
				continue // [MQTT-4.7.2-1]
			}
			if !c.all(fn) {
				return false
			}
		}
		return true
	case lvl == "+":
		for name, c := range n.children {
			if root && name != "" && name[0] == '$' {
				continue // [MQTT-4.7.2-1]
			}
			if !c.step(rest, more, fn) {
				return false
			}
		}
		return true
	default:
		c := n.children[lvl]
		if c == nil {
			return true
		}
		return c.step(rest, more, fn)
	}
}

// step continues a walk at c, whose level the filter matched.
func (c *rnode[V]) step(rest string, more bool, fn func(string, V) bool) bool {
	if !more {
		return !c.has || fn(c.topic, c.val)
	}
	return c.walk(rest, false, fn)
}

// all visits c and everything below it.
func (c *rnode[V]) all(fn func(string, V) bool) bool {
	if c.has && !fn(c.topic, c.val) {
		return false
	}
	for _, k := range c.children {
		if !k.all(fn) {
			return false
		}
	}
	return true
}
