package boltstore

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/hub"
)

// TestReadDecodesLittleAhead: a reader that takes one large update and
// stops (as a replay does at the end of each of its batches) makes Read
// decode about that update, not a batch of 16 of them. Not parallel, so
// that nothing else allocates while it measures.
func TestReadDecodesLittleAhead(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const size = 512 << 10
	data := strings.Repeat("x", size)
	for range 20 {
		if err := s.Append(ctx, &hub.Update{Topics: []string{"t"}, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	// Once, so that the applier has caught up and the read is from disk.
	if err := s.Read(ctx, hub.Position{}, func(*hub.Update) bool { return false }); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	err = s.Read(ctx, hub.Position{}, func(u *hub.Update) bool {
		n++
		return false
	})
	runtime.ReadMemStats(&after)
	if err != nil || n != 1 {
		t.Fatalf("Read: %d updates, %v", n, err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4*size {
		t.Errorf("taking one %d KiB update allocated %d KiB: Read decoded ahead", size>>10, got>>10)
	}
}
