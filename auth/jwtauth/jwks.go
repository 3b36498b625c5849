package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
)

// Defaults of the JWK Set settings of Config.
const (
	// DefaultJWKSRefresh is how often a JWK Set is fetched again when
	// Config.JWKSRefresh is zero.
	DefaultJWKSRefresh = time.Hour
	// DefaultJWKSMinRefresh is the least time between two fetches of a JWK
	// Set when Config.JWKSMinRefresh is zero. It bounds the fetches that
	// tokens naming unknown key IDs can cause.
	DefaultJWKSMinRefresh = time.Minute
	// MaxJWKSBytes is the largest JWK Set document read.
	MaxJWKSBytes = 1 << 20
	// MaxJWKSKeys is the largest number of keys in a JWK Set.
	MaxJWKSKeys = 100
	// jwksTimeout bounds one fetch of a JWK Set by the default client.
	jwksTimeout = 10 * time.Second
)

// jwksOptions are the Config settings a JWK Set needs.
type jwksOptions struct {
	refresh, minRefresh time.Duration
	client              *http.Client
	now                 func() time.Time
}

// defaultJWKSClient fetches JWK Sets: bounded in time and never following
// a redirect, so that the keys come from the configured URL only.
var defaultJWKSClient = &http.Client{
	Timeout: jwksTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("the JWK Set URL redirects; configure the final URL")
	},
}

// jwk is one usable verification key of a JWK Set, or an unusable one
// with the reason, so that a token naming it is refused precisely.
type jwk struct {
	kid    string
	alg    string // the key's "alg", "" when absent
	key    any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey; nil when unusable
	reason string // why the key cannot verify anything, when key is nil
}

// suits reports whether k may verify a token signed with alg: the key type
// must be the algorithm's and, when the key names an algorithm, it must be
// alg.
func (k *jwk) suits(alg string) bool {
	if k.key == nil || (k.alg != "" && k.alg != alg) {
		return false
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		return slices.Contains(rsaAlgs, alg)
	case *ecdsa.PublicKey:
		return curveAlgs[pub.Curve.Params().Name] == alg
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// jwks is a JWK Set read from a URL or a file, cached and refreshed: every
// refresh interval (by the first request that finds it stale), and when a
// token names a key ID the set does not hold, at most once per minRefresh.
// It starts no goroutine: fetches happen on the requests that need them,
// one at a time. A failed refresh keeps the previous keys.
type jwks struct {
	source string // URL or path, for messages
	isURL  bool
	opts   jwksOptions

	fetchMu sync.Mutex // held while fetching

	mu        sync.RWMutex
	keys      []jwk
	fetched   time.Time // of the keys in use
	attempted time.Time // of the last fetch, successful or not
}

// newJWKS checks source and fetches the set once; a set that cannot be
// read is a configuration error.
func newJWKS(source string, opts jwksOptions) (*jwks, error) {
	s := &jwks{source: source, opts: opts}
	if strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://") {
		u, err := url.Parse(source)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("the JWK Set URL %q is not a valid URL", source)
		}
		if u.Scheme == "http" && !loopback(u.Hostname()) {
			return nil, fmt.Errorf("the JWK Set URL must use https (http is accepted for loopback hosts only): %s", u.Redacted())
		}
		if u.User != nil {
			return nil, errors.New("the JWK Set URL must not carry credentials")
		}
		s.isURL = true
	}
	keys, err := s.read()
	if err != nil {
		return nil, err
	}
	now := opts.now()
	s.keys, s.fetched, s.attempted = keys, now, now
	return s, nil
}

// loopback reports whether host is localhost or a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// read fetches and parses the set.
func (s *jwks) read() ([]jwk, error) {
	var data []byte
	if s.isURL {
		ctx, cancel := context.WithTimeout(context.Background(), jwksTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.source, nil)
		if err != nil {
			return nil, fmt.Errorf("fetching the JWK Set: %w", err)
		}
		req.Header.Set("Accept", "application/jwk-set+json, application/json")
		resp, err := s.opts.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetching the JWK Set: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetching the JWK Set %s: status %d", s.source, resp.StatusCode)
		}
		if data, err = io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1)); err != nil {
			return nil, fmt.Errorf("fetching the JWK Set %s: %w", s.source, err)
		}
	} else {
		f, err := os.Open(s.source)
		if err != nil {
			return nil, fmt.Errorf("reading the JWK Set: %w", err)
		}
		defer f.Close()
		if data, err = io.ReadAll(io.LimitReader(f, MaxJWKSBytes+1)); err != nil {
			return nil, fmt.Errorf("reading the JWK Set: %w", err)
		}
	}
	if len(data) > MaxJWKSBytes {
		return nil, fmt.Errorf("the JWK Set %s is larger than %d bytes", s.source, MaxJWKSBytes)
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("the JWK Set %s: %w", s.source, err)
	}
	return keys, nil
}

// parseJWKS parses a JWK Set document. Keys that cannot verify tokens are
// kept with the reason; a set without a single usable key is an error.
func parseJWKS(data []byte) ([]jwk, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, errors.New("not a JSON object with a keys array")
	}
	if len(doc.Keys) > MaxJWKSKeys {
		return nil, fmt.Errorf("more than %d keys", MaxJWKSKeys)
	}
	keys := make([]jwk, 0, len(doc.Keys))
	usable := 0
	for _, raw := range doc.Keys {
		k := parseJWK(raw)
		if k.key != nil {
			usable++
		}
		keys = append(keys, k)
	}
	if usable == 0 {
		return nil, errors.New("no usable verification key (RSA of at least 2048 bits, EC P-256/P-384/P-521 or OKP Ed25519)")
	}
	return keys, nil
}

// rawJWK is the members of a JWK that matter here (RFC 7517, 7518, 8037).
type rawJWK struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	D      string   `json:"d"`
	K      string   `json:"k"`
}

// parseJWK turns one JWK into a verification key, or an unusable entry
// saying why.
func parseJWK(raw json.RawMessage) jwk {
	var r rawJWK
	if err := json.Unmarshal(raw, &r); err != nil {
		return jwk{reason: "is not a valid JWK"}
	}
	k := jwk{kid: r.Kid, alg: r.Alg}
	unusable := func(format string, args ...any) jwk {
		k.key, k.reason = nil, fmt.Sprintf(format, args...)
		return k
	}
	switch {
	case r.Kty == "oct" || r.K != "":
		return unusable("is a symmetric (oct) key; a JWK Set may only hold public keys")
	case r.D != "":
		return unusable("is a private key; publish only the public part")
	case r.Use != "" && r.Use != "sig":
		return unusable("is not a signature key (use %s)", safeName(r.Use))
	case len(r.KeyOps) > 0 && !slices.Contains(r.KeyOps, "verify"):
		return unusable("does not allow verify in key_ops")
	case r.Alg != "" && !algName.MatchString(r.Alg):
		return unusable("names an unknown algorithm")
	}
	b64 := base64.RawURLEncoding.DecodeString
	switch r.Kty {
	case "RSA":
		n, err1 := b64(r.N)
		e, err2 := b64(r.E)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return unusable("is a malformed RSA key")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.E < 3 || pub.E%2 == 0 {
			return unusable("is a malformed RSA key")
		}
		if pub.N.BitLen() < 2048 {
			return unusable("is an RSA key of %d bits; at least 2048 are required", pub.N.BitLen())
		}
		k.key = pub
	case "EC":
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		curve, ok := curves[r.Crv]
		if !ok {
			return unusable("is on the unsupported curve %s", safeName(r.Crv))
		}
		x, err1 := b64(r.X)
		y, err2 := b64(r.Y)
		size := (curve.Params().BitSize + 7) / 8
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return unusable("is a malformed EC key")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return unusable("is not a point on %s", r.Crv)
		}
		k.key = pub
	case "OKP":
		if r.Crv != "Ed25519" {
			return unusable("is on the unsupported curve %s", safeName(r.Crv))
		}
		x, err := b64(r.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return unusable("is a malformed Ed25519 key")
		}
		k.key = ed25519.PublicKey(x)
	default:
		return unusable("has the unsupported key type %s", safeName(r.Kty))
	}
	if k.alg != "" && !k.suits(k.alg) {
		return unusable("names the algorithm %s, which does not suit its key type", k.alg)
	}
	return k
}

// kidName matches the key IDs worth echoing in an error message.
var kidName = regexp.MustCompile(`^[A-Za-z0-9\-._~+/=:]{1,64}$`)

// safeKID quotes an attacker-chosen key ID for a message, or elides it.
func safeKID(s string) string {
	if kidName.MatchString(s) {
		return s
	}
	return "(unprintable)"
}

// keyFor returns the key, or the keys, that may verify t: those with the
// token's kid (all of them when it has none) whose type suits the token's
// algorithm. A kid the set does not hold makes the set refresh, at most
// once per minRefresh. Errors are *auth.Error with a precise description.
func (s *jwks) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, hasKID := "", false
	if v, ok := t.Header["kid"]; ok {
		if kid, ok = v.(string); !ok {
			return nil, auth.InvalidToken("the kid header is not a string")
		}
		hasKID = true
	}
	s.maybeRefresh(false)
	if hasKID && !s.holds(kid) {
		s.maybeRefresh(true)
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	var found []jwk
	for _, k := range s.keys {
		if !hasKID || k.kid == kid {
			found = append(found, k)
		}
	}
	if hasKID && len(found) == 0 {
		return nil, auth.InvalidToken("unknown key id %s", safeKID(kid))
	}
	var suitable []jwt.VerificationKey
	for _, k := range found {
		if k.suits(alg) {
			suitable = append(suitable, k.key)
		}
	}
	switch {
	case len(suitable) == 1:
		return suitable[0], nil
	case len(suitable) > 1:
		return jwt.VerificationKeySet{Keys: suitable}, nil
	case hasKID && found[0].key == nil:
		return nil, auth.InvalidToken("key %s %s", safeKID(kid), found[0].reason)
	case hasKID:
		return nil, auth.InvalidToken("key %s cannot verify %s", safeKID(kid), alg)
	}
	return nil, auth.InvalidToken("no key of the JWK Set can verify %s", alg)
}

// holds reports whether the set has a key with id kid.
func (s *jwks) holds(kid string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.keys {
		if k.kid == kid {
			return true
		}
	}
	return false
}

// maybeRefresh fetches the set again when it is stale, or, with unknownKID,
// because a token named a key the set lacks. Either way at most once per
// minRefresh. A stale-set refresh under way elsewhere is not waited for
// (the current keys serve meanwhile); an unknown-kid refresh waits for it
// and then does not fetch again.
func (s *jwks) maybeRefresh(unknownKID bool) {
	s.mu.RLock()
	attempted, fetched := s.attempted, s.fetched
	s.mu.RUnlock()
	now := s.opts.now()
	if now.Sub(attempted) < s.opts.minRefresh || (!unknownKID && now.Sub(fetched) < s.opts.refresh) {
		return
	}
	if unknownKID {
		s.fetchMu.Lock()
	} else if !s.fetchMu.TryLock() {
		return
	}
	defer s.fetchMu.Unlock()
	s.mu.RLock()
	again := s.attempted.Equal(attempted)
	s.mu.RUnlock()
	if !again {
		return // another request fetched meanwhile
	}
	keys, err := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempted = s.opts.now()
	if err == nil {
		s.keys, s.fetched = keys, s.attempted
	}
}
