package natsstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/testsvc"
)

// benchUpdate is a typical update: a 45-byte ID, a 31-byte topic and 100
// bytes of data.
func benchUpdate(i int) *hub.Update {
	return &hub.Update{
		ID:     fmt.Sprintf("urn:uuid:%08d-0000-4000-8000-000000000000", i),
		Topics: []string{"https://example.com/books/1234"},
		Data:   "{\"id\":1234,\"title\":\"A book title\",\"status\":\"in stock\",\"price\":\"12.34\",\"updated\":\"2026-01-01\"}xx",
	}
}

// BenchmarkAppend measures acknowledged appends (each waits for its
// PubAck) from 1 and 32 concurrent appenders on one connection.
func BenchmarkAppend(b *testing.B) {
	n := testsvc.StartNATS(b)
	for _, appenders := range []int{1, 32} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s := open(b, n, "stream="+newStream(), Config{})
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range appenders {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := s.Append(context.Background(), benchUpdate(int(i))); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

// BenchmarkCrossNodeLatency measures, one update at a time, how long it
// takes from the start of an Append on one store to the Follow callback
// of another store on the same stream (two "nodes").
func BenchmarkCrossNodeLatency(b *testing.B) {
	n := testsvc.StartNATS(b)
	q := "stream=" + newStream()
	a, other := open(b, n, q, Config{}), open(b, n, q, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan time.Time, 1)
	done := make(chan error, 1)
	go func() { done <- other.Follow(ctx, hub.Position{}, func(*hub.Update) { got <- time.Now() }) }()
	// Warm up: the follower is running.
	if err := a.Append(ctx, benchUpdate(0)); err != nil {
		b.Fatal(err)
	}
	<-got
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := a.Append(ctx, benchUpdate(i+1)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	b.StopTimer()
	cancel()
	<-done
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRead measures a replay of 10,000 updates.
func BenchmarkRead(b *testing.B) {
	n := testsvc.StartNATS(b)
	s := open(b, n, "stream="+newStream(), Config{})
	const count = 10000
	fill(b, s, count)
	b.ResetTimer()
	for range b.N {
		seen := 0
		if err := s.Read(context.Background(), hub.Position{}, func(*hub.Update) bool { seen++; return true }); err != nil || seen != count {
			b.Fatalf("Read: %d updates, %v", seen, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*count), "ns/update")
}

// BenchmarkLookup measures finding a known and an unknown ID among 10,000.
func BenchmarkLookup(b *testing.B) {
	n := testsvc.StartNATS(b)
	s := open(b, n, "stream="+newStream(), Config{})
	fill(b, s, 10000)
	for _, c := range []struct{ name, id string }{{"known", benchUpdate(5000).ID}, {"unknown", "urn:uuid:forged"}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				_, err := s.Lookup(context.Background(), c.id)
				if (err == nil) != (c.name == "known") {
					b.Fatalf("Lookup(%q): %v", c.id, err)
				}
			}
		})
	}
}

func fill(b *testing.B, s *Store, count int) {
	b.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 32 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(count); i = next.Add(1) {
				if err := s.Append(context.Background(), benchUpdate(int(i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
