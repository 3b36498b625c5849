package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/sse"
)

// StatsPath is where the stats stream is mounted: outside the Mercure
// namespace, under the hub's own well-known prefix.
const StatsPath = "/.well-known/ssehub/stats"

// StatsTopic is the reserved topic that stands for the stats stream in
// subscriber tokens: when the stream is not open to everyone, a token may
// read it if its subscribe selectors match StatsTopic (as they would the
// topic of a private update). "*" matches it, as it matches every topic.
const StatsTopic = "urn:ssehub:stats"

// StatsEventType is the SSE event type of every snapshot.
const StatsEventType = "stats"

// Defaults of StatsConfig.
const (
	DefaultStatsInterval = time.Second
	// MaxExtraFigures caps the figures taken from StatsConfig.Extra per
	// snapshot; the rest (in key order) are dropped.
	MaxExtraFigures = 200
)

// StatsConfig configures a Stats handler. Hub is required.
type StatsConfig struct {
	// Hub is the hub whose counters are streamed.
	Hub *hub.Hub
	// Open lets anyone read the stream, with or without a token. When
	// false, a reader needs a subscriber token (Authorization header or
	// authorization cookie) whose subscribe selectors match StatsTopic.
	// ssehub serve sets it to its --anonymous setting.
	Open bool
	// Auth authenticates readers when Open is false (and refuses invalid
	// credentials when it is true). Nil with Open false refuses everyone.
	Auth auth.Authenticator
	// Extra, when set, is called once per snapshot for additional figures
	// (for instance from a metrics package). Keys should be short
	// snake_case names (empty keys and keys over 128 bytes are dropped);
	// NaN and infinite values are dropped, and at most
	// MaxExtraFigures keys are kept. It must be safe for concurrent use
	// and must not return per-topic or per-client figures: the stream is
	// meant to be safe to show to anyone who may read it.
	Extra func() map[string]float64
	// Interval is the time between snapshots. Zero means
	// DefaultStatsInterval (1 s).
	Interval time.Duration
	// WriteTimeout bounds each write to a reader. Zero means 10 s.
	WriteTimeout time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Ticks, when set, replaces the per-stream ticker: each stream calls it
	// once and writes a snapshot whenever the returned channel delivers,
	// calling stop when it ends. Tests use it to drive snapshots without
	// waiting.
	Ticks func() (c <-chan time.Time, stop func())
	// Logger receives refused requests at debug level. Nil discards.
	Logger *slog.Logger
}

// Snapshot is one event of the stats stream, encoded as JSON. Counters are
// totals since the hub started; Rates are per second over the time since
// the stream's previous snapshot. Nothing in it names a topic, an event or
// a client.
type Snapshot struct {
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Uptime is the time since the handler was created (the hub's start),
	// in seconds.
	Uptime float64 `json:"uptime_seconds"`
	// Elapsed is the time since this stream's previous snapshot, in
	// seconds; zero in the first snapshot, whose Rates are all zero.
	Elapsed float64 `json:"elapsed_seconds"`
	// Subscribers is the number of open subscriptions.
	Subscribers int `json:"subscribers"`
	// Published counts updates this hub stored.
	Published uint64 `json:"published"`
	// Dispatched counts updates fanned out from the store's log.
	Dispatched uint64 `json:"dispatched"`
	// Delivered counts updates queued to subscribers, live and replayed.
	Delivered uint64 `json:"delivered"`
	// Replayed counts updates served from history on resume.
	Replayed uint64 `json:"replayed"`
	// SlowConsumers counts subscriptions ended because they fell behind.
	SlowConsumers uint64 `json:"slow_consumers"`
	// Gaps counts gap notices sent to resuming subscribers.
	Gaps uint64 `json:"gaps"`
	// GapsByReason splits Gaps by reason: "unknown-id", "replay-limit"
	// and "history-lost" (see docs/protocol.md).
	GapsByReason map[hub.GapReason]uint64 `json:"gaps_by_reason"`
	// Rates are the counters' growth per second.
	Rates Rates `json:"rates"`
	// Store describes the store, when it could be asked.
	Store *StoreStats `json:"store,omitempty"`
	// Extra holds the figures of StatsConfig.Extra.
	Extra map[string]float64 `json:"extra,omitempty"`
}

// Rates are counters' growth per second between two snapshots.
type Rates struct {
	Published     float64 `json:"published"`
	Dispatched    float64 `json:"dispatched"`
	Delivered     float64 `json:"delivered"`
	Replayed      float64 `json:"replayed"`
	SlowConsumers float64 `json:"slow_consumers"`
	Gaps          float64 `json:"gaps"`
}

// StoreStats describes the hub's store.
type StoreStats struct {
	// Retained is the number of retained updates: the store's own count
	// when it keeps one (a Size method, as the bolt store has), otherwise
	// computed from the positions of the oldest and newest, which is exact
	// for stores whose sequence numbers are consecutive (the memory store)
	// and an upper bound otherwise.
	Retained uint64 `json:"retained"`
	// RetainedBytes is the size of the retained updates as the store
	// counts it for its byte limit, for stores with a Size method.
	RetainedBytes *int64 `json:"retained_bytes,omitempty"`
	// LatencyMS is how long the store took to answer Bounds, in
	// milliseconds: a probe of its responsiveness.
	LatencyMS float64 `json:"latency_ms"`
	// DiskBytes is the size of the store's files, for stores that keep
	// them in a directory (the bolt store); absent otherwise.
	DiskBytes *int64 `json:"disk_bytes,omitempty"`
	// Error says the store could not be asked ("unavailable"), without
	// details.
	Error string `json:"error,omitempty"`
}

// Stats streams snapshots of the hub's counters as Server-Sent Events.
// It is safe for concurrent use.
type Stats struct {
	cfg      StatsConfig
	log      *slog.Logger
	start    time.Time
	draining chan struct{}
	once     sync.Once

	// disk caches the store's size on disk, which is read at most once
	// per interval however many readers there are.
	diskMu   sync.Mutex
	diskAt   time.Time
	diskSize *int64
}

// NewStats returns a handler that streams cfg.Hub's counters.
func NewStats(cfg StatsConfig) (*Stats, error) {
	if cfg.Hub == nil {
		return nil, errors.New("webui: StatsConfig.Hub is required")
	}
	if cfg.Interval < 0 || cfg.WriteTimeout < 0 {
		return nil, errors.New("webui: negative stats interval or write timeout")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultStatsInterval
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Stats{cfg: cfg, log: cfg.Logger, draining: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.start = cfg.Now()
	return s, nil
}

// Drain ends every open stats stream after the event being written, and
// refuses new ones with 503. It is idempotent; ssehub serve calls it when
// it shuts down.
func (s *Stats) Drain() { s.once.Do(func() { close(s.draining) }) }

// ServeHTTP answers GET with the event stream: a retry field, then one
// "stats" event (JSON Snapshot data) at once and one per interval.
func (s *Stats) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	select {
	case <-s.draining:
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusServiceUnavailable, "hub is shutting down")
		return
	default:
	}
	if !s.allowed(w, r) {
		return
	}
	sw, err := sse.Upgrade(w, r, &sse.WriterOptions{WriteTimeout: s.cfg.WriteTimeout})
	if err != nil {
		s.log.Error("cannot stream stats", "err", err)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	var ticks <-chan time.Time
	if s.cfg.Ticks != nil {
		c, stop := s.cfg.Ticks()
		defer stop()
		ticks = c
	} else {
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		ticks = t.C
	}
	if sw.Retry(2*time.Second) != nil {
		return
	}
	var prev *Snapshot
	for {
		snap := s.snapshot(r.Context(), prev)
		data, err := json.Marshal(snap)
		if err != nil { // cannot happen: Extra is sanitized
			s.log.Error("encoding stats", "err", err)
			return
		}
		if sw.WriteEvent(sse.Event{Type: StatsEventType, Data: string(data)}) != nil {
			return
		}
		prev = snap
		select {
		case <-ticks:
		case <-s.draining:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// allowed authenticates r; it answers refusals itself.
func (s *Stats) allowed(w http.ResponseWriter, r *http.Request) bool {
	var grant *auth.Grant
	if s.cfg.Auth != nil {
		g, err := s.cfg.Auth.Authenticate(r, auth.Subscriber)
		if err != nil {
			var ae *auth.Error
			if errors.As(err, &ae) {
				w.Header().Set("WWW-Authenticate", ae.Challenge())
				s.fail(w, r, ae.Status, ae.Description)
				return false
			}
			s.log.Error("authentication failed", "err", err)
			s.fail(w, r, http.StatusInternalServerError, "authentication failed")
			return false
		}
		grant = g
	}
	switch {
	case s.cfg.Open:
		return true
	case grant == nil:
		w.Header().Set("WWW-Authenticate", "Bearer")
		s.fail(w, r, http.StatusUnauthorized, "reading stats requires a token")
		return false
	case !grant.CanRead([]string{StatsTopic}):
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		s.fail(w, r, http.StatusForbidden, "token does not grant reading "+StatsTopic)
		return false
	}
	return true
}

func (s *Stats) fail(w http.ResponseWriter, r *http.Request, status int, reason string) {
	s.log.Debug("stats request refused", "method", r.Method, "status", status, "reason", reason, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, reason)
}

// snapshot takes a snapshot; prev is the stream's previous one, or nil.
func (s *Stats) snapshot(ctx context.Context, prev *Snapshot) *Snapshot {
	now := s.cfg.Now()
	st := s.cfg.Hub.Stats()
	snap := &Snapshot{
		Time:          now.UTC(),
		Uptime:        now.Sub(s.start).Seconds(),
		Subscribers:   st.Subscribers,
		Published:     st.Published,
		Dispatched:    st.Dispatched,
		Delivered:     st.Delivered,
		Replayed:      st.Replayed,
		SlowConsumers: st.SlowConsumers,
		Gaps:          st.Gaps,
		GapsByReason: map[hub.GapReason]uint64{
			hub.GapUnknownID:   st.GapsUnknownID,
			hub.GapReplayLimit: st.GapsReplayLimit,
			hub.GapHistoryLost: st.GapsHistoryLost,
		},
		Store: s.store(ctx, now),
		Extra: s.extra(),
	}
	if prev != nil {
		if dt := now.Sub(prev.Time).Seconds(); dt > 0 {
			snap.Elapsed = dt
			rate := func(cur, old uint64) float64 {
				if cur < old {
					return 0
				}
				return float64(cur-old) / dt
			}
			snap.Rates = Rates{
				Published:     rate(st.Published, prev.Published),
				Dispatched:    rate(st.Dispatched, prev.Dispatched),
				Delivered:     rate(st.Delivered, prev.Delivered),
				Replayed:      rate(st.Replayed, prev.Replayed),
				SlowConsumers: rate(st.SlowConsumers, prev.SlowConsumers),
				Gaps:          rate(st.Gaps, prev.Gaps),
			}
		}
	}
	return snap
}

// store asks the store for its bounds, timing the call.
func (s *Stats) store(ctx context.Context, now time.Time) *StoreStats {
	st := s.cfg.Hub.Store()
	if st == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Interval)
	defer cancel()
	t0 := time.Now()
	oldest, newest, err := st.Bounds(ctx)
	out := &StoreStats{LatencyMS: float64(time.Since(t0).Nanoseconds()) / 1e6}
	if err != nil {
		out.Error = "unavailable"
		return out
	}
	if newest.Seq > 0 && newest.Seq >= oldest.Seq {
		out.Retained = newest.Seq - oldest.Seq + 1
	}
	if sz, ok := st.(interface{ Size() (int, int64) }); ok {
		n, b := sz.Size()
		out.Retained, out.RetainedBytes = uint64(max(n, 0)), &b
	}
	if d, ok := st.(interface{ Dir() string }); ok {
		out.DiskBytes = s.disk(d.Dir(), now)
	}
	return out
}

// disk returns the size of the regular files in dir, read at most once
// per interval.
func (s *Stats) disk(dir string, now time.Time) *int64 {
	s.diskMu.Lock()
	defer s.diskMu.Unlock()
	if s.diskSize != nil && now.Sub(s.diskAt) < s.cfg.Interval && !now.Before(s.diskAt) {
		return s.diskSize
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
			n += fi.Size()
		}
	}
	s.diskAt, s.diskSize = now, &n
	return &n
}

// extra calls the Extra hook and keeps the figures JSON can carry.
func (s *Stats) extra() map[string]float64 {
	if s.cfg.Extra == nil {
		return nil
	}
	in := s.cfg.Extra()
	if len(in) == 0 {
		return nil
	}
	keys := make([]string, 0, len(in))
	for k, v := range in {
		if k != "" && len(k) <= 128 && !math.IsNaN(v) && !math.IsInf(v, 0) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > MaxExtraFigures {
		keys = keys[:MaxExtraFigures]
	}
	out := make(map[string]float64, len(keys))
	for _, k := range keys {
		out[k] = in[k]
	}
	return out
}
