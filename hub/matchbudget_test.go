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
// spends at most Config.MatchBudget on the first update; the
// subscriptions it had no budget left for, and those it spent more than
// their share on, test their updates in their own Drain from then on. So
// the control subscriber is notified after at most the budget's worth of
// costly tests (before, after every pattern of every subscription against
// every update). Every subscriber still gets exactly its own updates, once
// and in order.
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
			hs, control := subscribeHostile(t, h, subs, func() []Matcher { return costlyPatterns(patterns, "h/", cost, log, nil) }, tt.control(), log)
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
			if before > perUpdate {
				t.Errorf("the dispatcher made %d costly Match calls before notifying the control subscriber; want at most %d (before the budget: %d)",
					before, perUpdate, subs*patterns*hostileUpdates)
			}
			total := 0
			for _, e := range events {
				if strings.HasPrefix(e, "match ") {
					total++
				}
			}
			if first := slices.Index(events, "match h/0"); total == 0 || total > perUpdate || first < 0 {
				t.Errorf("the dispatcher made %d costly Match calls, the first for the first update at %d; want 1 to %d, all for it", total, first, perUpdate)
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

// TestMatchBudgetMovesOnce: a subscription that the dispatcher stops
// testing in the middle of its queue (a matched update queued before,
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
		{"a", []string{"h"}},      // four Match calls, more than a share of 4: matched, counted, moved
		{"b", []string{"x", "h"}}, // tested by Drain
		{"c", []string{"x"}},      // tested by Drain: no match
		{"d", []string{"e"}},      // the exact topic: tested by Drain
		{"f", []string{"h"}},      // tested by Drain
	} {
		publish(t, h, &Update{ID: u.id, Topics: u.topics})
	}
	waitDispatched(h, 7)
	if n := calls.Load(); n != 4 {
		t.Errorf("the dispatcher made %d Match calls; want 4, for a", n)
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

// TestMatchBudgetDebt: a subscription whose tests cost little, but
// nothing is cached, moves to its own Drain once they have cost the
// dispatcher more than a sixteenth of the budget since a test that cost
// nothing; a test answered from what is known starts the count again.
func TestMatchBudgetDebt(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{MatchBudget: 160}) // a share of 10
	ctx := context.Background()
	var calls atomic.Int64
	s, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{partlyKnown{
		costly: costly{prefix: "h", cost: 3, calls: &calls},
		known:  "k",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var want []string
	inline := func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		_, ok := h.patterns[s]
		return ok
	}
	for i, topic := range []string{"h/0", "h/1", "h/2", "k", "h/3", "h/4", "h/5", "h/6", "h/7"} {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{topic}})
		if topic != "k" {
			want = append(want, fmt.Sprint(i))
		}
		waitDispatched(h, uint64(i+1))
		// 3, 6, 9, known: 0, 3, 6, 9, 12: moved after h/6.
		if got, wantInline := inline(), i < 7; got != wantInline {
			t.Fatalf("after %s: tested by the dispatcher %v; want %v", topic, got, wantInline)
		}
	}
	if n := calls.Load(); n != 7 {
		t.Errorf("the dispatcher made %d Match calls; want 7 (h/0 to h/6)", n)
	}
	got, err := drainAll(t, s, len(want))
	if err != nil || ids(got) != strings.Join(want, ",") {
		t.Fatalf("got %q, %v; want %q", ids(got), err, strings.Join(want, ","))
	}
	if got := h.Stats().Delivered; got != uint64(len(want)) {
		t.Errorf("Stats().Delivered = %d; want %d", got, len(want))
	}
}

// partlyKnown is costly, but knows the answer for one topic.
type partlyKnown struct {
	costly
	known string
}

func (p partlyKnown) Known(t string) (bool, bool) {
	if t == p.known {
		return strings.HasPrefix(t, p.prefix), true
	}
	return false, false
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
