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
// goroutines, each waiting for its Append before the next, and returns how
// long the appending took. The updates are made before it starts (with a
// benchmark's timer stopped), so that it measures the store, not the
// making of random test data.
func AppendConcurrently(tb testing.TB, s hub.Store, appenders, n int) time.Duration {
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
		defer b.StartTimer()
	}
	us := make([]*hub.Update, n)
	for i := range us {
		us[i] = BenchUpdate()
	}
	if b, ok := tb.(*testing.B); ok {
		b.StartTimer()
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range appenders {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if err := s.Append(context.Background(), us[i]); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
