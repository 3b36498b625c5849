package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ssehub/ssehub/internal/server"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/ssehttp"
)

// maxCommitDelay bounds --commit-delay: a publish under heavy load waits
// at most this much longer for its commit.
const maxCommitDelay = 100 * time.Millisecond

// minSegmentSize and maxSegmentSize bound --wal-segment-size: below 64 KiB
// the log would switch segments (a rename and two syncs) every few
// frames; above 1 GiB a new segment takes seconds to fill with zeros.
const (
	minSegmentSize = 64 << 10
	maxSegmentSize = 1 << 30
)

func serve(ctx context.Context, stdio IO, args []string) error {
	fs := flagSet("serve", "serve [flags]", stdio)
	var (
		cfg       server.Config
		cors      listFlag
		logLevel  string
		logFormat string
	)
	fs.StringVar(&cfg.Addr, "addr", "localhost:8080", "address to listen on")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "public URL of the hub, e.g. https://hub.example.com: relative topics resolve against it, and a token's aud, when present, must name it or its /.well-known/mercure URL unless --jwt-audience is set (default: from --addr)")
	fs.StringVar(&cfg.PublisherKey, "publisher-key", "", "HMAC secret of publisher tokens, at least 32 bytes (default: generated at start)")
	fs.StringVar(&cfg.SubscriberKey, "subscriber-key", "", "HMAC secret of subscriber tokens, at least 32 bytes (default: the publisher key)")
	fs.String(configFlag, "", "TOML `file` of settings, the flag names as keys (addr = \":8080\", cors-origin = [\"https://a.example\"]); the command line and SSEHUB_* variables win over it")
	af := addAuthFlags(fs)
	fs.IntVar(&cfg.Limits.MaxStreams, "max-streams", 0, "concurrent streams the hub serves in total (0: no limit)")
	fs.IntVar(&cfg.Limits.MaxStreamsPerIP, "max-streams-per-ip", 0, "concurrent streams from one client IP address (0: no limit; keep 0 behind a proxy)")
	fs.IntVar(&cfg.Limits.MaxStreamsPerSubject, "max-streams-per-subject", 0, "concurrent streams of one token subject (0: no limit)")
	fs.IntVar(&cfg.Limits.MaxSelectorBytesPerClient, "max-selector-bytes-per-client", 0, "estimated bytes the compiled URL patterns and templates of the streams of one client IP address, and of one token subject, may take (0: no limit; keep 0 behind a proxy)")
	fs.Float64Var(&cfg.Limits.PublishRate, "publish-rate", 0, "publishes per second allowed to each publisher, by token subject or else IP (0: no limit)")
	fs.IntVar(&cfg.Limits.PublishBurst, "publish-burst", 0, "publishes one publisher may send at once (0: --publish-rate rounded up)")
	fs.DurationVar(&cfg.MaxLifetime, "max-lifetime", 0, "end each stream after this long, less up to 10%, so clients rotate over hubs (0: never)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", ssehttp.DefaultMaxBodyBytes, "largest publish body, in bytes")
	fs.IntVar(&cfg.MaxTopics, "max-topics", ssehttp.DefaultMaxTopics, "topics of one publish")
	fs.IntVar(&cfg.MaxSelectors, "max-selectors", selector.DefaultMaxSelectors, "topic selectors of one subscribe")
	fs.IntVar(&cfg.MaxTemplateVariables, "max-template-variables", selector.DefaultMaxVariables, "variables of one URI template selector (the v0.24 topic parameter and mercure claim)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "time a client has to send its request headers")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", server.DefaultReadTimeout, "time a client has to send a whole request, body included (open streams are exempt)")
	fs.BoolVar(&cfg.Anonymous, "anonymous", true, "let subscribers without a token receive public updates")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", 25*time.Second, "interval of keep-alive comments on idle streams")
	fs.Var(&cors, "cors-origin", "`origin` allowed to subscribe and publish cross-origin (repeatable)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate `file`: serve HTTPS and HTTP/2")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key `file` for --tls-cert")
	fs.BoolVar(&cfg.H2C, "h2c", false, "also serve cleartext HTTP/2 (behind a proxy that speaks it)")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&cfg.Engine, "store", "bolt", "where history is kept: bolt (durable, in --data), memory (lost on exit), or a shared engine for several hubs: redis://HOST:PORT (Redis Streams) or nats://HOST:PORT (NATS JetStream)")
	fs.StringVar(&cfg.DataDir, "data", server.DefaultDataDir, "`directory` of the bolt store, and of the publisher key generated when none is set (publisher.key)")
	fs.DurationVar(&cfg.CommitDelay, "commit-delay", 0, "bolt store: how long a commit waits for more publishes when the previous one carried at least 32: fewer commits, less CPU per publish with hundreds of concurrent publishers (e.g. 2ms; see docs/BENCHMARKS.md); 0: never wait")
	fs.BoolVar(&cfg.AcceptLostUpdates, "accept-lost-updates", false, "bolt store: start even though the write-ahead log shows acknowledged updates may be lost (its end damaged, segments missing), keeping what is left under a new epoch so that resuming clients are told of the gap; for the one start after deciding not to restore a backup")
	fs.Int64Var(&cfg.SegmentSize, "wal-segment-size", 0, "bolt store: `bytes` per write-ahead log segment; the log keeps one being written and up to two spare (0: 4 MiB; at least 65536)")
	fs.Int64Var(&cfg.TailBytes, "tail-bytes", 0, "bolt store: `bytes` of recent updates kept in memory for delivery, each counted twice (its data and its encoded event); older ones are read from disk (0: 64 MiB)")
	fs.IntVar(&cfg.Retention.MaxUpdates, "max-updates", 0, "updates of history to keep (0: 1000000 for bolt, 10000 for memory; negative: no limit, bolt only)")
	fs.Int64Var(&cfg.Retention.MaxBytes, "max-bytes", 0, "bytes of history to keep (0: 1 GiB for bolt, 64 MiB for memory; negative: no limit, bolt only)")
	fs.DurationVar(&cfg.Retention.MaxAge, "max-age", 0, "how long history is kept (0: 24h for bolt, no limit for memory; negative: no limit)")
	var topicRules topicRuleFlag
	fs.Var(&topicRules, "retention-topic", "`rule` PATTERN=max-updates=N,max-bytes=SIZE,max-age=DURATION limiting each topic PATTERN matches (a topic, URI template, or URL pattern with match-type=urlpattern); repeatable, the first matching rule applies; in the variable, one rule per line")
	fs.IntVar(&cfg.ReplayLimit, "replay-limit", 0, "most updates one resume replays; past it the client gets an ssehub.gap event (replay-limit) and live updates (0: no limit, every retained update it missed)")
	fs.DurationVar(&cfg.IdempotencyWindow, "idempotency-window", 10*time.Minute, "how long an Idempotency-Key is remembered")
	fs.Int64Var(&cfg.IdempotencyBytes, "idempotency-bytes", 0, "`bytes` of memory for remembered Idempotency-Key values, each counted as its key and update ID plus 160; the oldest are forgotten first (0: 256 MiB)")
	fs.IntVar(&cfg.QueueBytes, "queue-bytes", 0, "`bytes` of updates that may wait for one subscriber before it is disconnected as a slow consumer (0: 8 MiB); at most 1000 updates wait in any case")
	fs.IntVar(&cfg.CompileCacheBytes, "compile-cache-bytes", 0, "`bytes` of memory (estimated) for compiled URL-pattern and template selectors kept for reuse (0: 32 MiB; negative: no cache)")
	fs.IntVar(&cfg.MatchCacheBytes, "match-cache-bytes", 0, "`bytes` of memory for cached results of URL-pattern and template selectors (0: 32 MiB; negative: no cache)")
	fs.BoolVar(&cfg.Subscriptions, "subscriptions", false, "publish Mercure subscription events and serve the active-subscriptions API at /.well-known/mercure/subscriptions (cluster-wide on a shared engine)")
	fs.DurationVar(&cfg.PresenceLease, "presence-lease", server.DefaultPresenceLease, "with --subscriptions on a shared engine: how long the subscriptions of a hub that died stay listed before another hub announces their end")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	metricsOn := fs.Bool("metrics", true, "serve Prometheus metrics at /metrics")
	fs.StringVar(&cfg.Metrics.Addr, "metrics-addr", "", "serve /metrics on its own listener at this `address` (e.g. 127.0.0.1:9090) instead of --addr")
	fs.StringVar(&cfg.Metrics.Token, "metrics-token", "", "require \"Authorization: Bearer TOKEN\" to read /metrics")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	from := func(name string) string { return origin(fs, stdio, name) }
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return usagef("--tls-cert and --tls-key go together: set both or neither")
	}
	if cfg.TLSCert != "" {
		// The server loads them only once it serves; fail before that.
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("loading --tls-cert and --tls-key: %w", err)
		}
	}
	if cfg.Heartbeat < 0 {
		return usagef("%s must not be negative", from("heartbeat"))
	}
	if cfg.ShutdownGrace <= 0 {
		return usagef("%s must be positive", from("shutdown-grace"))
	}
	cfg.Metrics.Disabled = !*metricsOn
	for _, name := range []string{"metrics-addr", "metrics-token"} {
		if cfg.Metrics.Disabled && fs.Lookup(name).Value.String() != "" {
			return usagef("%s needs metrics: drop %s", from(name), from("metrics")+"=false")
		}
	}
	if cfg.IdempotencyWindow <= 0 {
		return usagef("%s must be positive", from("idempotency-window"))
	}
	if cfg.ReplayLimit < 0 {
		return usagef("%s must not be negative", from("replay-limit"))
	}
	if cfg.PresenceLease < 300*time.Millisecond {
		return usagef("%s must be at least 300ms", from("presence-lease"))
	}
	cfg.Retention.Topics = topicRules
	switch cfg.Engine {
	case "bolt":
		if cfg.DataDir == "" {
			return usagef("%s must not be empty", from("data"))
		}
		if cfg.CommitDelay < 0 || cfg.CommitDelay > maxCommitDelay {
			return usagef("%s must be between 0 and %v", from("commit-delay"), maxCommitDelay)
		}
		if cfg.SegmentSize != 0 && (cfg.SegmentSize < minSegmentSize || cfg.SegmentSize > maxSegmentSize) {
			return usagef("%s must be 0 (4 MiB) or between %d and %d bytes", from("wal-segment-size"), minSegmentSize, maxSegmentSize)
		}
	case "memory":
		if cfg.Retention.MaxUpdates < 0 || cfg.Retention.MaxBytes < 0 {
			return usagef("the memory store needs a limit: --max-updates and --max-bytes must not be negative with --store memory")
		}
	default:
		if !server.IsEngineURL(cfg.Engine) {
			return usagef("invalid value %q for %s: want bolt, memory, redis://HOST:PORT or nats://HOST:PORT", cfg.Engine, from("store"))
		}
	}
	for _, c := range cors {
		if c == "" || c == "null" {
			return usagef("%s: origin %q is never allowed", from("cors-origin"), c)
		}
	}
	cfg.CORSOrigins = cors
	for _, name := range []string{"publisher-key", "subscriber-key"} {
		if key := fs.Lookup(name).Value.String(); key != "" {
			if err := checkKey(from(name), key); err != nil {
				return err
			}
		}
	}
	acfg, err := af.config(fs, stdio, cfg.PublisherKey != "", cfg.SubscriberKey != "")
	if err != nil {
		return err
	}
	cfg.Auth = acfg
	for _, name := range []string{"max-streams", "max-streams-per-ip", "max-streams-per-subject", "max-selector-bytes-per-client", "publish-burst", "tail-bytes", "idempotency-bytes", "queue-bytes"} {
		if n, _ := strconv.Atoi(fs.Lookup(name).Value.String()); n < 0 {
			return usagef("%s must not be negative", from(name))
		}
	}
	if r := cfg.Limits.PublishRate; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return usagef("%s must be a number of publishes per second, or 0", from("publish-rate"))
	}
	for _, name := range []string{"max-body-bytes", "max-topics", "max-selectors", "max-template-variables", "read-header-timeout", "read-timeout"} {
		if v := fs.Lookup(name).Value.String(); strings.HasPrefix(v, "-") || v == "0" || v == "0s" {
			return usagef("%s must be positive", from(name))
		}
	}
	if cfg.MaxLifetime < 0 {
		return usagef("%s must not be negative", from("max-lifetime"))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usagef("invalid value %q for %s: want debug, info, warn or error", logLevel, from("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(stdio.Stderr, opts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(stdio.Stderr, opts))
	default:
		return usagef("invalid value %q for %s: want text or json", logFormat, from("log-format"))
	}

	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	printBanner(stdio, srv)
	select {
	case <-ctx.Done():
		cfg.Logger.Info("shutting down: draining streams", "grace", cfg.ShutdownGrace)
	case err := <-srv.Done():
		srv.Shutdown(context.Background())
		return fmt.Errorf("server stopped: %w", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	cfg.Logger.Info("stopped")
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func printBanner(stdio IO, srv *server.Server) {
	w := stdio.Stdout
	fmt.Fprintf(w, "ssehub %s serving\n", Version)
	fmt.Fprintf(w, "  hub:  %s\n", srv.HubURL())
	fmt.Fprintf(w, "  UI:   %s/\n", srv.URL())
	key, generated := srv.PublisherKey()
	if !generated {
		fmt.Fprintln(w, "  mint tokens with: ssehub token --publisher-key KEY --publish '*' (or set SSEHUB_PUBLISHER_KEY)")
		return
	}
	tok, err := mintToken(key, "ssehub-serve", []string{"*"}, []string{"*"}, 30*24*time.Hour)
	if err != nil {
		fmt.Fprintf(w, "  (cannot mint a token: %v)\n", err)
		return
	}
	if file := srv.PublisherKeyFile(); file != "" {
		fmt.Fprintf(w, "  publisher key: generated once and kept in %s (mode 0600): tokens stay valid across restarts\n", file)
		mint, pub := "ssehub token --publish '*'", "ssehub pub"
		if dir := filepath.Dir(file); dir != server.DefaultDataDir {
			mint = "ssehub token --data " + shellQuote(dir) + " --publish '*'"
			pub += " --data " + shellQuote(dir)
		}
		if srv.HubURL() != defaultHub {
			pub += " --hub " + shellQuote(srv.HubURL())
		}
		fmt.Fprintf(w, "  mint tokens with: %s\n", mint)
		fmt.Fprintf(w, "  publish with: %s demo hello\n", pub)
	} else {
		fmt.Fprintln(w, "  publisher key: generated for this run (this store has no data directory to keep it in); set --publisher-key to keep tokens valid across restarts")
	}
	fmt.Fprintf(w, "  token (publish and subscribe on every topic): %s\n", tok)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  subscribe: curl -N '%s?topic=demo'\n", srv.HubURL())
	fmt.Fprintf(w, "  publish:   curl -d topic=demo -d data=hello -H 'Authorization: Bearer %s' %s\n",
		strings.TrimSpace(tok), srv.HubURL())
}
