package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// costly is a CostlyMatcher that selects the topics starting with prefix,
// knows no answer without testing, and logs each test: a stand-in for an
// uncached URI template.
type costly struct {
	prefix string
	cost   int
	log    *eventLog
	calls  *atomic.Int64
}

func (c costly) Match(t string) bool {
	if c.log != nil {
		c.log.add("match " + t)
	}
	if c.calls != nil {
		c.calls.Add(1)
	}
	return strings.HasPrefix(t, c.prefix)
}

func (costly) Known(string) (bool, bool) { return false, false }
func (c costly) MatchCost() int          { return c.cost }

// costlyPatterns returns n costly patterns of which only the last selects
// the topics starting with prefix, so that testing one of them tests all.
func costlyPatterns(n int, prefix string, cost int, log *eventLog, calls *atomic.Int64) []Matcher {
	ms := make([]Matcher, n)
	for i := range ms {
		ms[i] = costly{prefix: fmt.Sprintf("%s-never-%d", prefix, i), cost: cost, log: log, calls: calls}
	}
	ms[n-1] = costly{prefix: prefix, cost: cost, log: log, calls: calls}
	return ms
}

// TestMatchBudgetBoundsTheDispatcher is issue 17, point 6, for
// subscriptions of no more than InlinePatterns patterns, which the
// dispatcher tests itself: many subscriptions of four costly patterns, a
// few updates for them, then one for a control subscriber. The dispatcher
// spends at most Config.MatchBudget on each update, so the control
// subscriber is notified after at most the budget's worth of tests per
// earlier update (before, after every pattern of every subscription
// against every update); the subscriptions it has no budget left for test
// their updates in their own Drain from then on. Every subscriber still
// gets exactly its own updates, once and in order.
func TestMatchBudgetBoundsTheDispatcher(t *testing.T) {
	t.Parallel()
	const (
		subs, patterns, hostileUpdates = 40, 4, 5
		cost, budget                   = 10, 80
		perUpdate                      = budget / cost // Match calls
	)
	for _, tt := range []struct {
		name    string
		control func() Matcher
	}{
		{"exact control", func() Matcher { return Exact("c") }},
		{"pattern control", func() Matcher { return prefix("c") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, Config{MatchBudget: budget})
			ctx := context.Background()
			log := &eventLog{}
			var hs []*Subscription
			for range subs {
				s, err := h.Subscribe(ctx, SubscribeRequest{Topics: costlyPatterns(patterns, "h/", cost, log, nil)})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				hs = append(hs, s)
			}
			control, err := h.Subscribe(ctx, SubscribeRequest{
				Topics: []Matcher{tt.control()},
				Notify: func() { log.add("control notified") },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer control.Close()
			var want []string
			for i := range hostileUpdates {
				id := fmt.Sprintf("h%d", i)
				want = append(want, id)
				publish(t, h, &Update{ID: id, Topics: []string{fmt.Sprintf("h/%d", i)}})
			}
			publish(t, h, &Update{ID: "c0", Topics: []string{"c"}})
			waitDispatched(h, hostileUpdates+1)

			// Nothing has drained the hostile subscriptions yet: every
			// test logged so far is the dispatcher's.
			events := log.snapshot()
			at := slices.Index(events, "control notified")
			if at < 0 {
				t.Fatalf("control was not notified; log %v", events)
			}
			before := 0
			for _, e := range events[:at] {
				if strings.HasPrefix(e, "match ") {
					before++
				}
			}
			// The control's own update may be tested before a pattern
			// control's turn.
			if limit := perUpdate * (hostileUpdates + 1); before > limit {
				t.Errorf("the dispatcher made %d costly Match calls before notifying the control subscriber; want at most %d (before the budget: %d)",
					before, limit, subs*patterns*hostileUpdates)
			}
			perTopic := map[string]int{}
			for _, e := range events {
				if topic, ok := strings.CutPrefix(e, "match "); ok {
					perTopic[topic]++
				}
			}
			for i := range hostileUpdates {
				topic := fmt.Sprintf("h/%d", i)
				if n := perTopic[topic]; n == 0 || n > perUpdate {
					t.Errorf("the dispatcher made %d costly Match calls for update %s; want 1 to %d", n, topic, perUpdate)
				}
			}
			got, err := control.Drain(ctx, nil)
			if err != nil || ids(got) != "c0" {
				t.Fatalf("control Drain = %q, %v; want c0", ids(got), err)
			}

			for i, s := range hs {
				got, err := drainAll(t, s, hostileUpdates)
				if err != nil {
					t.Fatal(err)
				}
				if ids(got) != strings.Join(want, ",") {
					t.Errorf("hostile %d got %q; want %q", i, ids(got), strings.Join(want, ","))
				}
			}
			if got, want := h.Stats().Delivered, uint64(1+subs*hostileUpdates); got != want {
				t.Errorf("Stats().Delivered = %d; want %d", got, want)
			}
		})
	}
}

// TestMatchBudgetMovesOnce: a subscription the dispatcher runs out of
// budget for in the middle of its queue (a matched update queued before,
// untested ones after) gets, after the replay it resumed with, each of its
// updates once and in order, counted once, including those of its exact
// topic; and from then on the dispatcher tests none of its patterns.
func TestMatchBudgetMovesOnce(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{MatchBudget: 4})
	ctx := context.Background()
	publish(t, h, &Update{ID: "r0", Topics: []string{"h"}})
	publish(t, h, &Update{ID: "rx", Topics: []string{"x"}})
	waitDispatched(h, 2)
	var calls atomic.Int64
	s, err := h.Subscribe(ctx, SubscribeRequest{
		Topics:      append(costlyPatterns(4, "h", 1, nil, &calls), Exact("e")),
		LastEventID: Earliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, u := range []struct {
		id     string
		topics []string
	}{
		{"a", []string{"h"}},      // four Match calls: matched, queued, counted
		{"b", []string{"x", "h"}}, // out of budget after four: queued untested
		{"c", []string{"x"}},      // tested by Drain: no match
		{"d", []string{"e"}},      // the exact topic: tested by Drain
		{"f", []string{"h"}},      // tested by Drain
	} {
		publish(t, h, &Update{ID: u.id, Topics: u.topics})
	}
	waitDispatched(h, 7)
	if n := calls.Load(); n != 8 {
		t.Errorf("the dispatcher made %d Match calls; want 8 (4 for a, 4 for b)", n)
	}
	got, err := drainAll(t, s, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := "r0,a,b,d,f"; ids(got) != want {
		t.Errorf("got %q; want %q", ids(got), want)
	}
	if got := h.Stats().Delivered; got != 5 {
		t.Errorf("Stats().Delivered = %d; want 5", got)
	}
	h.mu.RLock()
	_, inline := h.patterns[s]
	_, late := h.late[s]
	exact := len(h.exact["e"])
	h.mu.RUnlock()
	if inline || !late || exact != 0 {
		t.Errorf("after the move: in patterns %v, in late %v, in exact %d; want false, true, 0", inline, late, exact)
	}
}

// TestMatchBudgetSparesKnownAnswers: answers a CostlyMatcher knows cost
// nothing, so subscriptions whose results are cached stay with the
// dispatcher however many there are.
func TestMatchBudgetSparesKnownAnswers(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{MatchBudget: 1})
	ctx := context.Background()
	var subs []*Subscription
	var calls atomic.Int64
	for range 50 {
		s, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{known{"k", &calls}}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs = append(subs, s)
	}
	for i := range 3 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"k"}})
	}
	waitDispatched(h, 3)
	h.mu.RLock()
	inline, late := len(h.patterns), len(h.late)
	h.mu.RUnlock()
	if inline != 50 || late != 0 {
		t.Errorf("%d subscriptions tested by the dispatcher, %d in their Drain; want 50, 0", inline, late)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d Match calls; want 0: every answer was known", n)
	}
	for _, s := range subs {
		if got, err := drainAll(t, s, 3); err != nil || ids(got) != "0,1,2" {
			t.Fatalf("got %q, %v; want 0,1,2", ids(got), err)
		}
	}
}

// known is a CostlyMatcher that knows every answer: a pattern whose
// results are all cached. It counts the calls of Match, which should be
// none.
type known struct {
	topic string
	calls *atomic.Int64
}

func (k known) Match(t string) bool {
	k.calls.Add(1)
	return t == k.topic
}
func (k known) Known(t string) (bool, bool) { return t == k.topic, true }
func (known) MatchCost() int                { return 1000 }
