package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub/hub"
)

// BenchmarkOpenCheck measures what checkFile costs at Open for a store of
// BOLTSTORE_CHECK_UPDATES updates (default 100,000) of about 250 bytes,
// against bbolt.Open, which walks the same pages to rebuild its freelist.
// The file is in the page cache (it was just written).
func BenchmarkOpenCheck(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("BOLTSTORE_CHECK_UPDATES")); err == nil {
		n = v
	}
	dir := b.TempDir()
	s, err := Open(dir, Config{MaxAge: -1, MaxUpdates: -1, MaxBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	data := strings.Repeat("d", 200)
	for g := range 32 {
		wg.Go(func() {
			for i := g; i < n; i += 32 {
				if err := s.Append(context.Background(), &hub.Update{ID: fmt.Sprint("id-", i), Topics: []string{"t"}, Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	fi, _ := os.Stat(path)
	b.Logf("%d updates, data.db %d MiB", n, fi.Size()>>20)
	b.Run("checkFile", func(b *testing.B) {
		for b.Loop() {
			if k, err := checkFile(path); err != nil || k != uint64(n) {
				b.Fatalf("checkFile = %d, %v", k, err)
			}
		}
	})
	b.Run("bbolt.Open", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
			if err != nil {
				b.Fatal(err)
			}
			_ = db.Close()
		}
	})
}
