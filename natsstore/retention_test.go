package natsstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/testsvc"
)

// TestReadAcrossDeletes: with topic rules, Read and Lookup stay exact with
// messages deleted from the middle of the stream, which nats-server 2.9
// miscounts in its consumers' pending counts and its per-subject index.
func TestReadAcrossDeletes(t *testing.T) {
	n := testsvc.StartNATS(t)
	none := func(string) (hub.Limits, bool) { return hub.Limits{}, false }
	s := open(t, n, "stream="+newStream(), Config{TopicLimits: none})
	ctx := context.Background()
	for i := range 120 {
		if err := s.Append(ctx, upd(fmt.Sprint("u", i%100))); err != nil {
			t.Fatal(err)
		}
	}
	_, st, err := s.current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[uint64]bool{}
	for seq := uint64(2); seq <= 120; seq += 3 {
		if err := st.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
		deleted[seq] = true
	}
	for after := range 120 {
		var want []uint64
		for seq := uint64(after + 1); seq <= 120; seq++ {
			if !deleted[seq] {
				want = append(want, seq)
			}
		}
		var got []uint64
		for _, u := range readAll(t, s, hub.Position{Seq: uint64(after)}) {
			got = append(got, u.Pos.Seq)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Read after %d: %v; want %v", after, got, want)
		}
	}
	for i := range 100 {
		first := uint64(i + 1)
		if deleted[first] {
			first += 100
		}
		pos, err := s.Lookup(ctx, fmt.Sprint("u", i))
		switch {
		case first > 120 || deleted[first]:
			if err == nil {
				t.Errorf("Lookup(u%d) = %v; want not found", i, pos)
			}
		case err != nil || pos.Seq != first:
			t.Errorf("Lookup(u%d) = %v, %v; want seq %d", i, pos, err, first)
		}
	}
}

// TestTopicRetentionDeletes: updates a topic rule drops are deleted from
// the stream EvictionDelay later, and a store opened afterwards on the
// stream rebuilds the topics' queues from it and goes on applying them.
func TestTopicRetentionDeletes(t *testing.T) {
	n := testsvc.StartNATS(t)
	q := "stream=" + newStream()
	rules := func(topic string) (hub.Limits, bool) {
		if topic == "a" {
			return hub.Limits{MaxUpdates: 2}, true
		}
		return hub.Limits{}, false
	}
	cfg := Config{TopicLimits: rules, RetentionInterval: 20 * time.Millisecond, EvictionDelay: 50 * time.Millisecond}
	s := open(t, n, q, cfg)
	ctx := context.Background()
	for i := range 10 {
		topic := "a"
		if i%3 == 0 {
			topic = "b"
		}
		if err := s.Append(ctx, &hub.Update{ID: fmt.Sprint(topic, i), Topics: []string{topic}}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"b0", "b3", "b6", "a7", "a8", "b9"}
	if got := ids(readAll(t, s, hub.Position{})); !slices.Equal(got, want) {
		t.Fatalf("retained %v; want %v", got, want)
	}
	msgs := func() uint64 {
		st, err := s.js.Stream(ctx, s.name)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().State.Msgs
	}
	deadline := time.Now().Add(wait)
	for msgs() != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("the stream holds %d messages; want the 6 retained", msgs())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A second node rebuilds the queue of a (a7, a8) from the stream: its
	// appends to a drop a7, then a8.
	s2 := open(t, n, q, cfg)
	for _, id := range []string{"a10", "a11"} {
		if err := s2.Append(ctx, &hub.Update{ID: id, Topics: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
	}
	want = []string{"b0", "b3", "b6", "b9", "a10", "a11"}
	if got := ids(readAll(t, s2, hub.Position{})); !slices.Equal(got, want) {
		t.Fatalf("retained, as the second node reads it: %v; want %v", got, want)
	}
	// The first node learns of the second's appends by its sweeps.
	deadline = time.Now().Add(wait)
	for got := ids(readAll(t, s, hub.Position{})); !slices.Equal(got, want); got = ids(readAll(t, s, hub.Position{})) {
		if time.Now().After(deadline) {
			t.Fatalf("retained, as the first node reads it: %v; want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
