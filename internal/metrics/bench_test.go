package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/sse"
	"github.com/ssehub/ssehub/ssehttp"
)

// BenchmarkObserver measures what each hook costs the path that calls it.
func BenchmarkObserver(b *testing.B) {
	m := New()
	appended := time.Now()
	b.Run("Delivered", func(b *testing.B) {
		for b.Loop() {
			m.Delivered(1, appended)
		}
	})
	b.Run("Published", func(b *testing.B) {
		for b.Loop() {
			m.Published(time.Millisecond)
		}
	})
	b.Run("StreamOpenedClosed", func(b *testing.B) {
		for b.Loop() {
			m.StreamOpened(ssehttp.KindExact)
			m.StreamClosed(ssehttp.KindExact, ssehttp.EndClientGone, time.Second, 1)
		}
	})
}

// BenchmarkFanOut publishes b.N updates to 100 subscribers of one topic,
// each on its own HTTP/1.1 connection served by the goroutine-per-stream
// loop, and waits until every subscriber has read every update: one op is
// one update delivered to 100 subscribers. "none" has no Observer,
// "prometheus" the Metrics; the difference is the cost of the hooks on
// the fan-out path (one Delivered call per write).
func BenchmarkFanOut(b *testing.B) {
	const subscribers = 100
	for _, name := range []string{"none", "prometheus"} {
		b.Run(fmt.Sprintf("observer=%s", name), func(b *testing.B) {
			var obs ssehttp.Observer
			if name == "prometheus" {
				m := New()
				obs = m
			}
			h, err := hub.New(hub.Config{QueueSize: 1 << 20, QueueBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close(context.Background())
			srv := httptest.NewUnstartedServer(nil)
			comp, err := selector.New(selector.Config{HubURL: "http://" + srv.Listener.Addr().String() + ssehttp.DefaultPath})
			if err != nil {
				b.Fatal(err)
			}
			hd, err := ssehttp.New(ssehttp.Config{Hub: h, Compiler: comp, Anonymous: true, Observer: obs,
				GoroutinePerStream: true, Heartbeat: -1, Retry: -1})
			if err != nil {
				b.Fatal(err)
			}
			srv.Config.Handler = hd
			srv.Start()
			defer srv.Close()
			defer hd.Drain()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var ready, done sync.WaitGroup
			for range subscribers {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+ssehttp.DefaultPath+"?match=bench", nil)
				resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				ready.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					d := sse.NewDecoder(resp.Body)
					ready.Done()
					for range b.N {
						if _, err := d.Decode(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			ready.Wait()
			// Every stream is registered once its head arrived; publish.
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"bench"}, Data: "0123456789abcdef"}); err != nil {
					b.Fatal(err)
				}
			}
			done.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N*subscribers)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
