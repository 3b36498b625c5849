package boltstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
)

// benchUpdate is a typical update: a UUID ID, one URL topic and a 100-byte
// payload of base64-like text.
func benchUpdate() *hub.Update {
	var b [100]byte
	_, _ = rand.Read(b[:])
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range b {
		b[i] = alphabet[b[i]%64]
	}
	return &hub.Update{ID: hub.NewID(), Topics: []string{"https://example.com/books/12345"}, Data: string(b[:]), Time: time.Now()}
}

// appendConcurrently appends n updates from the given number of
// goroutines, each waiting for its Append before the next.
func appendConcurrently(tb testing.TB, s hub.Store, appenders, n int) {
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range appenders {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := s.Append(context.Background(), benchUpdate()); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func dirSize(tb testing.TB, dir string) int64 {
	fi, err := os.Stat(filepath.Join(dir, boltstore.FileName))
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// BenchmarkAppend measures durable appends (fsync on) through the Store
// API with 1, 32 and 256 concurrent appenders, and the file size per event.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 32, 256} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			dir := b.TempDir()
			s := open(b, dir, boltstore.Config{})
			b.ResetTimer()
			start := time.Now()
			appendConcurrently(b, s, appenders, b.N)
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "appends/s")
			b.ReportMetric(float64(dirSize(b, dir))/float64(b.N), "file-bytes/event")
		})
	}
}

// BenchmarkRead measures replaying 100,000 retained events from disk.
func BenchmarkRead(b *testing.B) {
	const events = 100_000
	dir := b.TempDir()
	s := open(b, dir, boltstore.Config{})
	appendConcurrently(b, s, 1024, events)
	b.Logf("%d events in %d file bytes: %.1f bytes/event", events, dirSize(b, dir), float64(dirSize(b, dir))/events)
	b.ResetTimer()
	for range b.N {
		n := 0
		if err := s.Read(context.Background(), hub.Position{}, func(*hub.Update) bool { n++; return true }); err != nil {
			b.Fatal(err)
		}
		if n != events {
			b.Fatalf("read %d events; want %d", n, events)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}

// BenchmarkLookup measures resolving a known ID and an unknown (forged) one
// in a history of 100,000 events: both are one index seek.
func BenchmarkLookup(b *testing.B) {
	const events = 100_000
	s := open(b, b.TempDir(), boltstore.Config{})
	appendConcurrently(b, s, 1024, events-1)
	known := benchUpdate()
	mustAppend(b, s, known)
	for _, c := range []struct{ name, id string }{
		{"known", known.ID},
		{"unknown", hub.NewID()},
		{"forged-long", strings.Repeat("forged", 1000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				_, _ = s.Lookup(context.Background(), c.id)
			}
		})
	}
}

// BenchmarkAppendTopicLimited measures durable appends with 32 appenders
// to one topic that keeps its newest 100 updates, so that nearly every
// append also deletes one (the steady state of per-topic retention),
// against the same topic without a limit.
func BenchmarkAppendTopicLimited(b *testing.B) {
	for _, c := range []struct {
		name   string
		limits hub.TopicLimits
	}{
		{"unlimited", nil},
		{"keep=100", func(string) (hub.Limits, bool) { return hub.Limits{MaxUpdates: 100}, true }},
		{"keep=100,age=1h", func(string) (hub.Limits, bool) { return hub.Limits{MaxUpdates: 100, MaxAge: time.Hour}, true }},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			s := open(b, dir, boltstore.Config{TopicLimits: c.limits})
			appendConcurrently(b, s, 32, 1000) // past the limit
			b.ResetTimer()
			start := time.Now()
			appendConcurrently(b, s, 32, b.N)
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "appends/s")
		})
	}
}
