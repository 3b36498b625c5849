package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// eventLog records, in order, what happened on any goroutine.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// recorder is a pattern that matches one topic and logs each call, standing
// in for a costly URL pattern or URI template.
type recorder struct {
	topic string
	log   *eventLog
	calls *atomic.Int64
}

func (r recorder) Match(t string) bool {
	if r.log != nil {
		r.log.add("match " + t)
	}
	if r.calls != nil {
		r.calls.Add(1)
	}
	return t == r.topic
}

// hostile returns n patterns of which only the last matches topic, so that
// matching an update tests all of them.
func hostile(n int, topic string, log *eventLog, calls *atomic.Int64) []Matcher {
	ms := make([]Matcher, n)
	for i := range ms {
		ms[i] = recorder{topic: fmt.Sprintf("%s-never-%d", topic, i), log: log, calls: calls}
	}
	ms[n-1] = recorder{topic: topic, log: log, calls: calls}
	return ms
}

// subscribeHostile subscribes n subscriptions with the selectors topics
// makes, then a control subscription to control whose notifications log
// records (as "control notified"), and closes them all when the test ends.
func subscribeHostile(t *testing.T, h *Hub, n int, topics func() []Matcher, control Matcher, log *eventLog) (hs []*Subscription, c *Subscription) {
	t.Helper()
	ctx := context.Background()
	for range n {
		s, err := h.Subscribe(ctx, SubscribeRequest{Topics: topics()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		hs = append(hs, s)
	}
	c, err := h.Subscribe(ctx, SubscribeRequest{
		Topics: []Matcher{control},
		Notify: func() { log.add("control notified") },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return hs, c
}

// TestCostlySubscriptionsDoNotDelayOthers is issue 17, point 6: a
// subscriber with many patterns must not delay the others' events. Hostile
// subscriptions are offered updates on another topic first; then the
// control subscriber's event is published. The log of what happened, in
// order, must show the control subscriber notified of its event before any
// of the hostile patterns was tested: their matching is theirs to pay, in
// their own Drain. (Before, the dispatcher tested every hostile pattern
// against every earlier update first.) A subscription with no more than
// InlinePatterns patterns is still matched by the dispatcher.
func TestCostlySubscriptionsDoNotDelayOthers(t *testing.T) {
	t.Parallel()
	const inline, hostileUpdates = 4, 5
	tests := []struct {
		name     string
		patterns int // of each of the three hostile subscriptions
		control  func() Matcher
		late     bool // whether the hostile ones are matched in their Drain
	}{
		{"exact control", 28, func() Matcher { return Exact("c") }, true},
		{"pattern control", 28, func() Matcher { return prefix("c") }, true},
		{"just over the bound", inline + 1, func() Matcher { return Exact("c") }, true},
		{"at the bound, matched inline", inline, func() Matcher { return Exact("c") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, Config{InlinePatterns: inline})
			ctx := context.Background()
			log := &eventLog{}
			hs, control := subscribeHostile(t, h, 3, func() []Matcher { return hostile(tt.patterns, "h", log, nil) }, tt.control(), log)
			for i := range hostileUpdates {
				publish(t, h, &Update{ID: fmt.Sprintf("h%d", i), Topics: []string{"h"}})
			}
			publish(t, h, &Update{ID: "c0", Topics: []string{"c"}})
			waitDispatched(h, hostileUpdates+1)

			events := log.snapshot()
			at := slices.Index(events, "control notified")
			if at < 0 {
				t.Fatalf("control was not notified; log %v", events)
			}
			got, err := control.Drain(ctx, nil)
			if err != nil || ids(got) != "c0" {
				t.Fatalf("control Drain = %q, %v; want c0", ids(got), err)
			}
			before := 0
			for _, e := range events[:at] {
				if strings.HasPrefix(e, "match ") {
					before++
				}
			}
			// Three subscriptions, each testing every pattern once per
			// hostile update: that is what the dispatcher did before the
			// control subscriber's turn.
			inlineCalls := 3 * tt.patterns * hostileUpdates
			switch {
			case tt.late && before != 0:
				t.Fatalf("the dispatcher tested %d hostile patterns before notifying the control subscriber; want 0", before)
			case !tt.late && before != inlineCalls:
				t.Fatalf("the dispatcher tested %d patterns before the control subscriber; want %d (inline)", before, inlineCalls)
			}

			// Each hostile subscription gets exactly its own updates, in
			// order, and not the control's.
			for i, s := range hs {
				got, err := drainAll(t, s, hostileUpdates)
				if err != nil {
					t.Fatal(err)
				}
				if want := "h0,h1,h2,h3,h4"; ids(got) != want {
					t.Errorf("hostile %d got %q; want %q", i, ids(got), want)
				}
			}
			if got, want := h.Stats().Delivered, uint64(1+3*hostileUpdates); got != want {
				t.Errorf("Stats().Delivered = %d; want %d", got, want)
			}
		})
	}
}

// drainAll drains s until it has n updates, then checks that nothing more
// is queued. Drain may return nothing (an update that did not match) and
// signal again.
func drainAll(t *testing.T, s *Subscription, n int) ([]*Update, error) {
	t.Helper()
	got, err := next(t, s, n)
	if err != nil {
		return got, err
	}
	for {
		select {
		case <-s.Ready():
			more, err := s.Drain(context.Background(), nil)
			got = append(got, more...)
			if err != nil {
				return got, err
			}
			continue
		default:
		}
		return got, nil
	}
}

// TestLateMatchBoundedPerDrain: one Drain of a subscription matched late
// tests a bounded number of patterns, then signals Ready again, so that a
// subscriber with a thousand patterns does not hold the goroutine that
// drains it (in ssehttp, a pool that serves every stream). Every update is
// still delivered once, in order.
func TestLateMatchBoundedPerDrain(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{InlinePatterns: 1})
	ctx := context.Background()
	var calls atomic.Int64
	const patterns, updates = 1000, 20
	s, err := h.Subscribe(ctx, SubscribeRequest{Topics: hostile(patterns, "h", nil, &calls)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var want []string
	for i := range updates {
		id := fmt.Sprintf("u%d", i)
		topic := "other"
		if i%3 == 0 {
			topic = "h"
			want = append(want, id)
		}
		publish(t, h, &Update{ID: id, Topics: []string{topic}})
	}
	waitDispatched(h, updates)
	if n := calls.Load(); n != 0 {
		t.Fatalf("the dispatcher tested %d patterns; want 0", n)
	}
	var got []*Update
	drains := 0
	for len(got) < len(want) {
		<-s.Ready()
		before := calls.Load()
		got, err = s.Drain(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		drains++
		if n := calls.Load() - before; n > lateMatchBudget {
			t.Fatalf("one Drain tested %d patterns; want at most %d", n, lateMatchBudget)
		}
	}
	if ids(got) != strings.Join(want, ",") {
		t.Errorf("got %q; want %q", ids(got), strings.Join(want, ","))
	}
	if total := calls.Load(); drains < int(total)/lateMatchBudget {
		t.Errorf("%d Drains for %d pattern tests; want at least %d", drains, total, total/lateMatchBudget)
	}
}

// TestLateMatchPaysItsOwnQueue: a subscription matched late holds every
// update until its Drain tests it, so one that does not drain overflows its
// own queue and is ended as a slow consumer, while the others go on.
func TestLateMatchPaysItsOwnQueue(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{InlinePatterns: 1, QueueSize: 3})
	ctx := context.Background()
	late, err := h.Subscribe(ctx, SubscribeRequest{Topics: hostile(2, "h", nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	control, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("c")}})
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	for i := range 4 {
		publish(t, h, &Update{ID: fmt.Sprintf("c%d", i), Topics: []string{"c"}})
		if i == 2 {
			if got, err := next(t, control, 3); err != nil || ids(got) != "c0,c1,c2" {
				t.Fatalf("control got %q, %v", ids(got), err)
			}
		}
	}
	if _, err := next(t, control, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Drain(ctx, nil); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("late Drain error %v; want ErrSlowConsumer", err)
	}
}

// TestLateMatchEnds: a subscription matched late returns what matched of
// its queue, then the end of the hub.
func TestLateMatchEnds(t *testing.T) {
	t.Parallel()
	h, err := New(Config{InlinePatterns: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := h.Subscribe(ctx, SubscribeRequest{Topics: hostile(3, "h", nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	publish(t, h, &Update{ID: "a", Topics: []string{"h"}})
	publish(t, h, &Update{ID: "b", Topics: []string{"x"}})
	publish(t, h, &Update{ID: "c", Topics: []string{"h"}})
	waitDispatched(h, 3)
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var got []*Update
	for {
		<-s.Ready()
		got, err = s.Drain(ctx, got)
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrClosed) || ids(got) != "a,c" {
		t.Fatalf("got %q, %v; want a,c and ErrClosed", ids(got), err)
	}
}

// TestLateMatchResume: a subscription matched late that resumes gets the
// replay, then the live updates it matches, each once and in order.
func TestLateMatchResume(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{InlinePatterns: 1})
	ctx := context.Background()
	for _, u := range []struct{ id, topic string }{{"a", "h"}, {"x", "o"}, {"b", "h"}} {
		publish(t, h, &Update{ID: u.id, Topics: []string{u.topic}})
	}
	s, err := h.Subscribe(ctx, SubscribeRequest{Topics: hostile(3, "h", nil, nil), LastEventID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, u := range []struct{ id, topic string }{{"y", "o"}, {"c", "h"}, {"z", "o"}} {
		publish(t, h, &Update{ID: u.id, Topics: []string{u.topic}})
	}
	waitDispatched(h, 6)
	got, err := drainAll(t, s, 2)
	if err != nil || ids(got) != "b,c" {
		t.Fatalf("got %q, %v; want b,c", ids(got), err)
	}
}
