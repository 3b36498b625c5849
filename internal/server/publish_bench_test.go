package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
)

// BenchmarkPublish measures publishes over loopback HTTP through the whole
// server (JWT authentication, metrics, the store) from keep-alive
// publishers that each wait for their answer, with the in-memory store
// and with the durable bolt store (fsync before each answer, group
// commit). B/op and allocs/op count the client's allocations too; for
// the hub's CPU alone and throughput figures, see docs/BENCHMARKS.md.
func BenchmarkPublish(b *testing.B) {
	for _, engine := range []string{"memory", "bolt"} {
		for _, publishers := range []int{1, 32} {
			b.Run(fmt.Sprintf("store=%s/publishers=%d", engine, publishers), func(b *testing.B) {
				benchPublish(b, engine, publishers)
			})
		}
	}
}

func benchPublish(b *testing.B, engine string, publishers int) {
	s, err := Start(Config{Addr: "127.0.0.1:0", PublisherKey: testKey, Engine: engine, DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			b.Errorf("shutdown: %v", err)
		}
		<-s.Done()
	}()
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(testKey)}, jwtauth.Claims{Publish: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: publishers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&data=" + strings.Repeat("x", 100)
	b.SetParallelism((publishers + 1) / 2) // GOMAXPROCS is 2 here; RunParallel multiplies
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodPost, s.HubURL(), strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("publish: %s", resp.Status)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}
