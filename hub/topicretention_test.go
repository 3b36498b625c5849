package hub

import (
	"context"
	"strings"
	"testing"
)

// TestResumeAcrossPerTopicHoles resumes subscriptions over history from
// which per-topic retention removed updates: topic "t" keeps its 2 newest,
// "o" keeps everything.
func TestResumeAcrossPerTopicHoles(t *testing.T) {
	cases := []struct {
		name, lastEventID string
		want              string // replayed, then the live o2
		gap               GapReason
	}{
		// t1 was discarded: the subscriber is told, and then gets all
		// retained history, as Mercure-Last-Event-ID: earliest says.
		{"evicted id", "t1", "GAP,o1,t4,t5,o2", GapUnknownID},
		{"evicted id between retained ones", "t3", "GAP,o1,t4,t5,o2", GapUnknownID},
		// The holes left by t2 and t3 are skipped without a gap.
		{"retained id before holes", "o1", "t4,t5,o2", GapNone},
		{"retained id after holes", "t4", "t5,o2", GapNone},
		{"earliest", Earliest, "o1,t4,t5,o2", GapNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := NewMemoryStore(MemoryConfig{TopicLimits: func(topic string) (Limits, bool) {
				return Limits{MaxUpdates: 2}, topic == "t"
			}})
			t.Cleanup(func() { store.Close() })
			h := newHub(t, Config{Store: store})
			for _, u := range []struct{ id, topic string }{{"t1", "t"}, {"o1", "o"}, {"t2", "t"}, {"t3", "t"}, {"t4", "t"}, {"t5", "t"}} {
				publish(t, h, &Update{ID: u.id, Topics: []string{u.topic}, Data: u.id})
			}
			s, err := h.Subscribe(context.Background(), SubscribeRequest{Topics: []Matcher{prefix("")}, LastEventID: c.lastEventID})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if r := s.Resume(); r.Gap != c.gap {
				t.Errorf("Resume().Gap = %q; want %q", r.Gap, c.gap)
			}
			n := strings.Count(c.want, ",")
			// Take the replay before publishing o2, so the replay is
			// complete whatever the dispatcher's timing.
			got, err := next(t, s, n)
			if err != nil {
				t.Fatal(err)
			}
			publish(t, h, &Update{ID: "o2", Topics: []string{"o"}, Data: "o2"})
			live, err := next(t, s, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, live...); ids(got) != c.want {
				t.Errorf("got %s; want %s", ids(got), c.want)
			}
		})
	}
}

// TestCatchUpAfterEvictedID pages history after an ID per-topic retention
// discarded: the page reports unknown-id and starts at the oldest retained
// update.
func TestCatchUpAfterEvictedID(t *testing.T) {
	store := NewMemoryStore(MemoryConfig{TopicLimits: func(topic string) (Limits, bool) {
		return Limits{MaxUpdates: 2}, topic == "t"
	}})
	t.Cleanup(func() { store.Close() })
	h := newHub(t, Config{Store: store})
	for _, u := range []struct{ id, topic string }{{"t1", "t"}, {"o1", "o"}, {"t2", "t"}, {"t3", "t"}, {"t4", "t"}} {
		publish(t, h, &Update{ID: u.id, Topics: []string{u.topic}, Data: u.id})
	}
	page, err := h.CatchUp(context.Background(), CatchUpRequest{Topics: []Matcher{prefix("")}, After: "t2"})
	if err != nil {
		t.Fatal(err)
	}
	if page.Gap != GapUnknownID || ids(page.Updates) != "o1,t3,t4" {
		t.Errorf("CatchUp after an evicted ID: gap %q, updates %s; want unknown-id, o1,t3,t4", page.Gap, ids(page.Updates))
	}
}
