package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// prefix matches topics with a given prefix: a stand-in for a pattern.
type prefix string

func (p prefix) Match(t string) bool { return strings.HasPrefix(t, string(p)) }

func newHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

func publish(t *testing.T, h *Hub, u *Update) string {
	t.Helper()
	id, err := h.Publish(context.Background(), u)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return id
}

// next drains s until it has n updates or an error; it fails the test if
// nothing arrives for 10 s (a hang detector, not a timing assertion).
func next(t *testing.T, s *Subscription, n int) ([]*Update, error) {
	t.Helper()
	var got []*Update
	for len(got) < n {
		select {
		case <-s.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out with %d of %d updates", len(got), n)
		}
		var err error
		got, err = s.Drain(context.Background(), got)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func ids(us []*Update) string {
	var b strings.Builder
	for i, u := range us {
		if i > 0 {
			b.WriteByte(',')
		}
		if u.Type == GapEventType {
			b.WriteString("GAP")
			continue
		}
		b.WriteString(u.ID)
	}
	return b.String()
}

func TestFanOutSelectsTopicsAndPrivacy(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{})
	ctx := context.Background()
	sub := func(req SubscribeRequest) *Subscription {
		s, err := h.Subscribe(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	exactA := sub(SubscribeRequest{Topics: []Matcher{Exact("a")}})
	pattern := sub(SubscribeRequest{Topics: []Matcher{prefix("b/")}})
	both := sub(SubscribeRequest{Topics: []Matcher{Exact("a"), prefix("")}})
	reader := sub(SubscribeRequest{Topics: []Matcher{MatchAll}, CanRead: func(ts []string) bool { return ts[0] == "a" }})

	publish(t, h, &Update{ID: "1", Topics: []string{"a"}})
	publish(t, h, &Update{ID: "2", Topics: []string{"b/x", "a"}})
	publish(t, h, &Update{ID: "3", Topics: []string{"a"}, Private: true})
	publish(t, h, &Update{ID: "4", Topics: []string{"c"}, Private: true})
	publish(t, h, &Update{ID: "5", Topics: []string{"c"}})

	for _, tc := range []struct {
		name string
		s    *Subscription
		want string
	}{
		{"exact", exactA, "1,2"},
		{"pattern", pattern, "2"},
		{"exact and pattern deliver once", both, "1,2,5"},
		{"grant reads private", reader, "1,2,3,5"},
	} {
		got, err := next(t, tc.s, strings.Count(tc.want, ",")+1)
		if err != nil || ids(got) != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, ids(got), err, tc.want)
		}
	}
}

func TestPublishValidates(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{})
	for _, u := range []*Update{
		{},
		{Topics: []string{""}},
		{Topics: []string{"a"}, ID: "x\ny"},
		{Topics: []string{"a"}, Type: "t\r"},
		{Topics: []string{"a"}, ID: "x\x00"},
	} {
		if _, err := h.Publish(context.Background(), u); !errors.Is(err, ErrInvalidUpdate) {
			t.Errorf("Publish(%+v) = %v; want ErrInvalidUpdate", u, err)
		}
	}
	if _, _, err := h.Store().Bounds(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, newest, _ := h.Store().Bounds(context.Background()); newest.Seq != 0 {
		t.Errorf("invalid updates were stored: newest %v", newest)
	}
}

func TestGeneratedIDsAreUUIDs(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{})
	id := publish(t, h, &Update{Topics: []string{"a"}})
	if !strings.HasPrefix(id, "urn:uuid:") || len(id) != len("urn:uuid:")+36 || id[len("urn:uuid:")+14] != '7' {
		t.Errorf("id = %q; want a urn:uuid: v7", id)
	}
}

func TestResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	public := []Matcher{Exact("t")}
	for _, tc := range []struct {
		name, last, anchor, want string
		gap                      GapReason
		canRead                  bool
	}{
		{"after known id", "5", "5", "6,8,9,live", GapNone, false},
		{"private skipped in replay", "5", "5", "6,7,8,9,live", GapNone, true},
		// An unknown ID, or one the subscriber may not see: the gap notice,
		// then retained history from the start (here cut by the limit).
		{"private id is unknown without grant", "7", "earliest", "GAP,0,1,2,3,4,GAP,live", GapUnknownID, false},
		{"private id is known with grant", "7", "7", "8,9,live", GapNone, true},
		{"unknown id", "nope", "earliest", "GAP,0,1,2,3,4,GAP,live", GapUnknownID, false},
		{"earliest stops at the replay limit", "earliest", "earliest", "0,1,2,3,4,GAP,live", GapReplayLimit, false},
		{"no id", "", "", "live", GapNone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t, Config{ReplayLimit: 5})
			for i := range 10 {
				publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}, Private: i == 7})
			}
			req := SubscribeRequest{Topics: public, LastEventID: tc.last}
			if tc.canRead {
				req.CanRead = func([]string) bool { return true }
			}
			s, err := h.Subscribe(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			live := publish(t, h, &Update{Topics: []string{"t"}})
			got, err := next(t, s, strings.Count(tc.want, ",")+1)
			if err != nil || strings.ReplaceAll(ids(got), live, "live") != tc.want {
				t.Errorf("got %q, %v; want %q", ids(got), err, tc.want)
			}
			if r := s.Resume(); r.Anchor != tc.anchor || r.Gap != tc.gap {
				t.Errorf("resume = %+v; want anchor %q gap %q", r, tc.anchor, tc.gap)
			}
		})
	}
}

// TestHandOffUnderConcurrentPublishing resumes many subscribers at random
// points while a publisher runs, and checks that each receives every update
// after its point exactly once, in order.
func TestHandOffUnderConcurrentPublishing(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{QueueSize: 100000, QueueBytes: 1 << 30})
	ctx := context.Background()
	const total = 2000
	published := make(chan string, total)
	go func() {
		for i := range total {
			published <- publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
		}
		close(published)
	}()
	var wg sync.WaitGroup
	start := 0
	for id := range published {
		if start%97 != 0 {
			start++
			continue
		}
		from := start
		start++
		s, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{prefix("")}, LastEventID: id})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer s.Close()
			got, err := next(t, s, total-from-1)
			if err != nil {
				t.Errorf("from %d: %v", from, err)
				return
			}
			for i, u := range got {
				if want := fmt.Sprint(from + 1 + i); u.ID != want {
					t.Errorf("from %d: update %d is %s; want %s", from, i, u.ID, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSlowConsumerIsEndedWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{QueueSize: 3})
	ctx := context.Background()
	slow, _ := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("t")}})
	defer slow.Close()
	fast, _ := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("t")}})
	defer fast.Close()
	var got []*Update
	for i := range 10 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
		more, err := next(t, fast, 1)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, more...)
	}
	if len(got) != 10 {
		t.Errorf("fast subscriber got %d updates; want 10", len(got))
	}
	if _, err := next(t, slow, 100); !errors.Is(err, ErrSlowConsumer) {
		t.Errorf("slow subscriber: %v; want ErrSlowConsumer", err)
	}
	if st := h.Stats(); st.SlowConsumers != 1 || st.Published != 10 || st.Subscribers != 2 {
		t.Errorf("stats %+v; want 1 slow consumer, 10 published, 2 subscribers", st)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	t.Parallel()
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := h.Subscribe(context.Background(), SubscribeRequest{Topics: []Matcher{MatchAll}})
	publish(t, h, &Update{ID: "last", Topics: []string{"t"}})
	if _, err := next(t, s, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := next(t, s, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v; want ErrClosed", err)
	}
	s.Close()
	if _, err := h.Subscribe(context.Background(), SubscribeRequest{Topics: []Matcher{MatchAll}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v; want ErrClosed", err)
	}
	if _, err := h.Publish(context.Background(), &Update{Topics: []string{"t"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v; want ErrClosed", err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCatchUpPages(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{})
	ctx := context.Background()
	for i := range 10 {
		topic := "t"
		if i%3 == 2 {
			topic = "other"
		}
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{topic}, Private: i == 4})
	}
	req := CatchUpRequest{Topics: []Matcher{Exact("t")}, Limit: 3}
	var got []string
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page, err := h.CatchUp(ctx, req)
		if err != nil || page.Gap != GapNone {
			t.Fatalf("page: %v gap %q", err, page.Gap)
		}
		for _, u := range page.Updates {
			got = append(got, u.ID)
		}
		if !page.More {
			break
		}
		req.Cursor = page.Next
	}
	if s := strings.Join(got, ","); s != "0,1,3,6,7,9" {
		t.Errorf("paged %q; want 0,1,3,6,7,9 (no private 4, no other topic)", s)
	}
	for _, tc := range []struct {
		after, want string
		gap         GapReason
	}{
		{"6", "7,9", GapNone},
		{"4", "0,1,3", GapUnknownID}, // private: unknown to this subscriber
		{"nope", "0,1,3", GapUnknownID},
		{"earliest", "0,1,3", GapNone},
	} {
		page, err := h.CatchUp(ctx, CatchUpRequest{Topics: []Matcher{Exact("t")}, After: tc.after, Limit: 3})
		if err != nil || ids(page.Updates) != tc.want || page.Gap != tc.gap {
			t.Errorf("after %q: %q gap %q err %v; want %q gap %q", tc.after, ids(page.Updates), page.Gap, err, tc.want, tc.gap)
		}
	}
}

func TestIdempotentPublish(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store := NewMemoryStore(MemoryConfig{})
	defer store.Close()
	h := newHub(t, Config{Store: store, Now: clock, IdempotencyWindow: time.Minute})
	ctx := context.Background()

	// Concurrent retries of one key store one update.
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			id, err := h.Publish(ctx, &Update{Topics: []string{"t"}, IdempotencyKey: "k1"})
			if err != nil {
				t.Error(err)
			}
			got[i] = id
		})
	}
	wg.Wait()
	for _, id := range got[1:] {
		if id != got[0] {
			t.Fatalf("retries returned %v; want one ID", got)
		}
	}
	if _, newest, _ := store.Bounds(ctx); newest.Seq != 1 {
		t.Fatalf("stored %d updates; want 1", newest.Seq)
	}
	// Other keys and no key are independent.
	other := publish(t, h, &Update{Topics: []string{"t"}, IdempotencyKey: "k2"})
	if other == got[0] {
		t.Error("a different key returned the same ID")
	}
	// A restarted hub on the same store relearns recent keys.
	h2 := newHub(t, Config{Store: store, Now: clock, IdempotencyWindow: time.Minute})
	if id := publish(t, h2, &Update{Topics: []string{"t"}, IdempotencyKey: "k1"}); id != got[0] {
		t.Errorf("after restart, retry returned %q; want %q", id, got[0])
	}
	// After the window, the key is forgotten.
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if id := publish(t, h2, &Update{Topics: []string{"t"}, IdempotencyKey: "k1"}); id == got[0] {
		t.Error("key remembered past the window")
	}
}
