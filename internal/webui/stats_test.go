package webui

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "webui-test-secret-at-least-32-bytes!!"

// fakeClock is an injected clock that tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// dirStore is a memory store that reports a directory, as the bolt store
// does, so that the disk size is measured.
type dirStore struct {
	hub.Store
	dir string
}

func (d dirStore) Dir() string { return d.dir }

// sizeStore is a memory store that counts its retained updates itself, as
// the bolt store does.
type sizeStore struct {
	hub.Store
	n int
	b int64
}

func (s sizeStore) Size() (int, int64) { return s.n, s.b }

type rig struct {
	hub   *hub.Hub
	stats *Stats
	srv   *httptest.Server
	clock *fakeClock
	ticks chan time.Time
}

// newRig starts a hub, a Stats handler on it behind a real HTTP server,
// and returns them. Ticks are driven by the test.
func newRig(t *testing.T, cfg StatsConfig, store hub.Store) *rig {
	t.Helper()
	if store == nil {
		store = hub.NewMemoryStore(hub.MemoryConfig{})
	}
	h, err := hub.New(hub.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{hub: h, clock: &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, ticks: make(chan time.Time)}
	cfg.Hub = h
	cfg.Now = r.clock.Now
	cfg.Ticks = func() (<-chan time.Time, func()) { return r.ticks, func() {} }
	if cfg.Auth == nil {
		cfg.Auth = authenticator(t)
	}
	r.stats, err = NewStats(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(r.stats)
	t.Cleanup(func() {
		r.stats.Drain()
		r.srv.Close()
		h.Close(context.Background())
		store.Close()
	})
	return r
}

func authenticator(t *testing.T) *jwtauth.Authenticator {
	t.Helper()
	comp, err := selector.New(selector.Config{HubURL: "http://hub.test/.well-known/mercure"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := jwtauth.New(jwtauth.Config{Selectors: comp, Publisher: jwtauth.Key{Secret: []byte(secret)}, Subscriber: jwtauth.Key{Secret: []byte(secret)}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mint(t *testing.T, subscribe ...string) string {
	t.Helper()
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(secret)}, jwtauth.Claims{Subscribe: subscribe, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// stream opens the stats stream and returns a function that reads the
// next snapshot.
func (r *rig) stream(t *testing.T, ctx context.Context) func() Snapshot {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stats: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	dec := sse.NewDecoder(resp.Body)
	return func() Snapshot {
		t.Helper()
		ev, err := dec.Decode()
		if err != nil {
			t.Fatalf("reading a snapshot: %v", err)
		}
		if ev.Type != StatsEventType || ev.ID != "" {
			t.Fatalf("event type %q id %q; want %q without an id", ev.Type, ev.ID, StatsEventType)
		}
		var s Snapshot
		if err := json.Unmarshal([]byte(ev.Data), &s); err != nil {
			t.Fatalf("snapshot %q: %v", ev.Data, err)
		}
		return s
	}
}

func TestStatsAccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		open   bool
		header string
		cookie string
		want   int
		reason string
	}{
		{name: "open, anonymous", open: true, want: 200},
		{name: "open, valid token", open: true, header: "Bearer " + mint(t, "https://example.com/x"), want: 200},
		{name: "open, invalid token is refused", open: true, header: "Bearer not-a-jwt", want: 401},
		{name: "closed, anonymous", want: 401, reason: "reading stats requires a token"},
		{name: "closed, wildcard token", header: "Bearer " + mint(t, "*"), want: 200},
		{name: "closed, stats topic token", header: "Bearer " + mint(t, StatsTopic), want: 200},
		{name: "closed, stats topic cookie", cookie: mint(t, StatsTopic), want: 200},
		{name: "closed, token for other topics", header: "Bearer " + mint(t, "https://example.com/{id}"), want: 403, reason: "token does not grant reading urn:ssehub:stats"},
		{name: "closed, token signed with another key", header: "Bearer " + func() string {
			tok, _ := jwtauth.Mint(jwtauth.Key{Secret: []byte("another-secret-that-is-32-bytes-long!")}, jwtauth.Claims{Subscribe: []string{"*"}})
			return tok
		}(), want: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, StatsConfig{Open: tc.open}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "mercureAuthorization", Value: tc.cookie})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d; want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 {
				if ev, err := sse.NewDecoder(resp.Body).Decode(); err != nil || ev.Type != StatsEventType {
					t.Fatalf("first event %+v, %v", ev, err)
				}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("refusal without a WWW-Authenticate challenge")
			}
			if tc.reason != "" && strings.TrimSpace(string(body)) != tc.reason {
				t.Errorf("reason %q; want %q", body, tc.reason)
			}
			if strings.Contains(string(body), "eyJ") {
				t.Errorf("reason %q leaks a token", body)
			}
		})
	}
}

func TestStatsMethods(t *testing.T) {
	t.Parallel()
	r := newRig(t, StatsConfig{Open: true}, nil)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, r.srv.URL, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %s, Allow %q", m, resp.Status, resp.Header.Get("Allow"))
		}
	}
	resp, err := http.Head(r.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
}

// TestStatsSnapshots drives the stream with injected ticks and time: the
// counters follow the hub and the rates are per second of injected time.
func TestStatsSnapshots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.db"), make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.db"), make([]byte, 24), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	store := dirStore{Store: hub.NewMemoryStore(hub.MemoryConfig{}), dir: dir}
	extra := map[string]float64{"queue_depth": 7, "nan": math.NaN(), "inf": math.Inf(1), "": 1, strings.Repeat("k", 129): 2}
	r := newRig(t, StatsConfig{Open: true, Extra: func() map[string]float64 { return extra }}, store)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A subscriber, so that deliveries count.
	sub, err := r.hub.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{exact("t")}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	next := r.stream(t, ctx)
	first := next()
	if first.Subscribers != 1 || first.Published != 0 || first.Elapsed != 0 || first.Rates != (Rates{}) {
		t.Fatalf("first snapshot %+v", first)
	}
	if first.Store == nil || first.Store.Retained != 0 || first.Store.DiskBytes == nil || *first.Store.DiskBytes != 1024 {
		t.Fatalf("store %+v; want 0 retained, 1024 bytes on disk", first.Store)
	}
	if len(first.Extra) != 1 || first.Extra["queue_depth"] != 7 {
		t.Fatalf("extra %v; want only queue_depth", first.Extra)
	}

	for i := range 10 {
		if _, err := r.hub.Publish(ctx, &hub.Update{Topics: []string{"t"}, Data: "x"}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	// Wait until the hub has delivered all ten to the subscriber.
	for got := 0; got < 10; {
		<-sub.Ready()
		us, err := sub.Drain(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		got += len(us)
	}
	r.clock.Add(2 * time.Second)
	r.ticks <- time.Time{}
	second := next()
	if second.Published != 10 || second.Delivered != 10 || second.Dispatched != 10 {
		t.Fatalf("second snapshot %+v; want 10 published, dispatched and delivered", second)
	}
	if second.Elapsed != 2 || second.Rates.Published != 5 || second.Rates.Delivered != 5 {
		t.Fatalf("elapsed %v, rates %+v; want 2 s and 5/s", second.Elapsed, second.Rates)
	}
	if second.Store.Retained != 10 || second.Store.RetainedBytes != nil {
		t.Errorf("store %+v; want 10 retained and no byte count", second.Store)
	}
	if len(second.GapsByReason) != 3 || second.GapsByReason[hub.GapUnknownID] != 0 {
		t.Errorf("gaps by reason %v; want three reasons at 0", second.GapsByReason)
	}
	if got := second.Time.Sub(first.Time); got != 2*time.Second {
		t.Errorf("snapshots %v apart; want 2s", got)
	}
}

// TestStatsSnapshotHasNoPrivateData publishes private and public updates
// and checks that the stream names neither their topics, IDs nor data.
func TestStatsSnapshotHasNoPrivateData(t *testing.T) {
	t.Parallel()
	r := newRig(t, StatsConfig{Open: true}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, u := range []*hub.Update{
		{ID: "secret-id-1", Topics: []string{"https://example.com/users/42/secret"}, Data: "secret-data", Private: true},
		{ID: "public-id-2", Topics: []string{"https://example.com/public"}, Data: "public-data", Type: "secret-type"},
	} {
		if _, err := r.hub.Publish(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ev, err := sse.NewDecoder(resp.Body).Decode()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"secret", "public", "example.com", "users"} {
		if strings.Contains(ev.Data, s) {
			t.Errorf("snapshot %s contains %q", ev.Data, s)
		}
	}
}

// TestStatsDrain ends open streams and refuses new ones.
func TestStatsDrain(t *testing.T) {
	t.Parallel()
	r := newRig(t, StatsConfig{Open: true}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := sse.NewDecoder(resp.Body)
	if _, err := dec.Decode(); err != nil {
		t.Fatal(err)
	}
	r.stats.Drain()
	r.stats.Drain() // idempotent
	if ev, err := dec.Decode(); err != io.EOF {
		t.Fatalf("after Drain: %+v, %v; want io.EOF", ev, err)
	}
	resp2, err := http.Get(r.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable || resp2.Header.Get("Retry-After") != "1" {
		t.Errorf("after Drain: %s, Retry-After %q; want 503, 1", resp2.Status, resp2.Header.Get("Retry-After"))
	}
}

// TestStatsClientGone ends the handler when the reader leaves.
func TestStatsClientGone(t *testing.T) {
	t.Parallel()
	r := newRig(t, StatsConfig{Open: true}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	next := r.stream(t, ctx)
	next()
	cancel()
	// The handler returns; the server's Close in the cleanup would block
	// on it otherwise, and goleak would report it.
}

func TestNewStatsErrors(t *testing.T) {
	t.Parallel()
	h, err := hub.New(hub.Config{Store: hub.NewMemoryStore(hub.MemoryConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	for _, cfg := range []StatsConfig{
		{},
		{Hub: h, Interval: -time.Second},
		{Hub: h, WriteTimeout: -time.Second},
	} {
		if _, err := NewStats(cfg); err == nil {
			t.Errorf("NewStats(%+v) succeeded", cfg)
		}
	}
}

type exact string

func (e exact) Match(topic string) bool { return string(e) == topic }

// TestStatsStoreSize takes the retained count and bytes from a store that
// keeps them.
func TestStatsStoreSize(t *testing.T) {
	t.Parallel()
	r := newRig(t, StatsConfig{Open: true}, sizeStore{Store: hub.NewMemoryStore(hub.MemoryConfig{}), n: 42, b: 4096})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := r.stream(t, ctx)()
	if s.Store == nil || s.Store.Retained != 42 || s.Store.RetainedBytes == nil || *s.Store.RetainedBytes != 4096 || s.Store.DiskBytes != nil {
		t.Fatalf("store %+v; want 42 updates, 4096 bytes, no disk size", s.Store)
	}
}

// TestStatsGapsByReason counts a gap notice of a resume from an unknown ID.
func TestStatsGapsByReason(t *testing.T) {
	t.Parallel()
	r := newRig(t, StatsConfig{Open: true}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := r.hub.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{exact("t")}, LastEventID: "never-published"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if us, err := sub.Drain(ctx, nil); err != nil || len(us) != 1 {
		t.Fatalf("drain: %d updates, %v; want the gap notice", len(us), err)
	}
	s := r.stream(t, ctx)()
	if s.Gaps != 1 || s.GapsByReason[hub.GapUnknownID] != 1 || s.GapsByReason[hub.GapReplayLimit] != 0 {
		t.Fatalf("gaps %d by reason %v; want 1 unknown-id", s.Gaps, s.GapsByReason)
	}
}
