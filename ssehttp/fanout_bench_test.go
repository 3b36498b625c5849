package ssehttp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// writeCounter is an Observer counting writes and the events they held.
type writeCounter struct {
	nopObserver
	writes, events atomic.Int64
}

func (c *writeCounter) Delivered(n int, _ time.Time) {
	c.writes.Add(1)
	c.events.Add(int64(n))
}

// BenchmarkHijackedFanOut publishes to subs subscribers of one topic, each
// on its own HTTP/1.1 connection served from its hijacked connection, in
// rounds of burst updates: a round is published, then every subscriber
// reads all of it. One op is one update delivered to every subscriber.
// The subscribers are raw connections in this process, reading into a
// large buffer and counting event ends, so the CPU figures (cpu-ns per
// delivery, from getrusage) include them and the loopback's cost on both
// sides; compare runs of this benchmark with each other, not with the
// scenario suite. events/write is the coalescing the handler achieved.
func BenchmarkHijackedFanOut(b *testing.B) {
	for _, subs := range []int{1000} {
		for _, burst := range []int{1, 8} {
			b.Run(fmt.Sprintf("subs=%d/burst=%d", subs, burst), func(b *testing.B) {
				benchHijackedFanOut(b, subs, burst)
			})
		}
	}
}

func benchHijackedFanOut(b *testing.B, subs, burst int) {
	h, err := hub.New(hub.Config{QueueSize: 1 << 16, QueueBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	srv := httptest.NewUnstartedServer(nil)
	comp, err := selector.New(selector.Config{HubURL: "http://" + srv.Listener.Addr().String() + DefaultPath})
	if err != nil {
		b.Fatal(err)
	}
	obs := &writeCounter{}
	hd, err := New(Config{Hub: h, Compiler: comp, Anonymous: true, Observer: obs, Heartbeat: -1, Retry: -1})
	if err != nil {
		b.Fatal(err)
	}
	srv.Config.Handler = hd
	srv.Start()
	defer srv.Close()
	defer hd.Drain()

	var (
		got   atomic.Int64 // events read by all subscribers
		wg    sync.WaitGroup
		conns []net.Conn
	)
	addr := srv.Listener.Addr().String()
	for range subs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET %s?topic=bench HTTP/1.1\r\nHost: hub.example\r\nAccept: text/event-stream\r\n\r\n", DefaultPath)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			headDone, last := false, byte(0)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				p := buf[:n]
				if !headDone {
					i := bytes.Index(p, []byte("\r\n\r\n"))
					if i < 0 {
						continue // a head split over reads is not expected here
					}
					headDone, p = true, p[i+4:]
				}
				k := int64(bytes.Count(p, []byte("\n\n")))
				if last == '\n' && len(p) > 0 && p[0] == '\n' {
					k++
				}
				if len(p) > 0 {
					last = p[len(p)-1]
				}
				got.Add(k)
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	for h.Stats().Subscribers < subs {
		time.Sleep(time.Millisecond)
	}
	if n := hd.Streams(); n != subs {
		b.Fatalf("%d of %d streams served from hijacked connections", n, subs)
	}
	data := strings.Repeat("x", 100)
	ctx := context.Background()
	wait := func(n int64) {
		for got.Load() < n {
			time.Sleep(50 * time.Microsecond)
		}
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	w0, e0 := obs.writes.Load(), obs.events.Load()
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		k := min(burst, b.N-sent)
		for range k {
			if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"bench"}, Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		sent += k
		wait(int64(sent) * int64(subs))
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) -
		syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
	deliveries := float64(b.N) * float64(subs)
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
	if w := obs.writes.Load() - w0; w > 0 {
		b.ReportMetric(float64(obs.events.Load()-e0)/float64(w), "events/write")
	}
}
