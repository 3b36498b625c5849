package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/metrics"
)

// failingStore is a memory store with a data directory whose appends fail
// with err while it is set.
type failingStore struct {
	*hub.MemoryStore
	err error
}

func (f *failingStore) Append(ctx context.Context, u *hub.Update) error {
	if f.err != nil {
		return f.err
	}
	return f.MemoryStore.Append(ctx, u)
}

func (f *failingStore) Dir() string { return "/data" }

// TestDiskWatch steps a diskWatch through appends and free-space readings:
// an append refused for lack of space (ENOSPC or EDQUOT, however wrapped)
// makes it report no space until an append succeeds or need bytes are
// free; other failures say nothing about the disk.
func TestDiskWatch(t *testing.T) {
	t.Parallel()
	enospc := fmt.Errorf("boltstore: appending to /data: %w", &os.PathError{Op: "write", Path: "/data/wal/1", Err: syscall.ENOSPC})
	type step struct {
		appendErr error  // the store's answer to one append; nil: success
		free      uint64 // free bytes /readyz then sees
		unknown   bool   // the free space cannot be read
		want      bool   // noSpace
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"healthy", []step{{nil, 0, false, false}}},
		{"disk full, then an append succeeds", []step{{enospc, 0, false, true}, {nil, 0, false, false}}},
		{"disk full, then space is freed", []step{{enospc, 1 << 20, false, true}, {enospc, 4 << 20, false, false}}},
		{"freed space is short of a segment", []step{{enospc, 4<<20 - 1, false, true}}},
		{"full again after a recovery", []step{{enospc, 8 << 20, false, false}, {enospc, 0, false, true}}},
		{"quota exceeded", []step{{fmt.Errorf("x: %w", syscall.EDQUOT), 0, false, true}}},
		{"free space unknown: until an append succeeds", []step{{enospc, 0, true, true}, {nil, 0, true, false}}},
		{"other failures say nothing about the disk", []step{{errors.New("boltstore: closed"), 0, false, false}, {context.DeadlineExceeded, 0, false, false}, {syscall.EIO, 0, false, false}}},
		{"an invalid update leaves a full disk full", []step{{enospc, 0, false, true}, {hub.ErrInvalidUpdate, 0, false, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := &failingStore{MemoryStore: hub.NewMemoryStore(hub.MemoryConfig{})}
			d := watchDisk(fs, 4<<20)
			var free uint64
			var unknown bool
			d.free = func(dir string) (uint64, bool) {
				if dir != "/data" {
					t.Errorf("free space asked of %q", dir)
				}
				return free, !unknown
			}
			for i, s := range tc.steps {
				fs.err = s.appendErr
				err := d.Append(context.Background(), &hub.Update{Topics: []string{"t"}})
				if !errors.Is(err, s.appendErr) || (s.appendErr == nil) != (err == nil) {
					t.Fatalf("step %d: Append = %v; want the store's %v", i, err, s.appendErr)
				}
				free, unknown = s.free, s.unknown
				if got := d.noSpace(); got != s.want {
					t.Fatalf("step %d: noSpace = %v; want %v", i, got, s.want)
				}
			}
		})
	}
}

// TestReadyzReportsAFullDisk checks /readyz over a watched store: 503
// "store is out of disk space" while appends are refused for lack of
// space, 200 once space is back.
func TestReadyzReportsAFullDisk(t *testing.T) {
	t.Parallel()
	fs := &failingStore{MemoryStore: hub.NewMemoryStore(hub.MemoryConfig{})}
	d := watchDisk(fs, 4<<20)
	var free uint64
	d.free = func(string) (uint64, bool) { return free, true }
	h, err := hub.New(hub.Config{Store: d})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	s := &Server{hub: h, disk: d}
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		s.ready(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := readyz(); code != 200 || body != "ready\n" {
		t.Fatalf("before: %d %q", code, body)
	}
	fs.err = syscall.ENOSPC
	if _, err := h.Publish(context.Background(), &hub.Update{Topics: []string{"t"}}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("publish on a full disk: %v", err)
	}
	if code, body := readyz(); code != 503 || body != "store is out of disk space\n" {
		t.Fatalf("disk full: %d %q; want 503 naming the full disk", code, body)
	}
	free = 64 << 20
	if code, body := readyz(); code != 200 {
		t.Fatalf("space freed: %d %q; want ready", code, body)
	}
}

// TestBoltStoreIsWatched checks the wiring: the embedded store is watched,
// and the web UI still finds the store's directory through the hub's
// store; the memory store is not watched.
func TestBoltStoreIsWatched(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := start(t, Config{DataDir: dir})
	if s.disk == nil {
		t.Fatal("the bolt store is not watched")
	}
	st := s.Hub().Store()
	if d, ok := st.(interface{ Dir() string }); !ok || d.Dir() != dir {
		t.Errorf("the hub's store has no Dir, or another: %T", st)
	}
	var _ metrics.StoreSizer = s.disk // the metrics read the store's size
	if m := start(t, Config{Engine: "memory"}); m.disk != nil {
		t.Error("the memory store is watched")
	}
}
