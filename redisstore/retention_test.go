package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/testsvc"
	"github.com/ssehub/ssehub/redisstore"
)

func limitTopics(rules map[string]hub.Limits) hub.TopicLimits {
	return func(topic string) (hub.Limits, bool) {
		l, ok := rules[topic]
		return l, ok
	}
}

// model is per-topic retention as the documentation states it, computed
// from the whole history after every append: a topic with a rule retains
// the newest of its updates within its limits (at least its newest), a
// topic without one (or with all-zero limits) retains all of its updates,
// an update is retained while one of its topics retains it, and the global
// limits then discard the oldest retained updates (keeping the newest).
type model struct {
	global  hub.Limits
	rules   map[string]hub.Limits
	history []*hub.Update
	gone    uint64 // every update at or before this seq was discarded by the global limits
}

func (m *model) add(u *hub.Update) []*hub.Update {
	m.history = append(m.history, u)
	retained := make(map[uint64]bool)
	byTopic := make(map[string][]*hub.Update)
	for _, h := range m.history {
		if h.Pos.Seq <= m.gone {
			continue
		}
		for i, t := range h.Topics {
			if slices.Contains(h.Topics[:i], t) {
				continue
			}
			l, ok := m.rules[t]
			if !ok || l == (hub.Limits{}) {
				retained[h.Pos.Seq] = true
			} else {
				byTopic[t] = append(byTopic[t], h)
			}
		}
	}
	for t, us := range byTopic {
		l := m.rules[t]
		var n int
		var bytes int64
		for i := len(us) - 1; i >= 0; i-- {
			n++
			bytes += sizeOf(us[i])
			if n > 1 && (l.MaxUpdates > 0 && n > l.MaxUpdates || l.MaxBytes > 0 && bytes > l.MaxBytes) {
				break
			}
			retained[us[i].Pos.Seq] = true
		}
	}
	var live []*hub.Update
	var bytes int64
	for _, h := range m.history {
		if retained[h.Pos.Seq] {
			live = append(live, h)
			bytes += sizeOf(h)
		}
	}
	for len(live) > 1 && (m.global.MaxUpdates > 0 && len(live) > m.global.MaxUpdates || m.global.MaxBytes > 0 && bytes > m.global.MaxBytes) {
		m.gone = live[0].Pos.Seq
		bytes -= sizeOf(live[0])
		live = live[1:]
	}
	return live
}

func sizeOf(u *hub.Update) int64 {
	n := len(u.Data) + len(u.ID) + len(u.Type)
	for _, t := range u.Topics {
		n += len(t)
	}
	return int64(n)
}

// TestTopicRetentionModel appends random updates on topics with and
// without rules and checks, after every append, that Read, Lookup and
// Bounds agree with the model.
func TestTopicRetentionModel(t *testing.T) {
	r := testsvc.StartRedis(t)
	rules := map[string]hub.Limits{
		"a": {MaxUpdates: 3},
		"b": {MaxUpdates: 4, MaxBytes: 60},
		"c": {MaxBytes: 30},
		"e": {}, // a rule without limits retains everything
		// "d" has no rule
	}
	topics := []string{"a", "a", "b", "b", "c", "c", "d", "e"}
	for _, c := range []struct {
		name   string
		global hub.Limits
	}{
		{"no global limit", hub.Limits{}},
		{"global count", hub.Limits{MaxUpdates: 12}},
		{"global bytes", hub.Limits{MaxBytes: 250}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, freshURL(r), redisstore.Config{Limits: c.global, TopicLimits: limitTopics(rules)})
			m := &model{global: c.global, rules: rules}
			rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
			for i := range 250 {
				u := &hub.Update{ID: fmt.Sprintf("id%d", rng.IntN(12)), Data: strings.Repeat("x", rng.IntN(20))}
				for range 1 + rng.IntN(3) {
					u.Topics = append(u.Topics, topics[rng.IntN(len(topics))])
				}
				mustAppend(t, s, u)
				want := m.add(u)
				got := readAll(t, s, hub.Position{})
				if !slices.Equal(positions(got), positions(want)) {
					t.Fatalf("after append %d (%q on %q): retained %v; want %v", i, u.ID, u.Topics, seqList(got), seqList(want))
				}
				for id := range 12 {
					id := fmt.Sprintf("id%d", id)
					pos, err := s.Lookup(context.Background(), id)
					i := slices.IndexFunc(want, func(u *hub.Update) bool { return u.ID == id })
					switch {
					case i < 0 && !errors.Is(err, hub.ErrNotFound):
						t.Fatalf("after append %d: Lookup(%q) = %v, %v; want ErrNotFound", i, id, pos, err)
					case i >= 0 && (err != nil || pos != want[i].Pos):
						t.Fatalf("after append %d: Lookup(%q) = %v, %v; want %v", i, id, pos, err, want[i].Pos)
					}
				}
				oldest, newest, err := s.Bounds(context.Background())
				if err != nil || oldest != want[0].Pos || newest != want[len(want)-1].Pos {
					t.Fatalf("after append %d: Bounds = %v, %v, %v; want %v, %v", i, oldest, newest, err, want[0].Pos, want[len(want)-1].Pos)
				}
				checkBookkeeping(t, r, s, got)
				if t.Failed() {
					t.Fatalf("after append %d (%q on %q)", i, u.ID, u.Topics)
				}
			}
		})
	}
}

// checkBookkeeping checks Redis's internal state against the retained
// updates: the byte count and every topic list.
func checkBookkeeping(t *testing.T, r *testsvc.Redis, s *redisstore.Store, retained []*hub.Update) {
	t.Helper()
	c := client(t, r.Addr)
	ctx := context.Background()
	keys := s.Keys()
	var bytes int64
	for _, u := range retained {
		bytes += sizeOf(u)
	}
	if got, err := c.HGet(ctx, keys[0], "bytes").Int64(); err != nil || got != bytes {
		t.Errorf("retained bytes recorded as %d (%v); want %d", got, err, bytes)
	}
	live := make(map[string]bool)
	for _, u := range retained {
		live[strconv.FormatUint(u.Pos.Seq, 10)] = true
	}
	topicKeys, err := c.HKeys(ctx, keys[6]).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topicKeys {
		prefix := strings.TrimSuffix(keys[1], "log") + "t:"
		list, err := c.LRange(ctx, prefix+topic, 0, -1).Result()
		if err != nil || len(list) == 0 {
			t.Errorf("topic %q has limits recorded but its list is %q, %v", topic, list, err)
		}
		for _, e := range list {
			if seq, _, _ := strings.Cut(e, " "); !live[seq] {
				t.Errorf("topic %q lists seq %s, which is not retained", topic, seq)
			}
		}
	}
}

func seqList(us []*hub.Update) []uint64 {
	out := make([]uint64, len(us))
	for i, u := range us {
		out[i] = u.Pos.Seq
	}
	return out
}

// clock is an adjustable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestAgeRetention checks global and per-topic age limits, enforced by
// appends and by the sweep while idle.
func TestAgeRetention(t *testing.T) {
	r := testsvc.StartRedis(t)
	ctx := context.Background()
	on := func(id string, topics ...string) *hub.Update {
		return &hub.Update{ID: id, Topics: topics, Data: "x"}
	}
	for _, c := range []struct {
		name   string
		cfg    redisstore.Config
		before []*hub.Update // appended at the start
		after  []*hub.Update // appended two hours later
		sweep  bool          // sweep (two hours later, after the appends)
		want   []string
	}{
		{
			name:   "global age, appends",
			cfg:    redisstore.Config{Limits: hub.Limits{MaxAge: time.Hour}},
			before: []*hub.Update{on("old1", "a"), on("old2", "a")},
			after:  []*hub.Update{on("new", "a")},
			want:   []string{"new"},
		},
		{
			name:   "global age keeps the appended update",
			cfg:    redisstore.Config{Limits: hub.Limits{MaxAge: time.Hour}},
			before: []*hub.Update{on("old1", "a"), on("old2", "a")},
			want:   []string{"old1", "old2"},
		},
		{
			name:   "global age, sweep",
			cfg:    redisstore.Config{Limits: hub.Limits{MaxAge: time.Hour}},
			before: []*hub.Update{on("old1", "a"), on("old2", "a")},
			sweep:  true,
			want:   nil,
		},
		{
			name: "topic age, sweep",
			cfg: redisstore.Config{TopicLimits: limitTopics(map[string]hub.Limits{
				"a": {MaxAge: time.Hour}, "c": {MaxAge: 3 * time.Hour},
			})},
			before: []*hub.Update{on("a", "a"), on("ab", "a", "b"), on("b", "b"), on("ac", "a", "c"), on("c", "c")},
			sweep:  true,
			want:   []string{"ab", "b", "ac", "c"},
		},
		{
			name: "topic age, append",
			cfg: redisstore.Config{TopicLimits: limitTopics(map[string]hub.Limits{
				"a": {MaxAge: time.Hour, MaxUpdates: 10},
			})},
			before: []*hub.Update{on("a1", "a"), on("ab", "a", "b"), on("a2", "a")},
			after:  []*hub.Update{on("a3", "a")},
			want:   []string{"ab", "a3"},
		},
		{
			name: "topic age and global count",
			cfg: redisstore.Config{Limits: hub.Limits{MaxUpdates: 2}, TopicLimits: limitTopics(map[string]hub.Limits{
				"a": {MaxAge: time.Hour},
			})},
			before: []*hub.Update{on("a1", "a"), on("a2", "a"), on("a3", "a")},
			sweep:  true,
			want:   nil,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			c.cfg.Now = clk.Now
			c.cfg.RetentionInterval = -1
			s := open(t, freshURL(r), c.cfg)
			for _, u := range c.before {
				mustAppend(t, s, u)
			}
			clk.Add(2 * time.Hour)
			for _, u := range c.after {
				mustAppend(t, s, u)
			}
			if c.sweep {
				if err := s.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
			}
			got := readAll(t, s, hub.Position{})
			if ids := idsOf(got); !slices.Equal(ids, c.want) {
				t.Errorf("retained %q; want %q", ids, c.want)
			}
			checkBookkeeping(t, r, s, got)
		})
	}
}

// TestSweeper checks that the background sweep runs on its own.
func TestSweeper(t *testing.T) {
	r := testsvc.StartRedis(t)
	clk := &clock{now: time.Now()}
	s := open(t, freshURL(r), redisstore.Config{
		Limits:            hub.Limits{MaxAge: time.Minute},
		RetentionInterval: 10 * time.Millisecond,
		Now:               clk.Now,
	})
	mustAppend(t, s, upd("old"))
	clk.Add(time.Hour)
	waitFor(t, "sweep of the expired update", func() bool {
		_, newest, err := s.Bounds(context.Background())
		return err == nil && newest.Seq == 0
	})
}
