package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/sse"
	"github.com/ssehub/ssehub/ssehttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "metrics-test-key-that-is-at-least-32-bytes"

// stack is a hub with metrics behind a TLS test server speaking HTTP/2,
// whose streams are served by the goroutine-per-stream loop.
type stack struct {
	m      *Metrics
	hub    *hub.Hub
	h      *ssehttp.Handler
	srv    *httptest.Server
	hubURL string
}

func newStack(t *testing.T, st hub.Store) *stack {
	t.Helper()
	m := New()
	h, err := hub.New(hub.Config{Store: m.InstrumentStore(st)})
	if err != nil {
		t.Fatal(err)
	}
	m.CollectHub(h)
	srv := httptest.NewUnstartedServer(nil)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	base := srv.URL
	comp, err := selector.New(selector.Config{HubURL: base + ssehttp.DefaultPath})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := jwtauth.New(jwtauth.Config{Selectors: comp, Publisher: jwtauth.Key{Secret: []byte(key)}, Subscriber: jwtauth.Key{Secret: []byte(key)}})
	if err != nil {
		t.Fatal(err)
	}
	hd, err := ssehttp.New(ssehttp.Config{Hub: h, Compiler: comp, Auth: authn, Anonymous: true, Observer: m, Retry: -1, Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(ssehttp.DefaultPath, hd)
	mux.Handle("GET /metrics", m.Handler(""))
	srv.Config.Handler = m.Instrument(mux)
	t.Cleanup(func() {
		hd.Drain()
		srv.Close()
		h.Close(context.Background())
		st.Close()
	})
	return &stack{m: m, hub: h, h: hd, srv: srv, hubURL: base + ssehttp.DefaultPath}
}

func mint(t *testing.T, publish []string) string {
	t.Helper()
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(key)}, jwtauth.Claims{Publish: publish, Subscribe: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *stack) publish(t *testing.T, tok, topic, data string) int {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	req, _ := http.NewRequest(http.MethodPost, s.hubURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (s *stack) subscribe(t *testing.T, ctx context.Context, query string, header http.Header) *sse.Decoder {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.hubURL+"?"+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("subscribe: %s over %s", resp.Status, resp.Proto)
	}
	return sse.NewDecoder(resp.Body)
}

func next(t *testing.T, d *sse.Decoder) sse.Event {
	t.Helper()
	ev, err := d.Decode()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return ev
}

// value returns the value of the metric name with the given labels
// ("k=v" pairs), as the registry exposes it.
func value(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, mt := range mf.GetMetric() {
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				found := false
				for _, lp := range mt.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case mt.Counter != nil:
				return mt.Counter.GetValue()
			case mt.Gauge != nil:
				return mt.Gauge.GetValue()
			case mt.Histogram != nil:
				return float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// eventually waits for cond, which the server makes true asynchronously
// (a stream's end is seen by its handler after the client left). The
// deadline only guards against a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 30 s", what)
		}
	}
}

func TestMetricsOfAHubAtWork(t *testing.T) {
	t.Parallel()
	s := newStack(t, hub.NewMemoryStore(hub.MemoryConfig{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tok := mint(t, []string{"*"})

	streams := map[string]*sse.Decoder{
		"exact":      s.subscribe(t, ctx, "match=https://example.com/a", nil),
		"urlpattern": s.subscribe(t, ctx, "match_urlpattern="+url.QueryEscape("https://example.com/*"), nil),
		"template":   s.subscribe(t, ctx, "topic="+url.QueryEscape("https://example.com/{x}"), nil),
		"all":        s.subscribe(t, ctx, "match=*&match=https://example.com/a", nil),
	}
	for i := range 3 {
		if code := s.publish(t, tok, "https://example.com/a", "hello"); code != 200 {
			t.Fatalf("publish %d: %d", i, code)
		}
		for kind, d := range streams {
			if ev := next(t, d); ev.Data != "hello" {
				t.Fatalf("%s stream: got %q; want hello", kind, ev.Data)
			}
		}
	}
	// Refusals: no token, a bad token, a token without the topic.
	for _, tc := range []struct {
		tok  string
		code int
	}{{"", 401}, {"not-a-jwt", 401}, {mint(t, []string{"https://other.example/x"}), 403}} {
		if code := s.publish(t, tc.tok, "https://example.com/a", "no"); code != tc.code {
			t.Fatalf("publish with %q: %d; want %d", tc.tok, code, tc.code)
		}
	}
	// A resume from an ID the hub does not know is told of a gap, and then
	// gets the 3 retained updates (in the same write as the notice).
	gapStream := s.subscribe(t, ctx, "match=https://example.com/a", http.Header{"Last-Event-Id": {"urn:unknown"}})
	if ev := next(t, gapStream); ev.Type != hub.GapEventType {
		t.Fatalf("resume from an unknown id: got %q; want the gap notice", ev.Type)
	}

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ssehub_published_total", nil, 3},
		{"ssehub_dispatched_total", nil, 3},
		{"ssehub_delivered_total", nil, 15}, // 12 live, 3 replayed
		{"ssehub_subscribers", nil, 5},
		{"ssehub_subscriptions", []string{"kind=exact"}, 3}, // the "all" stream has an exact selector too
		{"ssehub_subscriptions", []string{"kind=urlpattern"}, 1},
		{"ssehub_subscriptions", []string{"kind=template"}, 1},
		{"ssehub_subscriptions", []string{"kind=all"}, 1},
		{"ssehub_events_sent_total", nil, 16}, // 15 updates and the gap notice
		{"ssehub_publish_duration_seconds", nil, 3},
		{"ssehub_store_append_duration_seconds", nil, 3},
		{"ssehub_store_updates", nil, 3},
		{"ssehub_gaps_total", []string{"reason=unknown-id"}, 1},
		{"ssehub_gaps_total", []string{"reason=replay-limit"}, 0},
		{"ssehub_auth_refusals_total", []string{"reason=missing_token"}, 1},
		{"ssehub_auth_refusals_total", []string{"reason=invalid_token"}, 1},
		{"ssehub_auth_refusals_total", []string{"reason=forbidden"}, 1},
		{"ssehub_http_requests_total", []string{"route=/.well-known/mercure", "method=POST", "code=200"}, 3},
		{"ssehub_http_requests_total", []string{"route=/.well-known/mercure", "method=POST", "code=401"}, 2},
		{"ssehub_http_requests_total", []string{"route=/.well-known/mercure", "method=POST", "code=403"}, 1},
		{"ssehub_slow_consumers_total", []string{"reason=queue-overflow"}, 0},
	} {
		if got := value(t, s.m, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v; want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if n := value(t, s.m, "ssehub_store_bytes"); n <= 0 {
		t.Errorf("ssehub_store_bytes = %v; want > 0", n)
	}
	// Every stream wrote each update in its own write (they were read one
	// by one), so each write observed one delivery latency: 12 in all.
	if n := value(t, s.m, "ssehub_delivery_latency_seconds"); n != 12 {
		t.Errorf("delivery latency observations = %v; want 12", n)
	}

	// The clients leave: every stream is closed, by reason.
	cancel()
	eventually(t, "all streams closed", func() bool {
		return value(t, s.m, "ssehub_streams_closed_total", "reason=client-gone") == 5
	})
	for _, kind := range []string{"exact", "urlpattern", "template", "all"} {
		if got := value(t, s.m, "ssehub_subscriptions", "kind="+kind); got != 0 {
			t.Errorf("subscriptions{kind=%s} = %v after the streams closed; want 0", kind, got)
		}
	}
	eventually(t, "the stream requests counted", func() bool {
		return value(t, s.m, "ssehub_http_requests_total", "route=/.well-known/mercure", "method=GET", "code=200") == 5
	})
}

func TestDrainEndsStreamsWithReasonDrain(t *testing.T) {
	t.Parallel()
	s := newStack(t, hub.NewMemoryStore(hub.MemoryConfig{}))
	ctx := t.Context()
	d := s.subscribe(t, ctx, "match=x", nil)
	s.h.Drain()
	if _, err := d.Decode(); err == nil {
		t.Fatal("the stream delivered an event after Drain; want its end")
	}
	eventually(t, "the stream closed", func() bool {
		return value(t, s.m, "ssehub_streams_closed_total", "reason=drain") == 1
	})
}

func TestStoreSize(t *testing.T) {
	t.Parallel()
	bolt, err := boltstore.Open(t.TempDir(), boltstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]hub.Store{"memory": hub.NewMemoryStore(hub.MemoryConfig{MaxUpdates: 2}), "bolt": bolt} {
		t.Run(name, func(t *testing.T) {
			s := newStack(t, st)
			if got := value(t, s.m, "ssehub_store_updates"); got != 0 {
				t.Fatalf("empty store: %v updates; want 0", got)
			}
			for range 3 {
				if _, err := s.hub.Publish(t.Context(), &hub.Update{Topics: []string{"t"}, Data: "0123456789"}); err != nil {
					t.Fatal(err)
				}
			}
			want := 3.0
			if name == "memory" {
				want = 2 // its retention keeps two
			}
			if got := value(t, s.m, "ssehub_store_updates"); got != want {
				t.Errorf("store_updates = %v; want %v", got, want)
			}
			n, b := st.(StoreSizer).Size()
			if float64(n) != want || b <= 0 || value(t, s.m, "ssehub_store_bytes") != float64(b) {
				t.Errorf("Size() = %d, %d; metric store_bytes %v", n, b, value(t, s.m, "ssehub_store_bytes"))
			}
		})
	}
}

func TestInstrumentStoreKeepsDir(t *testing.T) {
	t.Parallel()
	bolt, err := boltstore.Open(t.TempDir(), boltstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	m := New()
	if d, ok := m.InstrumentStore(bolt).(interface{ Dir() string }); !ok || d.Dir() != bolt.Dir() {
		t.Errorf("instrumented bolt store: Dir lost (ok=%v)", ok)
	}
	mem := hub.NewMemoryStore(hub.MemoryConfig{})
	wrapped := m.InstrumentStore(mem)
	if _, ok := wrapped.(interface{ Dir() string }); ok {
		t.Error("instrumented memory store has a Dir method; want none, as the store has none")
	}
	if u, ok := wrapped.(interface{ Unwrap() hub.Store }); !ok || u.Unwrap() != mem {
		t.Error("Unwrap does not return the instrumented store")
	}
}

func TestObserverCounters(t *testing.T) {
	t.Parallel()
	m := New()
	m.StreamOpened(ssehttp.KindExact | ssehttp.KindAll)
	m.StreamClosed(ssehttp.KindExact|ssehttp.KindAll, ssehttp.EndWriteTimeout, time.Second, 4)
	m.StreamOpened(ssehttp.KindTemplate)
	m.StreamClosed(ssehttp.KindTemplate, ssehttp.EndReason("something new"), time.Second, 0)
	m.Refused("a-code-no-one-knows")
	m.Refused(ssehttp.RefusedStreamLimit)
	m.StreamClosed(0, ssehttp.EndMaxLifetime, time.Second, 0)
	m.Delivered(2, time.Time{})                    // history only: no latency
	m.Delivered(1, time.Now().Add(-time.Second))   // one latency
	m.Delivered(1, time.Now().Add(10*time.Second)) // a clock ahead: zero latency
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	m.CollectHub(h)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ssehub_subscriptions", []string{"kind=exact"}, 0},
		{"ssehub_subscriptions", []string{"kind=template"}, 0},
		{"ssehub_streams_closed_total", []string{"reason=write-timeout"}, 1},
		{"ssehub_streams_closed_total", []string{"reason=other"}, 1},
		{"ssehub_slow_consumers_total", []string{"reason=write-timeout"}, 1},
		{"ssehub_auth_refusals_total", []string{"reason=other"}, 1},
		{"ssehub_limit_refusals_total", []string{"reason=stream_limit"}, 1},
		{"ssehub_limit_refusals_total", []string{"reason=publish_rate"}, 0},
		{"ssehub_streams_closed_total", []string{"reason=max-lifetime"}, 1},
		{"ssehub_events_sent_total", nil, 4},
		{"ssehub_delivery_latency_seconds", nil, 2},
	} {
		if got := value(t, m, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v; want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func TestHandlerToken(t *testing.T) {
	t.Parallel()
	m := New()
	for _, tc := range []struct {
		token, auth string
		code        int
	}{
		{"", "", 200},
		{"s3cret", "", 401},
		{"s3cret", "Bearer wrong", 401},
		{"s3cret", "s3cret", 401},
		{"s3cret", "Bearer s3cret", 200},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		m.Handler(tc.token).ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("token %q, Authorization %q: %d; want %d", tc.token, tc.auth, rec.Code, tc.code)
		}
		if tc.code == 200 && !strings.Contains(rec.Body.String(), "ssehub_events_sent_total") {
			t.Errorf("token %q: body lacks ssehub_events_sent_total", tc.token)
		}
	}
}

func TestInstrumentRecordsRouteAndStatus(t *testing.T) {
	t.Parallel()
	m := New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		// Flushing reaches the real writer through Unwrap.
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the instrumented writer: %v", err)
		}
	})
	h := m.Instrument(mux)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/healthz"}, {"POST", "/teapot"}, {"BREW", "/teapot"}, {"GET", "/flush"}, {"POST", "/healthz"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.path, nil))
	}
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route=/healthz", "method=GET", "code=200"}, 2},
		{[]string{"route=/teapot", "method=POST", "code=418"}, 1},
		{[]string{"route=/teapot", "method=other", "code=418"}, 1},
		{[]string{"route=/flush", "method=GET", "code=200"}, 1},
		{[]string{"route=none", "method=POST", "code=405"}, 1},
	} {
		if got := value(t, m, "ssehub_http_requests_total", tc.labels...); got != tc.want {
			t.Errorf("http_requests_total%v = %v; want %v", tc.labels, got, tc.want)
		}
	}
}

func TestMetricNamesFollowConventions(t *testing.T) {
	t.Parallel()
	s := newStack(t, hub.NewMemoryStore(hub.MemoryConfig{}))
	problems, err := testutil.GatherAndLint(s.m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestGapsByReason(t *testing.T) {
	t.Parallel()
	m := New()
	h, err := hub.New(hub.Config{ReplayLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	m.CollectHub(h)
	for range 3 {
		if _, err := h.Publish(t.Context(), &hub.Update{Topics: []string{"t"}, Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// A resume of all history is cut short by the replay limit.
	sub, err := h.Subscribe(t.Context(), hub.SubscribeRequest{Topics: []hub.Matcher{hub.Exact("t")}, LastEventID: hub.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []*hub.Update
	for gap := false; !gap; {
		<-sub.Ready()
		if got, err = sub.Drain(t.Context(), got[:0]); err != nil {
			t.Fatal(err)
		}
		for _, u := range got {
			gap = gap || u.Type == hub.GapEventType
		}
	}
	if st := h.Stats(); st.Gaps != 1 || st.GapsReplayLimit != 1 || st.GapsUnknownID != 0 || st.GapsHistoryLost != 0 {
		t.Errorf("Stats: %+v; want one replay-limit gap", st)
	}
	for reason, want := range map[string]float64{"replay-limit": 1, "unknown-id": 0, "history-lost": 0} {
		if got := value(t, m, "ssehub_gaps_total", "reason="+reason); got != want {
			t.Errorf("gaps_total{reason=%s} = %v; want %v", reason, got, want)
		}
	}
}
