package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestCursorResume resumes from stream cursors: a new subscription's
// cursor names the moment it registered, so resuming from it replays what
// was published after that (and only what the subscriber may see), on the
// same hub or another sharing the store; a cursor that cannot be honoured
// yields the unknown-id gap and a replay from the oldest retained update.
func TestCursorResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	all := func([]string) bool { return true }
	for _, tc := range []struct {
		name    string
		cursor  func(c string, epoch string) string
		canRead func([]string) bool
		want    string
		gap     GapReason
	}{
		{"after the registration", nil, nil, "5,live", GapNone},
		{"private updates need a grant", nil, all, "5,6,live", GapNone},
		{"from the start of the log", func(_, e string) string { return "#" + EncodePosition(Position{Epoch: e}) }, nil, "0,1,2,3,4,5,live", GapNone},
		{"another epoch", func(c, _ string) string {
			p, _ := DecodePosition(c[1:])
			p.Epoch = "gone"
			return "#" + EncodePosition(p)
		}, nil, "GAP,0,1,2,3,4,5,live", GapUnknownID},
		{"ahead of the log", func(_, e string) string { return "#" + EncodePosition(Position{Seq: 1000, Epoch: e}) }, nil, "GAP,0,1,2,3,4,5,live", GapUnknownID},
		{"malformed", func(string, string) string { return "#not a cursor" }, nil, "GAP,0,1,2,3,4,5,live", GapUnknownID},
		{"an update ID is not a cursor", func(string, string) string { return "3" }, nil, "4,5,live", GapNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := NewMemoryStore(MemoryConfig{})
			t.Cleanup(func() { store.Close() })
			a := newHub(t, Config{Store: store})
			for i := range 5 {
				publish(t, a, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
			}
			first, err := a.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("t")}})
			if err != nil {
				t.Fatal(err)
			}
			cursor := first.Cursor()
			first.Close()
			if !strings.HasPrefix(cursor, CursorPrefix) {
				t.Fatalf("cursor %q lacks the prefix", cursor)
			}
			publish(t, a, &Update{ID: "5", Topics: []string{"t"}})
			publish(t, a, &Update{ID: "6", Topics: []string{"t"}, Private: true})
			publish(t, a, &Update{ID: "7", Topics: []string{"other"}})
			_, newest, _ := store.Bounds(ctx)
			last := cursor
			if tc.cursor != nil {
				last = tc.cursor(cursor, newest.Epoch)
			}
			// Another hub on the same store resolves it the same way.
			b := newHub(t, Config{Store: store})
			s, err := b.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("t")}, LastEventID: last, CanRead: tc.canRead})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			live := publish(t, a, &Update{Topics: []string{"t"}})
			got, err := next(t, s, strings.Count(tc.want, ",")+1)
			if err != nil || strings.ReplaceAll(ids(got), live, "live") != tc.want {
				t.Errorf("got %q, %v; want %q", ids(got), err, tc.want)
			}
			anchor := last
			if tc.gap != GapNone {
				anchor = Earliest
			}
			if r := s.Resume(); r.Gap != tc.gap || r.Anchor != anchor {
				t.Errorf("resume = %+v; want anchor %q gap %q", r, anchor, tc.gap)
			}
		})
	}
}

// TestCursorExpired: a cursor older than the retained log (an update after
// it was discarded) yields the unknown-id gap, and the replay from the
// oldest retained update; on an empty log, a cursor at its end is honoured.
func TestCursorExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	subscribe := func(h *Hub, last string) *Subscription {
		s, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("t")}, LastEventID: last})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}

	store := NewMemoryStore(MemoryConfig{MaxUpdates: 3})
	t.Cleanup(func() { store.Close() })
	h := newHub(t, Config{Store: store})
	publish(t, h, &Update{ID: "0", Topics: []string{"t"}})
	cursor := subscribe(h, "").Cursor()
	for i := 1; i <= 4; i++ { // 1 is discarded
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
	}
	s := subscribe(h, cursor)
	if got, err := next(t, s, 4); err != nil || ids(got) != "GAP,2,3,4" || s.Resume().Gap != GapUnknownID {
		t.Errorf("expired cursor: got %q, %v, %+v; want GAP,2,3,4 with unknown-id", ids(got), err, s.Resume())
	}

	empty := newHub(t, Config{})
	cursor = subscribe(empty, "").Cursor()
	s = subscribe(empty, cursor)
	if r := s.Resume(); r.Gap != GapNone || r.Anchor != cursor {
		t.Errorf("cursor of an empty log: %+v; want it found", r)
	}
	publish(t, empty, &Update{ID: "a", Topics: []string{"t"}})
	if got, err := next(t, subscribe(empty, cursor), 1); err != nil || ids(got) != "a" {
		t.Errorf("resume from the empty log's cursor: %q, %v; want a", ids(got), err)
	}
}

// TestCatchUpAfterCursor: the history API takes a stream cursor as after.
func TestCatchUpAfterCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHub(t, Config{})
	publish(t, h, &Update{ID: "0", Topics: []string{"t"}})
	s, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("t")}})
	if err != nil {
		t.Fatal(err)
	}
	cursor := s.Cursor()
	s.Close()
	publish(t, h, &Update{ID: "1", Topics: []string{"t"}})
	page, err := h.CatchUp(ctx, CatchUpRequest{Topics: []Matcher{Exact("t")}, After: cursor})
	if err != nil || ids(page.Updates) != "1" || page.Gap != GapNone {
		t.Errorf("page after cursor: %q gap %q, %v; want 1", ids(page.Updates), page.Gap, err)
	}
}

// FuzzDecodePosition: decoding never panics, what decodes encodes back to
// itself, and every position round-trips.
func FuzzDecodePosition(f *testing.F) {
	f.Add("", uint64(0), "")
	f.Add("4f1c2a", uint64(42), EncodePosition(Position{Seq: 42, Epoch: "4f1c2a"}))
	f.Add("a.b", uint64(7), "YS5iLjc")
	f.Add("", uint64(1<<63), "Lg")
	f.Fuzz(func(t *testing.T, epoch string, seq uint64, s string) {
		if p, ok := DecodePosition(s); ok {
			if q, ok := DecodePosition(EncodePosition(p)); !ok || q != p {
				t.Errorf("%q decodes to %v, which round-trips to %v, %v", s, p, q, ok)
			}
		}
		p := Position{Seq: seq, Epoch: epoch}
		if p == (Position{}) {
			return
		}
		if q, ok := DecodePosition(EncodePosition(p)); !ok || q != p {
			t.Errorf("%v round-trips to %v, %v", p, q, ok)
		}
	})
}

// heldStore is a Store whose Follow starts only once release is closed:
// what is appended before stays undispatched.
type heldStore struct {
	Store
	release chan struct{}
}

func (s heldStore) Follow(ctx context.Context, after Position, fn func(*Update)) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Follow(ctx, after, fn)
}

// TestHubCursor: the hub's cursor is Earliest on a log that never held an
// update, and otherwise the end of the log, whether or not the hub has
// dispatched what is before it: resuming from it replays exactly what was
// appended after it was taken. On an idle hub it is a new subscription's.
func TestHubCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := NewMemoryStore(MemoryConfig{})
	t.Cleanup(func() { mem.Close() })
	held := heldStore{Store: mem, release: make(chan struct{})}
	h := newHub(t, Config{Store: held})
	if c, err := h.Cursor(ctx); err != nil || c != Earliest {
		t.Fatalf("cursor of an empty log: %q, %v; want %q", c, err, Earliest)
	}
	for i := range 3 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
	}
	// Nothing is dispatched yet: the cursor is past the three anyway.
	c, err := h.Cursor(ctx)
	if err != nil || !strings.HasPrefix(c, CursorPrefix) {
		t.Fatalf("cursor: %q, %v", c, err)
	}
	publish(t, h, &Update{ID: "3", Topics: []string{"t"}})
	s, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("t")}, LastEventID: c})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	close(held.release)
	live := publish(t, h, &Update{Topics: []string{"t"}})
	if got, err := next(t, s, 2); err != nil || strings.ReplaceAll(ids(got), live, "live") != "3,live" || s.Resume().Gap != GapNone {
		t.Errorf("resume from the cursor: %q, %v, %+v; want 3,live without a gap", ids(got), err, s.Resume())
	}

	// Once idle (the live update dispatched), a new subscription's cursor.
	fresh, err := h.Subscribe(ctx, SubscribeRequest{Topics: []Matcher{Exact("t")}})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if c, err := h.Cursor(ctx); err != nil || c != fresh.Cursor() {
		t.Errorf("idle hub's cursor %q, %v; a new subscription's is %q", c, err, fresh.Cursor())
	}
}
