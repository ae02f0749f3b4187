package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// refMatch is the test oracle for Match: a direct transcription of the
// rules over strings.Split, sharing no code with the package.
func refMatch(filter, topic string) bool {
	if filter == "" || topic == "" {
		return false
	}
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false // [MQTT-4.7.2-1]
	}
	f, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, lvl := range f {
		if lvl == "#" {
			return true // matches the rest, including none (parent level)
		}
		if i >= len(tl) || (lvl != "+" && lvl != tl[i]) {
			return false
		}
	}
	return len(f) == len(tl)
}

// refValidFilter is the test oracle for ValidFilter without limits.
func refValidFilter(s string) bool {
	if s == "" || len(s) > MaxLen || !utf8.ValidString(s) || strings.Contains(s, "\x00") {
		return false
	}
	levels := strings.Split(s, "/")
	for i, lvl := range levels {
		if strings.Contains(lvl, "+") && lvl != "+" {
			return false
		}
		if strings.Contains(lvl, "#") && (lvl != "#" || i != len(levels)-1) {
			return false
		}
	}
	return true
}

// randLevels draws a topic name (wild false) or filter (wild true) over a
// small alphabet so that random filters and topics often meet, with empty
// levels and '$' levels.
func randLevels(rng *rand.Rand, wild bool) string {
	alphabet := [...]string{"a", "b", "c", "", "$s", "$", "ab"}
	n := 1 + rng.IntN(4)
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte('/')
		}
		switch {
		case wild && i == n-1 && rng.IntN(4) == 0:
			sb.WriteByte('#')
		case wild && rng.IntN(4) == 0:
			sb.WriteByte('+')
		default:
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
	}
	if sb.Len() == 0 {
		return "a" // "" is no topic name nor filter [MQTT-4.7.3-1]
	}
	return sb.String()
}

func propertySeeds(t *testing.T) []uint64 {
	seeds := []uint64{1, 2, 3}
	if !testing.Short() {
		seed := uint64(time.Now().UnixNano())
		t.Logf("random seed %d", seed)
		seeds = append(seeds, seed)
	}
	return seeds
}

// Match agrees with the oracle, and ValidFilter/ValidName with theirs, on
// random filters and topics.
func TestPropertyMatchAgreesWithOracle(t *testing.T) {
	for _, seed := range propertySeeds(t) {
		rng := rand.New(rand.NewPCG(seed, 0))
		for range 20000 {
			f, topic := randLevels(rng, true), randLevels(rng, false)
			if ValidFilter(f, 0, 0) != nil || ValidName(topic, 0, 0) != nil {
				t.Fatalf("seed %d: generator made invalid %q or %q", seed, f, topic)
			}
			if got, want := Match(f, topic), refMatch(f, topic); got != want {
				t.Fatalf("seed %d: Match(%q, %q) = %v, oracle %v", seed, f, topic, got, want)
			}
		}
	}
}

// Tree.Match visits exactly the subscriptions a scan with Match finds, under
// a random sequence of adds, replaces and removes.
func TestPropertyTreeMatchesScan(t *testing.T) {
	type subKey struct {
		filter string
		key    int
	}
	for _, seed := range propertySeeds(t) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var tr Tree[int, string]
		ref := map[subKey]string{}
		for step := range 3000 {
			f, k := randLevels(rng, true), rng.IntN(4)
			sk := subKey{f, k}
			if rng.IntN(3) == 0 {
				_, had := ref[sk]
				if got := tr.Remove(f, k); got != had {
					t.Fatalf("seed %d step %d: Remove(%q, %d) = %v, want %v", seed, step, f, k, got, had)
				}
				delete(ref, sk)
			} else {
				v := fmt.Sprintf("%s#%d", f, step)
				_, had := ref[sk]
				if got := tr.Add(f, k, v); got != had {
					t.Fatalf("seed %d step %d: Add(%q, %d) = %v, want %v", seed, step, f, k, got, had)
				}
				ref[sk] = v
			}
			if tr.Len() != len(ref) {
				t.Fatalf("seed %d step %d: Len = %d, want %d", seed, step, tr.Len(), len(ref))
			}
			topic := randLevels(rng, false)
			var got, want []string
			tr.Match(topic, func(k int, v string) { got = append(got, fmt.Sprint(k, " ", v)) })
			for sk, v := range ref {
				if Match(sk.filter, topic) {
					want = append(want, fmt.Sprint(sk.key, " ", v))
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: Tree.Match(%q) = %q, scan %q", seed, step, topic, got, want)
			}
		}
		for sk := range ref {
			tr.Remove(sk.filter, sk.key)
		}
		if tr.Len() != 0 || countNodes(&tr.root) != 1 {
			t.Fatalf("seed %d: after removing all, Len %d, %d nodes", seed, tr.Len(), countNodes(&tr.root))
		}
	}
}

// Retained.Walk visits exactly the stored topics a scan with Match finds,
// under a random sequence of sets and deletes.
func TestPropertyRetainedWalkMatchesScan(t *testing.T) {
	for _, seed := range propertySeeds(t) {
		rng := rand.New(rand.NewPCG(seed, 2))
		var r Retained[int]
		ref := map[string]int{}
		for step := range 3000 {
			topic := randLevels(rng, false)
			if rng.IntN(3) == 0 {
				_, had := ref[topic]
				if got := r.Delete(topic); got != had {
					t.Fatalf("seed %d step %d: Delete(%q) = %v, want %v", seed, step, topic, got, had)
				}
				delete(ref, topic)
			} else {
				r.Set(topic, step)
				ref[topic] = step
			}
			if v, ok := r.Get(topic); v != ref[topic] || ok != hasKey(ref, topic) {
				t.Fatalf("seed %d step %d: Get(%q) = %d, %v", seed, step, topic, v, ok)
			}
			if r.Len() != len(ref) {
				t.Fatalf("seed %d step %d: Len = %d, want %d", seed, step, r.Len(), len(ref))
			}
			filter := randLevels(rng, true)
			var got, want []string
			r.Walk(filter, func(topic string, v int) bool {
				got = append(got, fmt.Sprint(topic, " ", v))
				return true
			})
			for topic, v := range ref {
				if Match(filter, topic) {
					want = append(want, fmt.Sprint(topic, " ", v))
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: Walk(%q) = %q, scan %q", seed, step, filter, got, want)
			}
		}
		for topic := range ref {
			r.Delete(topic)
		}
		if r.Len() != 0 || countRNodes(&r.root) != 1 {
			t.Fatalf("seed %d: after deleting all, Len %d, %d nodes", seed, r.Len(), countRNodes(&r.root))
		}
	}
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}
