package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
)

// TestDiskFull fills a 2 MiB tmpfs: the appends that do not fit fail with
// ENOSPC, advance nothing and reach no follower; once space is freed the
// store appends again, and after a reopen the history is exactly what was
// acknowledged.
func TestDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("skipping: mounting a 2 MiB tmpfs on %s is not permitted here (%v); run as root to test disk-full handling", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "data")
	cfg := boltstore.Config{SegmentSize: 64 << 10}
	s, err := boltstore.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	delivered := make(chan *hub.Update, 1<<12)
	followDone := make(chan error, 1)
	go func() { followDone <- s.Follow(ctx, hub.Position{}, func(u *hub.Update) { delivered <- u }) }()

	data := strings.Repeat("0123456789abcdef", 256) // 4 KiB
	var acked []*hub.Update
	var full error
	for i := range 1000 {
		u := upd(fmt.Sprint("u", i))
		u.Data = data
		if err := s.Append(context.Background(), u); err != nil {
			full = err
			break
		}
		acked = append(acked, u)
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("filling the disk: got %v after %d appends; want an error wrapping ENOSPC", full, len(acked))
	}
	t.Logf("disk full after %d appends: %v", len(acked), full)
	_, newest, err := s.Bounds(context.Background())
	if err != nil || newest != acked[len(acked)-1].Pos {
		t.Fatalf("Bounds after the failure: newest %v, %v; want %v (not advanced)", newest, err, acked[len(acked)-1].Pos)
	}
	u := upd("still-full")
	u.Data = data
	if err := s.Append(context.Background(), u); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second Append on a full disk: %v; want ENOSPC", err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	after := mustAppend(t, s, upd("after"))
	if want := acked[len(acked)-1].Pos.Seq + 1; after.Pos.Seq != want {
		t.Errorf("first append after freeing space got seq %d; want %d (failed appends take no seq)", after.Pos.Seq, want)
	}
	acked = append(acked, after)
	for i, want := range acked {
		got := <-delivered
		if got.Pos != want.Pos || got.ID != want.ID {
			t.Fatalf("follower got %q at %v as update %d; want %q at %v", got.ID, got.Pos, i, want.ID, want.Pos)
		}
	}
	cancel()
	<-followDone
	if len(delivered) > 0 {
		t.Errorf("follower got %q, which was never acknowledged", (<-delivered).ID)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, cfg)
	var i int
	err = s.Read(context.Background(), hub.Position{}, func(u *hub.Update) bool {
		if i >= len(acked) || u.ID != acked[i].ID || u.Pos != acked[i].Pos || u.Data != acked[i].Data {
			t.Errorf("after reopen, update %d is %q at %v; want %q at %v", i, u.ID, u.Pos, acked[min(i, len(acked)-1)].ID, acked[min(i, len(acked)-1)].Pos)
			return false
		}
		i++
		return true
	})
	if err != nil || i != len(acked) {
		t.Errorf("after reopen: read %d updates, err %v; want the %d acknowledged", i, err, len(acked))
	}
}
