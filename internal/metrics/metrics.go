// Package metrics exposes what a running hub does in the Prometheus text
// format. It is the one package that imports the Prometheus client; the
// hub and its HTTP face stay standard-library-only and report through
// hub.Hub.Stats (read at scrape time) and the ssehttp.Observer hook (a few
// atomic operations per publish and per write to a subscriber, never per
// event).
//
// Wiring, in order: New; InstrumentStore on the store before the hub is
// built on it; CollectHub once the hub exists; the Metrics itself as
// ssehttp.Config.Observer; Instrument around the mux;
// Handler at /metrics.
package metrics

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/ssehttp"
)

// namespace prefixes every metric name.
const namespace = "ssehub"

// latencyBuckets are the upper bounds, in seconds, of the latency
// histograms: 50 µs to 10 s.
var latencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// kinds are the selector kinds, in the order of Metrics.subscriptions.
var kinds = []ssehttp.SelectorKinds{ssehttp.KindExact, ssehttp.KindTemplate, ssehttp.KindURLPattern, ssehttp.KindAll}

// refusalReasons are the label values of ssehub_auth_refusals_total; any
// other reason counts as "other".
var refusalReasons = []string{ssehttp.RefusedMissingToken, ssehttp.RefusedForbidden, "invalid_token", "invalid_request", "other"}

// limitReasons are the label values of ssehub_limit_refusals_total.
var limitReasons = []string{ssehttp.RefusedStreamLimit, ssehttp.RefusedPublishRate}

// StoreSizer is implemented by stores that know the size of the history
// they retain without reading it (hub.MemoryStore, boltstore.Store). The
// metrics call Size at every scrape, so it must be cheap and safe for
// concurrent use; bytes is the store's own measure of the retained
// updates, as its byte limit counts them.
type StoreSizer interface {
	Size() (updates int, bytes int64)
}

// Metrics is a hub's Prometheus registry and the collectors behind it. It
// implements ssehttp.Observer. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	publish       prometheus.Histogram
	delivery      prometheus.Histogram
	appendLatency prometheus.Histogram
	sent          prometheus.Counter
	subscriptions []prometheus.Gauge // by kinds
	closed        map[ssehttp.EndReason]prometheus.Counter
	closedOther   prometheus.Counter
	refused       map[string]prometheus.Counter // auth and limit reasons
	requests      *prometheus.CounterVec
	writeTimeouts atomic.Uint64

	sized StoreSizer // the store InstrumentStore was given, if it can tell its size
}

var _ ssehttp.Observer = (*Metrics)(nil)

// New returns Metrics with a fresh registry holding the Go runtime and
// process collectors and the hub's event metrics.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hist := func(name, help string) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: latencyBuckets})
		m.reg.MustRegister(h)
		return h
	}
	m.publish = hist("publish_duration_seconds",
		"Time from a publish request reaching the hub to the store's durable acknowledgement, for acknowledged publishes.")
	m.delivery = hist("delivery_latency_seconds",
		"Time from an update's append to its write to a subscriber's connection, observed once per write for its oldest live update (replayed history excluded).")
	m.appendLatency = hist("store_append_duration_seconds",
		"Time the store took to append one update durably (successful appends).")
	m.sent = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "events_sent_total",
		Help: "Events written to subscribers' connections (live, replayed and gap notices)."})
	subs := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "subscriptions",
		Help: "Open streams with at least one topic selector of the kind: exact, template (v0.24 topic=), urlpattern, all (the * wildcard)."}, []string{"kind"})
	for _, k := range kinds {
		m.subscriptions = append(m.subscriptions, subs.WithLabelValues(k.String()))
	}
	closed := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "streams_closed_total",
		Help: "Streams ended, by reason."}, []string{"reason"})
	m.closed = make(map[ssehttp.EndReason]prometheus.Counter)
	for _, r := range ssehttp.EndReasons {
		m.closed[r] = closed.WithLabelValues(string(r))
	}
	m.closedOther = closed.WithLabelValues("other")
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "auth_refusals_total",
		Help: "Requests refused for their credentials, by reason: missing_token, invalid_token, invalid_request (malformed credentials), forbidden (the token does not grant it)."}, []string{"reason"})
	m.refused = make(map[string]prometheus.Counter)
	for _, r := range refusalReasons {
		m.refused[r] = refused.WithLabelValues(r)
	}
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "limit_refusals_total",
		Help: "Requests refused with 429 by a limit, by reason: stream_limit (too many streams of one client, subject or the hub), publish_rate."}, []string{"reason"})
	for _, r := range limitReasons {
		m.refused[r] = limited.WithLabelValues(r)
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests by route, method and status code, counted when the handler returns (a stream served by its own goroutine when it ends)."},
		[]string{"route", "method", "code"})
	m.reg.MustRegister(m.sent, subs, closed, refused, limited, m.requests)
	return m
}

// Registry returns the registry, to add collectors to or gather from.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. A
// non-empty token makes it answer 401 to any request without the header
// "Authorization: Bearer <token>".
func (m *Metrics) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics require a bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Published implements ssehttp.Observer.
func (m *Metrics) Published(d time.Duration) { m.publish.Observe(d.Seconds()) }

// Delivered implements ssehttp.Observer.
func (m *Metrics) Delivered(n int, appended time.Time) {
	m.sent.Add(float64(n))
	if !appended.IsZero() {
		// Another node's clock may run ahead: count that as no latency.
		m.delivery.Observe(max(time.Since(appended).Seconds(), 0))
	}
}

// Refused implements ssehttp.Observer.
func (m *Metrics) Refused(reason string) {
	c, ok := m.refused[reason]
	if !ok {
		c = m.refused["other"]
	}
	c.Inc()
}

// StreamOpened implements ssehttp.Observer.
func (m *Metrics) StreamOpened(k ssehttp.SelectorKinds) {
	for i, kind := range kinds {
		if k&kind != 0 {
			m.subscriptions[i].Inc()
		}
	}
}

// StreamClosed implements ssehttp.Observer.
func (m *Metrics) StreamClosed(k ssehttp.SelectorKinds, reason ssehttp.EndReason, _ time.Duration, _ int) {
	for i, kind := range kinds {
		if k&kind != 0 {
			m.subscriptions[i].Dec()
		}
	}
	c, ok := m.closed[reason]
	if !ok {
		c = m.closedOther
	}
	c.Inc()
	if reason == ssehttp.EndWriteTimeout {
		m.writeTimeouts.Add(1)
	}
}

// InstrumentStore returns s with its Append latency observed, and
// remembers s to read its size at scrape time if it is a StoreSizer. The
// returned store has a Dir method exactly when s has one (the web UI
// reads it); Unwrap returns s.
func (m *Metrics) InstrumentStore(s hub.Store) hub.Store {
	if sz, ok := s.(StoreSizer); ok {
		m.sized = sz
	}
	ts := &timedStore{Store: s, hist: m.appendLatency}
	if d, ok := s.(interface{ Dir() string }); ok {
		return &timedDirStore{timedStore: ts, dir: d}
	}
	return ts
}

// timedStore observes the latency of its Store's appends.
type timedStore struct {
	hub.Store
	hist prometheus.Histogram
}

// Append implements hub.Store.
func (s *timedStore) Append(ctx context.Context, u *hub.Update) error {
	start := time.Now()
	err := s.Store.Append(ctx, u)
	if err == nil {
		s.hist.Observe(time.Since(start).Seconds())
	}
	return err
}

// Unwrap returns the instrumented store.
func (s *timedStore) Unwrap() hub.Store { return s.Store }

// timedDirStore is a timedStore whose store has a data directory.
type timedDirStore struct {
	*timedStore
	dir interface{ Dir() string }
}

// Dir returns the store's data directory.
func (s *timedDirStore) Dir() string { return s.dir.Dir() }

// CollectHub registers the metrics read from h at scrape time: its
// Stats counters and, when the store given to InstrumentStore (or else
// h.Store()) is a StoreSizer, the retained history's size. Call it once.
func (m *Metrics) CollectHub(h *hub.Hub) {
	sized := m.sized
	if sized == nil {
		sized, _ = h.Store().(StoreSizer)
	}
	m.reg.MustRegister(&hubCollector{h: h, sized: sized, writeTimeouts: &m.writeTimeouts})
}

// hubCollector turns hub.Stats into metrics at every scrape.
type hubCollector struct {
	h             *hub.Hub
	sized         StoreSizer
	writeTimeouts *atomic.Uint64
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	descSubscribers = desc("subscribers", "Active subscriptions (connected subscribers).")
	descPublished   = desc("published_total", "Updates this hub appended to the store.")
	descDispatched  = desc("dispatched_total", "Updates fanned out from the store's log, whichever hub published them.")
	descDelivered   = desc("delivered_total", "Updates queued to subscribers, live and replayed.")
	descReplayed    = desc("replayed_total", "Updates served from history to resuming subscribers.")
	descSlow        = desc("slow_consumers_total", "Subscribers disconnected for being too slow: queue-overflow (their queue filled up) or write-timeout (a write to them did not complete in time).", "reason")
	descGaps        = desc("gaps_total", "Gap notices sent to resuming subscribers who cannot get everything they missed, by reason: unknown-id, replay-limit, history-lost.", "reason")
	descStoreUpd    = desc("store_updates", "Updates retained in the store's history.")
	descStoreBytes  = desc("store_bytes", "Size of the updates retained in the store's history, in bytes, as the store's byte limit counts it.")
)

// Describe implements prometheus.Collector.
func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSubscribers, descPublished, descDispatched, descDelivered, descReplayed, descSlow, descGaps} {
		ch <- d
	}
	if c.sized != nil {
		ch <- descStoreUpd
		ch <- descStoreBytes
	}
}

// Collect implements prometheus.Collector.
func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(descSubscribers, prometheus.GaugeValue, float64(st.Subscribers))
	counter(descPublished, st.Published)
	counter(descDispatched, st.Dispatched)
	counter(descDelivered, st.Delivered)
	counter(descReplayed, st.Replayed)
	counter(descSlow, st.SlowConsumers, "queue-overflow")
	counter(descSlow, c.writeTimeouts.Load(), "write-timeout")
	counter(descGaps, st.GapsUnknownID, string(hub.GapUnknownID))
	counter(descGaps, st.GapsReplayLimit, string(hub.GapReplayLimit))
	counter(descGaps, st.GapsHistoryLost, string(hub.GapHistoryLost))
	if c.sized != nil {
		n, b := c.sized.Size()
		ch <- prometheus.MustNewConstMetric(descStoreUpd, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(descStoreBytes, prometheus.GaugeValue, float64(b))
	}
}

// Instrument counts the requests mux serves by route: the pattern of the
// http.ServeMux that matched (its path, without a method), or "none". The
// ResponseWriter it passes on unwraps (Unwrap) to the original, so
// http.ResponseController still reaches flushing, deadlines and
// hijacking. A request is counted when the handler returns: a stream
// served by its own goroutine when it ends, one served from a hijacked
// connection when it starts, with status 200 unless another was written.
func (m *Metrics) Instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(route(r.Pattern), method(r.Method), strconv.Itoa(code)).Inc()
		}()
		mux.ServeHTTP(sw, r)
	})
}

// route returns the path of a ServeMux pattern ("GET /healthz" is
// "/healthz"), or "none" for no pattern.
func route(pattern string) string {
	if pattern == "" {
		return "none"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return strings.TrimLeft(pattern[i:], " \t")
	}
	return pattern
}

// method bounds the method label to the methods the hub serves.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions:
		return m
	}
	return "other"
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the first final status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implies status 200 if none was written.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the original ResponseWriter, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
