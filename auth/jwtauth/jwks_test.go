package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/auth/jwtauth"
)

var b64 = base64.RawURLEncoding.EncodeToString

func rsaJWK(kid string, pub *rsa.PublicKey, extra ...string) map[string]any {
	m := map[string]any{"kty": "RSA", "kid": kid, "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	size := (len(raw) - 1) / 2
	return map[string]any{"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name, "x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(pub)}
}

func octJWK(kid string, secret []byte) map[string]any {
	return map[string]any{"kty": "oct", "kid": kid, "k": b64(secret)}
}

// jwksServer is a real HTTP server of a JWK Set that can be changed and
// counts its requests.
type jwksServer struct {
	*httptest.Server
	mu       sync.Mutex
	keys     []map[string]any
	requests atomic.Int32
	fail     atomic.Bool // answer 404
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.fail.Load() {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		doc, _ := json.Marshal(map[string]any{"keys": s.keys})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(now.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// signKID signs claims valid for 30 days with method, key and kid ("" for
// none) and extra header fields.
func signKID(t *testing.T, method jwt.SigningMethod, key any, kid string, extra map[string]any) string {
	t.Helper()
	h := map[string]any{"kid": kid}
	if kid == "" {
		h["kid"] = nil
	}
	for k, v := range extra {
		h[k] = v
	}
	return sign(t, method, key, h, jwt.MapClaims{"sub": "s", "exp": now.Add(30 * 24 * time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}})
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestJWKSRotationAndUnknownKID(t *testing.T) {
	t.Parallel()
	k1, k2 := testKeys().rsa, mustRSA(t)
	srv := newJWKSServer(t, rsaJWK("k1", &k1.PublicKey))
	clk := newClock()
	a := newAuth(t, jwtauth.Config{
		Publisher:      jwtauth.Key{JWKS: srv.URL + "/jwks.json"},
		JWKSRefresh:    time.Hour,
		JWKSMinRefresh: time.Minute,
		Now:            clk.Now,
	})
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("New fetched the set %d times; want 1", n)
	}
	check := func(token, wantErr string) {
		t.Helper()
		g, err := a.Authenticate(bearer(token), auth.Publisher)
		if wantErr == "" {
			if err != nil || g == nil {
				t.Fatalf("Authenticate: %v", err)
			}
			return
		}
		if g != nil {
			t.Fatalf("accepted; want %q", wantErr)
		}
		wantAuthError(t, err, 401, wantErr)
	}
	tok1 := signKID(t, jwt.SigningMethodRS256, k1, "k1", nil)
	tok2 := signKID(t, jwt.SigningMethodRS256, k2, "k2", nil)
	check(tok1, "")
	check(signKID(t, jwt.SigningMethodRS256, k1, "", nil), "") // no kid: every suitable key is tried
	check(signKID(t, jwt.SigningMethodRS256, k2, "k1", nil), "signature is invalid")
	check(signKID(t, jwt.SigningMethodPS256, k1, "k1", nil), "signing method PS256 is not allowed")

	// The issuer rotates to k2. Within the minimum refresh interval an
	// unknown kid does not fetch again; afterwards it does, once.
	srv.set(rsaJWK("k2", &k2.PublicKey))
	clk.Advance(30 * time.Second)
	check(tok2, "unknown key id k2")
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("an unknown kid within JWKSMinRefresh fetched: %d requests", n)
	}
	clk.Advance(31 * time.Second)
	check(tok2, "")
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("requests = %d; want 2", n)
	}
	// k1 is gone from the set: refused, without another fetch.
	check(tok1, "unknown key id k1")

	// A flood of random key IDs causes at most one fetch per minute.
	for i := range 200 {
		check(signKID(t, jwt.SigningMethodRS256, k2, fmt.Sprint("random-", i), nil), "unknown key id random-")
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("a flood of unknown kids made %d requests; want 2 in total", n)
	}
	clk.Advance(time.Minute)
	for i := range 200 {
		check(signKID(t, jwt.SigningMethodRS256, k2, fmt.Sprint("random-", i), nil), "unknown key id random-")
	}
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("requests = %d; want 3", n)
	}

	// The periodic refresh picks up a new key before any token names it.
	srv.set(rsaJWK("k1", &k1.PublicKey), rsaJWK("k2", &k2.PublicKey))
	clk.Advance(time.Hour)
	check(tok2, "")
	if n := srv.requests.Load(); n != 4 {
		t.Fatalf("requests after the refresh interval = %d; want 4", n)
	}
	clk.Advance(time.Second)
	check(tok1, "")
	if n := srv.requests.Load(); n != 4 {
		t.Fatalf("requests = %d; want still 4", n)
	}

	// A failed refresh keeps the keys in use.
	srv.fail.Store(true)
	clk.Advance(2 * time.Hour)
	check(tok1, "")
	check(tok2, "")
}

func TestJWKSRefusesSymmetricAndForeignKeys(t *testing.T) {
	t.Parallel()
	k := testKeys()
	hmacSecret := []byte(strings.Repeat("h", 32))
	srv := newJWKSServer(t,
		rsaJWK("rsa", &k.rsa.PublicKey),
		octJWK("hmac", hmacSecret),
		rsaJWK("enc", &k.rsa.PublicKey, "use", "enc"),
		rsaJWK("ps-only", &k.rsa.PublicKey, "alg", "PS256"),
		ecJWK("ec", &k.p256.PublicKey),
		map[string]any{"kty": "RSA", "kid": "priv", "n": b64(k.rsa.N.Bytes()), "e": "AQAB", "d": b64(k.rsa.D.Bytes())},
	)
	a := newAuth(t, jwtauth.Config{Publisher: jwtauth.Key{JWKS: srv.URL, Algorithms: []string{"RS256", "PS256"}}})
	for _, tc := range []struct {
		name, token, want string
	}{
		{"HS256 signed with the oct key", signKID(t, jwt.SigningMethodHS256, hmacSecret, "hmac", nil), "signing method HS256 is not allowed"},
		{"RS256 naming the oct key", sign(t, jwt.SigningMethodHS256, hmacSecret, map[string]any{"alg": "RS256", "kid": "hmac"}, jwt.MapClaims{}), "key hmac is a symmetric (oct) key"},
		{"encryption key", signKID(t, jwt.SigningMethodRS256, k.rsa, "enc", nil), "key enc is not a signature key"},
		{"key pinned to another alg", signKID(t, jwt.SigningMethodRS256, k.rsa, "ps-only", nil), "key ps-only cannot verify RS256"},
		{"EC key for RS256", signKID(t, jwt.SigningMethodRS256, k.rsa, "ec", nil), "key ec cannot verify RS256"},
		{"private key published", signKID(t, jwt.SigningMethodRS256, k.rsa, "priv", nil), "key priv is a private key"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "rsa"}, jwt.MapClaims{}), "signing method none is not allowed"},
		{"kid not a string", sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": 7}, jwt.MapClaims{}), "kid header is not a string"},
		{"kid unprintable", signKID(t, jwt.SigningMethodRS256, k.rsa, "a\nb", nil), "unknown key id (unprintable)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := a.Authenticate(bearer(tc.token), auth.Publisher)
			if g != nil {
				t.Fatal("accepted")
			}
			wantAuthError(t, err, 401, tc.want)
		})
	}
	if g, err := a.Authenticate(bearer(signKID(t, jwt.SigningMethodPS256, k.rsa, "ps-only", nil)), auth.Publisher); err != nil || g == nil {
		t.Errorf("PS256 with the PS256 key: %v", err)
	}

	redirect := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redirect.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	for _, tc := range []struct {
		name string
		key  jwtauth.Key
		want string
	}{
		{"HMAC algorithm with a JWK Set", jwtauth.Key{JWKS: srv.URL, Algorithms: []string{"HS256"}}, `"HS256" cannot be used with a JWK Set`},
		{"only symmetric keys", jwtauth.Key{JWKS: newJWKSServer(t, octJWK("h", hmacSecret)).URL}, "no usable verification key"},
		{"plain http to another host", jwtauth.Key{JWKS: "http://idp.example.com/jwks"}, "must use https"},
		{"credentials in the URL", jwtauth.Key{JWKS: "https://user:pw@idp.example.com/jwks"}, "must not carry credentials"},
		{"not found", jwtauth.Key{JWKS: notFound.URL + "/jwks?x"}, "status 404"},
		{"not a JWK Set", jwtauth.Key{JWKS: newJWKSServer(t).URL}, "no usable verification key"},
		{"redirect", jwtauth.Key{JWKS: redirect.URL}, "redirects"},
		{"missing file", jwtauth.Key{JWKS: filepath.Join(t.TempDir(), "none.json")}, "reading the JWK Set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jwtauth.New(jwtauth.Config{Publisher: tc.key})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("error %q shows the URL's password", err)
			}
		})
	}
}

// TestTokenNamedKeysAreNeverFetched: a token's jku, x5u or jwk header
// never makes the hub fetch or use a key.
func TestTokenNamedKeysAreNeverFetched(t *testing.T) {
	t.Parallel()
	good := testKeys().rsa
	evil := mustRSA(t)
	srv := newJWKSServer(t, rsaJWK("good", &good.PublicKey))
	attacker := newJWKSServer(t, rsaJWK("evil", &evil.PublicKey), rsaJWK("good", &evil.PublicKey))
	a := newAuth(t, jwtauth.Config{Publisher: jwtauth.Key{JWKS: srv.URL}})
	hdrs := []map[string]any{
		{"jku": attacker.URL},
		{"x5u": attacker.URL},
		{"jwk": rsaJWK("evil", &evil.PublicKey)},
	}
	for _, h := range hdrs {
		for _, kid := range []string{"evil", "good", ""} {
			tok := signKID(t, jwt.SigningMethodRS256, evil, kid, h)
			g, err := a.Authenticate(bearer(tok), auth.Publisher)
			if g != nil || err == nil {
				t.Fatalf("header %v, kid %q: accepted", h, kid)
			}
		}
	}
	if n := attacker.requests.Load(); n != 0 {
		t.Errorf("the attacker's server got %d requests", n)
	}
}

func TestJWKSFileAndKeyTypes(t *testing.T) {
	t.Parallel()
	k := testKeys()
	path := filepath.Join(t.TempDir(), "jwks.json")
	write := func(keys ...map[string]any) {
		doc, _ := json.Marshal(map[string]any{"keys": keys})
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ecJWK("p256", &k.p256.PublicKey), ecJWK("p384", &k.p384.PublicKey), edJWK("ed", k.ed.Public().(ed25519.PublicKey)))
	clk := newClock()
	a := newAuth(t, jwtauth.Config{
		Publisher: jwtauth.Key{JWKS: path, Algorithms: []string{"ES256", "ES384", "EdDSA"}},
		Now:       clk.Now,
	})
	for _, tc := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"ES256", signKID(t, jwt.SigningMethodES256, k.p256, "p256", nil), true},
		{"ES384 without kid", signKID(t, jwt.SigningMethodES384, k.p384, "", nil), true},
		{"EdDSA", signKID(t, jwt.SigningMethodEdDSA, k.ed, "ed", nil), true},
		{"ES384 naming the P-256 key", signKID(t, jwt.SigningMethodES384, k.p384, "p256", nil), false},
		{"RS256 not allowed", signKID(t, jwt.SigningMethodRS256, k.rsa, "", nil), false},
	} {
		g, err := a.Authenticate(bearer(tc.token), auth.Publisher)
		if (err == nil && g != nil) != tc.ok {
			t.Errorf("%s: grant %v, error %v; want ok %v", tc.name, g != nil, err, tc.ok)
		}
	}
	// Rotation by rewriting the file.
	write(edJWK("ed2", k.ed.Public().(ed25519.PublicKey)))
	clk.Advance(2 * time.Hour)
	if _, err := a.Authenticate(bearer(signKID(t, jwt.SigningMethodES256, k.p256, "p256", nil)), auth.Publisher); err == nil {
		t.Error("a key removed from the file still verifies")
	}
	if _, err := a.Authenticate(bearer(signKID(t, jwt.SigningMethodEdDSA, k.ed, "ed2", nil)), auth.Publisher); err != nil {
		t.Errorf("the rotated key: %v", err)
	}
}

func TestMalformedJWKs(t *testing.T) {
	t.Parallel()
	k := testKeys()
	small := func() *rsa.PublicKey {
		sk, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		return &sk.PublicKey
	}()
	p256 := ecJWK("bad", &k.p256.PublicKey)
	p256["y"] = p256["x"] // not on the curve
	for _, bad := range []map[string]any{
		rsaJWK("bad", small),
		{"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"},
		{"kty": "RSA", "kid": "bad", "n": b64(k.rsa.N.Bytes()), "e": "Ag"},
		p256,
		{"kty": "EC", "kid": "bad", "crv": "P-192", "x": "AA", "y": "AA"},
		{"kty": "OKP", "kid": "bad", "crv": "X25519", "x": b64(make([]byte, 32))},
		{"kty": "OKP", "kid": "bad", "crv": "Ed25519", "x": "AAAA"},
		{"kty": "XYZ", "kid": "bad"},
		rsaJWK("bad", &k.rsa.PublicKey, "alg", "ES256"),
		rsaJWK("bad", &k.rsa.PublicKey, "key_ops", "x"),
	} {
		srv := newJWKSServer(t, bad, rsaJWK("ok", &k.rsa.PublicKey))
		a := newAuth(t, jwtauth.Config{Publisher: jwtauth.Key{JWKS: srv.URL, Algorithms: []string{"RS256", "ES256", "EdDSA"}}})
		for _, tok := range []string{
			signKID(t, jwt.SigningMethodRS256, k.rsa, "bad", nil),
			signKID(t, jwt.SigningMethodES256, k.p256, "bad", nil),
		} {
			if g, err := a.Authenticate(bearer(tok), auth.Publisher); g != nil || err == nil {
				t.Errorf("JWK %v verified a token", bad)
			}
		}
	}
}

func TestIssuers(t *testing.T) {
	t.Parallel()
	ka, kb := testKeys().rsa, mustRSA(t)
	// Both issuers use the same kid: the cache must be per issuer.
	srvA := newJWKSServer(t, rsaJWK("same", &ka.PublicKey))
	srvB := newJWKSServer(t, rsaJWK("same", &kb.PublicKey))
	a := newAuth(t, jwtauth.Config{
		Publisher: jwtauth.Key{Secret: secret},
		Issuers: []jwtauth.Issuer{
			{Name: "https://a.example", Publisher: jwtauth.Key{JWKS: srvA.URL}},
			{Name: "https://b.example", Publisher: jwtauth.Key{JWKS: srvB.URL}, Subscriber: jwtauth.Key{Secret: otherSecret}},
		},
	})
	tok := func(method jwt.SigningMethod, key any, iss string) string {
		c := jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}}
		if iss != "" {
			c["iss"] = iss
		}
		return sign(t, method, key, map[string]any{"kid": "same"}, c)
	}
	for _, tc := range []struct {
		name  string
		token string
		role  auth.Role
		want  string // "" when accepted
	}{
		{"issuer A with A's key", tok(jwt.SigningMethodRS256, ka, "https://a.example"), auth.Publisher, ""},
		{"issuer B with B's key", tok(jwt.SigningMethodRS256, kb, "https://b.example"), auth.Publisher, ""},
		{"issuer A with B's key", tok(jwt.SigningMethodRS256, kb, "https://a.example"), auth.Publisher, "signature is invalid"},
		{"issuer B with A's key", tok(jwt.SigningMethodRS256, ka, "https://b.example"), auth.Publisher, "signature is invalid"},
		{"issuer A subscriber uses A's publisher key", tok(jwt.SigningMethodRS256, ka, "https://a.example"), auth.Subscriber, ""},
		{"issuer B subscriber key", tok(jwt.SigningMethodHS256, otherSecret, "https://b.example"), auth.Subscriber, ""},
		{"issuer B subscriber with B's publisher key", tok(jwt.SigningMethodRS256, kb, "https://b.example"), auth.Subscriber, "signing method RS256 is not allowed"},
		{"unlisted issuer uses the default key", tok(jwt.SigningMethodHS256, secret, "https://c.example"), auth.Publisher, ""},
		{"no issuer uses the default key", tok(jwt.SigningMethodHS256, secret, ""), auth.Publisher, ""},
		{"unlisted issuer cannot use A's key", tok(jwt.SigningMethodRS256, ka, "https://c.example"), auth.Publisher, "signing method RS256 is not allowed"},
		{"HS256 with the default secret claiming issuer A", tok(jwt.SigningMethodHS256, secret, "https://a.example"), auth.Publisher, "signing method HS256 is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := a.Authenticate(bearer(tc.token), tc.role)
			if tc.want == "" {
				if err != nil || g == nil {
					t.Fatalf("Authenticate: %v", err)
				}
				return
			}
			if g != nil {
				t.Fatal("accepted")
			}
			wantAuthError(t, err, 401, tc.want)
		})
	}

	only, err := jwtauth.New(jwtauth.Config{Now: clock, Issuers: []jwtauth.Issuer{{Name: "https://a.example", Publisher: jwtauth.Key{JWKS: srvA.URL}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, iss := range []string{"https://c.example", ""} {
		_, err := only.Authenticate(bearer(tok(jwt.SigningMethodRS256, ka, iss)), auth.Publisher)
		wantAuthError(t, err, 401, "unknown issuer")
	}
	if srvA.requests.Load() != 2 || srvB.requests.Load() != 1 {
		t.Errorf("requests A, B = %d, %d; want 2, 1 (one per Authenticator)", srvA.requests.Load(), srvB.requests.Load())
	}

	for _, tc := range []struct {
		cfg  jwtauth.Config
		want string
	}{
		{jwtauth.Config{Issuers: []jwtauth.Issuer{{Publisher: jwtauth.Key{Secret: secret}}}}, "Name is empty"},
		{jwtauth.Config{Issuers: []jwtauth.Issuer{{Name: "a", Publisher: jwtauth.Key{Secret: secret}}, {Name: "a", Publisher: jwtauth.Key{Secret: secret}}}}, "listed twice"},
		{jwtauth.Config{Issuers: []jwtauth.Issuer{{Name: "a"}}}, "Issuers[0] (a): Publisher: no key"},
		{jwtauth.Config{Issuers: []jwtauth.Issuer{{Name: "a", Publisher: jwtauth.Key{Secret: []byte("short")}}}}, "Issuers[0] (a).Publisher:"},
		{jwtauth.Config{Issuer: "x", Issuers: []jwtauth.Issuer{{Name: "a", Publisher: jwtauth.Key{Secret: secret}}}}, "not both"},
		{jwtauth.Config{Subscriber: jwtauth.Key{Secret: secret}, Issuers: []jwtauth.Issuer{{Name: "a", Publisher: jwtauth.Key{Secret: secret}}}}, "Subscriber is set without Publisher"},
		{jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}, JWKSMinRefresh: -1}, "JWKSMinRefresh"},
	} {
		if _, err := jwtauth.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New: %v; want %q", err, tc.want)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	k := testKeys()
	claims := jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "mercure": map[string]any{"subscribe": []string{"https://example.com/books/{id}"}}}
	doc, _ := json.Marshal(map[string]any{"keys": []any{rsaJWK("k1", &k.rsa.PublicKey), ecJWK("ec", &k.p256.PublicKey)}})
	path := filepath.Join(b.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		key   jwtauth.Key
		token string
	}{
		{"HS256", jwtauth.Key{Secret: secret}, sign(b, jwt.SigningMethodHS256, secret, nil, claims)},
		{"RS256 PEM", jwtauth.Key{PublicKey: k.rsaPEM}, sign(b, jwt.SigningMethodRS256, k.rsa, nil, claims)},
		{"RS256 JWKS", jwtauth.Key{JWKS: path}, sign(b, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, claims)},
		{"ES256 JWKS", jwtauth.Key{JWKS: path, Algorithms: []string{"ES256"}}, sign(b, jwt.SigningMethodES256, k.p256, map[string]any{"kid": "ec"}, claims)},
	} {
		a := newAuth(b, jwtauth.Config{Publisher: bc.key})
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Verify(bc.token, auth.Subscriber); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
