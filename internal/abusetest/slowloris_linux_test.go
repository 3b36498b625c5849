package abusetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/internal/server"
	"github.com/ssehub/ssehub/sse"
)

// raiseFileLimit raises the soft limit of open files to the hard limit and
// returns it.
func raiseFileLimit(t *testing.T) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("raising the open-file limit: %v", err)
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
	}
	return lim.Cur
}

// dialSmallWindow connects with a 4 KiB receive buffer, so that a reader
// that never reads stalls the server's writes after a few KiB instead of
// after the default buffer's 128 KiB or more.
var dialSmallWindow = net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	return errors.Join(err, serr)
}}

// TestSlowlorisAndStalledReaders opens thousands of hostile connections
// against a real server: half send a partial request head and never finish
// it (slowloris), half subscribe and never read a byte of their stream
// while large events are published. Meanwhile well-behaved subscribers
// must receive every event, in order, and a new client must still be
// served. The server must cut the slowloris connections at its
// ReadHeaderTimeout. The assertions are about correctness, not timing.
func TestSlowlorisAndStalledReaders(t *testing.T) {
	hostile := 2000
	if limit := raiseFileLimit(t); limit < uint64(2*hostile+256) {
		// Each hostile connection costs two descriptors in this process
		// (client and server side).
		hostile = max(100, int(limit-256)/2)
		t.Logf("open-file limit %d: %d hostile connections", limit, hostile)
	}
	const (
		normal = 5
		events = 200
	)
	data := strings.Repeat("0123456789abcdef", 128) // 2 KiB
	s, err := server.Start(server.Config{
		Addr:              "127.0.0.1:0",
		Engine:            "memory",
		PublisherKey:      key,
		Anonymous:         true,
		ReadHeaderTimeout: 2 * time.Second,
		ShutdownGrace:     5 * time.Second,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Logf("shutdown: %v", err) // the grace period may end with stalled streams left
		}
		<-s.Done()
	})
	addr := s.Addr().String()
	begin := time.Now()
	phase := func(what string) { t.Logf("%6.2fs %s", time.Since(begin).Seconds(), what) }
	pubTok := mint(t, key, jwtauth.Claims{Subject: "publisher", Publish: []string{"*"}, Expires: time.Now().Add(time.Hour)})

	// The well-behaved subscribers.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		ids []string
		err error
	}
	results := make(chan result, normal)
	var ready sync.WaitGroup
	var readers sync.WaitGroup
	for range normal {
		ready.Add(1)
		readers.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.HubURL()+"?topic=abuse", nil)
			resp, err := http.DefaultClient.Do(req)
			ready.Done()
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			dec := sse.NewDecoder(resp.Body)
			var ids []string
			for len(ids) < events {
				ev, err := dec.Decode()
				if err != nil {
					results <- result{ids, err}
					return
				}
				if ev.Data != data {
					results <- result{ids, fmt.Errorf("event %s has %d bytes of data", ev.ID, len(ev.Data))}
					return
				}
				ids = append(ids, ev.ID)
			}
			results <- result{ids: ids}
		})
	}
	ready.Wait()

	// The hostile connections, opened by a few goroutines.
	var (
		mu        sync.Mutex
		slowloris []net.Conn
		stalled   []net.Conn
		dialErrs  atomic.Int32
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range append(slowloris, stalled...) {
			c.Close()
		}
	}()
	var dialers sync.WaitGroup
	next := atomic.Int32{}
	for range 16 {
		dialers.Go(func() {
			for i := int(next.Add(1)) - 1; i < hostile; i = int(next.Add(1)) - 1 {
				c, err := dialSmallWindow.Dial("tcp", addr)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				if i%2 == 0 {
					fmt.Fprintf(c, "GET /.well-known/mercure?topic=abuse HTTP/1.1\r\nHost: x\r\nX-Slow: ")
					mu.Lock()
					slowloris = append(slowloris, c)
					mu.Unlock()
				} else {
					fmt.Fprintf(c, "GET /.well-known/mercure?topic=abuse HTTP/1.1\r\nHost: x\r\n\r\n")
					mu.Lock()
					stalled = append(stalled, c)
					mu.Unlock()
				}
			}
		})
	}
	dialers.Wait()
	phase("hostile connections open")
	if n := dialErrs.Load(); n > 0 {
		t.Logf("%d of %d hostile connections could not be opened", n, hostile)
	}

	// Publish large events while all of that is open.
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var published []string
	for i := range events {
		form := url.Values{"topic": {"abuse"}, "id": {fmt.Sprint("e", i)}, "data": {data}}
		req, _ := http.NewRequest(http.MethodPost, s.HubURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+pubTok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("publish %d: %d %s", i, resp.StatusCode, body)
		}
		published = append(published, string(body))
	}

	phase("events published")
	want := strings.Join(published, ",")
	for range normal {
		select {
		case r := <-results:
			if r.err != nil || strings.Join(r.ids, ",") != want {
				t.Errorf("a well-behaved subscriber got %d of %d events (error %v)", len(r.ids), events, r.err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("a well-behaved subscriber did not get every event within 60 s (a hang)")
		}
	}
	cancel()
	readers.Wait()
	phase("well-behaved subscribers got every event")

	// A newcomer is still served.
	resp, err := client.Get(s.HubURL() + "?topic=abuse&last_event_id=" + published[0])
	if err != nil {
		t.Fatal(err)
	}
	ev, err := sse.NewDecoder(resp.Body).Decode()
	resp.Body.Close()
	if err != nil || ev.ID != published[1] {
		t.Errorf("a new subscriber resuming after the first event got %+v, %v", ev, err)
	}

	// Every slowloris connection is cut by the server (a 408 or a bare
	// close), not left to linger.
	mu.Lock()
	defer mu.Unlock()
	cut := 0
	for _, c := range slowloris {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && !strings.Contains(b, "408") {
			t.Errorf("a slowloris connection got %q", b)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("a slowloris connection is still open 30 s after the server's 2 s header timeout")
			break
		}
		cut++
	}
	phase("slowloris connections cut")
	t.Logf("%d slowloris connections cut, %d stalled readers, %d events of %d bytes to %d subscribers", cut, len(stalled), events, len(data), normal)
}
