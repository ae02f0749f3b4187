package topic

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchTopic is matched by exactly three of benchTree's subscriptions: one
// exact, one with '+' and one with '#'.
const benchTopic = "site/s3/dev/d42/temp"

var benchMetrics = [...]string{"temp", "hum", "co2", "batt"}

// benchFilters returns n filters shaped like an IoT deployment: 80% exact,
// 15% with '+', 5% ending in '#'. Exactly three of them match benchTopic.
func benchFilters(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	out := []string{"site/s3/dev/d42/temp", "site/s3/dev/+/temp", "site/s3/dev/d42/#"}
	for len(out) < n {
		s, d, m := rng.IntN(10), rng.IntN(1000), benchMetrics[rng.IntN(len(benchMetrics))]
		var f string
		switch r := rng.IntN(100); {
		case r < 80:
			f = fmt.Sprintf("site/s%d/dev/d%d/%s", s, d, m)
		case r < 88:
			f = fmt.Sprintf("site/s%d/dev/+/%s", s, m)
		case r < 95:
			f = fmt.Sprintf("site/+/dev/d%d/%s", d, m)
		default:
			f = fmt.Sprintf("site/s%d/dev/d%d/#", s, d)
		}
		if Match(f, benchTopic) {
			continue
		}
		out = append(out, f)
	}
	return out
}

func benchTree(n int) *Tree[string, int] {
	tr := new(Tree[string, int])
	for i, f := range benchFilters(n) {
		tr.Add(f, fmt.Sprintf("client-%d", i), i)
	}
	return tr
}

func BenchmarkTreeMatch(b *testing.B) {
	tr := benchTree(10000)
	matches := 0
	fn := func(string, int) { matches++ }
	tr.Match(benchTopic, fn)
	if matches != 3 {
		b.Fatalf("benchTopic has %d matches, want 3", matches)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Match(benchTopic, fn)
	}
}

// BenchmarkTreeMatchNone publishes to a topic no subscription matches.
func BenchmarkTreeMatchNone(b *testing.B) {
	tr := benchTree(10000)
	fn := func(string, int) {}
	b.ReportAllocs()
	for b.Loop() {
		tr.Match("site/s3/dev/d4242/unknown", fn)
	}
}

// BenchmarkTreeMatchParallel shows what the read lock costs when every core
// publishes at once.
func BenchmarkTreeMatchParallel(b *testing.B) {
	tr := benchTree(10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		fn := func(string, int) { n++ }
		for pb.Next() {
			tr.Match(benchTopic, fn)
		}
	})
}

func BenchmarkTreeAddRemove(b *testing.B) {
	tr := benchTree(10000)
	b.ReportAllocs()
	for b.Loop() {
		tr.Add("site/s3/dev/d42/temp", "bench", 1)
		tr.Remove("site/s3/dev/d42/temp", "bench")
	}
}

func BenchmarkMatch(b *testing.B) {
	for _, c := range []struct{ name, filter, topic string }{
		{"exact", "site/s3/dev/d42/temp", benchTopic},
		{"plus", "site/+/dev/+/temp", benchTopic},
		{"hash", "site/s3/#", benchTopic},
		{"miss", "site/s3/dev/d43/temp", benchTopic},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(c.filter, c.topic)
			}
		})
	}
}

func BenchmarkValidFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = ValidFilter("site/s3/dev/+/room/r7/#", 0, 128)
	}
}

// benchRetained stores 10000 topics: 10 sites × 250 devices × 4 metrics.
func benchRetained() *Retained[int] {
	r := new(Retained[int])
	i := 0
	for s := range 10 {
		for d := range 250 {
			for _, m := range benchMetrics {
				r.Set(fmt.Sprintf("site/s%d/dev/d%d/%s", s, d, m), i)
				i++
			}
		}
	}
	return r
}

func BenchmarkRetainedWalk(b *testing.B) {
	r := benchRetained()
	for _, c := range []struct {
		name, filter string
		want         int
	}{
		{"exact", "site/s3/dev/d42/temp", 1},
		{"hash-device", "site/s3/dev/d42/#", 4},
		{"plus-metric", "site/s3/dev/+/temp", 250},
		{"plus-plus", "site/+/dev/+/temp", 2500},
	} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			fn := func(string, int) bool { n++; return true }
			r.Walk(c.filter, fn)
			if n != c.want {
				b.Fatalf("Walk(%q) visited %d, want %d", c.filter, n, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Walk(c.filter, fn)
			}
		})
	}
}

func BenchmarkRetainedGet(b *testing.B) {
	r := benchRetained()
	b.ReportAllocs()
	for b.Loop() {
		r.Get(benchTopic)
	}
}
