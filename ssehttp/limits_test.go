package ssehttp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
)

// testClock is a settable clock for the limiter.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Unix(1_800_000_000, 0).UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestLimiterStreams(t *testing.T) {
	t.Parallel()
	l := newLimiter(Limits{MaxStreams: 5, MaxStreamsPerIP: 3, MaxStreamsPerSubject: 2}, time.Now)
	var releases []func()
	take := func(ip, subject string, want bool, reason string) {
		t.Helper()
		rel, wait, why, ok := l.acquire(ip, subject, 0)
		if ok != want {
			t.Fatalf("acquire(%q, %q) = %v (%s); want %v", ip, subject, ok, why, want)
		}
		if ok {
			releases = append(releases, rel)
			return
		}
		if wait < streamRetryAfter || wait > 2*streamRetryAfter || !strings.Contains(why, reason) {
			t.Fatalf("refusal: wait %v, reason %q; want 5-10 s and %q", wait, why, reason)
		}
	}
	take("1.1.1.1", "alice", true, "")
	take("1.1.1.1", "alice", true, "")
	take("1.1.1.1", "alice", false, "token subject (at most 2)")
	take("1.1.1.1", "", true, "")
	take("1.1.1.1", "", false, "this address (at most 3)")
	take("2.2.2.2", "bob", true, "")
	take("3.3.3.3", "", true, "")
	take("4.4.4.4", "", false, "maximum of 5 streams")
	// Releasing twice counts once.
	releases[0]()
	releases[0]()
	if total, ip, sub := l.streams("1.1.1.1", "alice"); total != 4 || ip != 2 || sub != 1 {
		t.Fatalf("after one release: total %d, ip %d, subject %d; want 4, 2, 1", total, ip, sub)
	}
	take("1.1.1.1", "alice", true, "")
	for _, rel := range releases {
		rel()
	}
	if total, ip, sub := l.streams("1.1.1.1", "alice"); total != 0 || ip != 0 || sub != 0 || len(l.perIP) != 0 || len(l.perSubject) != 0 {
		t.Fatalf("after every release: total %d, ip %d, subject %d, maps %d %d", total, ip, sub, len(l.perIP), len(l.perSubject))
	}
}

// TestLimiterSelectorBytes: the estimated bytes of the selectors of a
// client's streams are counted per IP address and per token subject, and
// released with the streams; a stream without patterns is never refused
// for them, and nothing is counted without the limit.
func TestLimiterSelectorBytes(t *testing.T) {
	t.Parallel()
	l := newLimiter(Limits{MaxSelectorBytesPerClient: 100}, time.Now)
	var releases []func()
	for _, tc := range []struct {
		ip, subject string
		bytes       int
		reason      string // "" when admitted
	}{
		{"1.1.1.1", "", 60, ""},
		{"1.1.1.1", "", 41, "streams from this address would take more than 100 bytes"},
		{"1.1.1.1", "", 40, ""},
		{"1.1.1.1", "", 0, ""},
		{"2.2.2.2", "alice", 90, ""},
		{"3.3.3.3", "alice", 20, "streams of this token subject would take more than 100 bytes"},
		{"3.3.3.3", "", 20, ""},
	} {
		rel, _, why, ok := l.acquire(tc.ip, tc.subject, tc.bytes)
		if ok != (tc.reason == "") || !strings.Contains(why, tc.reason) {
			t.Fatalf("acquire(%q, %q, %d) = %v %q; want refusal %q", tc.ip, tc.subject, tc.bytes, ok, why, tc.reason)
		}
		if ok {
			releases = append(releases, rel)
		}
	}
	releases[0]()
	releases[0]()
	if _, _, _, ok := l.acquire("1.1.1.1", "", 60); !ok {
		t.Fatal("the bytes of a released stream were not given back")
	}
	for _, rel := range releases {
		rel()
	}
	if len(l.ipBytes) != 1 || l.ipBytes["1.1.1.1"] != 60 || len(l.subBytes) != 0 {
		t.Fatalf("after the releases: %v %v; want only the last stream's 60", l.ipBytes, l.subBytes)
	}
	unlimited := newLimiter(Limits{}, time.Now)
	if _, _, _, ok := unlimited.acquire("1.1.1.1", "alice", 1<<40); !ok || len(unlimited.ipBytes) != 0 {
		t.Fatal("counted selector bytes without a limit")
	}
}

func TestLimiterPublishRate(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	l := newLimiter(Limits{PublishRate: 2, PublishBurst: 3}, clk.Now)
	for i := range 3 {
		if _, ok := l.allowPublish("a"); !ok {
			t.Fatalf("publish %d of the burst refused", i)
		}
	}
	wait, ok := l.allowPublish("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok %v, wait %v; want refused, 500ms", ok, wait)
	}
	if _, ok := l.allowPublish("b"); !ok {
		t.Fatal("another publisher is limited by a's bucket")
	}
	clk.Advance(500 * time.Millisecond)
	if _, ok := l.allowPublish("a"); !ok {
		t.Fatal("a token earned in 500ms at 2/s was not available")
	}
	if _, ok := l.allowPublish("a"); ok {
		t.Fatal("two tokens earned in 500ms at 2/s")
	}
	// Idle buckets are forgotten once full again.
	clk.Advance(time.Minute)
	l.allowPublish("c")
	if n := l.publishers(); n != 1 {
		t.Errorf("buckets after a quiet minute: %d; want only c's", n)
	}
	// A refused publish does not dig the bucket deeper.
	for range 100 {
		l.allowPublish("d")
	}
	clk.Advance(500 * time.Millisecond)
	if _, ok := l.allowPublish("d"); !ok {
		t.Error("refused publishes drained tokens")
	}

	if _, ok := newLimiter(Limits{}, clk.Now).allowPublish("x"); !ok {
		t.Error("no rate limit refused")
	}
	if l := newLimiter(Limits{PublishRate: 0.5}, clk.Now); l.burst != 1 {
		t.Errorf("default burst at 0.5/s = %v; want 1", l.burst)
	}
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	for _, l := range []Limits{{MaxStreams: -1}, {MaxStreamsPerIP: -1}, {MaxStreamsPerSubject: -1}, {MaxSelectorBytesPerClient: -1}, {PublishRate: -1}, {PublishBurst: -1}} {
		if err := l.Validate(); err == nil {
			t.Errorf("%+v: no error", l)
		}
	}
}

// streamLimitTokens are subscribers with subjects.
var streamLimitTokens = tokens{
	"alice": {Subject: "alice", Publish: []hub.Matcher{hub.MatchAll}, Subscribe: []hub.Matcher{hub.MatchAll}},
	"bob":   {Subject: "bob", Publish: []hub.Matcher{hub.MatchAll}, Subscribe: []hub.Matcher{hub.MatchAll}},
	"anon":  {Publish: []hub.Matcher{hub.MatchAll}},
}

// TestStreamLimitsOverHTTP opens streams up to each limit, checks the 429
// answers, then hangs up abruptly (RST, no FIN handshake) and checks that
// every slot is released, on the hijacked and the goroutine path alike.
func TestStreamLimitsOverHTTP(t *testing.T) {
	t.Parallel()
	for _, goroutine := range []bool{false, true} {
		t.Run(fmt.Sprint("GoroutinePerStream=", goroutine), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *Config) {
				c.Auth = streamLimitTokens
				c.GoroutinePerStream = goroutine
				c.Limits = Limits{MaxStreams: 4, MaxStreamsPerSubject: 2, MaxStreamsPerIP: 3}
			})
			var conns []net.Conn
			open := func(token string) (int, http.Header, string) {
				t.Helper()
				c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				auth := ""
				if token != "" {
					auth = "Authorization: Bearer " + token + "\r\n"
				}
				fmt.Fprintf(c, "GET %s?topic=a HTTP/1.1\r\nHost: x\r\n%s\r\n", DefaultPath, auth)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 200 {
					body, _ := io.ReadAll(resp.Body)
					c.Close()
					return resp.StatusCode, resp.Header, string(body)
				}
				conns = append(conns, c)
				return 200, resp.Header, ""
			}
			for _, tc := range []struct {
				token  string
				status int
				reason string
			}{
				{"alice", 200, ""},
				{"alice", 200, ""},
				{"alice", 429, "token subject (at most 2)"},
				{"bob", 200, ""},
				{"", 429, "this address (at most 3)"}, // all tests come from 127.0.0.1
			} {
				status, hdr, body := open(tc.token)
				if status != tc.status || !strings.Contains(body, tc.reason) {
					t.Fatalf("%s: %d %q; want %d %q", tc.token, status, body, tc.status, tc.reason)
				}
				if status == 429 {
					if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 5 || s > 10 {
						t.Errorf("Retry-After %q; want 5 to 10 s", hdr.Get("Retry-After"))
					}
				}
			}
			// Other clients of the hub are not affected: a publish works.
			if status, _, _ := f.publish(t, "alice", form("topic", "a", "data", "x"), nil); status != 200 {
				t.Fatalf("publish while streams are at their limit: %d", status)
			}
			// Abrupt hang-ups release every slot.
			for _, c := range conns {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			waitFor(t, "every stream slot released", func() bool {
				total, ip, sub := f.handler.lim.streams("127.0.0.1", "alice")
				return total == 0 && ip == 0 && sub == 0
			})
		})
	}
}

func TestPublishRateOverHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) {
		c.Auth = streamLimitTokens
		c.Limits = Limits{PublishRate: 0.001, PublishBurst: 2} // one token per 1000 s
	})
	for i := range 2 {
		if status, body, _ := f.publish(t, "alice", form("topic", "a"), nil); status != 200 {
			t.Fatalf("publish %d: %d %s", i, status, body)
		}
	}
	status, body, hdr := f.publish(t, "alice", form("topic", "a"), nil)
	if status != 429 || body != "publish rate limit exceeded" {
		t.Fatalf("over the rate: %d %q", status, body)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 900 || s > 1000 {
		t.Errorf("Retry-After %q; want about 1000 s", hdr.Get("Retry-After"))
	}
	// Bob's bucket is his own; a subjectless token is metered by IP.
	for _, tok := range []string{"bob", "bob", "anon", "anon"} {
		if status, body, _ := f.publish(t, tok, form("topic", "a"), nil); status != 200 {
			t.Fatalf("%s: %d %s", tok, status, body)
		}
	}
	if status, _, _ := f.publish(t, "anon", form("topic", "a"), nil); status != 429 {
		t.Errorf("third subjectless publish from one IP: %d; want 429", status)
	}
	// A refused publish stored nothing.
	if _, newest, _ := f.hub.Store().Bounds(context.Background()); newest.Seq != 6 {
		t.Errorf("stored %d updates; want 6", newest.Seq)
	}
}

// TestMaxLifetime: streams end at their maximum lifetime, on both paths,
// with a clean end so the client reconnects.
func TestMaxLifetime(t *testing.T) {
	t.Parallel()
	for _, goroutine := range []bool{false, true} {
		t.Run(fmt.Sprint("GoroutinePerStream=", goroutine), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *Config) {
				c.GoroutinePerStream = goroutine
				c.MaxLifetime = 50 * time.Millisecond
				c.Retry = time.Second
			})
			var wg sync.WaitGroup
			for range 5 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := f.subscribe(t, "topic=a", nil)
					if _, err := s.dec.Decode(); err != io.EOF {
						t.Errorf("stream ended with %v; want a clean EOF", err)
					}
					if r, ok := s.dec.Retry(); !ok || r < 750*time.Millisecond || r > 1250*time.Millisecond {
						t.Errorf("retry %v %v; want 1s ± 25%%", r, ok)
					}
				}()
			}
			wg.Wait()
			waitFor(t, "every stream slot released", func() bool {
				total, _, _ := f.handler.lim.streams("", "")
				return total == 0
			})
		})
	}
	if _, err := New(Config{Hub: &hub.Hub{}, Compiler: newFixture(t, nil).handler.cfg.Compiler, MaxLifetime: -1}); err == nil {
		t.Error("negative MaxLifetime accepted")
	}
}

var _ auth.Authenticator = streamLimitTokens

func BenchmarkLimiter(b *testing.B) {
	l := newLimiter(Limits{MaxStreams: 1 << 30, MaxStreamsPerIP: 1 << 30, MaxStreamsPerSubject: 1 << 30, PublishRate: 1e9, PublishBurst: 1 << 30}, time.Now)
	b.Run("acquire+release", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				rel, _, _, ok := l.acquire(strconv.Itoa(i%1024), "subject", 0)
				if !ok {
					b.Fatal("refused")
				}
				rel()
			}
		})
	})
	b.Run("allowPublish", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				l.allowPublish(strconv.Itoa(i % 1024))
			}
		})
	})
}
