package hub

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkFanOut measures the hub's share of a delivery: dispatching
// one update to n in-process subscriptions (match, queue, notify) and
// draining it, per delivery. Publishing goes through a MemoryStore. The
// subscriptions select by one exact topic, one pattern, or eight patterns
// of which the last matches (more than Config.InlinePatterns, so tested
// in Drain rather than by the dispatcher).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{100, 10000} {
		for _, kind := range []string{"exact", "pattern", "patterns8"} {
			b.Run(fmt.Sprintf("subs=%d/%s", n, kind), func(b *testing.B) {
				benchFanOut(b, n, kind)
			})
		}
	}
}

func benchFanOut(b *testing.B, n int, kind string) {
	h, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	ctx := context.Background()
	subs := make([]*Subscription, n)
	for i := range subs {
		ms := []Matcher{Exact("https://example.com/books/1")}
		switch kind {
		case "pattern":
			ms = []Matcher{prefix("https://example.com/books/")}
		case "patterns8":
			// More than Config.InlinePatterns: matched in Drain.
			ms = nil
			for j := range 7 {
				ms = append(ms, prefix(fmt.Sprintf("https://example.com/other%d/", j)))
			}
			ms = append(ms, prefix("https://example.com/books/"))
		}
		subs[i], err = h.Subscribe(ctx, SubscribeRequest{Topics: ms, Notify: func() {}})
		if err != nil {
			b.Fatal(err)
		}
	}
	data := strings.Repeat("x", 100)
	var batch []*Update
	drainAll := func() {
		for _, s := range subs {
			batch, _ = s.Drain(ctx, batch[:0])
			clear(batch)
		}
	}
	const every = 100 // drain before any queue (1000) overflows
	b.ReportAllocs()
	b.ResetTimer()
	start := h.Stats().Dispatched
	for i := range b.N {
		if _, err := h.Publish(ctx, &Update{Topics: []string{"https://example.com/books/1"}, Data: data}); err != nil {
			b.Fatal(err)
		}
		if i%every == every-1 {
			waitDispatched(h, start+uint64(i+1))
			drainAll()
		}
	}
	waitDispatched(h, start+uint64(b.N))
	drainAll()
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
	for _, s := range subs {
		s.Close()
	}
}

func waitDispatched(h *Hub, n uint64) {
	for h.Stats().Dispatched < n {
		runtime.Gosched()
		time.Sleep(10 * time.Microsecond)
	}
}

// BenchmarkPublish measures Publish through a MemoryStore with no
// subscriber: validation, ID generation, append and dispatch.
func BenchmarkPublish(b *testing.B) {
	h, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Publish(ctx, &Update{Topics: []string{"https://example.com/books/1"}, Data: "x"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
