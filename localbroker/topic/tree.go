package topic

import (
	"slices"
	"strings"
	"sync"
)

// Tree is a subscription trie: it maps (topic filter, key) subscriptions to
// values and finds the subscriptions whose filter matches a topic name.
//
// K identifies a subscriber (a client ID, a session pointer, or a shared
// subscription group such as "$share/g" kept by the broker as its own key
// type); V is what the broker stores per subscription (options, identifier,
// a group's member list). A key holds at most one value per filter: adding
// the same (filter, key) again replaces the value.
//
// Filters are assumed valid (see ValidFilter); the Tree never panics on an
// invalid one, but how it matches is then unspecified. Shared subscriptions
// are not interpreted: split them with ParseShared and add the inner filter
// under a group key.
//
// The zero Tree is empty and ready to use. A Tree is safe for concurrent
// use; it must not be copied after first use.
type Tree[K comparable, V any] struct {
	mu   sync.RWMutex
	root node[K, V]
	n    int // subscriptions
}

// node is one level of the trie. A node is reached by the filter levels from
// the root to it; subs holds the filters that end at the node, hash the
// filters that continue with a final "#" level (for the root: the filter
// "#"). Literal levels are in kids while there are few of them (a scan
// of a few names beats hashing the level), in children past maxKids; the
// '+' level is in plus.
type node[K comparable, V any] struct {
	parent   *node[K, V]
	name     string // level that leads here from parent ("+" for a plus node)
	kids     []*node[K, V]
	children map[string]*node[K, V]
	plus     *node[K, V]
	subs     subList[K, V]
	hash     subList[K, V]
}

func (n *node[K, V]) empty() bool {
	return len(n.kids) == 0 && len(n.children) == 0 && n.plus == nil &&
		len(n.subs.list) == 0 && len(n.hash.list) == 0
}

// maxKids is the number of literal children a node keeps in its kids slice
// before it moves them to the children map.
const maxKids = 8

// child returns n's child for the literal level lvl, or nil.
func (n *node[K, V]) child(lvl string) *node[K, V] {
	if n.children != nil {
		return n.children[lvl]
	}
	for _, k := range n.kids {
		if k.name == lvl {
			return k
		}
	}
	return nil
}

// addChild adds c, whose name is not yet a child of n.
func (n *node[K, V]) addChild(c *node[K, V]) {
	switch {
	case n.children != nil:
		n.children[c.name] = c
	case len(n.kids) < maxKids:
		n.kids = append(n.kids, c)
	default:
		n.children = make(map[string]*node[K, V], 2*maxKids)
		for _, k := range n.kids {
			n.children[k.name] = k
		}
		n.children[c.name] = c
		n.kids = nil
	}
}

// removeChild detaches the literal child c.
func (n *node[K, V]) removeChild(c *node[K, V]) {
	if n.children != nil {
		delete(n.children, c.name)
		if len(n.children) == 0 {
			n.children = nil
		}
		return
	}
	for i, k := range n.kids {
		if k == c {
			last := len(n.kids) - 1
			n.kids[i] = n.kids[last]
			n.kids[last] = nil
			n.kids = n.kids[:last]
			break
		}
	}
	if len(n.kids) == 0 {
		n.kids = nil
	}
}

// Add subscribes key to filter with value v and reports whether key was
// already subscribed to filter, in which case v replaces the old value.
// Add ignores an empty filter. Add allocates only when it creates nodes or
// grows a node's list.
func (t *Tree[K, V]) Add(filter string, key K, v V) (replaced bool) {
	if filter == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	var owned string // clone of filter that new node names are cut from
	off := 0         // offset of rest in filter
	rest := filter
	for {
		lvl, r, more := cutLevel(rest)
		if lvl == "#" && !more {
			replaced = n.hash.set(key, v)
			break
		}
		var c *node[K, V]
		if lvl == "+" {
			if n.plus == nil {
				n.plus = &node[K, V]{parent: n, name: "+"}
			}
			c = n.plus
		} else {
			c = n.child(lvl)
			if c == nil {
				// Names are cut from a private copy of the filter so
				// that the trie does not pin the caller's (possibly
				// large) packet buffer.
				if owned == "" {
					owned = strings.Clone(filter)
				}
				c = &node[K, V]{parent: n, name: owned[off : off+len(lvl)]}
				n.addChild(c)
			}
		}
		n = c
		if !more {
			replaced = n.subs.set(key, v)
			break
		}
		off += len(lvl) + 1
		rest = r
	}
	if !replaced {
		t.n++
	}
	return replaced
}

// find returns the subscription list that holds filter's subscriptions and
// its node, or nil if there is none. The caller holds t.mu.
func (t *Tree[K, V]) find(filter string) (*node[K, V], *subList[K, V]) {
	if filter == "" {
		return nil, nil
	}
	n := &t.root
	rest := filter
	for {
		lvl, r, more := cutLevel(rest)
		if lvl == "#" && !more {
			return n, &n.hash
		}
		if lvl == "+" {
			n = n.plus
		} else {
			n = n.child(lvl)
		}
		if n == nil {
			return nil, nil
		}
		if !more {
			return n, &n.subs
		}
		rest = r
	}
}

// Get returns the value key holds for filter, if key is subscribed to it.
func (t *Tree[K, V]) Get(filter string, key K) (v V, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if _, l := t.find(filter); l != nil {
		if i := l.index(key); i >= 0 {
			return l.list[i].val, true
		}
	}
	return v, false
}

// Remove unsubscribes key from filter and reports whether it was subscribed.
// Nodes left without subscriptions or children are pruned.
func (t *Tree[K, V]) Remove(filter string, key K) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, l := t.find(filter)
	if l == nil || !l.remove(key) {
		return false
	}
	t.n--
	for n != &t.root && n.empty() {
		p := n.parent
		if p.plus == n {
			p.plus = nil
		} else {
			p.removeChild(n)
		}
		n.parent = nil
		n = p
	}
	return true
}

// Len returns the number of (filter, key) subscriptions.
func (t *Tree[K, V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.n
}

// Match calls fn once for every (filter, key) subscription whose filter
// matches topic, in no particular order. A key subscribed with several
// filters that match topic (say "a/+" and "a/#") is visited once per filter:
// the caller merges them per key (MQTT 5.0 §4.7.2 lets the broker deliver
// once with the highest QoS). An empty topic matches nothing.
//
// Match holds the Tree's read lock while it calls fn, so fn must not call
// any method of the same Tree (a waiting Add would deadlock it) and should
// be quick: copy what it needs and return. Match does not allocate.
func (t *Tree[K, V]) Match(topic string, fn func(key K, v V)) {
	if topic == "" {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	r := &t.root
	// A filter starting with a wildcard does not match a topic starting
	// with '$' [MQTT-4.7.2-1].
	dollar := topic[0] == '$'
	if !dollar {
		r.hash.visit(fn)
	}
	lvl, rest, more := cutLevel(topic)
	if !dollar && r.plus != nil {
		r.plus.match(rest, more, fn)
	}
	if c := r.child(lvl); c != nil {
		c.match(rest, more, fn)
	}
}

// match visits the subscriptions below n, which the filter prefix leading to
// n matched against the topic up to rest; more reports whether rest holds
// any level (rest "" with more is one empty level).
func (n *node[K, V]) match(rest string, more bool, fn func(K, V)) {
	for {
		// "x/#" matches "x" as well as everything below it (§4.7.1.2).
		n.hash.visit(fn)
		if !more {
			n.subs.visit(fn)
			return
		}
		lvl, r, m := cutLevel(rest)
		if n.plus != nil {
			n.plus.match(r, m, fn)
		}
		c := n.child(lvl)
		if c == nil {
			return
		}
		// Follow the literal path iteratively; only '+' branches recurse.
		n, rest, more = c, r, m
	}
}

// subList holds the subscriptions of one filter: a slice to iterate fast,
// and past indexMin entries a map from key to slice index so that a filter
// shared by thousands of clients still adds and removes in O(1).
type subList[K comparable, V any] struct {
	list []entry[K, V]
	idx  map[K]int
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// indexMin is the list length beyond which a subList keeps an index.
const indexMin = 8

func (s *subList[K, V]) index(key K) int {
	if s.idx != nil {
		if i, ok := s.idx[key]; ok {
			return i
		}
		return -1
	}
	for i := range s.list {
		if s.list[i].key == key {
			return i
		}
	}
	return -1
}

func (s *subList[K, V]) set(key K, v V) (replaced bool) {
	if i := s.index(key); i >= 0 {
		s.list[i].val = v
		return true
	}
	s.list = append(s.list, entry[K, V]{key, v})
	switch {
	case s.idx != nil:
		s.idx[key] = len(s.list) - 1
	case len(s.list) > indexMin:
		s.idx = make(map[K]int, len(s.list))
		for i := range s.list {
			s.idx[s.list[i].key] = i
		}
	}
	return false
}

func (s *subList[K, V]) remove(key K) bool {
	i := s.index(key)
	if i < 0 {
		return false
	}
	last := len(s.list) - 1
	if i != last {
		s.list[i] = s.list[last]
		if s.idx != nil {
			s.idx[s.list[i].key] = i
		}
	}
	s.list[last] = entry[K, V]{} // drop references for the GC
	s.list = s.list[:last]
	if s.idx != nil {
		delete(s.idx, key)
	}
	switch n := len(s.list); {
	case n == 0:
		s.list, s.idx = nil, nil
	case n < cap(s.list)/4 && cap(s.list) > 4*indexMin:
		// Give back the memory of a list that shrank a lot.
		s.list = slices.Clone(s.list)
	}
	if s.idx != nil && len(s.list) <= indexMin/2 {
		s.idx = nil
	}
	return true
}

func (s *subList[K, V]) visit(fn func(K, V)) {
	for i := range s.list {
		fn(s.list[i].key, s.list[i].val)
	}
}
