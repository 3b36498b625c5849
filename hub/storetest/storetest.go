// Package storetest is the conformance suite every hub.Store must pass.
//
// A store's tests call Run with a constructor of empty stores,
// RunRetention if the store can be limited to a number of updates, and
// RunTopicRetention if it implements per-topic limits (hub.TopicLimits).
// This package's own tests run them all against hub.MemoryStore, the
// reference implementation; boltstore runs them against the durable store. Run the
// suite under -race and with go.uber.org/goleak's VerifyTestMain in the
// calling package: several cases check that goroutines end on Close and on
// context cancellation.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// wait bounds how long a case waits for something that should happen
// promptly; it only turns a hang into a readable failure.
const wait = 30 * time.Second

// Run runs the conformance suite against the stores newStore returns. Each
// call of newStore must return a new, empty, open store with default or
// generous limits (at least 10,000 updates retained). The suite closes every
// store it gets; newStore may register further cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) hub.Store) {
	open := func(t *testing.T) hub.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("AppendAssignsPositions", func(t *testing.T) { testAppend(t, open(t)) })
	t.Run("AppendCanceled", func(t *testing.T) { testAppendCanceled(t, open(t)) })
	t.Run("Lookup", func(t *testing.T) { testLookup(t, open(t)) })
	t.Run("Read", func(t *testing.T) { testRead(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("Follow", func(t *testing.T) { testFollow(t, open(t)) })
	t.Run("FollowCancel", func(t *testing.T) { testFollowCancel(t, open(t)) })
	t.Run("ConcurrentAppend", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("CallbacksMayUseStore", func(t *testing.T) { testReentrant(t, open(t)) })
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
	t.Run("IdempotencyKeyScopedByPublisher", func(t *testing.T) { testIdempotencyScope(t, open(t)) })
	t.Run("HubCursor", func(t *testing.T) { testHubCursor(t, open(t)) })
}

// Retention describes a store that can be limited, for RunRetention.
type Retention struct {
	// New returns a new, empty, open store that retains at most
	// maxUpdates updates, discarding the oldest first, and no other limit
	// that the suite could reach (it appends a few dozen small updates).
	New func(t *testing.T, maxUpdates int) hub.Store
	// Skip maps the names of retention cases to the reason a store
	// deviates from them; those cases are skipped with that reason. Use it
	// only for known, documented bugs.
	Skip map[string]string
}

// RunRetention runs the cases that need a store with a count limit: the
// oldest updates are discarded, Bounds, Read, Lookup and Follow agree about
// what is retained, and IDs are forgotten with the updates that held them.
func RunRetention(t *testing.T, r Retention) {
	cases := []struct {
		name string
		fn   func(*testing.T, hub.Store)
	}{
		{"DiscardsOldest", testRetentionDiscards},
		{"LookupAfterEarliestEvicted", testRetentionDuplicate},
		{"FollowBehindRetention", testRetentionFollow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if why, ok := r.Skip[c.name]; ok {
				t.Skip(why)
			}
			s := r.New(t, 5)
			t.Cleanup(func() { _ = s.Close() })
			c.fn(t, s)
		})
	}
}

// upd returns a small update on topic "t" with the given ID.
func upd(id string) *hub.Update {
	return &hub.Update{ID: id, Topics: []string{"https://example.com/t"}, Data: "data of " + id, Time: time.Now()}
}

func appendAll(t *testing.T, s hub.Store, us ...*hub.Update) []*hub.Update {
	t.Helper()
	for _, u := range us {
		if err := s.Append(context.Background(), u); err != nil {
			t.Fatalf("Append(%q): %v", u.ID, err)
		}
	}
	return us
}

func appendN(t *testing.T, s hub.Store, prefix string, n int) []*hub.Update {
	t.Helper()
	us := make([]*hub.Update, n)
	for i := range us {
		us[i] = upd(fmt.Sprintf("%s%d", prefix, i))
	}
	return appendAll(t, s, us...)
}

// readAll returns what Read(after) delivers.
func readAll(t *testing.T, s hub.Store, after hub.Position) []*hub.Update {
	t.Helper()
	var got []*hub.Update
	if err := s.Read(context.Background(), after, func(u *hub.Update) bool {
		got = append(got, u)
		return true
	}); err != nil {
		t.Fatalf("Read(%v): %v", after, err)
	}
	return got
}

func ids(us []*hub.Update) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func seqs(us []*hub.Update) []uint64 {
	out := make([]uint64, len(us))
	for i, u := range us {
		out[i] = u.Pos.Seq
	}
	return out
}

func bounds(t *testing.T, s hub.Store) (oldest, newest hub.Position) {
	t.Helper()
	oldest, newest, err := s.Bounds(context.Background())
	if err != nil {
		t.Fatalf("Bounds: %v", err)
	}
	return oldest, newest
}

func testEmpty(t *testing.T, s hub.Store) {
	oldest, newest := bounds(t, s)
	if oldest.Seq != 0 || newest.Seq != 0 || oldest.Epoch == "" || newest.Epoch != oldest.Epoch {
		t.Errorf("Bounds of an empty store = %v, %v; want seq 0 and one non-empty epoch", oldest, newest)
	}
	if got := readAll(t, s, hub.Position{}); len(got) != 0 {
		t.Errorf("Read of an empty store gave %v; want nothing", ids(got))
	}
	if _, err := s.Lookup(context.Background(), "x"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Lookup in an empty store: got %v; want ErrNotFound", err)
	}
}

func testAppend(t *testing.T, s hub.Store) {
	us := appendN(t, s, "a", 20)
	epoch := us[0].Pos.Epoch
	if epoch == "" {
		t.Fatal("Append set an empty epoch")
	}
	for i, u := range us {
		if u.Pos.Epoch != epoch {
			t.Errorf("update %d: epoch %q; want %q (stable)", i, u.Pos.Epoch, epoch)
		}
		if u.Pos.Seq == 0 || i > 0 && u.Pos.Seq <= us[i-1].Pos.Seq {
			t.Errorf("update %d: seq %d after %d; want strictly increasing and non-zero", i, u.Pos.Seq, us[max(i-1, 0)].Pos.Seq)
		}
	}
	oldest, newest := bounds(t, s)
	if oldest != us[0].Pos || newest != us[len(us)-1].Pos {
		t.Errorf("Bounds = %v, %v; want %v, %v", oldest, newest, us[0].Pos, us[len(us)-1].Pos)
	}
}

func testAppendCanceled(t *testing.T, s hub.Store) {
	appendN(t, s, "a", 1)
	_, before := bounds(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, upd("canceled")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context: got %v; want context.Canceled", err)
	}
	if _, after := bounds(t, s); after != before {
		t.Errorf("newest after a canceled Append = %v; want %v (nothing appended)", after, before)
	}
	if _, err := s.Lookup(context.Background(), "canceled"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Lookup of the canceled update: got %v; want ErrNotFound", err)
	}
}

func testLookup(t *testing.T, s hub.Store) {
	us := appendAll(t, s, upd("one"), upd("dup"), upd("two"), upd("dup"), upd("dup"), upd(""), upd("urn:uuid:7d2a"))
	for _, c := range []struct {
		id   string
		want hub.Position
	}{
		{"one", us[0].Pos},
		{"dup", us[1].Pos}, // the earliest of three
		{"two", us[2].Pos},
		{"urn:uuid:7d2a", us[6].Pos},
	} {
		got, err := s.Lookup(context.Background(), c.id)
		if err != nil || got != c.want {
			t.Errorf("Lookup(%q) = %v, %v; want %v", c.id, got, err, c.want)
		}
	}
	for _, id := range []string{"unknown", "dup ", "DUP", "on", strings.Repeat("forged", 2000), "\x00"} {
		if pos, err := s.Lookup(context.Background(), id); !errors.Is(err, hub.ErrNotFound) {
			t.Errorf("Lookup(%.20q) = %v, %v; want ErrNotFound", id, pos, err)
		}
	}
}

func testRead(t *testing.T, s hub.Store) {
	us := appendN(t, s, "r", 600) // more than one internal batch in most stores
	if got := readAll(t, s, hub.Position{}); !slices.Equal(ids(got), ids(us)) || !slices.Equal(seqs(got), seqs(us)) {
		t.Fatalf("Read from zero: got %d updates %v...; want all %d in order", len(got), ids(got)[:min(5, len(got))], len(us))
	}
	for _, k := range []int{0, 1, 299, 598} {
		got := readAll(t, s, us[k].Pos)
		if !slices.Equal(seqs(got), seqs(us[k+1:])) {
			t.Errorf("Read after update %d: got %d updates; want the %d after it, in order", k, len(got), len(us)-k-1)
		}
	}
	if got := readAll(t, s, us[len(us)-1].Pos); len(got) != 0 {
		t.Errorf("Read after the newest gave %v; want nothing", ids(got))
	}
	if got := readAll(t, s, hub.Position{Seq: us[len(us)-1].Pos.Seq + 1000, Epoch: us[0].Pos.Epoch}); len(got) != 0 {
		t.Errorf("Read after a future seq gave %v; want nothing", ids(got))
	}
	// Stop when fn returns false.
	calls := 0
	err := s.Read(context.Background(), hub.Position{}, func(*hub.Update) bool {
		calls++
		return calls < 3
	})
	if err != nil || calls != 3 {
		t.Errorf("Read stopping at the 3rd update: %d calls, err %v; want 3 calls, nil", calls, err)
	}
	// A position from another epoch.
	calls = 0
	err = s.Read(context.Background(), hub.Position{Seq: 1, Epoch: "another-epoch"}, func(*hub.Update) bool {
		calls++
		return true
	})
	if !errors.Is(err, hub.ErrEpochChanged) || calls != 0 {
		t.Errorf("Read from a foreign epoch: err %v after %d calls; want ErrEpochChanged and no call", err, calls)
	}
	// A canceled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Read(ctx, hub.Position{}, func(*hub.Update) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a canceled context: %v; want context.Canceled", err)
	}
}

// roundTripCases are updates whose every field must survive storage. Time
// must survive to the millisecond at least, as an instant (its location
// need not).
func roundTripCases() []*hub.Update {
	// Recent times, so that stores with age limits retain them, with
	// nanoseconds and a location other than UTC.
	ts := time.Now().Add(-time.Minute).Truncate(time.Second).Add(891234567).In(time.FixedZone("X", 3600))
	return []*hub.Update{
		{ID: "plain", Topics: []string{"https://example.com/books/1"}, Data: "hello", Time: ts},
		{ID: "alternates", Topics: []string{"https://example.com/books/1", "https://example.com/users/dunglas/books/1", "/books/{id}"}, Type: "book.updated", Data: "{\"title\":\"x\"}", Retry: 2500 * time.Millisecond, Private: true, Time: ts.Add(time.Hour), IdempotencyKey: "order-42/retry"},
		{ID: "lines", Topics: []string{"t"}, Data: "a\nb\r\nc\rd\n\n", Time: ts},
		{ID: "nul", Topics: []string{"t"}, Data: "before\x00after\x00", Time: ts},
		{ID: "utf8-日本語-é", Topics: []string{"ラベル/🙂"}, Type: "ünïcode", Data: "Grüße, 世界 🙂 \u2028", Time: ts},
		{ID: "empty-data", Topics: []string{"t"}, Time: ts},
		{ID: "", Topics: []string{"empty id"}, Data: "x", Time: ts},
		{ID: "large", Topics: []string{"t"}, Data: strings.Repeat("0123456789abcdef", 8192), Retry: time.Millisecond, Time: ts.Add(-10 * time.Minute)},
		{ID: "bytes", Topics: []string{"t"}, Data: string([]byte{0xff, 0xfe, 0x80, 0, 1, 2}), Time: ts},
	}
}

func sameUpdate(t *testing.T, how string, got, want *hub.Update) {
	t.Helper()
	var diffs []string
	if got.ID != want.ID {
		diffs = append(diffs, fmt.Sprintf("ID %q, want %q", got.ID, want.ID))
	}
	if !slices.Equal(got.Topics, want.Topics) {
		diffs = append(diffs, fmt.Sprintf("Topics %q, want %q", got.Topics, want.Topics))
	}
	if got.Type != want.Type {
		diffs = append(diffs, fmt.Sprintf("Type %q, want %q", got.Type, want.Type))
	}
	if got.Data != want.Data {
		diffs = append(diffs, fmt.Sprintf("Data %.40q (%d bytes), want %.40q (%d bytes)", got.Data, len(got.Data), want.Data, len(want.Data)))
	}
	if got.Retry != want.Retry {
		diffs = append(diffs, fmt.Sprintf("Retry %v, want %v", got.Retry, want.Retry))
	}
	if got.Private != want.Private {
		diffs = append(diffs, fmt.Sprintf("Private %v, want %v", got.Private, want.Private))
	}
	if got.IdempotencyKey != want.IdempotencyKey {
		diffs = append(diffs, fmt.Sprintf("IdempotencyKey %q, want %q", got.IdempotencyKey, want.IdempotencyKey))
	}
	if d := got.Time.Sub(want.Time); d <= -time.Millisecond || d >= time.Millisecond {
		diffs = append(diffs, fmt.Sprintf("Time %v, want %v (to 1ms)", got.Time, want.Time))
	}
	if got.Pos != want.Pos {
		diffs = append(diffs, fmt.Sprintf("Pos %v, want %v", got.Pos, want.Pos))
	}
	if len(diffs) > 0 {
		t.Errorf("%s %q: %s", how, want.ID, strings.Join(diffs, "; "))
	}
}

func testRoundTrip(t *testing.T, s hub.Store) {
	want := roundTripCases()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := follow(ctx, s, hub.Position{})
	appendAll(t, s, want...)
	got := readAll(t, s, hub.Position{})
	if len(got) != len(want) {
		t.Fatalf("Read gave %d updates; want %d", len(got), len(want))
	}
	for i := range want {
		sameUpdate(t, "Read", got[i], want[i])
	}
	for i, u := range f.next(t, len(want)) {
		sameUpdate(t, "Follow", u, want[i])
	}
	cancel()
	f.stop(t)
}

// follower runs Follow on its own goroutine and collects what it delivers.
type follower struct {
	ch   chan *hub.Update
	done chan error
}

func follow(ctx context.Context, s hub.Store, after hub.Position) *follower {
	f := &follower{ch: make(chan *hub.Update, 1<<16), done: make(chan error, 1)}
	go func() { f.done <- s.Follow(ctx, after, func(u *hub.Update) { f.ch <- u }) }()
	return f
}

// next returns the next n updates Follow delivers.
func (f *follower) next(t *testing.T, n int) []*hub.Update {
	t.Helper()
	out := make([]*hub.Update, 0, n)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(out) < n {
		select {
		case u := <-f.ch:
			out = append(out, u)
		case err := <-f.done:
			t.Fatalf("Follow returned %v after delivering %d of %d updates", err, len(out), n)
		case <-timer.C:
			t.Fatalf("Follow delivered %d of %d updates within %v", len(out), n, wait)
		}
	}
	return out
}

// stop waits for Follow to return after its context was canceled and
// checks that it delivered nothing more.
func (f *follower) stop(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.done:
		if len(f.ch) > 0 {
			u := <-f.ch
			t.Errorf("Follow delivered an unexpected update %q (seq %d)", u.ID, u.Pos.Seq)
		}
		return err
	case <-time.After(wait):
		t.Fatalf("Follow did not return within %v of its end", wait)
		return nil
	}
}

func testFollow(t *testing.T, s hub.Store) {
	before := appendN(t, s, "old", 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fromNewest := follow(ctx, s, before[2].Pos)
	fromMiddle := follow(ctx, s, before[0].Pos)
	fromZero := follow(ctx, s, hub.Position{})
	after := appendN(t, s, "new", 5)

	check := func(name string, f *follower, want []*hub.Update) {
		got := f.next(t, len(want))
		if !slices.Equal(seqs(got), seqs(want)) || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("Follow %s: got %v; want %v", name, ids(got), ids(want))
		}
	}
	check("from the newest", fromNewest, after)
	check("from the middle", fromMiddle, append(before[1:3:3], after...))
	check("from zero", fromZero, append(before[:3:3], after...))
	cancel()
	for _, f := range []*follower{fromNewest, fromMiddle, fromZero} {
		if err := f.stop(t); !errors.Is(err, context.Canceled) {
			t.Errorf("Follow after cancel returned %v; want context.Canceled", err)
		}
	}
}

func testFollowCancel(t *testing.T, s hub.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	f := follow(ctx, s, hub.Position{})
	appendN(t, s, "x", 1)
	f.next(t, 1)
	cancel()
	if err := f.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("idle Follow after cancel returned %v; want context.Canceled", err)
	}
}

// testConcurrent appends from many goroutines while followers run and
// checks every acknowledged update is delivered exactly once, in seq order,
// and that each appender's own updates keep their order.
func testConcurrent(t *testing.T, s hub.Store) {
	const appenders, each = 16, 150
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	early := follow(ctx, s, hub.Position{})
	_, start := bounds(t, s)
	late := follow(ctx, s, start)

	var wg sync.WaitGroup
	acked := make([][]*hub.Update, appenders)
	errs := make(chan error, appenders)
	for g := range appenders {
		wg.Go(func() {
			for i := range each {
				u := upd(fmt.Sprintf("g%d-%d", g, i))
				if err := s.Append(context.Background(), u); err != nil {
					errs <- err
					return
				}
				acked[g] = append(acked[g], u)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append: %v", err)
	}
	seen := make(map[uint64]string)
	for g, us := range acked {
		for i, u := range us {
			if prev, dup := seen[u.Pos.Seq]; dup {
				t.Fatalf("seq %d assigned to both %q and %q", u.Pos.Seq, prev, u.ID)
			}
			seen[u.Pos.Seq] = u.ID
			if i > 0 && u.Pos.Seq <= us[i-1].Pos.Seq {
				t.Errorf("appender %d: seq %d after %d; want increasing", g, u.Pos.Seq, us[i-1].Pos.Seq)
			}
		}
	}
	const total = appenders * each
	for name, f := range map[string]*follower{"started before": early, "started at newest": late} {
		got := f.next(t, total)
		for i, u := range got {
			if i > 0 && u.Pos.Seq <= got[i-1].Pos.Seq {
				t.Fatalf("Follow %s: seq %d after %d; want increasing", name, u.Pos.Seq, got[i-1].Pos.Seq)
			}
			if seen[u.Pos.Seq] != u.ID {
				t.Fatalf("Follow %s: seq %d is %q; Append said %q", name, u.Pos.Seq, u.ID, seen[u.Pos.Seq])
			}
		}
	}
	read := readAll(t, s, hub.Position{})
	if len(read) != total {
		t.Fatalf("Read after concurrent appends: %d updates; want %d", len(read), total)
	}
	for i, u := range read {
		if seen[u.Pos.Seq] != u.ID || i > 0 && u.Pos.Seq <= read[i-1].Pos.Seq {
			t.Fatalf("Read after concurrent appends: update %d is %q at seq %d; want %q, increasing", i, u.ID, u.Pos.Seq, seen[u.Pos.Seq])
		}
	}
	cancel()
	early.stop(t)
	late.stop(t)
}

// testReentrant checks that Read and Follow call fn without holding
// anything that the store's other methods need.
func testReentrant(t *testing.T, s hub.Store) {
	appendN(t, s, "r", 3)
	ctx := context.Background()
	n := 0
	err := s.Read(ctx, hub.Position{}, func(u *hub.Update) bool {
		if _, err := s.Lookup(ctx, u.ID); err != nil {
			t.Errorf("Lookup inside Read: %v", err)
		}
		if _, _, err := s.Bounds(ctx); err != nil {
			t.Errorf("Bounds inside Read: %v", err)
		}
		if n++; n == 1 {
			if err := s.Append(ctx, upd("from-read")); err != nil {
				t.Errorf("Append inside Read: %v", err)
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan string, 8)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(fctx, hub.Position{}, func(u *hub.Update) {
			if err := s.Read(ctx, hub.Position{}, func(*hub.Update) bool { return false }); err != nil {
				t.Errorf("Read inside Follow: %v", err)
			}
			got <- u.ID
		})
	}()
	for range 4 {
		select {
		case <-got:
		case <-time.After(wait):
			t.Fatal("Follow calling Read stalled")
		}
	}
	cancel()
	<-done
}

func testClose(t *testing.T, s hub.Store) {
	us := appendN(t, s, "c", 2)
	ctx := context.Background()
	f := follow(ctx, s, us[1].Pos)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := f.stop(t); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("a running Follow returned %v on Close; want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v; want nil (idempotent)", err)
	}
	if err := s.Append(ctx, upd("late")); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("Append after Close: %v; want ErrClosed", err)
	}
	if _, err := s.Lookup(ctx, "c0"); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("Lookup after Close: %v; want ErrClosed", err)
	}
	if err := s.Read(ctx, hub.Position{}, func(*hub.Update) bool { return true }); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("Read after Close: %v; want ErrClosed", err)
	}
	if err := s.Follow(ctx, hub.Position{}, func(*hub.Update) {}); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("Follow after Close: %v; want ErrClosed", err)
	}
	if _, _, err := s.Bounds(ctx); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("Bounds after Close: %v; want ErrClosed", err)
	}
}

// The retention cases run against a store that keeps 5 updates.

func testRetentionDiscards(t *testing.T, s hub.Store) {
	us := appendN(t, s, "k", 12)
	kept := us[7:]
	if got := readAll(t, s, hub.Position{}); !slices.Equal(ids(got), ids(kept)) {
		t.Errorf("Read after 12 appends with room for 5: %v; want %v", ids(got), ids(kept))
	}
	oldest, newest := bounds(t, s)
	if oldest != kept[0].Pos || newest != kept[4].Pos {
		t.Errorf("Bounds = %v, %v; want %v, %v", oldest, newest, kept[0].Pos, kept[4].Pos)
	}
	if _, err := s.Lookup(context.Background(), "k0"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Lookup of a discarded update: %v; want ErrNotFound", err)
	}
	if pos, err := s.Lookup(context.Background(), "k7"); err != nil || pos != kept[0].Pos {
		t.Errorf("Lookup of the oldest retained = %v, %v; want %v", pos, err, kept[0].Pos)
	}
	// Reading after a discarded position starts at the oldest retained.
	if got := readAll(t, s, us[2].Pos); !slices.Equal(ids(got), ids(kept)) {
		t.Errorf("Read after a discarded position: %v; want %v", ids(got), ids(kept))
	}
}

func testRetentionDuplicate(t *testing.T, s hub.Store) {
	us := appendAll(t, s, upd("dup"), upd("a"), upd("dup"), upd("b"), upd("c"))
	appendN(t, s, "x", 1) // discards the first "dup"
	if pos, err := s.Lookup(context.Background(), "dup"); err != nil || pos != us[2].Pos {
		t.Errorf("Lookup of an ID whose earliest holder was discarded = %v, %v; want the retained one, %v", pos, err, us[2].Pos)
	}
}

func testRetentionFollow(t *testing.T, s hub.Store) {
	us := appendN(t, s, "f", 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := follow(ctx, s, us[1].Pos) // us[2:5] are gone
	got := f.next(t, 5)
	if !slices.Equal(ids(got), ids(us[5:])) {
		t.Errorf("Follow from a discarded position: %v; want the retained %v", ids(got), ids(us[5:]))
	}
	cancel()
	f.stop(t)
}

// TopicRetention describes a store with per-topic limits, for
// RunTopicRetention.
type TopicRetention struct {
	// New returns a new, empty, open store that applies limits to single
	// topics, reads the time from now, and has no global limit the suite
	// could reach (it appends a few dozen updates of at most a few
	// kilobytes, within a few hours of clock time).
	New func(t *testing.T, limits hub.TopicLimits, now func() time.Time) hub.Store
	// Skip maps the names of cases to the reason a store deviates from
	// them; those cases are skipped with that reason. Use it only for
	// known, documented bugs.
	Skip map[string]string
}

// topicStep appends one update, after advancing the clock by wait.
type topicStep struct {
	id     string
	topics []string
	size   int // bytes of data; 0 means a short text
	wait   time.Duration
}

// on is a step appending a small update with id on topics.
func on(id string, topics ...string) topicStep { return topicStep{id: id, topics: topics} }

// RunTopicRetention runs the cases of per-topic retention (see
// hub.TopicLimits): a topic with a rule keeps its own newest updates within
// the rule's limits, a topic without one keeps everything, and an update is
// retained while one of its topics retains it. After each case's appends it
// checks that Read from zero and from every appended position, Bounds and
// Lookup of every ID agree about the holes retention left. Age limits must
// be enforced at the latest when the next update is appended.
func RunTopicRetention(t *testing.T, r TopicRetention) {
	const kb = 1000
	cases := []struct {
		name  string
		rules map[string]hub.Limits
		steps []topicStep
		want  []string // retained IDs, in log order
	}{{
		name:  "CountKeepsNewestN",
		rules: map[string]hub.Limits{"a": {MaxUpdates: 2}},
		steps: []topicStep{on("a1", "a"), on("b1", "b"), on("a2", "a"), on("a3", "a"), on("b2", "b"), on("a4", "a")},
		want:  []string{"b1", "a3", "b2", "a4"},
	}, {
		name:  "EachMatchingTopicKeepsItsOwn",
		rules: map[string]hub.Limits{"a": {MaxUpdates: 1}, "c": {MaxUpdates: 1}},
		steps: []topicStep{on("a1", "a"), on("c1", "c"), on("a2", "a"), on("c2", "c"), on("b1", "b")},
		want:  []string{"a2", "c2", "b1"},
	}, {
		name:  "UnlimitedTopicKeepsSharedUpdate",
		rules: map[string]hub.Limits{"a": {MaxUpdates: 1}},
		steps: []topicStep{on("ab1", "a", "b"), on("a2", "a"), on("a3", "a")},
		want:  []string{"ab1", "a3"},
	}, {
		name:  "SharedUpdateGoesWithItsLastTopic",
		rules: map[string]hub.Limits{"a": {MaxUpdates: 1}, "b": {MaxUpdates: 2}},
		steps: []topicStep{on("ab1", "a", "b"), on("a2", "a"), on("b2", "b"), on("a3", "a"), on("b3", "b")},
		want:  []string{"b2", "a3", "b3"},
	}, {
		name:  "RepeatedTopicVotesOnce",
		rules: map[string]hub.Limits{"a": {MaxUpdates: 1}},
		steps: []topicStep{on("aa1", "a", "a"), on("a2", "a")},
		want:  []string{"a2"},
	}, {
		name:  "OnlyNewestOfTopic",
		rules: map[string]hub.Limits{"a": {MaxUpdates: 1}},
		steps: []topicStep{on("a1", "a"), on("a2", "a"), on("a3", "a"), on("a4", "a")},
		want:  []string{"a4"},
	}, {
		name:  "RuleWithoutLimitsKeepsAll",
		rules: map[string]hub.Limits{"a": {}},
		steps: []topicStep{on("a1", "a"), on("a2", "a")},
		want:  []string{"a1", "a2"},
	}, {
		name:  "Bytes",
		rules: map[string]hub.Limits{"a": {MaxBytes: 2500}},
		steps: []topicStep{
			{id: "a1", topics: []string{"a"}, size: kb}, {id: "a2", topics: []string{"a"}, size: kb},
			{id: "b1", topics: []string{"b"}, size: 3 * kb}, {id: "a3", topics: []string{"a"}, size: kb},
		},
		want: []string{"a2", "b1", "a3"},
	}, {
		name:  "BytesKeepsNewest",
		rules: map[string]hub.Limits{"a": {MaxBytes: 100}},
		steps: []topicStep{{id: "a1", topics: []string{"a"}, size: kb}, {id: "a2", topics: []string{"a"}, size: kb}},
		want:  []string{"a2"},
	}, {
		name:  "Age",
		rules: map[string]hub.Limits{"a": {MaxAge: time.Hour}},
		steps: []topicStep{
			on("a1", "a"), on("b1", "b"),
			{id: "a2", topics: []string{"a"}, wait: 30 * time.Minute},
			{id: "b2", topics: []string{"b"}, wait: 31 * time.Minute}, // a1 is 61 minutes old
		},
		want: []string{"b1", "a2", "b2"},
	}, {
		name:  "AgeAndCount",
		rules: map[string]hub.Limits{"a": {MaxUpdates: 2, MaxAge: time.Hour}},
		steps: []topicStep{
			on("a1", "a"), on("a2", "a"), on("a3", "a"),
			{id: "b1", topics: []string{"b"}, wait: 2 * time.Hour},
		},
		want: []string{"b1"},
	}, {
		name:  "LookupFindsLaterHolderOfEvictedID",
		rules: map[string]hub.Limits{"a": {MaxUpdates: 1}},
		steps: []topicStep{on("dup", "a"), on("x", "b"), on("dup", "b"), on("a2", "a")},
		want:  []string{"x", "dup", "a2"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if why, ok := r.Skip[c.name]; ok {
				t.Skip(why)
			}
			clk := newClock()
			limits := func(topic string) (hub.Limits, bool) {
				l, ok := c.rules[topic]
				return l, ok
			}
			s := r.New(t, limits, clk.Now)
			t.Cleanup(func() { _ = s.Close() })
			var all []*hub.Update
			for _, st := range c.steps {
				clk.Add(st.wait)
				data := "data of " + st.id
				if st.size > 0 {
					data = strings.Repeat("x", st.size)
				}
				all = append(all, appendAll(t, s, &hub.Update{ID: st.id, Topics: st.topics, Data: data})...)
			}
			checkRetained(t, s, all, c.want)
		})
	}
	t.Run("Random", func(t *testing.T) {
		if why, ok := r.Skip["Random"]; ok {
			t.Skip(why)
		}
		for seed := range uint64(3) {
			t.Run(fmt.Sprint(seed), func(t *testing.T) { testTopicRandom(t, r, seed) })
		}
	})
	t.Run("FollowSeesEvictedUpdates", func(t *testing.T) {
		if why, ok := r.Skip["FollowSeesEvictedUpdates"]; ok {
			t.Skip(why)
		}
		clk := newClock()
		s := r.New(t, func(string) (hub.Limits, bool) { return hub.Limits{MaxUpdates: 1}, true }, clk.Now)
		t.Cleanup(func() { _ = s.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := follow(ctx, s, hub.Position{})
		us := appendN(t, s, "f", 5)
		if got := f.next(t, 5); !slices.Equal(ids(got), ids(us)) {
			t.Errorf("Follow during appends to a topic keeping 1 update: %v; want every update, %v", ids(got), ids(us))
		}
		if got := readAll(t, s, hub.Position{}); !slices.Equal(ids(got), []string{"f4"}) {
			t.Errorf("Read after the appends: %v; want [f4]", ids(got))
		}
		cancel()
		f.stop(t)
	})
}

// checkRetained checks that exactly want, of the appended updates all, are
// retained, as Read, Bounds and Lookup see it.
func checkRetained(t *testing.T, s hub.Store, all []*hub.Update, want []string) {
	t.Helper()
	got := readAll(t, s, hub.Position{})
	if !slices.Equal(ids(got), want) {
		t.Fatalf("retained %v; want %v", ids(got), want)
	}
	if !slices.IsSortedFunc(got, func(a, b *hub.Update) int { return cmp.Compare(a.Pos.Seq, b.Pos.Seq) }) {
		t.Errorf("Read gave seqs %v; want increasing", seqs(got))
	}
	// The retained updates are the appended ones, with their positions.
	kept := make(map[uint64]bool)
	for _, u := range got {
		kept[u.Pos.Seq] = true
	}
	var retained []*hub.Update
	for _, u := range all {
		if kept[u.Pos.Seq] {
			retained = append(retained, u)
		}
	}
	if !slices.Equal(seqs(retained), seqs(got)) {
		t.Errorf("Read gave seqs %v; the retained appends have %v", seqs(got), seqs(retained))
	}
	oldest, newest := bounds(t, s)
	if len(retained) > 0 && (oldest != retained[0].Pos || newest != retained[len(retained)-1].Pos) {
		t.Errorf("Bounds = %v, %v; want %v, %v", oldest, newest, retained[0].Pos, retained[len(retained)-1].Pos)
	}
	// Reading after any appended position, retained or not, gives the
	// retained updates after it.
	for _, u := range all {
		var after []*hub.Update
		for _, r := range retained {
			if r.Pos.Seq > u.Pos.Seq {
				after = append(after, r)
			}
		}
		if got := readAll(t, s, u.Pos); !slices.Equal(seqs(got), seqs(after)) {
			t.Errorf("Read after %q (seq %d) gave %v; want %v", u.ID, u.Pos.Seq, ids(got), ids(after))
		}
	}
	// Lookup finds the earliest retained holder of each ID, and nothing for
	// an ID no retained update has.
	for _, u := range all {
		var want *hub.Update
		for _, r := range retained {
			if r.ID == u.ID {
				want = r
				break
			}
		}
		pos, err := s.Lookup(context.Background(), u.ID)
		switch {
		case want == nil && !errors.Is(err, hub.ErrNotFound):
			t.Errorf("Lookup(%q) of a discarded update = %v, %v; want ErrNotFound", u.ID, pos, err)
		case want != nil && (err != nil || pos != want.Pos):
			t.Errorf("Lookup(%q) = %v, %v; want %v", u.ID, pos, err, want.Pos)
		}
	}
}

// clock is a settable time source for age limits.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testTopicRandom appends random updates to topics with different rules
// and compares what is retained with what the rules say, computed from the
// whole history at once: an update is retained when one of its topics has
// no limit, or it is among the newest of one of its topics within that
// topic's count and byte limits and not older than its age limit.
func testTopicRandom(t *testing.T, r TopicRetention, seed uint64) {
	rules := map[string]hub.Limits{
		"count": {MaxUpdates: 3},
		"bytes": {MaxBytes: 3500},
		"age":   {MaxAge: time.Hour},
		"mixed": {MaxUpdates: 4, MaxBytes: 2500, MaxAge: 90 * time.Minute},
		"none":  {},
	}
	topics := []string{"count", "bytes", "age", "mixed", "none", "free"} // free has no rule
	rnd := rand.New(rand.NewPCG(seed, 42))
	clk := newClock()
	s := r.New(t, func(topic string) (hub.Limits, bool) {
		l, ok := rules[topic]
		return l, ok
	}, clk.Now)
	t.Cleanup(func() { _ = s.Close() })
	var all []*hub.Update
	for i := range 120 {
		clk.Add(time.Duration(rnd.IntN(10)) * time.Minute)
		var ts []string
		for range 1 + rnd.IntN(3) {
			if rnd.IntN(8) > 0 { // mostly limited topics
				ts = append(ts, topics[rnd.IntN(4)])
			} else {
				ts = append(ts, topics[4+rnd.IntN(2)])
			}
		}
		u := &hub.Update{ID: fmt.Sprint("u", i), Topics: ts, Data: strings.Repeat("x", 1000*(1+rnd.IntN(2)))}
		if rnd.IntN(10) == 0 {
			u.ID = fmt.Sprint("u", rnd.IntN(i+1)) // a reused ID
		}
		all = append(all, appendAll(t, s, u)...)
	}
	// The model: a topic's queue is the longest suffix of its updates
	// within its count and byte limits (at least its newest), less those
	// past its age limit. Stores count a few dozen bytes more than the
	// data of each update; data sizes are multiples of 1000 and byte
	// limits halfway between, so that this does not matter.
	now := clk.Now()
	size := func(u *hub.Update) int64 { return int64(len(u.Data)) }
	keep := make(map[*hub.Update]bool)
	for _, topic := range topics {
		var of []*hub.Update
		for _, u := range all {
			if slices.Contains(u.Topics, topic) {
				of = append(of, u)
			}
		}
		l, ok := rules[topic]
		if !ok || l == (hub.Limits{}) {
			for _, u := range of {
				keep[u] = true
			}
			continue
		}
		var bytes int64
		for k := len(of) - 1; k >= 0; k-- {
			u, n := of[k], len(of)-k
			bytes += size(u)
			if n > 1 && (l.MaxUpdates > 0 && n > l.MaxUpdates || l.MaxBytes > 0 && bytes > l.MaxBytes) {
				break
			}
			if l.MaxAge == 0 || now.Sub(u.Time) <= l.MaxAge {
				keep[u] = true
			}
		}
	}
	var want []string
	for _, u := range all {
		if keep[u] {
			want = append(want, u.ID)
		}
	}
	checkRetained(t, s, all, want)
}
