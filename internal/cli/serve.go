package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ssehub/ssehub/internal/server"
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
	fs.StringVar(&cfg.PublicURL, "public-url", "", "public URL of the hub, e.g. https://hub.example.com (default: from --addr)")
	fs.StringVar(&cfg.PublisherKey, "publisher-key", "", "HMAC secret of publisher tokens (default: generated at start)")
	fs.StringVar(&cfg.SubscriberKey, "subscriber-key", "", "HMAC secret of subscriber tokens (default: the publisher key)")
	fs.BoolVar(&cfg.Anonymous, "anonymous", true, "let subscribers without a token receive public updates")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", 25*time.Second, "interval of keep-alive comments on idle streams")
	fs.Var(&cors, "cors-origin", "origin allowed to subscribe and publish cross-origin (repeatable)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate file: serve HTTPS and HTTP/2")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	fs.BoolVar(&cfg.H2C, "h2c", false, "also serve cleartext HTTP/2 (behind a proxy that speaks it)")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if cfg.Heartbeat < 0 {
		return usagef("--heartbeat must not be negative")
	}
	cfg.CORSOrigins = cors
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(stdio.Stderr, opts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(stdio.Stderr, opts))
	default:
		return usagef("--log-format must be text or json, not %q", logFormat)
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

func printBanner(stdio IO, srv *server.Server) {
	w := stdio.Stdout
	fmt.Fprintf(w, "ssehub %s serving\n", Version)
	fmt.Fprintf(w, "  hub:  %s\n", srv.HubURL())
	fmt.Fprintf(w, "  UI:   %s/\n", srv.URL())
	key, generated := srv.PublisherKey()
	if !generated {
		fmt.Fprintln(w, "  mint publisher tokens with: ssehub token --publish '*'")
		return
	}
	tok, err := mintToken(key, "ssehub-serve", []string{"*"}, []string{"*"}, 30*24*time.Hour)
	if err != nil {
		fmt.Fprintf(w, "  (cannot mint a token: %v)\n", err)
		return
	}
	fmt.Fprintln(w, "  publisher key: generated for this run; set --publisher-key to keep tokens valid across restarts")
	fmt.Fprintf(w, "  token (publish and subscribe on every topic): %s\n", tok)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  subscribe: curl -N '%s?topic=demo'\n", srv.HubURL())
	fmt.Fprintf(w, "  publish:   curl -d topic=demo -d data=hello -H 'Authorization: Bearer %s' %s\n",
		strings.TrimSpace(tok), srv.HubURL())
}
