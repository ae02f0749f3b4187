package mqttsn

import (
	"strings"
	"unicode/utf8"
)

// validTopicName reports whether s can be published to: non-empty UTF-8
// without U+0000 and without wildcards (the broker checks its own limits).
func validTopicName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsAny(s, "+#\x00")
}

// hasWildcard reports whether a subscription's topic name is a filter with
// wildcards (MQTT-SN 1.2 §6.9: SUBACK then carries topic id 0x0000).
func hasWildcard(s string) bool { return strings.ContainsAny(s, "+#") }

// predefined is a set of pre-defined topic ids (MQTT-SN 1.2 §6.7) with the
// reverse map used to send PUBLISH by pre-defined id.
type predefined struct {
	names map[uint16]string
	ids   map[string]uint16 // the lowest id when several ids name one topic
}

func newPredefined(m map[uint16]string) *predefined {
	p := &predefined{names: make(map[uint16]string, len(m)), ids: make(map[string]uint16, len(m))}
	for id, name := range m {
		p.names[id] = name
		if old, ok := p.ids[name]; !ok || id < old {
			p.ids[name] = id
		}
	}
	return p
}

// topicEntry is one normal topic id of a client.
type topicEntry struct {
	name string
	id   uint16
	// byGateway: the gateway chose to register it towards the client (a
	// wildcard match); such an entry may be reused for another name when
	// the table is full. Entries the client registered, or got in a
	// SUBACK, are kept.
	byGateway bool
	// known: the client has been told the id in its current connection (a
	// REGACK or SUBACK it got, a REGISTER it acknowledged). The gateway
	// REGISTERs an unknown id again before publishing on it (§6.10).
	known bool
	used  uint64 // last use, for reuse of gateway entries
}

// smallTopics is the number of entries a table keeps in a slice searched
// linearly; beyond it the table indexes them in two maps. A typical device
// has a handful of ids, and the two maps cost about 0.85 KiB per client.
const smallTopics = 16

// topicTable maps a client's normal topic ids to names (MQTT-SN 1.2 §6.5,
// §7.3: per client, never shared between clients). Up to smallTopics
// entries live in small; from then on in byID and byName (small is nil).
type topicTable struct {
	small  []*topicEntry
	byID   map[uint16]*topicEntry
	byName map[string]*topicEntry
	next   uint16
	clock  uint64
	max    int
}

// newTopicTable returns an empty table; it allocates with the first id,
// since most idle clients have none.
func newTopicTable(max int) *topicTable {
	return &topicTable{max: max}
}

// len returns the number of entries.
func (t *topicTable) len() int {
	if t.byID != nil {
		return len(t.byID)
	}
	return len(t.small)
}

// get returns the entry of id, or nil, without marking it used.
func (t *topicTable) get(id uint16) *topicEntry {
	if t.byID != nil {
		return t.byID[id]
	}
	for _, e := range t.small {
		if e.id == id {
			return e
		}
	}
	return nil
}

// find returns the entry of name, or nil, without marking it used.
func (t *topicTable) find(name string) *topicEntry {
	if t.byName != nil {
		return t.byName[name]
	}
	for _, e := range t.small {
		if e.name == name {
			return e
		}
	}
	return nil
}

// each calls f for every entry, in no particular order.
func (t *topicTable) each(f func(*topicEntry)) {
	if t.byID != nil {
		for _, e := range t.byID {
			f(e)
		}
		return
	}
	for _, e := range t.small {
		f(e)
	}
}

// put adds an entry for id, which must be unused, and whose name must have
// no entry.
func (t *topicTable) put(id uint16, e *topicEntry) {
	e.id = id
	if t.byID == nil && len(t.small) < smallTopics {
		if t.small == nil {
			t.small = make([]*topicEntry, 0, 1)
		}
		t.small = append(t.small, e)
		return
	}
	if t.byID == nil {
		t.byID = make(map[uint16]*topicEntry, len(t.small)+1)
		t.byName = make(map[string]*topicEntry, len(t.small)+1)
		for _, o := range t.small {
			t.byID[o.id], t.byName[o.name] = o, o
		}
		t.small = nil
	}
	t.byID[id], t.byName[e.name] = e, e
}

// remove deletes an entry of the table.
func (t *topicTable) remove(e *topicEntry) {
	if t.byID != nil {
		delete(t.byID, e.id)
		delete(t.byName, e.name)
		return
	}
	for i, o := range t.small {
		if o == e {
			last := len(t.small) - 1
			t.small[i] = t.small[last]
			t.small[last] = nil
			t.small = t.small[:last]
			return
		}
	}
}

// name returns the topic name of a normal topic id.
func (t *topicTable) name(id uint16) (string, bool) {
	e := t.get(id)
	if e == nil {
		return "", false
	}
	t.clock++
	e.used = t.clock
	return e.name, true
}

// lookup returns the entry of name, if any.
func (t *topicTable) lookup(name string) (uint16, *topicEntry) {
	e := t.find(name)
	if e == nil {
		return 0, nil
	}
	t.clock++
	e.used = t.clock
	return e.id, e
}

// assign returns the id of name, assigning a new one when it has none; ok
// is false when the table is full. byGateway says the gateway wants the id
// to publish (it may then reuse a gateway entry of another name); an entry
// registered by the client or by a SUBSCRIBE becomes permanent.
func (t *topicTable) assign(name string, byGateway bool) (uint16, *topicEntry, bool) {
	if id, e := t.lookup(name); e != nil {
		if !byGateway {
			e.byGateway = false
		}
		return id, e, true
	}
	if t.len() >= t.max {
		if !byGateway {
			return 0, nil, false
		}
		// Reuse the least recently used entry the gateway assigned.
		var victim *topicEntry
		t.each(func(e *topicEntry) {
			if e.byGateway && (victim == nil || e.used < victim.used) {
				victim = e
			}
		})
		if victim == nil {
			return 0, nil, false
		}
		t.remove(victim)
	}
	id := t.freeID()
	t.clock++
	e := &topicEntry{name: name, byGateway: byGateway, used: t.clock}
	t.put(id, e)
	return id, e, true
}

// freeID returns an unused id; 0x0000 and 0xFFFF are not used (§5.3.11).
// The table holds fewer than 65534 entries, so this terminates.
func (t *topicTable) freeID() uint16 {
	for {
		t.next++
		if t.next == 0 || t.next == 0xFFFF {
			t.next = 1
		}
		if t.get(t.next) == nil {
			return t.next
		}
	}
}

// forget removes an id (the client refused it).
func (t *topicTable) forget(id uint16) {
	if e := t.get(id); e != nil {
		t.remove(e)
	}
}

// unknowAll marks every id as not yet told to the client: a new connection.
func (t *topicTable) unknowAll() {
	t.each(func(e *topicEntry) { e.known = false })
}
