package server

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/selector"
)

// Defaults of the server's read timeouts.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers when
	// Config.ReadHeaderTimeout is zero: a slowloris client that sends its
	// headers a byte at a time is cut off after it.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included,
	// when Config.ReadTimeout is zero. Streams lift it once their request
	// is read.
	DefaultReadTimeout = 30 * time.Second
)

// authConfig is the token verification cfg asks for: cfg.Auth, with the
// HMAC secrets PublisherKey (pubKey, possibly generated) and SubscriberKey
// as the Publisher and Subscriber keys when set. A secret and another kind
// of key for the same role is a configuration error.
func authConfig(cfg Config, pubKey string, comp *selector.Compiler) (jwtauth.Config, error) {
	a := cfg.Auth
	a.Selectors = comp
	if pubKey != "" {
		if a.Publisher.PublicKey != "" || a.Publisher.PublicKeyFile != "" || a.Publisher.JWKS != "" || len(a.Publisher.Secret) > 0 {
			return a, errors.New("set PublisherKey or Auth.Publisher, not both")
		}
		a.Publisher = jwtauth.Key{Secret: []byte(pubKey), Algorithms: a.Publisher.Algorithms}
	}
	if cfg.SubscriberKey != "" {
		if a.Subscriber.PublicKey != "" || a.Subscriber.PublicKeyFile != "" || a.Subscriber.JWKS != "" || len(a.Subscriber.Secret) > 0 {
			return a, errors.New("set SubscriberKey or Auth.Subscriber, not both")
		}
		a.Subscriber = jwtauth.Key{Secret: []byte(cfg.SubscriberKey), Algorithms: a.Subscriber.Algorithms}
	}
	return a, nil
}

// needsGeneratedKey reports whether cfg configures no publisher key at all,
// so that Start generates one.
func needsGeneratedKey(cfg Config) bool {
	return cfg.PublisherKey == "" && cfg.Auth.Publisher.IsZero() && len(cfg.Auth.Issuers) == 0
}

// Credentials that must never reach a log: an "authorization" query
// parameter (in a URL, a form or a message), a bearer token, and anything
// shaped like a JWS compact token.
var (
	queryToken  = regexp.MustCompile(`(?i)(authorization=)[^&\s"']+`)
	bearerToken = regexp.MustCompile(`(?i)(bearer\s+)([A-Za-z0-9\-._~+/]+=*)`)
	jwsToken    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)
	// proseWord is what follows "Bearer" in prose and in challenges rather
	// than a credential: a short word of letters, lower case but for the
	// first ("the Bearer scheme", "bearer token", `Bearer realm="x"`). A
	// credential that short and plain would be guessable; it is left as
	// is so that the hub's own messages stay readable.
	proseWord = regexp.MustCompile(`^[A-Za-z][a-z]{0,15}=*$`)
)

// Redact removes credentials from s: the values of "authorization" query
// parameters, bearer tokens and JWTs become "[REDACTED]". A short word of
// letters after "Bearer" (as in "must use the Bearer scheme") is prose,
// not a token, and stays.
func Redact(s string) string {
	s = queryToken.ReplaceAllString(s, "${1}[REDACTED]")
	s = bearerToken.ReplaceAllStringFunc(s, func(m string) string {
		sub := bearerToken.FindStringSubmatch(m)
		if proseWord.MatchString(sub[2]) {
			return m
		}
		return sub[1] + "[REDACTED]"
	})
	return jwsToken.ReplaceAllString(s, "[REDACTED]")
}

// redactingHandler is a slog.Handler that passes every message and string
// attribute through Redact: a safety net under every log line of the
// server, including net/http's own error log, so that a token in a URL
// never reaches the logs even if a line one day includes the URL.
type redactingHandler struct{ next slog.Handler }

// redacting wraps h.
func redacting(h slog.Handler) slog.Handler { return redactingHandler{h} }

func (h redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactingHandler{h.next.WithAttrs(red)}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{h.next.WithGroup(name)}
}

// redactAttr redacts the strings (and errors and other values, by their
// text) of a.
func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		return slog.String(a.Key, Redact(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}
