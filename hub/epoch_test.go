package hub

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// resettable is a store that can lose its history, as a Redis that was
// flushed or a JetStream stream that was recreated: reset replaces it
// with an empty store in a new epoch, and a Follow under way then
// returns ErrEpochChanged.
type resettable struct {
	mu      sync.Mutex
	cur     *MemoryStore
	changed chan struct{}
}

func newResettable() *resettable {
	return &resettable{cur: NewMemoryStore(MemoryConfig{}), changed: make(chan struct{})}
}

func (r *resettable) get() (*MemoryStore, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, r.changed
}

func (r *resettable) reset() {
	r.mu.Lock()
	old := r.cur
	r.cur = NewMemoryStore(MemoryConfig{})
	close(r.changed) // before the old store closes, so Follow reports the change
	r.changed = make(chan struct{})
	r.mu.Unlock()
	old.Close()
}

func (r *resettable) Append(ctx context.Context, u *Update) error {
	s, _ := r.get()
	return s.Append(ctx, u)
}

func (r *resettable) Lookup(ctx context.Context, id string) (Position, error) {
	s, _ := r.get()
	return s.Lookup(ctx, id)
}

func (r *resettable) Read(ctx context.Context, after Position, fn func(*Update) bool) error {
	s, _ := r.get()
	return s.Read(ctx, after, fn)
}

func (r *resettable) Follow(ctx context.Context, after Position, fn func(*Update)) error {
	s, changed := r.get()
	if after.Epoch != s.epoch {
		return ErrEpochChanged
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-changed:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := s.Follow(ctx, after, fn)
	select {
	case <-changed:
		return ErrEpochChanged
	default:
		return err
	}
}

func (r *resettable) Bounds(ctx context.Context) (Position, Position, error) {
	s, _ := r.get()
	return s.Bounds(ctx)
}

func (r *resettable) Close() error {
	s, _ := r.get()
	return s.Close()
}

// TestStoreLosesHistory checks that when the store reports a new epoch,
// the hub ends every subscription with ErrHistoryLost, a resume from an
// old ID is told of the gap, and delivery goes on in the new epoch.
func TestStoreLosesHistory(t *testing.T) {
	store := newResettable()
	t.Cleanup(func() { store.Close() })
	h := newHub(t, Config{Store: store})
	ctx := context.Background()

	s1, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("a")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	old := publish(t, h, &Update{Topics: []string{"a"}, ID: "old"})
	if got, err := next(t, s1, 1); err != nil || ids(got) != old {
		t.Fatalf("before the loss: %s, %v", ids(got), err)
	}

	store.reset()
	if _, err := next(t, s1, 1); !errors.Is(err, ErrHistoryLost) {
		t.Fatalf("after the loss the subscription should end with ErrHistoryLost, got %v", err)
	}

	s2, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("a")}, LastEventID: old})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Resume().Gap != GapUnknownID || s2.Resume().Anchor != Earliest {
		t.Fatalf("resume from an ID of the lost epoch: %+v", s2.Resume())
	}
	publish(t, h, &Update{Topics: []string{"a"}, ID: "new"})
	got, err := next(t, s2, 2)
	if err != nil || ids(got) != "GAP,new" {
		t.Fatalf("in the new epoch: %s, %v", ids(got), err)
	}
}
