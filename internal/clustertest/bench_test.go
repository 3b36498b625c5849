package clustertest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/testsvc"
)

// The benchmarks measure a cluster of hubs built without the race
// detector; docs/BENCHMARKS.md ("Scale-out") records their results and
// the commands.

var (
	benchOnce   sync.Once
	benchBinary string
	benchErr    error
)

// fastBinary builds ssehub without -race, once per run.
func fastBinary(b *testing.B) string {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ssehub-clusterbench")
		if err != nil {
			benchErr = err
			return
		}
		benchBinary, benchErr = testsvc.BuildSSEHub(dir, false)
	})
	if benchErr != nil {
		b.Fatalf("building ssehub: %v", benchErr)
	}
	return benchBinary
}

// stream is a raw subscription that reports each event's data.
type stream struct {
	resp *http.Response
	done chan struct{}
}

// openStream subscribes to topic on base and calls fn with the data of
// every event, from one goroutine, until close.
func openStream(tb testing.TB, base, topic string, fn func(data string)) *stream {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/.well-known/mercure?topic="+url.QueryEscape(topic), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("subscribe: %s", resp.Status)
	}
	s := &stream{resp: resp, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				fn(strings.TrimSuffix(d, "\n"))
			}
		}
	}()
	return s
}

func (s *stream) close() {
	s.resp.Body.Close()
	<-s.done
}

// publishData publishes data on topic and returns the status.
func publishData(c *http.Client, base, token, topic, data string) (int, error) {
	form := url.Values{"topic": {topic}, "data": {data}}
	req, _ := http.NewRequest(http.MethodPost, base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkCrossNodeLatency publishes on hub 0 of three and receives on
// hub 1, one event at a time: the latency of the engine's round trip
// between two hubs (append on one, follow on the other), reported as
// p50 and p99 of publish-to-receive and of the publish acknowledgement.
func BenchmarkCrossNodeLatency(b *testing.B) {
	for _, e := range Engines {
		b.Run(e.Name, func(b *testing.B) {
			c := StartCluster(b, fastBinary(b), e.Start, 3)
			recv := make(chan time.Time, 1)
			s := openStream(b, c.Hubs[1].Base(), "https://example.com/lat", func(string) { recv <- time.Now() })
			defer s.close()
			pc := &http.Client{Transport: &http.Transport{}}
			defer pc.CloseIdleConnections()
			var lat, ack []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				status, err := publishData(pc, c.Hubs[0].Base(), c.Token, "https://example.com/lat", strconv.Itoa(i))
				acked := time.Now()
				if err != nil || status != http.StatusOK {
					b.Fatalf("publish: %d %v", status, err)
				}
				select {
				case at := <-recv:
					lat = append(lat, at.Sub(start))
					ack = append(ack, acked.Sub(start))
				case <-time.After(30 * time.Second):
					b.Fatal("event not received on the other hub within 30 s")
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "p50-µs")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
			b.ReportMetric(float64(percentile(ack, 0.5).Microseconds()), "ack-p50-µs")
			b.ReportMetric(float64(percentile(ack, 0.99).Microseconds()), "ack-p99-µs")
		})
	}
}

// BenchmarkClusterPublish publishes b.N events from 32 concurrent
// publishers spread over three hubs, each waiting for its acknowledgement
// (durable in the engine) before the next: the cluster's publish
// throughput.
func BenchmarkClusterPublish(b *testing.B) {
	for _, e := range Engines {
		b.Run(e.Name, func(b *testing.B) {
			c := StartCluster(b, fastBinary(b), e.Start, 3)
			const publishers = 32
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for p := range publishers {
				wg.Go(func() {
					pc := &http.Client{Transport: &http.Transport{}}
					defer pc.CloseIdleConnections()
					base := c.Hubs[p%len(c.Hubs)].Base()
					for next.Add(1) <= int64(b.N) {
						if status, err := publishData(pc, base, c.Token, "https://example.com/pub", "x"); err != nil || status != http.StatusOK {
							b.Errorf("publish: %d %v", status, err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "publishes/s")
		})
	}
}

// BenchmarkDeliveryScaling holds 600 subscribers of one topic, spread
// evenly over one hub or over three, and publishes b.N events to them
// from 4 publishers (on hub 0) as fast as they are acknowledged; it
// reports deliveries per second once every subscriber has every event.
// On a 2-core machine the hubs, the engine, the publishers and the
// subscribers all share the same two cores: see docs/BENCHMARKS.md.
func BenchmarkDeliveryScaling(b *testing.B) {
	const subscribers = 600
	for _, e := range Engines {
		for _, hubs := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/hubs=%d", e.Name, hubs), func(b *testing.B) {
				c := StartCluster(b, fastBinary(b), e.Start, hubs)
				topic := "https://example.com/fan"
				var got atomic.Int64
				var streams []*stream
				for i := range subscribers {
					streams = append(streams, openStream(b, c.Hubs[i%hubs].Base(), topic, func(string) { got.Add(1) }))
				}
				defer func() {
					for _, s := range streams {
						s.close()
					}
				}()
				// Every stream is registered once one probe event reached all.
				if status, err := publishData(http.DefaultClient, c.Hubs[0].Base(), c.Token, topic, "probe"); err != nil || status != 200 {
					b.Fatalf("probe: %d %v", status, err)
				}
				waitCount(b, &got, subscribers)
				got.Store(0)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range 4 {
					wg.Go(func() {
						pc := &http.Client{Transport: &http.Transport{}}
						defer pc.CloseIdleConnections()
						for next.Add(1) <= int64(b.N) {
							if status, err := publishData(pc, c.Hubs[0].Base(), c.Token, topic, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); err != nil || status != 200 {
								b.Errorf("publish: %d %v", status, err)
								return
							}
						}
					})
				}
				wg.Wait()
				waitCount(b, &got, int64(b.N)*subscribers)
				b.StopTimer()
				b.ReportMetric(float64(b.N*subscribers)/time.Since(start).Seconds(), "deliveries/s")
			})
		}
	}
}

// waitCount waits until n reaches want, failing after a minute.
func waitCount(b *testing.B, n *atomic.Int64, want int64) {
	deadline := time.Now().Add(time.Minute)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries after a minute", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
