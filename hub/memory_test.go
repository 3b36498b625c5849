package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// testClock is a settable MemoryConfig.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func memAppend(t *testing.T, s Store, id string, topics ...string) *Update {
	t.Helper()
	u := &Update{ID: id, Topics: topics, Data: "data of " + id}
	if err := s.Append(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func memRead(t *testing.T, s Store) string {
	t.Helper()
	var got []*Update
	if err := s.Read(context.Background(), Position{}, func(u *Update) bool { got = append(got, u); return true }); err != nil {
		t.Fatal(err)
	}
	return ids(got)
}

// TestMemoryAgeWithoutAppends checks that age limits, global and per
// topic, are enforced when history is read, not only when it grows.
func TestMemoryAgeWithoutAppends(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  MemoryConfig
		want string // after two hours
	}{
		{"global", MemoryConfig{MaxAge: time.Hour}, ""},
		{"per topic", MemoryConfig{TopicLimits: func(topic string) (Limits, bool) {
			return Limits{MaxAge: time.Hour}, topic == "a"
		}}, "b1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			c.cfg.Now = clk.Now
			s := NewMemoryStore(c.cfg)
			defer s.Close()
			a := memAppend(t, s, "a1", "a")
			memAppend(t, s, "b1", "b")
			if !a.Time.Equal(clk.Now()) {
				t.Errorf("Append stamped %v; want the clock's %v", a.Time, clk.Now())
			}
			clk.Add(time.Hour)
			if got := memRead(t, s); got != "a1,b1" {
				t.Errorf("after an hour: %s; want a1,b1 (not older than the limit)", got)
			}
			clk.Add(time.Hour)
			if got := memRead(t, s); got != c.want {
				t.Errorf("after two hours: %q; want %q", got, c.want)
			}
			if _, err := s.Lookup(context.Background(), "a1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Lookup of an expired update: %v; want ErrNotFound", err)
			}
			if oldest, newest, _ := s.Bounds(context.Background()); c.want == "" && (oldest.Seq != 0 || newest.Seq != 0) {
				t.Errorf("Bounds after everything expired = %v, %v; want empty", oldest, newest)
			}
		})
	}
}

// TestMemoryHolesStayBounded appends many updates to a topic keeping one,
// after one update of an unlimited topic: the log's slice must not grow
// with the span of sequence numbers.
func TestMemoryHolesStayBounded(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{TopicLimits: func(topic string) (Limits, bool) {
		return Limits{MaxUpdates: 1}, topic == "a"
	}})
	defer s.Close()
	memAppend(t, s, "b0", "b")
	for i := range 20000 {
		memAppend(t, s, fmt.Sprint("a", i), "a")
	}
	if got := memRead(t, s); got != "b0,a19999" {
		t.Errorf("retained %s; want b0,a19999", got)
	}
	s.mu.RLock()
	n, live := len(s.log), s.live
	s.mu.RUnlock()
	if live != 2 || n > 2*live+65 {
		t.Errorf("log holds %d entries for %d retained updates; want at most %d", n, live, 2*live+65)
	}
}

// TestMemoryFollowBehindTail follows from the start after more appends
// than the follow tail holds: first the retained updates before the tail,
// then every update of the tail, retained or not.
func TestMemoryFollowBehindTail(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{TopicLimits: func(topic string) (Limits, bool) {
		return Limits{MaxUpdates: 1}, topic == "a"
	}})
	defer s.Close()
	memAppend(t, s, "b0", "b")
	const n = 3000
	var last *Update
	for i := range n {
		last = memAppend(t, s, fmt.Sprint("a", i), "a")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var got []*Update
	go func() {
		done <- s.Follow(ctx, Position{}, func(u *Update) {
			if got = append(got, u); u == last {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("Follow did not reach the newest update")
	}
	if got[0].ID != "b0" {
		t.Fatalf("Follow began with %q; want b0, the retained update before the tail", got[0].ID)
	}
	for i := 2; i < len(got); i++ {
		if got[i].Pos.Seq != got[i-1].Pos.Seq+1 {
			t.Fatalf("Follow gave seq %d after %d; want the tail without holes", got[i].Pos.Seq, got[i-1].Pos.Seq)
		}
	}
	if len(got) < 1+s.tailCap {
		t.Errorf("Follow gave %d updates; want b0 and at least the %d of the tail", len(got), s.tailCap)
	}
}

// BenchmarkMemoryAppend measures appends to a MemoryStore at its default
// global limits, to one topic without a rule and to topics that each keep
// their 10 newest updates (so nearly every append discards one from the
// middle of the log).
func BenchmarkMemoryAppend(b *testing.B) {
	for _, c := range []struct {
		name   string
		limits TopicLimits
	}{
		{"no-rules", nil},
		{"keep=10", func(string) (Limits, bool) { return Limits{MaxUpdates: 10}, true }},
		{"keep=10,age=1h", func(string) (Limits, bool) { return Limits{MaxUpdates: 10, MaxAge: time.Hour}, true }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := NewMemoryStore(MemoryConfig{TopicLimits: c.limits})
			defer s.Close()
			topics := make([][]string, 100)
			for i := range topics {
				topics[i] = []string{fmt.Sprint("https://example.com/books/", i)}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := s.Append(ctx, &Update{ID: "x", Topics: topics[i%len(topics)], Data: "data"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
