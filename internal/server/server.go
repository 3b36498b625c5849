// Package server wires ssehub together: configuration to store, hub,
// authentication, the Mercure handler, health endpoints, the web UI and an
// http.Server, with graceful shutdown. Tests boot the whole hub with
// Start on "127.0.0.1:0".
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/metrics"
	"github.com/ssehub/ssehub/internal/webui"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/ssehttp"
)

// Config is everything `ssehub serve` can be told. The zero value serves on
// localhost:8080 with an in-memory store, anonymous subscribers and a
// generated publisher key.
type Config struct {
	// Addr is the listen address. Empty means "localhost:8080".
	Addr string
	// PublicURL is the hub's public URL, used to resolve relative topics
	// and selectors, to guard the reserved namespace and as the audience
	// tokens may name (see Auth). Empty means derived from Addr.
	PublicURL string
	// PublisherKey is the HMAC secret publisher tokens are signed with.
	// Empty (and no key in Auth) means a generated random key: with the
	// embedded store, the one kept in DataDir (KeyFileName, mode 0600),
	// written on the first start and reused by the next ones; with any
	// other store, a new one each start (see PublisherKeyFile).
	PublisherKey string
	// SubscriberKey is the HMAC secret subscriber tokens are signed with.
	// Empty means PublisherKey.
	SubscriberKey string
	// Anonymous lets subscribers without a token receive public updates.
	Anonymous bool
	// Heartbeat is the keep-alive comment interval; zero means 25 s.
	Heartbeat time.Duration
	// CORSOrigins are the origins allowed cross-origin with credentials.
	CORSOrigins []string
	// TLSCert and TLSKey are PEM files; when both are set the hub serves
	// HTTPS and HTTP/2.
	TLSCert, TLSKey string
	// H2C enables cleartext HTTP/2 (for use behind a proxy that speaks it).
	H2C bool
	// ShutdownGrace bounds a graceful shutdown. Zero means 10 s.
	ShutdownGrace time.Duration
	// Engine selects the store: "bolt" (the default: the embedded durable
	// store in DataDir), "memory" (history lost on exit), or the URL of a
	// shared engine that several hubs use as one: redis:// or rediss://
	// (Redis Streams, package redisstore) or nats:// (NATS JetStream,
	// package natsstore).
	Engine string
	// DataDir is the embedded store's directory. Empty means
	// DefaultDataDir.
	DataDir string
	// CommitDelay is how long the embedded store waits for more publishes
	// to share a commit under heavy publishing (boltstore.Config.CommitDelay).
	// Zero means no wait.
	CommitDelay time.Duration
	// SegmentSize is the size of the embedded store's write-ahead log
	// segments (boltstore.Config.SegmentSize). Zero means 4 MiB.
	SegmentSize int64
	// AcceptLostUpdates opens the embedded store even though its
	// write-ahead log shows acknowledged updates may be lost, under a new
	// epoch (boltstore.Config.AcceptLostUpdates).
	AcceptLostUpdates bool
	// TailBytes caps the memory of the recent updates the embedded store
	// keeps for delivery (boltstore.Config.TailBytes). Zero means 64 MiB.
	TailBytes int64
	// Retention bounds the history the store keeps. Zero fields mean the
	// store's defaults.
	Retention Retention
	// IdempotencyWindow is how long Idempotency-Key values are remembered.
	// Zero means the hub's default (10 minutes).
	IdempotencyWindow time.Duration
	// ReplayLimit, when positive, caps how many updates one resume
	// replays; past it the subscriber gets a replay-limit gap notice. Zero
	// replays everything the subscriber missed (see hub.Config).
	ReplayLimit int
	// QueueBytes caps the bytes of updates that may wait for one
	// subscriber before it is ended as a slow consumer
	// (hub.Config.QueueBytes). Zero means 8 MiB.
	QueueBytes int
	// IdempotencyBytes caps the memory of the remembered Idempotency-Key
	// values (hub.Config.IdempotencyBytes). Zero means 256 MiB.
	IdempotencyBytes int64
	// MatchCacheBytes caps the memory of the cache of pattern and
	// template match results (selector.Config.MatchCacheBytes). Zero
	// means 32 MiB; negative disables the cache.
	MatchCacheBytes int
	// CompileCacheBytes caps the estimated memory of the cache of
	// compiled URL patterns and templates
	// (selector.Config.CompileCacheBytes). Zero means 32 MiB; negative
	// disables the cache.
	CompileCacheBytes int
	// Store, when set, is used instead of the one Engine names (and
	// Retention does not apply). The server closes it on shutdown.
	Store hub.Store
	// StatsExtra, when set, adds figures to the stats stream the dashboard
	// reads (webui.StatsConfig.Extra): aggregate figures only, never
	// per-topic or per-client ones.
	StatsExtra func() map[string]float64
	// Logger receives the server's logs. Nil discards them. Every line
	// passes through Redact first: no token reaches it.
	Logger *slog.Logger
	// Auth configures token verification beyond the HMAC secrets above:
	// public keys, JWK Sets, per-issuer keys, audience, issuer, required
	// exp, cookie name, query tokens and selector limits. PublisherKey and
	// SubscriberKey, when set, become its Publisher and Subscriber keys
	// (keeping their Algorithms). Its Selectors is set by the server.
	// When neither its Audience nor its HubAudiences is set, HubAudiences
	// becomes the hub's public URL (URL, with and without a trailing
	// slash) and its endpoint URL (HubURL): a token whose aud names
	// another audience is refused, one without aud is accepted.
	Auth jwtauth.Config
	// Limits caps streams (in total, per IP, per token subject) and the
	// publish rate of each publisher. The zero value limits nothing.
	Limits ssehttp.Limits
	// MaxLifetime ends every stream after this long (jittered), so that
	// clients rotate over hubs. Zero means never.
	MaxLifetime time.Duration
	// MaxBodyBytes caps a publish body (413). Zero means 1 MiB.
	MaxBodyBytes int64
	// MaxTopics caps the topics of one publish (400). Zero means 100.
	MaxTopics int
	// MaxSelectors caps the topic selectors of one subscribe (400). Zero
	// means 1000.
	MaxSelectors int
	// MaxTemplateVariables caps the variables of one URI template selector
	// (400). Zero means selector.DefaultMaxVariables.
	MaxTemplateVariables int
	// ReadHeaderTimeout bounds reading a request's headers. Zero means
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; streams
	// lift it once their request is read. Zero means DefaultReadTimeout.
	ReadTimeout time.Duration
	// Metrics configures the Prometheus endpoint, /metrics. The zero
	// value serves it on the main listener, unprotected.
	Metrics Metrics
	// Subscriptions turns on Mercure's active subscriptions: a private
	// subscription event (type "mercure") when a subscription starts and
	// ends, and the subscriptions API under
	// /.well-known/mercure/subscriptions. With a shared engine the registry
	// lives in the engine and spans every hub on it.
	Subscriptions bool
	// PresenceLease is how long the subscriptions of a hub that died
	// without saying so stay listed in a shared engine's registry before
	// another hub reaps them and announces their end. Zero means
	// DefaultPresenceLease.
	PresenceLease time.Duration
}

// DefaultPresenceLease is the default of Config.PresenceLease.
const DefaultPresenceLease = 15 * time.Second

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Disabled turns metrics off: no /metrics, no instrumentation.
	Disabled bool
	// Addr, when set, serves /metrics on a listener of its own at this
	// address (e.g. "127.0.0.1:9090"), and not on the main one.
	Addr string
	// Token, when set, is required as "Authorization: Bearer <Token>"
	// to read the metrics.
	Token string
}

// DefaultDataDir is where the embedded store lives when Config.DataDir is
// empty: a directory in the working directory.
const DefaultDataDir = "ssehub-data"

// Retention bounds history. A zero field means the store's default; a
// negative one means no limit.
type Retention struct {
	// MaxUpdates is the number of updates kept.
	MaxUpdates int
	// MaxBytes is the size of the updates kept.
	MaxBytes int64
	// MaxAge is how long an update is kept.
	MaxAge time.Duration
	// Topics limit the history of single topics, on top of the limits
	// above: the first rule whose selector matches a topic applies to it
	// (see TopicRule and hub.TopicLimits).
	Topics []TopicRule
}

// openStore opens the store cfg names, with topics as its per-topic
// limits.
func openStore(cfg Config, topics hub.TopicLimits) (hub.Store, error) {
	switch cfg.Engine {
	case "", "bolt":
		dir := cfg.DataDir
		if dir == "" {
			dir = DefaultDataDir
		}
		return boltstore.Open(dir, boltstore.Config{
			MaxUpdates:  cfg.Retention.MaxUpdates,
			MaxBytes:    cfg.Retention.MaxBytes,
			MaxAge:      cfg.Retention.MaxAge,
			TopicLimits: topics,
			CommitDelay: cfg.CommitDelay,
			SegmentSize: cfg.SegmentSize,
			TailBytes:   cfg.TailBytes,

			AcceptLostUpdates: cfg.AcceptLostUpdates,
		})
	case "memory":
		r := cfg.Retention
		return hub.NewMemoryStore(hub.MemoryConfig{MaxUpdates: r.MaxUpdates, MaxBytes: int(r.MaxBytes), MaxAge: max(r.MaxAge, 0), TopicLimits: topics}), nil
	default:
		if IsEngineURL(cfg.Engine) {
			return openShared(cfg, topics)
		}
		return nil, fmt.Errorf("unknown store engine %q (want bolt, memory, redis://… or nats://…)", cfg.Engine)
	}
}

// Server is a running hub.
type Server struct {
	cfg      Config
	log      *slog.Logger
	hub      *hub.Hub
	handler  *ssehttp.Handler
	http     *http.Server
	ln       net.Listener
	url      string
	genKey   bool
	pubKey   string
	keyFile  string     // where the generated key is kept, if it is
	disk     *diskWatch // the embedded store's, nil with another store
	draining atomic.Bool
	serveErr chan error
	metrics  *metrics.Metrics // nil when disabled
	mhttp    *http.Server     // the metrics listener's server, if any
	mln      net.Listener
	mdone    chan struct{} // closed when mhttp stops serving
	presence hub.Presence  // nil without Config.Subscriptions
	presStop func()        // stops the presence sweeper and waits for it
	stopOnce sync.Once
	stopErr  error
}

// Start builds the hub described by cfg and starts serving. It returns once
// the listener is open, so Addr and URL are valid.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "localhost:8080"
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, serveErr: make(chan error, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = slog.New(redacting(s.log.Handler()))
	s.pubKey = cfg.PublisherKey
	var rules *topicRules // compiled once the hub URL is known
	if cfg.Store == nil {
		rules = newTopicRules(cfg.Retention.Topics)
		st, err := openStore(cfg, rules.topicLimits())
		if err != nil {
			return nil, err
		}
		if ls, ok := st.(interface{ Lost() error }); ok && cfg.AcceptLostUpdates {
			if lost := ls.Lost(); lost != nil {
				s.log.Warn("store: started a new epoch, accepting that acknowledged updates may be lost; clients resuming from before are told of the gap", "cause", lost)
			} else {
				s.log.Info("store: --accept-lost-updates had nothing to accept: the write-ahead log is whole")
			}
		}
		if needsGeneratedKey(cfg) && (cfg.Engine == "" || cfg.Engine == "bolt") {
			// The store holds the data directory now: the key kept there
			// is this hub's alone.
			dir := cmp.Or(cfg.DataDir, DefaultDataDir)
			if s.pubKey, err = keepKey(dir); err != nil {
				st.Close()
				return nil, err
			}
			s.genKey, s.keyFile = true, filepath.Join(dir, KeyFileName)
		}
		if ds, ok := st.(dirStore); ok {
			s.disk = watchDisk(ds, cmp.Or(cfg.SegmentSize, defaultSegmentSize))
			st = s.disk
		}
		cfg.Store = st
		s.cfg.Store = st
	}
	if needsGeneratedKey(cfg) && !s.genKey {
		s.pubKey, s.genKey = generateKey(), true
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		cfg.Store.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	tlsOn := cfg.TLSCert != "" && cfg.TLSKey != ""
	s.url = publicURL(cfg.PublicURL, cfg.Addr, ln.Addr(), tlsOn)

	fail := func(err error) (*Server, error) {
		ln.Close()
		if s.mln != nil {
			s.mln.Close()
		}
		if cfg.Store != nil {
			cfg.Store.Close()
		}
		return nil, err
	}
	if !cfg.Metrics.Disabled {
		s.metrics = metrics.New()
		cfg.Store = s.metrics.InstrumentStore(cfg.Store)
		if cfg.Metrics.Addr != "" {
			if s.mln, err = net.Listen("tcp", cfg.Metrics.Addr); err != nil {
				return fail(fmt.Errorf("listen on %s (metrics): %w", cfg.Metrics.Addr, err))
			}
		}
	}
	comp, err := selector.New(selector.Config{HubURL: s.url + ssehttp.DefaultPath, MaxSelectors: cfg.MaxSelectors, MaxVariables: cfg.MaxTemplateVariables,
		MatchCacheBytes: cfg.MatchCacheBytes, CompileCacheBytes: cfg.CompileCacheBytes})
	if err != nil {
		return fail(err)
	}
	if err := rules.compile(comp); err != nil {
		return fail(err)
	}
	jcfg, err := authConfig(cfg, s.pubKey, comp)
	if err != nil {
		return fail(fmt.Errorf("configuring authentication: %w", err))
	}
	if jcfg.Audience == "" && len(jcfg.HubAudiences) == 0 {
		// A token for another service is not a token for this hub.
		jcfg.HubAudiences = HubAudiences(s.url)
	}
	authn, err := jwtauth.New(jcfg)
	if err != nil {
		return fail(fmt.Errorf("configuring authentication: %w", err))
	}
	s.hub, err = hub.New(hub.Config{Store: cfg.Store, Logger: s.log, IdempotencyWindow: cfg.IdempotencyWindow, ReplayLimit: cfg.ReplayLimit,
		QueueBytes: cfg.QueueBytes, IdempotencyBytes: cfg.IdempotencyBytes})
	if err != nil {
		return fail(err)
	}
	if cfg.Subscriptions {
		if s.presence, err = openPresence(s.cfg.Store, cfg.PresenceLease); err != nil {
			s.hub.Close(context.Background())
			return fail(err)
		}
	}
	var obs ssehttp.Observer
	if s.metrics != nil {
		s.metrics.CollectHub(s.hub)
		obs = s.metrics
	}
	s.handler, err = ssehttp.New(ssehttp.Config{
		Hub:              s.hub,
		Compiler:         comp,
		Auth:             authn,
		Anonymous:        cfg.Anonymous,
		Heartbeat:        cfg.Heartbeat,
		CORSOrigins:      cfg.CORSOrigins,
		Limits:           cfg.Limits,
		MaxLifetime:      cfg.MaxLifetime,
		MaxBodyBytes:     cfg.MaxBodyBytes,
		MaxTopics:        cfg.MaxTopics,
		Logger:           s.log,
		Observer:         obs,
		Presence:         s.presence,
		ResourceMetadata: metadataURL(s.url),
	})
	if err != nil {
		s.hub.Close(context.Background())
		return fail(err)
	}

	// The stats stream is open when anonymous subscribers are; otherwise
	// it needs a subscriber token that may read webui.StatsTopic.
	stats, err := webui.NewStats(webui.StatsConfig{Hub: s.hub, Open: cfg.Anonymous, Auth: authn, Extra: cfg.StatsExtra, Logger: s.log})
	if err != nil {
		s.hub.Close(context.Background())
		return fail(err)
	}

	mux := http.NewServeMux()
	mux.Handle(ssehttp.DefaultPath, s.handler)
	mux.Handle(webui.StatsPath, stats)
	mux.Handle(ssehttp.HistoryPath, s.handler.History())
	mux.Handle("GET "+resourceMetadataPath, metadataHandler(s.HubURL(), jcfg, s.presence != nil))
	mux.Handle(ssehttp.SubscriptionsPath, s.handler.Subscriptions())
	mux.Handle(ssehttp.SubscriptionsPath+"/", s.handler.Subscriptions())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("/", webui.Handler())
	var root http.Handler = mux
	if s.metrics != nil {
		root = s.metrics.Instrument(mux)
		if s.mln == nil {
			mux.Handle("GET /metrics", s.metrics.Handler(cfg.Metrics.Token))
		} else {
			mmux := http.NewServeMux()
			mmux.Handle("GET /metrics", s.metrics.Handler(cfg.Metrics.Token))
			s.mhttp = &http.Server{Handler: mmux, ReadHeaderTimeout: 10 * time.Second,
				ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
			s.mdone = make(chan struct{})
			go func() {
				defer close(s.mdone)
				if err := s.mhttp.Serve(s.mln); !errors.Is(err, http.ErrServerClosed) {
					s.log.Error("metrics listener failed", "err", err)
				}
			}()
		}
	}

	s.http = &http.Server{
		Handler:           root,
		ReadHeaderTimeout: cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       cmp.Or(cfg.ReadTimeout, DefaultReadTimeout),
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// Streams end through the handler's Drain; Shutdown then finds idle
	// connections. HTTP/2 streams are ended the same way.
	s.http.RegisterOnShutdown(s.handler.Drain)
	s.http.RegisterOnShutdown(stats.Drain)
	if cfg.H2C {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.http.Protocols = &p
	}
	if s.presence != nil {
		s.presStop = s.handler.StartPresence(cmp.Or(cfg.PresenceLease, DefaultPresenceLease) / 3)
	}
	go func() {
		var err error
		if tlsOn {
			s.http.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			err = s.http.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = s.http.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	return s, nil
}

// publicURL returns configured, or a URL naming the host the listener was
// asked for (so "localhost:8080" stays "localhost") with its actual port;
// an unspecified host ("", 0.0.0.0, ::) becomes localhost.
func publicURL(configured, listen string, addr net.Addr, tlsOn bool) string {
	if configured != "" {
		return strings.TrimSuffix(configured, "/")
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	port := ""
	if ta, ok := addr.(*net.TCPAddr); ok {
		port = fmt.Sprint(ta.Port)
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// HubAudiences returns the names a token's aud claim may give the hub
// whose public URL is publicURL: the URL with and without a trailing
// slash, and the Mercure endpoint URL below it (the RFC 9728 resource the
// hub advertises). The server uses them as jwtauth.Config.HubAudiences
// when no audience is configured.
func HubAudiences(publicURL string) []string {
	base := strings.TrimSuffix(publicURL, "/")
	return []string{base, base + "/", base + ssehttp.DefaultPath}
}

// readyTimeout bounds the store check of /readyz, below the 1 s that
// Kubernetes gives a probe by default.
const readyTimeout = 500 * time.Millisecond

// ready answers /readyz: 503 once a drain began, when the store does not
// answer Bounds within readyTimeout, or while the embedded store refuses
// appends for lack of disk space (see diskWatch).
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if _, _, err := s.hub.Store().Bounds(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "store unavailable")
		return
	}
	if s.disk != nil && s.disk.noSpace() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "store is out of disk space")
		return
	}
	fmt.Fprintln(w, "ready")
}

// URL returns the hub's base URL, such as "http://localhost:8080".
func (s *Server) URL() string { return s.url }

// HubURL returns the Mercure endpoint URL.
func (s *Server) HubURL() string { return s.url + ssehttp.DefaultPath }

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Hub returns the running hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// MetricsAddr returns the address of the metrics listener, or nil when
// /metrics is served on the main listener or not at all.
func (s *Server) MetricsAddr() net.Addr {
	if s.mln == nil {
		return nil
	}
	return s.mln.Addr()
}

// PublisherKey returns the publisher key in use, and whether it was
// generated because none was configured (at this start or, when
// PublisherKeyFile says where it is kept, at an earlier one).
func (s *Server) PublisherKey() (key string, generated bool) { return s.pubKey, s.genKey }

// PublisherKeyFile returns the file the generated publisher key is kept
// in (KeyFileName in the data directory of the embedded store), or ""
// when the key is configured or, with another store, lives only as long as
// the process.
func (s *Server) PublisherKeyFile() string { return s.keyFile }

// Done returns a channel that receives the serve error (nil after a clean
// shutdown) when the server stops serving.
func (s *Server) Done() <-chan error { return s.serveErr }

// Shutdown drains the hub gracefully: readiness turns false, new streams
// are refused, every stream ends at an event boundary, in-flight publishes
// finish, and the hub and store close. It waits at most the configured
// grace period (or until ctx ends) and then closes what is left.
// Shutdown is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.draining.Store(true)
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGrace)
		defer cancel()
		s.handler.Drain()
		err := s.http.Shutdown(ctx)
		if werr := s.handler.Wait(ctx); werr != nil && err == nil {
			err = werr // hijacked streams still writing when the grace ended
		}
		if err != nil {
			s.log.Warn("grace period over; closing remaining connections", "err", err)
			s.http.Close()
		}
		if s.presence != nil {
			s.presStop()
			if perr := s.presence.Close(); perr != nil {
				s.log.Warn("closing the presence registry", "err", perr)
			}
		}
		if herr := s.hub.Close(ctx); herr != nil && err == nil {
			err = herr
		}
		if s.cfg.Store != nil {
			if serr := s.cfg.Store.Close(); serr != nil && err == nil {
				err = serr
			}
		}
		if s.mhttp != nil { // last, so the drain can be watched
			if merr := s.mhttp.Shutdown(ctx); merr != nil {
				s.mhttp.Close()
			}
			<-s.mdone
		}
		s.stopErr = err
	})
	return s.stopErr
}
