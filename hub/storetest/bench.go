package storetest

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// BenchUpdate returns a typical update for store benchmarks: a UUID ID,
// one URL topic and a 100-byte payload of base64-like text.
func BenchUpdate() *hub.Update {
	var b [100]byte
	_, _ = rand.Read(b[:])
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range b {
		b[i] = alphabet[b[i]%64]
	}
	return &hub.Update{ID: hub.NewID(), Topics: []string{"https://example.com/books/12345"}, Data: string(b[:]), Time: time.Now()}
}

// AppendConcurrently appends n BenchUpdates to s from the given number of
// goroutines, each waiting for its Append before the next.
func AppendConcurrently(tb testing.TB, s hub.Store, appenders, n int) {
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range appenders {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := s.Append(context.Background(), BenchUpdate()); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
