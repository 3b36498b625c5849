package hub_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// BenchmarkFanOutSelector is BenchmarkFanOut with compiled selectors, as
// ssehttp subscribes: n subscriptions of one URI template or URL pattern
// that every subscription shares, so that after the first test of a topic
// the dispatcher answers from the selector's result cache.
func BenchmarkFanOutSelector(b *testing.B) {
	for _, n := range []int{100, 10000} {
		for _, kind := range []selector.Kind{selector.Template, selector.URLPattern} {
			b.Run(fmt.Sprintf("subs=%d/%s", n, kind), func(b *testing.B) {
				benchFanOutSelector(b, n, kind)
			})
		}
	}
}

func benchFanOutSelector(b *testing.B, n int, kind selector.Kind) {
	comp, err := selector.New(selector.Config{})
	if err != nil {
		b.Fatal(err)
	}
	sel := "https://example.com/books/{id}"
	if kind == selector.URLPattern {
		sel = "https://example.com/books/:id"
	}
	m, err := comp.Compile(kind, sel)
	if err != nil {
		b.Fatal(err)
	}
	h, err := hub.New(hub.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	ctx := context.Background()
	subs := make([]*hub.Subscription, n)
	for i := range subs {
		subs[i], err = h.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{m}, Notify: func() {}})
		if err != nil {
			b.Fatal(err)
		}
		defer subs[i].Close()
	}
	data := strings.Repeat("x", 100)
	var batch []*hub.Update
	drainAll := func() {
		for _, s := range subs {
			batch, _ = s.Drain(ctx, batch[:0])
			clear(batch)
		}
	}
	wait := func(k uint64) {
		for h.Stats().Dispatched < k {
			runtime.Gosched()
			time.Sleep(10 * time.Microsecond)
		}
	}
	const every = 100 // drain before any queue (1000) overflows
	b.ReportAllocs()
	b.ResetTimer()
	start := h.Stats().Dispatched
	for i := range b.N {
		// Ten topics in turn: each is tested once, then answered from
		// the cache.
		topic := fmt.Sprintf("https://example.com/books/%d", i%10)
		if _, err := h.Publish(ctx, &hub.Update{Topics: []string{topic}, Data: data}); err != nil {
			b.Fatal(err)
		}
		if i%every == every-1 {
			wait(start + uint64(i+1))
			drainAll()
		}
	}
	wait(start + uint64(b.N))
	drainAll()
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
}
