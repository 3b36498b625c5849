package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t testing.TB, dir string, cfg boltstore.Config) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hub.Store { return open(t, t.TempDir(), boltstore.Config{}) })
	storetest.RunRetention(t, storetest.Retention{
		New: func(t *testing.T, n int) hub.Store {
			return open(t, t.TempDir(), boltstore.Config{MaxUpdates: n})
		},
	})
	storetest.RunTopicRetention(t, storetest.TopicRetention{
		New: func(t *testing.T, limits hub.TopicLimits, now func() time.Time) hub.Store {
			return open(t, t.TempDir(), boltstore.Config{TopicLimits: limits, Now: now})
		},
	})
}

// TestConformanceSmallTail runs the suite with a tail of one update, so
// that Follow mostly reads from disk.
func TestConformanceSmallTail(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hub.Store {
		return open(t, t.TempDir(), boltstore.Config{TailSize: 1, MaxBatch: 3})
	})
}

func upd(id string) *hub.Update {
	return &hub.Update{ID: id, Topics: []string{"https://example.com/t"}, Data: "data of " + id, Time: time.Now()}
}

func mustAppend(t testing.TB, s hub.Store, u *hub.Update) *hub.Update {
	t.Helper()
	if err := s.Append(context.Background(), u); err != nil {
		t.Fatalf("Append(%q): %v", u.ID, err)
	}
	return u
}

func readIDs(t testing.TB, s hub.Store, after hub.Position) []string {
	t.Helper()
	var ids []string
	if err := s.Read(context.Background(), after, func(u *hub.Update) bool {
		ids = append(ids, u.ID)
		return true
	}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return ids
}

func TestReopenKeepsEpochPositionsAndIDs(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, boltstore.Config{})
	a, b := mustAppend(t, s, upd("a")), mustAppend(t, s, upd("b"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, boltstore.Config{})
	oldest, newest, err := s.Bounds(context.Background())
	if err != nil || oldest != a.Pos || newest != b.Pos {
		t.Fatalf("Bounds after reopen = %v, %v, %v; want %v, %v", oldest, newest, err, a.Pos, b.Pos)
	}
	if pos, err := s.Lookup(context.Background(), "b"); err != nil || pos != b.Pos {
		t.Errorf("Lookup after reopen = %v, %v; want %v", pos, err, b.Pos)
	}
	// A client that saw "a" before the restart resumes from its position.
	if got := readIDs(t, s, a.Pos); strings.Join(got, ",") != "b" {
		t.Errorf("Read after a pre-restart position = %v; want [b]", got)
	}
	c := mustAppend(t, s, upd("c"))
	if c.Pos.Seq != b.Pos.Seq+1 || c.Pos.Epoch != a.Pos.Epoch {
		t.Errorf("first append after reopen at %v; want seq %d in epoch %s", c.Pos, b.Pos.Seq+1, a.Pos.Epoch)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, boltstore.Config{})
	// flock locks belong to the open file, so a second Open in this process
	// is refused like one in another process.
	_, err := boltstore.Open(dir, boltstore.Config{LockTimeout: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "data directory "+dir+" is in use by another ssehub process") {
		t.Fatalf("second Open: %v; want the in-use error naming %s", err, dir)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	dir := t.TempDir() + "/a/b"
	s := open(t, dir, boltstore.Config{})
	mustAppend(t, s, upd("x"))
	if s.Dir() != dir {
		t.Errorf("Dir() = %q; want %q", s.Dir(), dir)
	}
}

// clock is an injectable Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRetentionByAge(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := open(t, t.TempDir(), boltstore.Config{MaxAge: time.Hour, Now: clk.Now})
	stamp := func(id string) *hub.Update {
		u := upd(id)
		u.Time = time.Time{} // stamped by the store with clk
		return mustAppend(t, s, u)
	}
	stamp("old1")
	stamp("old2")
	clk.Add(50 * time.Minute)
	keep := stamp("young")
	clk.Add(11 * time.Minute) // old ones are 61 minutes old, young 11
	last := stamp("new")
	if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != "young,new" {
		t.Errorf("retained after an hour = %s; want young,new", got)
	}
	oldest, newest, _ := s.Bounds(context.Background())
	if oldest != keep.Pos || newest != last.Pos {
		t.Errorf("Bounds = %v, %v; want %v, %v", oldest, newest, keep.Pos, last.Pos)
	}
	if _, err := s.Lookup(context.Background(), "old1"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Lookup of an expired update: %v; want ErrNotFound", err)
	}
}

func TestRetentionByBytes(t *testing.T) {
	s := open(t, t.TempDir(), boltstore.Config{MaxBytes: 2500})
	big := strings.Repeat("x", 1000)
	for i := range 5 {
		u := upd(fmt.Sprint(i))
		u.Data = big
		mustAppend(t, s, u)
	}
	if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != "3,4" {
		t.Errorf("retained under 2500 bytes = %s; want 3,4", got)
	}
	// The newest update is kept even when it alone exceeds the limit.
	huge := upd("huge")
	huge.Data = strings.Repeat("y", 5000)
	mustAppend(t, s, huge)
	if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != "huge" {
		t.Errorf("retained after a huge update = %s; want huge", got)
	}
	// The byte count survives a reopen.
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, boltstore.Config{MaxBytes: 2500})
	u := upd("small")
	mustAppend(t, s, u)
	if got := strings.Join(readIDs(t, s, hub.Position{}), ","); got != "small" {
		t.Errorf("retained after reopen and a small update = %s; want small", got)
	}
}

// TestRetentionCatchesUpGradually lowers the count limit below what is
// stored; each commit deletes a bounded number until the limit holds.
func TestRetentionCatchesUpGradually(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, boltstore.Config{})
	for i := range 3000 {
		mustAppend(t, s, upd(fmt.Sprint(i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, boltstore.Config{MaxUpdates: 10})
	var last *hub.Update
	for i := 0; ; i++ {
		last = mustAppend(t, s, upd(fmt.Sprint("n", i)))
		oldest, _, _ := s.Bounds(context.Background())
		if last.Pos.Seq-oldest.Seq+1 == 10 {
			break
		}
		if i > 10 {
			t.Fatalf("after %d appends %d updates are retained; want 10", i+1, last.Pos.Seq-oldest.Seq+1)
		}
	}
	if got := readIDs(t, s, hub.Position{}); len(got) != 10 || got[9] != last.ID {
		t.Errorf("retained = %v; want the 10 newest", got)
	}
}

// TestReopenAfterConcurrentAppends is the in-process stand-in for a crash
// test: every acknowledged append is present after reopening, once, in the
// order of its position.
func TestReopenAfterConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, boltstore.Config{})
	const appenders, each = 8, 250
	var mu sync.Mutex
	acked := make(map[uint64]string)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for g := range appenders {
		wg.Go(func() {
			for i := range each {
				u := upd(fmt.Sprintf("g%d-%d", g, i))
				actx := context.Background()
				if g == 0 && i == each/2 {
					actx = ctx // one append may be canceled: either outcome is fine
				}
				if err := s.Append(actx, u); err != nil {
					continue
				}
				mu.Lock()
				acked[u.Pos.Seq] = u.ID
				mu.Unlock()
			}
		})
	}
	cancel()
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, boltstore.Config{})
	seen := make(map[string]bool)
	var prev uint64
	err := s.Read(context.Background(), hub.Position{}, func(u *hub.Update) bool {
		if u.Pos.Seq <= prev {
			t.Fatalf("seq %d after %d", u.Pos.Seq, prev)
		}
		prev = u.Pos.Seq
		if seen[u.ID] {
			t.Fatalf("%q read twice", u.ID)
		}
		seen[u.ID] = true
		if want, ok := acked[u.Pos.Seq]; ok && want != u.ID {
			t.Fatalf("seq %d is %q; Append acknowledged %q there", u.Pos.Seq, u.ID, want)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for seq, id := range acked {
		if !seen[id] {
			t.Errorf("acknowledged %q (seq %d) is missing after reopen", id, seq)
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("%d updates after reopen; %d were acknowledged", len(seen), len(acked))
	}
}

// TestCloseDuringAppends closes the store while appenders run: each Append
// either succeeds (and its update survives a reopen) or fails with
// ErrClosed.
func TestCloseDuringAppends(t *testing.T) {
	dir := t.TempDir()
	s, err := boltstore.Open(dir, boltstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	started := make(chan struct{}, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				u := upd(fmt.Sprintf("g%d-%d", g, i))
				err := s.Append(context.Background(), u)
				if i == 1 {
					started <- struct{}{}
				}
				if errors.Is(err, hub.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v; want nil or ErrClosed", err)
					return
				}
				mu.Lock()
				acked = append(acked, u.ID)
				mu.Unlock()
			}
		})
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = open(t, dir, boltstore.Config{})
	have := make(map[string]bool)
	for _, id := range readIDs(t, s, hub.Position{}) {
		have[id] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Errorf("acknowledged %q missing after reopen", id)
		}
	}
}
