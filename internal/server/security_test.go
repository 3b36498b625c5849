package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/ssehttp"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	const jws = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for in, want := range map[string]string{
		"GET /.well-known/mercure?topic=a&authorization=" + jws + "&x=1": "GET /.well-known/mercure?topic=a&authorization=[REDACTED]&x=1",
		"?Authorization=opaque-token":                                    "?Authorization=[REDACTED]",
		"Authorization: Bearer abc.def-ghi":                              "Authorization: Bearer [REDACTED]",
		"cookie mercureAuthorization=" + jws:                             "cookie mercureAuthorization=[REDACTED]",
		"token " + jws + " in a message":                                 "token [REDACTED] in a message",
		"nothing secret here":                                            "nothing secret here",
		// Prose and challenges after "Bearer" are not tokens.
		"the Authorization header must use the Bearer scheme":            "the Authorization header must use the Bearer scheme",
		"the bearer token is empty":                                      "the bearer token is empty",
		`WWW-Authenticate: Bearer realm="ssehub", error="invalid_token"`: `WWW-Authenticate: Bearer realm="ssehub", error="invalid_token"`,
		// Anything else after it is: digits, punctuation, mixed case, length.
		"Bearer abcdefghijklmnopq":      "Bearer [REDACTED]",
		"Bearer s3cret":                 "Bearer [REDACTED]",
		"Bearer SeCrEt":                 "Bearer [REDACTED]",
		"Bearer abc=":                   "Bearer abc=",
		"Bearer abc+/=":                 "Bearer [REDACTED]",
		"bearer " + jws + " then prose": "bearer [REDACTED] then prose",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestRedactingHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(redacting(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	const tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	log.With("url", "/x?authorization="+tok).WithGroup("g").Debug("bearer "+tok,
		"err", &url.Error{Op: "Get", URL: "http://h/?authorization=" + tok, Err: context.Canceled},
		slog.Group("req", "header", "Bearer "+tok), "n", 3)
	if strings.Contains(buf.String(), "c2lnbmF0dXJl") || !strings.Contains(buf.String(), "n=3") {
		t.Errorf("log line: %s", buf.String())
	}
}

func TestAuthConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{PublisherKey: testKey, Auth: jwtauth.Config{Publisher: jwtauth.Key{JWKS: "https://idp.example/jwks"}}}, "PublisherKey or Auth.Publisher"},
		{Config{SubscriberKey: testKey, Auth: jwtauth.Config{Subscriber: jwtauth.Key{PublicKeyFile: "k.pem"}}}, "SubscriberKey or Auth.Subscriber"},
	} {
		if _, err := authConfig(tc.cfg, tc.cfg.PublisherKey, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("authConfig: %v; want %q", err, tc.want)
		}
	}
	a, err := authConfig(Config{PublisherKey: testKey, Auth: jwtauth.Config{Publisher: jwtauth.Key{Algorithms: []string{"HS512"}}}}, testKey, nil)
	if err != nil || string(a.Publisher.Secret) != testKey || a.Publisher.Algorithms[0] != "HS512" {
		t.Errorf("authConfig with a secret and algorithms: %+v, %v", a.Publisher, err)
	}
	for _, cfg := range []Config{
		{Auth: jwtauth.Config{Publisher: jwtauth.Key{JWKS: "x"}}},
		{Auth: jwtauth.Config{Issuers: []jwtauth.Issuer{{Name: "x"}}}},
		{PublisherKey: testKey},
	} {
		if needsGeneratedKey(cfg) {
			t.Errorf("%+v: a key would be generated", cfg)
		}
	}
}

// TestJWKSAndLimitsWired boots the server with a JWK Set key, limits and
// short read timeouts, and checks each reaches the handler: an ES256 token
// from the set publishes, an HMAC one does not, the body limit answers
// 413, a stream outlives the read timeout, and the per-subject stream
// limit answers 429.
func TestJWKSAndLimitsWired(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := key.PublicKey.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	doc, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "k", "x": b64(raw[1:33]), "y": b64(raw[33:])}}})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(doc) }))
	defer idp.Close()

	s, err := Start(Config{
		Addr:         "127.0.0.1:0",
		Engine:       "memory",
		Auth:         jwtauth.Config{Publisher: jwtauth.Key{JWKS: idp.URL, Algorithms: []string{"ES256"}}, RequireExp: true},
		Limits:       ssehttp.Limits{MaxStreamsPerSubject: 1},
		MaxBodyBytes: 100,
		ReadTimeout:  100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		<-s.Done()
	}()
	if _, generated := s.PublisherKey(); generated {
		t.Error("a publisher key was generated next to the JWK Set")
	}
	claims := jwt.MapClaims{"sub": "app", "exp": time.Now().Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}, "subscribe": []string{"*"}}}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = "k"
	es, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testKey))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, dec := open(t, ctx, http.DefaultClient, s.HubURL()+"?topic=a", es)
	if status, body := publish(t, http.DefaultClient, s.HubURL(), hs, url.Values{"topic": {"a"}}); status != 401 || !strings.Contains(body, "HS256 is not allowed") {
		t.Errorf("HS256 token: %d %s", status, body)
	}
	if status, _ := publish(t, http.DefaultClient, s.HubURL(), es, url.Values{"topic": {"a"}, "data": {strings.Repeat("x", 200)}}); status != 413 {
		t.Errorf("200-byte body over a 100-byte limit: %d", status)
	}
	time.Sleep(300 * time.Millisecond) // well past ReadTimeout: the stream must live on
	if status, body := publish(t, http.DefaultClient, s.HubURL(), es, url.Values{"topic": {"a"}, "data": {"after"}}); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	if ev, err := dec.Decode(); err != nil || ev.Data != "after" {
		t.Errorf("stream after the read timeout: %+v, %v", ev, err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.HubURL()+"?topic=a", nil)
	req.Header.Set("Authorization", "Bearer "+es)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second stream of the subject: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
