package hub_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// BenchmarkHostileSelectors is the scenario of issue 17, point 6: 10
// subscriptions of 28 distinct templates of vars variables each, then 10
// updates on 100-byte topics that none matches, then one update for a
// control subscriber of another topic. It reports how long the control
// subscriber waited for its update after it was published (control-ns),
// and how long until the hostile subscriptions had drained everything
// (hostile-ns). The templates are compiled with the variable cap raised,
// so that the hub's own defence is what is measured.
func BenchmarkHostileSelectors(b *testing.B) {
	for _, vars := range []int{16, 400} {
		b.Run(fmt.Sprintf("vars=%d", vars), func(b *testing.B) {
			comp, err := selector.New(selector.Config{MaxVariables: 1000, MaxLength: 1 << 16, MatchCacheBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			var control, hostile time.Duration
			for i := range b.N {
				c, h := hostileRound(b, comp, vars, i)
				control += c
				hostile += h
			}
			b.ReportMetric(float64(control.Nanoseconds())/float64(b.N), "control-ns")
			b.ReportMetric(float64(hostile.Nanoseconds())/float64(b.N), "hostile-ns")
		})
	}
}

func hostileRound(b *testing.B, comp *selector.Compiler, vars, round int) (control, hostile time.Duration) {
	h, err := hub.New(hub.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	ctx := context.Background()
	var subs []*hub.Subscription
	for s := range 10 {
		var ms []*selector.Matcher
		for t := range 28 {
			var sb strings.Builder
			// Distinct names, so that no two templates share a
			// compiled expression or results; one prefix, that every
			// topic passes.
			sb.WriteString("https://example.com/")
			for v := range vars {
				fmt.Fprintf(&sb, "{r%ds%dt%dv%d}", round, s, t, v)
			}
			m, err := comp.Compile(selector.Template, sb.String())
			if err != nil {
				b.Fatal(err)
			}
			ms = append(ms, m)
		}
		sub, err := h.Subscribe(ctx, hub.SubscribeRequest{Topics: selector.Matchers(ms)})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		subs = append(subs, sub)
	}
	ctl, err := h.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{hub.Exact("https://example.com/control/")}})
	if err != nil {
		b.Fatal(err)
	}
	defer ctl.Close()
	for i := range 10 {
		topic := fmt.Sprintf("https://example.com/%d-%d-", round, i) + strings.Repeat("a", 100)
		// The final "/" is no template's: every split of the topic
		// among the variables is tried before each template fails.
		if _, err := h.Publish(ctx, &hub.Update{Topics: []string{topic[:99] + "/"}}); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"https://example.com/control/"}}); err != nil {
		b.Fatal(err)
	}
	<-ctl.Ready()
	control = time.Since(start)
	for h.Stats().Dispatched < 11 {
		time.Sleep(10 * time.Microsecond)
	}
	for _, s := range subs {
		for len(s.Ready()) > 0 {
			<-s.Ready()
			if _, err := s.Drain(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	hostile = time.Since(start)
	return control, hostile
}
