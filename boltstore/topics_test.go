package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub/hub"
)

// checkInvariants checks that the per-topic buckets agree with the log and
// with each other, and the in-memory counters with the file.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	if err := s.settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		logB, ids := tx.Bucket(bucketLog), tx.Bucket(bucketIDs)
		topics, state, ages := tx.Bucket(bucketTopics), tx.Bucket(bucketTopicState), tx.Bucket(bucketAges)
		var count uint64
		var total int64
		var first, last uint64
		if err := logB.ForEach(func(k, v []byte) error {
			seq := binary.BigEndian.Uint64(k)
			if first == 0 {
				first = seq
			}
			last = seq
			count++
			rec, err := unseal(k, v, s.bare)
			if err != nil {
				return err
			}
			total += int64(len(rec))
			h, err := decodeHeader(rec)
			if err != nil {
				return err
			}
			if ids.Get(idKey(idPrefix(string(h.id)), seq)) == nil {
				t.Errorf("seq %d: no ID index entry", seq)
			}
			return nil
		}); err != nil {
			return err
		}
		if n := ids.Stats().KeyN; uint64(n) != count {
			t.Errorf("%d ID index entries for %d records", n, count)
		}
		s.mu.RLock()
		if count != s.count || count != s.kept || total != s.bytes || total != s.retained {
			t.Errorf("file holds %d records of %d bytes; the store counts %d (%d) and %d (%d)", count, total, s.count, s.kept, s.bytes, s.retained)
		}
		if count > 0 && (first != s.first || last != s.newest) {
			t.Errorf("file holds seqs %d..%d; the store says %d..%d", first, last, s.first, s.newest)
		}
		s.mu.RUnlock()
		type agg struct{ count, bytes int64 }
		sums := make(map[[16]byte]agg)
		deadlines := 0
		if err := topics.ForEach(func(k, v []byte) error {
			var h [16]byte
			copy(h[:], k[:16])
			seq := binary.BigEndian.Uint64(k[16:])
			e, err := decodeEntry(v)
			if err != nil {
				return err
			}
			sealed := logB.Get(k[16:])
			if sealed == nil {
				t.Errorf("topic entry for seq %d, which is not in the log", seq)
				return nil
			}
			rec, err := unseal(k[16:], sealed, s.bare)
			if err != nil {
				return err
			}
			if hs, err := recordTopicHashes(rec); err != nil || !slices.Contains(hs, h) {
				t.Errorf("topic entry for seq %d names a topic the record does not have (%v)", seq, err)
			}
			if e.size != int64(len(rec)) {
				t.Errorf("topic entry for seq %d: size %d; the record has %d", seq, e.size, len(rec))
			}
			if e.flags&entryDeadline != 0 {
				deadlines++
				if ages.Get(ageKey(e.deadline, h, seq)) == nil {
					t.Errorf("topic entry for seq %d has a deadline but no age key", seq)
				}
			}
			a := sums[h]
			sums[h] = agg{a.count + 1, a.bytes + e.size}
			return nil
		}); err != nil {
			return err
		}
		if n := ages.Stats().KeyN; n != deadlines {
			t.Errorf("%d age keys for %d entries with a deadline", n, deadlines)
		}
		states := 0
		if err := state.ForEach(func(k, v []byte) error {
			states++
			var h [16]byte
			copy(h[:], k)
			want := sums[h]
			if got := (agg{int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))}); got != want {
				t.Errorf("topic %x: state %+v; entries %+v", h[:4], got, want)
			}
			return nil
		}); err != nil {
			return err
		}
		if states != len(sums) {
			t.Errorf("%d topic states for %d topics with entries", states, len(sums))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

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

// TestTopicBucketsStayConsistent appends random updates concurrently (so
// that transactions hold several) under global and per-topic limits,
// reopening with changed rules, and checks the invariants of the topic
// buckets after each round.
func TestTopicBucketsStayConsistent(t *testing.T) {
	dir := t.TempDir()
	clk := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	rounds := []map[string]hub.Limits{
		{"count": {MaxUpdates: 3}, "bytes": {MaxBytes: 3000}, "age": {MaxAge: time.Hour}, "mixed": {MaxUpdates: 5, MaxBytes: 4000, MaxAge: 30 * time.Minute}},
		{"count": {MaxUpdates: 1}, "bytes": {MaxUpdates: 2}, "mixed": {MaxAge: time.Hour}, "free": {MaxUpdates: 2}},
		nil, // no rules: old entries stay until the global limits delete them
		{"count": {MaxUpdates: 2}, "age": {MaxAge: 10 * time.Minute}},
	}
	topics := []string{"count", "bytes", "age", "mixed", "free"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for round, rules := range rounds {
		cfg := Config{MaxUpdates: 60, MaxBytes: 80_000, MaxAge: 3 * time.Hour, Now: clk.Now}
		if rules != nil {
			cfg.TopicLimits = func(topic string) (hub.Limits, bool) {
				l, ok := rules[topic]
				return l, ok
			}
		}
		s, err := Open(dir, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for step := range 6 {
			clk.Add(time.Duration(rnd.IntN(20)) * time.Minute)
			var us []*hub.Update
			for i := range 1 + rnd.IntN(30) {
				var ts []string
				for range 1 + rnd.IntN(3) {
					ts = append(ts, topics[rnd.IntN(len(topics))])
				}
				us = append(us, &hub.Update{ID: fmt.Sprintf("r%d-%d-%d", round, step, i), Topics: ts, Data: strings.Repeat("x", rnd.IntN(1500))})
			}
			var wg sync.WaitGroup
			for _, u := range us {
				wg.Go(func() {
					if err := s.Append(context.Background(), u); err != nil {
						t.Errorf("Append: %v", err)
					}
				})
			}
			wg.Wait()
			checkInvariants(t, s)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A final reopen reads the same counters from the file.
	s, err := Open(dir, Config{MaxUpdates: 60, MaxBytes: 80_000, MaxAge: -1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkInvariants(t, s)
}

// TestEntryRoundTrip pins the encoding of topic entries and age keys.
func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []entry{
		{size: 0},
		{flags: entryPinned, size: 1 << 40},
		{flags: entryDeadline, size: 200, deadline: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()},
		{flags: entryDeadline | entryPinned, size: 7, deadline: -5},
	} {
		got, err := decodeEntry(e.encode())
		if err != nil || got != e {
			t.Errorf("decodeEntry(encode(%+v)) = %+v, %v", e, got, err)
		}
	}
	for _, v := range [][]byte{nil, {0}, {entryDeadline, 1}, {0, 0x80}} {
		if _, err := decodeEntry(v); err == nil {
			t.Errorf("decodeEntry(%x) succeeded; want an error", v)
		}
	}
	var h [16]byte
	if a, b := ageKey(-1, h, 9), ageKey(1, h, 1); bytes.Compare(a, b) >= 0 {
		t.Errorf("age keys do not sort by deadline across zero")
	}
}

// TestStrayAgeKey plants an age key without its entry: the age pass drops
// it instead of failing every later transaction.
func TestStrayAgeKey(t *testing.T) {
	clk := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(t.TempDir(), Config{Now: clk.Now, TopicLimits: func(string) (hub.Limits, bool) {
		return hub.Limits{MaxAge: time.Hour}, true
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAges).Put(ageKey(clk.Now().UnixNano(), topicHash("gone"), 7), nil)
	}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if err := s.Append(context.Background(), &hub.Update{ID: "a", Topics: []string{"t"}}); err != nil {
		t.Fatalf("Append after a stray age key: %v", err)
	}
	checkInvariants(t, s)
}

// FuzzRecordTopicHashes checks that reading a record's topics never panics
// and agrees with decode on every record decode accepts.
func FuzzRecordTopicHashes(f *testing.F) {
	f.Add(encode(nil, &hub.Update{ID: "a", Topics: []string{"t", "u", "t"}, Type: "x", Data: "d", IdempotencyKey: "k", Time: time.Unix(1, 2)}))
	f.Add(encode(nil, &hub.Update{Topics: []string{"t"}}))
	f.Add([]byte{1, 4, 0, 0, 5})
	f.Fuzz(func(t *testing.T, rec []byte) {
		hs, err := recordTopicHashes(rec)
		u, derr := decode(rec, hub.Position{})
		if derr != nil {
			return
		}
		if err != nil {
			t.Fatalf("decode accepted what recordTopicHashes rejects: %v", err)
		}
		var want [][16]byte
		for _, topic := range u.Topics {
			if h := topicHash(topic); !slices.Contains(want, h) {
				want = append(want, h)
			}
		}
		if !slices.Equal(hs, want) {
			t.Fatalf("recordTopicHashes gave %d hashes for topics %q", len(hs), u.Topics)
		}
	})
}

// FuzzDecodeEntry checks that decoding a topic entry never panics and that
// what decodes re-encodes to an equal entry.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(entry{flags: entryDeadline | entryPinned, size: 300, deadline: 12345}.encode())
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := decodeEntry(v)
		if err != nil {
			return
		}
		if again, err := decodeEntry(e.encode()); err != nil || again != e {
			t.Fatalf("entry %+v does not round-trip: %+v, %v", e, again, err)
		}
	})
}
