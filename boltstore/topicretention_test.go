package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
)

// limitTopics returns TopicLimits from a map of exact topics.
func limitTopics(rules map[string]hub.Limits) hub.TopicLimits {
	return func(topic string) (hub.Limits, bool) {
		l, ok := rules[topic]
		return l, ok
	}
}

func on(t *testing.T, s hub.Store, id, topic string) *hub.Update {
	t.Helper()
	return mustAppend(t, s, &hub.Update{ID: id, Topics: []string{topic}, Data: "data of " + id})
}

func size(t *testing.T, s *boltstore.Store) int {
	t.Helper()
	n, _ := s.Size()
	return n
}

// TestOpenVersion1 opens a data directory written before per-topic
// retention (testdata/v1: no topic buckets, a 16-byte state; updates a1,
// b1, a2, a3, b2, a4 on topics a and b, stamped 2026-01-01 00:00 to 00:05
// UTC). It must open, serve its history, count it, and apply new limits.
func TestOpenVersion1(t *testing.T) {
	const all = "a1,b1,a2,a3,b2,a4"
	clk := &clock{now: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)}
	for _, c := range []struct {
		name    string
		cfg     boltstore.Config
		appends []string // topic a
		want    string
	}{
		{"unchanged", boltstore.Config{}, nil, all},
		// The rule applies to updates appended under it: the old ones are
		// left to the global limits.
		{"topic limit", boltstore.Config{TopicLimits: limitTopics(map[string]hub.Limits{"a": {MaxUpdates: 2}})},
			[]string{"a5", "a6", "a7"}, all + ",a6,a7"},
		// The count of an old store is the span of its log.
		{"global limit", boltstore.Config{MaxUpdates: 3}, []string{"a5"}, "b2,a4,a5"},
		{"age limit", boltstore.Config{MaxAge: 57*time.Minute + 30*time.Second}, []string{"a5"}, "a3,b2,a4,a5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := os.ReadFile(filepath.Join("testdata", "v1", boltstore.FileName))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, boltstore.FileName), db, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := c.cfg
			cfg.Now = clk.Now
			cfg.RetentionInterval = time.Hour // only appends enforce limits here
			if cfg.MaxAge == 0 {
				cfg.MaxAge = -1
			}
			s := open(t, dir, cfg)
			if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != all {
				t.Fatalf("history of the version 1 store: %s; want %s", got, all)
			}
			if n := size(t, s); n != 6 {
				t.Errorf("Size() = %d updates; want 6", n)
			}
			// Its ID index, of 8-byte hashes, was rebuilt in today's layout.
			for i, id := range strings.Split(all, ",") {
				if pos, err := s.Lookup(context.Background(), id); err != nil || pos.Seq != uint64(i+1) {
					t.Errorf("Lookup(%s) = %v, %v; want seq %d", id, pos, err, i+1)
				}
			}
			for _, id := range c.appends {
				on(t, s, id, "a")
			}
			if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != c.want {
				t.Errorf("after appending %v: %s; want %s", c.appends, got, c.want)
			}
			// Reopened, the store has its counters in the new format.
			want := size(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir, cfg)
			if n := size(t, s); n != want || n != len(strings.Split(c.want, ",")) {
				t.Errorf("Size() after reopen = %d; want %d", n, want)
			}
		})
	}
}

// TestTopicStateSurvivesReopen checks that a topic's count is kept in the
// file: after a restart the next append still discards the oldest.
func TestTopicStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := boltstore.Config{TopicLimits: limitTopics(map[string]hub.Limits{"a": {MaxUpdates: 2}})}
	s := open(t, dir, cfg)
	for i := range 3 {
		on(t, s, fmt.Sprint("a", i), "a")
	}
	on(t, s, "b0", "b")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, cfg)
	on(t, s, "a3", "a")
	if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != "a2,b0,a3" {
		t.Errorf("after reopen and one append: %s; want a2,b0,a3", got)
	}
	if oldest, newest, _ := s.Bounds(context.Background()); oldest.Seq != 3 || newest.Seq != 5 {
		t.Errorf("Bounds = %v, %v; want seqs 3 and 5", oldest, newest)
	}
}

// TestTopicLimitLowered reopens with a lower limit for a topic: its next
// append brings it down to the new limit.
func TestTopicLimitLowered(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, boltstore.Config{TopicLimits: limitTopics(map[string]hub.Limits{"a": {MaxUpdates: 100}})})
	for i := range 50 {
		on(t, s, fmt.Sprint("a", i), "a")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, boltstore.Config{TopicLimits: limitTopics(map[string]hub.Limits{"a": {MaxUpdates: 2}})})
	on(t, s, "a50", "a")
	if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != "a49,a50" {
		t.Errorf("after lowering the limit to 2: %s; want a49,a50", got)
	}
	if n := size(t, s); n != 2 {
		t.Errorf("Size() = %d; want 2", n)
	}
}

// TestTopicAgeWhileIdle checks that the periodic retention pass enforces a
// topic's age limit when nothing is appended.
func TestTopicAgeWhileIdle(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := open(t, t.TempDir(), boltstore.Config{
		TopicLimits:       limitTopics(map[string]hub.Limits{"a": {MaxAge: time.Hour}}),
		RetentionInterval: time.Millisecond,
		Now:               clk.Now,
	})
	on(t, s, "a1", "a")
	on(t, s, "b1", "b")
	clk.Add(61 * time.Minute)
	// Bounds changes once the pass has committed and published its
	// result; Read may see the commit a moment earlier.
	deadline := time.Now().Add(30 * time.Second) // a hang detector, not a timing assertion
	for {
		if oldest, _, _ := s.Bounds(context.Background()); oldest.Seq == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a1 outlived its topic's age limit: %v", readIDs(t, s, hub.Position{}))
		}
		time.Sleep(time.Millisecond)
	}
	if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != "b1" {
		t.Errorf("retained after the age pass: %s; want b1", got)
	}
}
