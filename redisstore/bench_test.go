package redisstore_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
	"github.com/ssehub/ssehub/internal/testsvc"
	"github.com/ssehub/ssehub/redisstore"
)

// BenchmarkAppend measures acknowledged appends to a redis-server with
// appendonly yes and appendfsync always, with 1 and 32 concurrent
// appenders, under the default limits (so retention runs on every append
// once the log is full).
func BenchmarkAppend(b *testing.B) {
	r := testsvc.StartRedis(b)
	for _, appenders := range []int{1, 32} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s := open(b, freshURL(r), redisstore.Config{Limits: redisstore.DefaultLimits})
			c := client(b, r.Addr)
			mem0 := usedMemory(b, c)
			b.ResetTimer()
			el := storetest.AppendConcurrently(b, s, appenders, b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "appends/s")
			b.ReportMetric(float64(usedMemory(b, c)-mem0)/float64(b.N), "redis-bytes/event")
		})
	}
}

// BenchmarkCrossNodeLatency measures the time from an Append on node A to
// the Follow callback on node B (two Stores on one Redis), one update at a
// time, and reports the median and 99th percentile.
func BenchmarkCrossNodeLatency(b *testing.B) {
	r := testsvc.StartRedis(b)
	url := freshURL(r)
	a := open(b, url, redisstore.Config{})
	nodeB := open(b, url, redisstore.Config{})
	_, newest, err := nodeB.Bounds(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- nodeB.Follow(ctx, newest, func(*hub.Update) { got <- time.Now() })
	}()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := a.Append(context.Background(), storetest.BenchUpdate()); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	b.StopTimer()
	cancel()
	<-done
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// usedMemory returns Redis's used_memory.
func usedMemory(tb testing.TB, c *redis.Client) int64 {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("no used_memory in INFO memory")
	return 0
}

// BenchmarkRead measures replaying 10,000 retained updates.
func BenchmarkRead(b *testing.B) {
	const events = 10_000
	r := testsvc.StartRedis(b)
	s := open(b, freshURL(r), redisstore.Config{})
	storetest.AppendConcurrently(b, s, 64, events)
	b.ResetTimer()
	for range b.N {
		n := 0
		if err := s.Read(context.Background(), hub.Position{}, func(*hub.Update) bool { n++; return true }); err != nil {
			b.Fatal(err)
		}
		if n != events {
			b.Fatalf("read %d updates; want %d", n, events)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/update")
}

// BenchmarkLookup measures resolving a known and an unknown ID in a
// history of 10,000 updates: both are one HGET.
func BenchmarkLookup(b *testing.B) {
	const events = 10_000
	r := testsvc.StartRedis(b)
	s := open(b, freshURL(r), redisstore.Config{})
	storetest.AppendConcurrently(b, s, 64, events-1)
	known := storetest.BenchUpdate()
	mustAppend(b, s, known)
	for _, c := range []struct{ name, id string }{
		{"known", known.ID},
		{"unknown", hub.NewID()},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				_, _ = s.Lookup(context.Background(), c.id)
			}
		})
	}
}
