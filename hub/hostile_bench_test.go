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

// BenchmarkHostileSelectors is the scenario of issue 17, point 6: subs
// subscriptions of patterns distinct templates of vars variables each,
// then 10 updates on 100-byte topics that none matches, then one update
// for a control subscriber of another topic. It reports how long the
// control subscriber waited for its update after it was published
// (control-ns), and how long until the hostile subscriptions had drained
// everything (hostile-ns). The templates are compiled with the variable
// cap raised and the result cache off, so that the hub's own defence is
// what is measured: 28 patterns, more than Config.InlinePatterns, are
// tested in the subscription's Drain; 4 by the dispatcher, within
// Config.MatchBudget.
func BenchmarkHostileSelectors(b *testing.B) {
	for _, bc := range []struct{ subs, patterns, vars int }{
		{10, 28, 16}, {10, 28, 400}, {100, 4, 16},
	} {
		b.Run(fmt.Sprintf("subs=%d/patterns=%d/vars=%d", bc.subs, bc.patterns, bc.vars), func(b *testing.B) {
			comp, err := selector.New(selector.Config{MaxVariables: 1000, MaxLength: 1 << 16, MatchCacheBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			var control, hostile time.Duration
			for i := range b.N {
				c, h := hostileRound(b, comp, bc.subs, bc.patterns, bc.vars, i)
				control += c
				hostile += h
			}
			b.ReportMetric(float64(control.Nanoseconds())/float64(b.N), "control-ns")
			b.ReportMetric(float64(hostile.Nanoseconds())/float64(b.N), "hostile-ns")
		})
	}
}

func hostileRound(b *testing.B, comp *selector.Compiler, subs, patterns, vars, round int) (control, hostile time.Duration) {
	h, err := hub.New(hub.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	ctx := context.Background()
	var hs []*hub.Subscription
	for s := range subs {
		var ms []*selector.Matcher
		for t := range patterns {
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
		hs = append(hs, sub)
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
	for _, s := range hs {
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
