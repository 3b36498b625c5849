package hub

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// countingStore is a real MemoryStore that counts the updates its Read
// hands out, to see when the hub reads history.
type countingStore struct {
	*MemoryStore
	read atomic.Int64
}

func (s *countingStore) Read(ctx context.Context, after Position, fn func(*Update) bool) error {
	return s.MemoryStore.Read(ctx, after, func(u *Update) bool {
		s.read.Add(1)
		return fn(u)
	})
}

// TestReplayLimit resumes from earliest with more history than the old
// default cap (10,000): with no ReplayLimit every retained update is
// replayed, then live ones, with no gap; with one, the replay stops at it
// with a replay-limit gap notice.
func TestReplayLimit(t *testing.T) {
	t.Parallel()
	const retained = 12000
	for _, tc := range []struct {
		name     string
		limit    int
		replayed int
		gap      GapReason
	}{
		{"default replays everything", 0, retained, GapNone},
		{"negative is the default", -1, retained, GapNone},
		{"an opted-in cap ends with a gap", 100, 100, GapReplayLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := NewMemoryStore(MemoryConfig{MaxUpdates: retained + 1})
			t.Cleanup(func() { store.Close() })
			h := newHub(t, Config{Store: store, ReplayLimit: tc.limit})
			for i := range retained {
				publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
			}
			s, err := h.Subscribe(context.Background(), SubscribeRequest{Topics: []Matcher{Exact("t")}, LastEventID: Earliest})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			live := publish(t, h, &Update{Topics: []string{"t"}})
			want := tc.replayed + 1
			if tc.gap != GapNone {
				want++
			}
			got, err := next(t, s, want)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != want {
				t.Fatalf("got %d updates; want %d", len(got), want)
			}
			for i := range tc.replayed {
				if got[i].ID != fmt.Sprint(i) {
					t.Fatalf("update %d is %q; want %d", i, got[i].ID, i)
				}
			}
			if tc.gap != GapNone && got[tc.replayed].Type != GapEventType {
				t.Errorf("update %d is %q; want the gap notice", tc.replayed, got[tc.replayed].ID)
			}
			if got[want-1].ID != live {
				t.Errorf("last update is %q; want the live one", got[want-1].ID)
			}
			if r := s.Resume(); r.Gap != tc.gap {
				t.Errorf("gap %q; want %q", r.Gap, tc.gap)
			}
			if st := h.Stats(); st.Replayed != uint64(tc.replayed) {
				t.Errorf("Stats.Replayed = %d; want %d", st.Replayed, tc.replayed)
			}
		})
	}
}

// TestReplayIsPacedByTheConsumer checks that a replay reads history from
// the store only inside Drain, one bounded batch per call: a consumer that
// does not call Drain costs no reading, and what one call returns is
// bounded by count and bytes, whatever the replay's length.
func TestReplayIsPacedByTheConsumer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		dataBytes int
		maxBatch  int // most updates one Drain may return
	}{
		{"small updates: bounded by count", 10, replayBatch},
		{"large updates: bounded by bytes", 40 << 10, replayBatchBytes/(40<<10) + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const total = 3000
			store := &countingStore{MemoryStore: NewMemoryStore(MemoryConfig{MaxUpdates: total, MaxBytes: 1 << 30})}
			t.Cleanup(func() { store.Close() })
			h := newHub(t, Config{Store: store})
			data := strings.Repeat("x", tc.dataBytes)
			for i := range total {
				publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}, Data: data})
			}
			before := store.read.Load()
			s, err := h.Subscribe(context.Background(), SubscribeRequest{Topics: []Matcher{Exact("t")}, LastEventID: Earliest})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if n := store.read.Load() - before; n != 0 {
				t.Errorf("Subscribe read %d updates of history; want none before the first Drain", n)
			}
			got := 0
			for calls := 1; got < total; calls++ {
				if !s.Replaying() {
					t.Fatalf("replay ended after %d of %d updates", got, total)
				}
				<-s.Ready() // the previous Drain (or Subscribe) signalled it
				batch, err := s.Drain(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(batch) == 0 || len(batch) > tc.maxBatch {
					t.Fatalf("Drain %d returned %d updates; want 1 to %d", calls, len(batch), tc.maxBatch)
				}
				bytes := 0
				for _, u := range batch[:len(batch)-1] {
					bytes += u.size()
				}
				if bytes >= replayBatchBytes {
					t.Fatalf("Drain %d returned %d bytes before its last update; want under %d", calls, bytes, replayBatchBytes)
				}
				for i, u := range batch {
					if u.ID != fmt.Sprint(got+i) {
						t.Fatalf("update %d is %q", got+i, u.ID)
					}
				}
				got += len(batch)
				// The store was read up to what was returned, plus the one
				// update that showed the batch was full.
				if n := store.read.Load() - before; n > int64(got)+1 {
					t.Fatalf("after %d Drains the store handed out %d updates for %d returned: it reads ahead", calls, n, got)
				}
			}
		})
	}
}
