package boltstore_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
)

// TestTailIsBoundedByBytes publishes large updates through a hub until far
// past the store's in-memory tail budget, and checks the heap after a
// collection: the tail keeps what its byte budget allows, not TailSize
// updates whatever their size, each held twice (its data and the frame
// the dispatcher encoded). It is a memory bound derived from the budget,
// with generous slack, not a timing threshold. It does not run in
// parallel, so that other tests' allocations do not count.
func TestTailIsBoundedByBytes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tailBytes int64 // Config.TailBytes
		budget    int64 // what the tail may hold
		payload   int
		n         int
	}{
		{"4 MiB budget, 256 KiB updates", 4 << 20, 4 << 20, 256 << 10, 200},
		{"1 MiB budget, 1 MiB updates", 1 << 20, 1 << 20, 1 << 20, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, t.TempDir(), boltstore.Config{TailBytes: tc.tailBytes})
			h, err := hub.New(hub.Config{Store: s})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(ctx)
			base := heapAfterGC()
			for i := range tc.n {
				data := strings.Repeat(fmt.Sprint(i%10), tc.payload)
				if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"t"}, Data: data}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the dispatcher to reach the last update", func() bool { return h.Stats().Dispatched == uint64(tc.n) })
			heap := heapAfterGC()
			// The tail's budget; the log's updates not yet in bbolt (a
			// segment's worth of records, 4 MiB, plus the one that
			// crossed it), which the tail keeps whatever its budget, each
			// held three times (data, frame, record); and slack.
			bound := base + uint64(tc.budget) + 3*(4<<20+uint64(tc.payload)) + 8<<20
			held := uint64(2 * tc.n * tc.payload)
			t.Logf("heap %d MiB after publishing %d MiB (held twice: %d MiB); bound %d MiB",
				heap>>20, tc.n*tc.payload>>20, held>>20, bound>>20)
			if heap > bound {
				t.Fatalf("heap after GC is %d MiB, more than the %d MiB the tail's budget allows", heap>>20, bound>>20)
			}
		})
	}
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// waitFor polls cond until it holds, failing after a minute (a hang
// detector, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConformanceTinyTailBytes runs the suite with a tail budget of one
// byte: every update bbolt holds is dropped from memory at once, so that
// Follow reads from disk whenever the tail's byte budget, not its count,
// binds.
func TestConformanceTinyTailBytes(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hub.Store {
		return open(t, t.TempDir(), boltstore.Config{TailBytes: 1, MaxBatch: 3})
	})
}

// TestRelearnedKeysDoNotPinRecords restarts a hub over a store whose
// recent updates are large and carry idempotency keys: the hub relearns
// the keys from the store at start, and the key and ID it remembers must
// not keep the whole decoded record (whose strings share one copy) alive.
func TestRelearnedKeysDoNotPinRecords(t *testing.T) {
	const n, payload = 40, 1 << 20
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, boltstore.Config{})
	h, err := hub.New(hub.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		u := &hub.Update{Topics: []string{"t"}, Data: strings.Repeat("x", payload), IdempotencyKey: fmt.Sprint("key-", i)}
		if _, err := h.Publish(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	base := heapAfterGC()
	s = open(t, dir, boltstore.Config{})
	h, err = hub.New(hub.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	// The keys were relearned: a retry returns the first publish's ID
	// without appending.
	if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"t"}, Data: "retry", IdempotencyKey: "key-0"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Size(); got != n {
		t.Fatalf("the store holds %d updates after a retried publish, want %d: the keys were not relearned", got, n)
	}
	heap := heapAfterGC()
	bound := base + 8<<20
	t.Logf("heap %d MiB after a restart over %d MiB of keyed updates; bound %d MiB", heap>>20, n*payload>>20, bound>>20)
	if heap > bound {
		t.Fatalf("heap after GC is %d MiB, more than %d MiB: the relearned keys keep their records", heap>>20, bound>>20)
	}
}

// TestLargeFramesAreNotKept appends large updates concurrently, so that
// the writer logs frames of many megabytes, then small ones, and checks
// the heap after a collection: the log writer's frame buffers do not keep
// the size of the largest frame ever written.
func TestLargeFramesAreNotKept(t *testing.T) {
	const appenders, rounds, payload = 16, 4, 1 << 20
	ctx := context.Background()
	s := open(t, t.TempDir(), boltstore.Config{TailBytes: 1 << 20})
	base := heapAfterGC()
	var wg sync.WaitGroup
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := s.Append(ctx, &hub.Update{Topics: []string{"t"}, Data: strings.Repeat("x", payload)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Small appends: the tail drops what bbolt holds by now.
	for range 8 {
		mustAppend(t, s, upd(""))
	}
	s.Size() // waits until bbolt holds every update
	heap := heapAfterGC()
	bound := base + 1<<20 + 8<<20
	t.Logf("%d appends of %d MiB; heap %d MiB, bound %d MiB", appenders*rounds, payload>>20, heap>>20, bound>>20)
	if heap > bound {
		t.Fatalf("heap after GC is %d MiB, more than %d MiB: the log keeps large frames' buffers", heap>>20, bound>>20)
	}
}

// TestReadBatchBoundedByBytes reads large updates back and checks the
// live heap while the reader sees each one: Read decodes history in
// batches, and a batch is bounded by bytes, not only by count (up to 1024
// updates, whatever their size).
func TestReadBatchBoundedByBytes(t *testing.T) {
	const n, payload = 120, 256 << 10
	ctx := context.Background()
	// A one-byte tail: every read decodes from bbolt.
	s := open(t, t.TempDir(), boltstore.Config{TailBytes: 1})
	for i := range n {
		mustAppend(t, s, &hub.Update{ID: fmt.Sprint(i), Topics: []string{"t"}, Data: strings.Repeat("x", payload)})
	}
	s.Size() // waits until bbolt holds every update
	base := heapAfterGC()
	var peak uint64
	read := 0
	err := s.Read(ctx, hub.Position{}, func(u *hub.Update) bool {
		peak = max(peak, heapAfterGC())
		read++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if read != n {
		t.Fatalf("read %d updates, want %d", read, n)
	}
	bound := base + 8<<20
	t.Logf("peak heap %d MiB while reading %d updates of %d KiB; bound %d MiB", peak>>20, n, payload>>10, bound>>20)
	if peak > bound {
		t.Fatalf("the heap reached %d MiB while reading, more than %d MiB: a batch holds too many large updates", peak>>20, bound>>20)
	}
}

// TestReadRecentFromTail checks that Read serves recent history from the
// tail, the updates Append was given, shared by every reader rather than
// decoded for each, and from bbolt when the tail does not hold it or
// per-topic limits may have deleted what it holds.
func TestReadRecentFromTail(t *testing.T) {
	t.Parallel()
	keepAll := hub.TopicLimits(func(string) (hub.Limits, bool) { return hub.Limits{}, false })
	for _, tc := range []struct {
		name   string
		cfg    boltstore.Config
		shared bool
	}{
		{"recent", boltstore.Config{}, true},
		{"beyond the tail", boltstore.Config{TailBytes: 1}, false},
		{"per-topic limits", boltstore.Config{TopicLimits: keepAll}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t, t.TempDir(), tc.cfg)
			var appended []*hub.Update
			for i := range 5 {
				appended = append(appended, mustAppend(t, s, upd(fmt.Sprint("id-", i))))
			}
			// Once bbolt holds them, the next append trims the tail to
			// its budget.
			s.Size()
			mustAppend(t, s, upd("one more"))
			var got []*hub.Update
			if err := s.Read(context.Background(), hub.Position{}, func(u *hub.Update) bool {
				got = append(got, u)
				return len(got) < len(appended)
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(appended) {
				t.Fatalf("read %d updates, want %d", len(got), len(appended))
			}
			for i, u := range got {
				if u.ID != appended[i].ID || u.Pos != appended[i].Pos || u.Data != appended[i].Data {
					t.Fatalf("update %d is %s at %v, want %s at %v", i, u.ID, u.Pos, appended[i].ID, appended[i].Pos)
				}
				if shared := u == appended[i]; shared != tc.shared {
					t.Errorf("update %d: shared with the appended one: %v, want %v", i, shared, tc.shared)
				}
			}
		})
	}
}
