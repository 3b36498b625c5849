package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
)

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
			el := storetest.AppendConcurrently(b, s, appenders, b.N)
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
	storetest.AppendConcurrently(b, s, 1024, events)
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
	storetest.AppendConcurrently(b, s, 1024, events-1)
	known := storetest.BenchUpdate()
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
			storetest.AppendConcurrently(b, s, 32, 1000) // past the limit
			b.ResetTimer()
			el := storetest.AppendConcurrently(b, s, 32, b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "appends/s")
		})
	}
}
