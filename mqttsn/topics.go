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

// topicTable maps a client's normal topic ids to names (MQTT-SN 1.2 §6.5,
// §7.3: per client, never shared between clients).
type topicTable struct {
	byID   map[uint16]*topicEntry
	byName map[string]uint16
	next   uint16
	clock  uint64
	max    int
}

// newTopicTable returns an empty table; its maps are made with the first
// id, since most idle clients have none.
func newTopicTable(max int) *topicTable {
	return &topicTable{max: max}
}

// put adds an entry.
func (t *topicTable) put(id uint16, e *topicEntry) {
	if t.byID == nil {
		t.byID, t.byName = map[uint16]*topicEntry{}, map[string]uint16{}
	}
	t.byID[id] = e
	t.byName[e.name] = id
}

// name returns the topic name of a normal topic id.
func (t *topicTable) name(id uint16) (string, bool) {
	e := t.byID[id]
	if e == nil {
		return "", false
	}
	t.clock++
	e.used = t.clock
	return e.name, true
}

// lookup returns the entry of name, if any.
func (t *topicTable) lookup(name string) (uint16, *topicEntry) {
	id, ok := t.byName[name]
	if !ok {
		return 0, nil
	}
	e := t.byID[id]
	t.clock++
	e.used = t.clock
	return id, e
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
	if len(t.byID) >= t.max {
		if !byGateway {
			return 0, nil, false
		}
		// Reuse the least recently used entry the gateway assigned.
		var victim uint16
		var oldest uint64
		for id, e := range t.byID {
			if e.byGateway && (victim == 0 || e.used < oldest) {
				victim, oldest = id, e.used
			}
		}
		if victim == 0 {
			return 0, nil, false
		}
		delete(t.byName, t.byID[victim].name)
		delete(t.byID, victim)
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
		if t.byID[t.next] == nil {
			return t.next
		}
	}
}

// forget removes an id (the client refused it).
func (t *topicTable) forget(id uint16) {
	if e := t.byID[id]; e != nil {
		delete(t.byName, e.name)
		delete(t.byID, id)
	}
}

// unknowAll marks every id as not yet told to the client: a new connection.
func (t *topicTable) unknowAll() {
	for _, e := range t.byID {
		e.known = false
	}
}
