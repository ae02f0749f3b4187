package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Key layout. Every key starts with a one-letter namespace and a slash:
//
//	s/format              store format version (one byte)
//	m/<queue>             queue meta record (see qmeta)
//	q/<queue>/<seq>       queue item; seq is 8 bytes big-endian, so keys sort in seq order;
//	                      value = 8-byte big-endian append time (Unix ns) + payload
//	k/<namespace>/<key>   KV entry; value = the value as given
//
// Queue and namespace names may not contain '/', so one name's keys never
// share a prefix with another's.
const (
	formatVersion = 1
	itemHdrBytes  = 8
	maxNameBytes  = 200
	maxKeyBytes   = 60000 // badger's limit is 65000 for the whole key
	metaRecBytes  = 1 + 4*8
)

var formatKey = []byte("s/format")

func checkName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("spool: empty %s name", kind)
	case len(name) > maxNameBytes:
		return fmt.Errorf("spool: %s name longer than %d bytes", kind, maxNameBytes)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("spool: %s name %q contains '/'", kind, name)
	}
	return nil
}

func queuePrefix(name string) []byte { return []byte("q/" + name + "/") }
func metaKey(name string) []byte     { return []byte("m/" + name) }
func kvPrefix(ns string) []byte      { return []byte("k/" + ns + "/") }

// itemKey returns prefix followed by seq, big-endian, in a new slice.
func itemKey(prefix []byte, seq uint64) []byte {
	k := make([]byte, len(prefix)+8)
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[len(prefix):], seq)
	return k
}

// seqOf returns the sequence number at the end of an item key.
func seqOf(key []byte) uint64 { return binary.BigEndian.Uint64(key[len(key)-8:]) }

// qmeta is the persistent state of a queue, written in the same transaction
// as every change to its items, so that it always matches them.
type qmeta struct {
	next  uint64 // the seq the next append gets; seqs start at 1
	head  uint64 // no item has a seq below head (a lower bound, usually exact)
	depth int64  // number of items
	bytes int64  // sum of the payload sizes of the items
}

func newMeta() qmeta { return qmeta{next: 1, head: 1} }

// exact says whether every seq in [head, next) is an item, so that head is
// the first item and the item after a removed head is head+1.
func (m qmeta) exact() bool { return m.depth == int64(m.next-m.head) }

func (m qmeta) encode() []byte {
	b := make([]byte, metaRecBytes)
	b[0] = formatVersion
	binary.BigEndian.PutUint64(b[1:], m.next)
	binary.BigEndian.PutUint64(b[9:], m.head)
	binary.BigEndian.PutUint64(b[17:], uint64(m.depth))
	binary.BigEndian.PutUint64(b[25:], uint64(m.bytes))
	return b
}

var errCorrupt = errors.New("spool: corrupt record")

func decodeMeta(b []byte) (qmeta, error) {
	if len(b) != metaRecBytes || b[0] != formatVersion {
		return qmeta{}, fmt.Errorf("%w: queue meta of %d bytes, version %v", errCorrupt, len(b), b[:min(len(b), 1)])
	}
	m := qmeta{
		next:  binary.BigEndian.Uint64(b[1:]),
		head:  binary.BigEndian.Uint64(b[9:]),
		depth: int64(binary.BigEndian.Uint64(b[17:])),
		bytes: int64(binary.BigEndian.Uint64(b[25:])),
	}
	if m.next == 0 || m.head == 0 || m.head > m.next || m.depth < 0 || m.bytes < 0 || m.depth > int64(m.next-m.head) {
		return qmeta{}, fmt.Errorf("%w: queue meta %+v", errCorrupt, m)
	}
	return m, nil
}
