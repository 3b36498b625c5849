package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/selector"
)

// Defaults of Config.
const (
	// DefaultCookieName is the cookie read when Config.CookieName is empty:
	// the v0.24 Mercure cookie. SecureCookieName is always read too.
	DefaultCookieName = "mercureAuthorization"
	// SecureCookieName is the Mercure 1.0 cookie name, always accepted.
	SecureCookieName = "__Secure-mercure_access_token"
	// DefaultMaxDetails is the default maximum number of entries of a
	// token's authorization_details claim.
	DefaultMaxDetails = 1000
	// DefaultMaxMatchers is the default maximum number of topic selectors in
	// one token, both claims together.
	DefaultMaxMatchers = 1000
	// DefaultMaxTokenBytes is the default maximum length of a token.
	DefaultMaxTokenBytes = 256 << 10
	// DefaultAlgorithm is the algorithm accepted for an HMAC secret when
	// Key.Algorithms is empty.
	DefaultAlgorithm = "HS256"
)

// Key is the key that verifies one role's tokens. Set exactly one of
// Secret, PublicKey, PublicKeyFile and JWKS.
type Key struct {
	// Algorithms lists the JWS algorithms accepted with this key. It is
	// never taken from the token. Every algorithm must suit the key: HS256,
	// HS384 or HS512 for a Secret; RS256, RS384, RS512, PS256, PS384 or
	// PS512 for an RSA key; ES256, ES384 or ES512 for an ECDSA key on the
	// matching curve (P-256, P-384, P-521); EdDSA for an Ed25519 key. "none"
	// is always refused. Empty means HS256 for a Secret, RS256 for an RSA
	// key, the algorithm of the curve for an ECDSA key and EdDSA for an
	// Ed25519 key. With a JWKS, every asymmetric algorithm may be listed,
	// each key of the set verifies only the algorithms of its type (and
	// its own "alg" when it names one), and empty means RS256.
	Algorithms []string
	// Secret is an HMAC secret. It must be at least as long as the output
	// of the hash of every algorithm it is used with (32 bytes for HS256,
	// 48 for HS384, 64 for HS512; RFC 7518 section 3.2), and must not look
	// like a PEM key: using a public key as an HMAC secret lets anyone who
	// knows the public key forge tokens.
	Secret []byte
	// PublicKey is a PEM-encoded public key (PKIX "PUBLIC KEY", PKCS #1
	// "RSA PUBLIC KEY") or certificate. RSA keys must have at least 2048
	// bits.
	PublicKey string
	// PublicKeyFile is the path of a file holding what PublicKey would.
	PublicKeyFile string
	// JWKS is where a JWK Set (RFC 7517) of public keys is read: an https
	// URL (http only for a loopback host), or else the path of a file.
	// The set is read when the Authenticator is created (failing New if
	// it cannot be), read again every Config.JWKSRefresh, and read again
	// when a token names a key ID the set lacks, at most once per
	// Config.JWKSMinRefresh. A token's kid selects the key; a token
	// without one is tried against every key suiting its algorithm.
	// Symmetric ("oct") and private keys in the set are never used. Keys
	// are never fetched from a location named by a token (its jku, x5u or
	// jwk header).
	JWKS string
}

// IsZero reports whether k sets no key material.
func (k Key) IsZero() bool {
	return len(k.Secret) == 0 && k.PublicKey == "" && k.PublicKeyFile == "" && k.JWKS == ""
}

// Validate reports whether k is usable: it loads and parses the key (for a
// JWKS, reads the set once) and checks every algorithm against it.
// Messages never contain key material.
func (k Key) Validate() error {
	_, err := k.verifier(jwksOptions{refresh: DefaultJWKSRefresh, minRefresh: DefaultJWKSMinRefresh, client: defaultJWKSClient, now: time.Now})
	return err
}

// verifier is a loaded key and the algorithms pinned to it.
type verifier struct {
	algs []string
	key  any   // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey; nil with set
	set  *jwks // the JWK Set, when the key is one
}

// keyFor returns the key that verifies t, whose algorithm the parser has
// already checked against v.algs.
func (v *verifier) keyFor(t *jwt.Token) (any, error) {
	// WithValidMethods already refused other algorithms; check again so
	// that a key is never used with another one.
	if !slices.Contains(v.algs, t.Method.Alg()) {
		return nil, errors.New("unexpected signing method")
	}
	if v.set != nil {
		return v.set.keyFor(t)
	}
	return v.key, nil
}

var (
	hmacAlgs  = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}
	rsaAlgs   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	curveAlgs = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
	// asymmetricAlgs are the algorithms a JWK Set may verify.
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

func (k Key) verifier(opts jwksOptions) (*verifier, error) {
	n := 0
	for _, set := range []bool{len(k.Secret) > 0, k.PublicKey != "", k.PublicKeyFile != "", k.JWKS != ""} {
		if set {
			n++
		}
	}
	switch n {
	case 0:
		return nil, errors.New("no key: set Secret, PublicKey, PublicKeyFile or JWKS")
	case 1:
	default:
		return nil, errors.New("set only one of Secret, PublicKey, PublicKeyFile and JWKS")
	}
	for _, alg := range k.Algorithms {
		if strings.EqualFold(alg, "none") {
			return nil, errors.New(`algorithm "none" is never accepted`)
		}
	}

	if len(k.Secret) > 0 {
		if bytes.Contains(k.Secret, []byte("-----BEGIN")) {
			return nil, errors.New("the HMAC secret looks like a PEM key; configure PEM keys as PublicKey with an asymmetric algorithm")
		}
		algs := k.Algorithms
		if len(algs) == 0 {
			algs = []string{DefaultAlgorithm}
		}
		for _, alg := range algs {
			minLen, ok := hmacAlgs[alg]
			if !ok {
				return nil, fmt.Errorf("algorithm %q cannot be used with an HMAC secret", alg)
			}
			if len(k.Secret) < minLen {
				return nil, fmt.Errorf("the HMAC secret is %d bytes; %s needs at least %d", len(k.Secret), alg, minLen)
			}
		}
		return &verifier{algs: algs, key: slices.Clone(k.Secret)}, nil
	}

	if k.JWKS != "" {
		algs := k.Algorithms
		if len(algs) == 0 {
			algs = []string{"RS256"}
		}
		for _, alg := range algs {
			if !slices.Contains(asymmetricAlgs, alg) {
				return nil, fmt.Errorf("algorithm %q cannot be used with a JWK Set (allowed: %s)", alg, strings.Join(asymmetricAlgs, ", "))
			}
		}
		set, err := newJWKS(k.JWKS, opts)
		if err != nil {
			return nil, err
		}
		return &verifier{algs: algs, set: set}, nil
	}

	data := []byte(k.PublicKey)
	if k.PublicKeyFile != "" {
		var err error
		if data, err = os.ReadFile(k.PublicKeyFile); err != nil {
			return nil, fmt.Errorf("reading the public key: %w", err)
		}
	}
	pub, err := parsePublicKey(data)
	if err != nil {
		return nil, err
	}
	var allowed []string
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Errorf("the RSA key has %d bits; at least 2048 are required", pub.N.BitLen())
		}
		allowed = rsaAlgs
	case *ecdsa.PublicKey:
		alg, ok := curveAlgs[pub.Curve.Params().Name]
		if !ok {
			return nil, fmt.Errorf("the ECDSA curve %s is not supported", pub.Curve.Params().Name)
		}
		allowed = []string{alg}
	case ed25519.PublicKey:
		allowed = []string{"EdDSA"}
	default:
		return nil, fmt.Errorf("public keys of type %T are not supported", pub)
	}
	algs := k.Algorithms
	if len(algs) == 0 {
		algs = allowed[:1]
	}
	for _, alg := range algs {
		if !slices.Contains(allowed, alg) {
			return nil, fmt.Errorf("algorithm %q cannot be used with this %s key (allowed: %s)", alg, keyType(pub), strings.Join(allowed, ", "))
		}
	}
	return &verifier{algs: algs, key: pub}, nil
}

func keyType(pub any) string {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA " + pub.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return "unknown"
}

// parsePublicKey decodes the first PEM block of data as a public key.
func parsePublicKey(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("the public key is not PEM-encoded")
	}
	if strings.Contains(block.Type, "PRIVATE") {
		return nil, errors.New("the PEM block is a private key; configure the public key")
	}
	if pub, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		return pub, nil
	}
	if pub, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		return pub, nil
	}
	if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("the PEM block %q is not a public key or certificate", block.Type)
}

// Issuer is the keys of one token issuer: a token whose iss claim is Name
// is verified with these keys only.
type Issuer struct {
	// Name is the iss value, compared exactly.
	Name string
	// Publisher verifies the issuer's publish tokens. Required.
	Publisher Key
	// Subscriber verifies the issuer's subscribe tokens. The zero Key means
	// Publisher.
	Subscriber Key
}

// Config configures an Authenticator. Publisher, or at least one of
// Issuers, is required; every other zero field means its documented
// default.
type Config struct {
	// Publisher verifies the tokens of publish requests, except those of
	// the Issuers. Required unless Issuers is set.
	Publisher Key
	// Subscriber verifies the tokens of subscribe requests. The zero Key
	// means Publisher's key. Mercure recommends distinct keys, so that a
	// leaked subscriber key cannot publish.
	Subscriber Key
	// Audience, when set, must appear in the token's aud claim (a string
	// or an array): a token without aud is refused. Mercure 1.0 requires
	// it; it is optional here because v0.24 tokens rarely carry one. Use
	// the hub's URL, such as "https://hub.example.com/.well-known/mercure".
	Audience string
	// HubAudiences, used when Audience is empty, are the names of this
	// hub a token's aud claim may use (compared exactly): a token whose
	// aud names none of them was issued for another service and is
	// refused ("wrong audience"); a token without aud is accepted, as
	// v0.24 tokens rarely carry one. The server sets the hub's public URL
	// and its Mercure endpoint URL here. Empty (and Audience empty) means
	// aud is not checked.
	HubAudiences []string
	// Issuer, when set, must equal the token's iss claim of tokens
	// verified by Publisher and Subscriber.
	Issuer string
	// Issuers gives each listed token issuer its own keys. The iss claim
	// of a token, read before its signature is verified, only selects
	// which configured keys verify it (and is then verified itself); it
	// is never used to locate keys. Tokens of other issuers, or without
	// iss, are verified by Publisher and Subscriber, and refused when
	// those are not set. Each issuer's JWK Set is cached separately, so a
	// key ID of one issuer never selects another issuer's key.
	Issuers []Issuer
	// JWKSRefresh is how often a JWK Set is read again. Zero means
	// DefaultJWKSRefresh (1 h).
	JWKSRefresh time.Duration
	// JWKSMinRefresh is the least time between two reads of a JWK Set,
	// which bounds the reads that tokens naming unknown key IDs cause.
	// Zero means DefaultJWKSMinRefresh (1 min).
	JWKSMinRefresh time.Duration
	// HTTPClient fetches JWK Sets from URLs. Nil means a client with a
	// 10 s timeout that follows no redirect.
	HTTPClient *http.Client
	// RequireExp refuses tokens without an exp claim. Mercure 1.0 requires
	// it; v0.24 tokens often have none. An exp that is present is always
	// enforced.
	RequireExp bool
	// Leeway is the clock skew tolerated when checking exp, nbf and iat.
	// Zero means none.
	Leeway time.Duration
	// CookieName is the cookie holding a token for browsers. Empty means
	// DefaultCookieName. SecureCookieName is accepted as well.
	CookieName string
	// AllowQueryToken accepts a token in the "authorization" query
	// parameter. Off by default: URLs leak into logs, history and Referer
	// headers (RFC 9700). Enable it only for legacy clients, and redact the
	// parameter from every log.
	AllowQueryToken bool
	// MaxDetails is the maximum number of entries of a token's
	// authorization_details claim. Zero means DefaultMaxDetails.
	MaxDetails int
	// MaxMatchers is the maximum number of topic selectors in one token,
	// counting both claims. Zero means DefaultMaxMatchers.
	MaxMatchers int
	// MaxTokenBytes is the maximum length of a token. Zero means
	// DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Selectors compiles the selectors of tokens; share the hub's Compiler
	// so that relative URL patterns resolve against the hub URL and
	// compiled patterns are shared. Nil means a Compiler with the default
	// selector.Config.
	Selectors *selector.Compiler
	// Now returns the current time, for exp, nbf and iat. Nil means
	// time.Now.
	Now func() time.Time
}

// Validate reports the first invalid field of c, or nil. Messages never
// contain key material.
//
// Validate loads every key except JWK Sets, which New reads (a JWK Set that
// cannot be read fails New).
func (c Config) Validate() error {
	if c.Publisher.IsZero() && len(c.Issuers) == 0 {
		return errors.New("jwtauth: Publisher: no key: set Secret, PublicKey, PublicKeyFile or JWKS")
	}
	if c.Publisher.IsZero() && !c.Subscriber.IsZero() {
		return errors.New("jwtauth: Subscriber is set without Publisher")
	}
	seen := map[string]bool{}
	for i, is := range c.Issuers {
		switch {
		case is.Name == "":
			return fmt.Errorf("jwtauth: Issuers[%d]: Name is empty", i)
		case seen[is.Name]:
			return fmt.Errorf("jwtauth: Issuers[%d]: issuer %q is listed twice", i, is.Name)
		case is.Publisher.IsZero():
			return fmt.Errorf("jwtauth: Issuers[%d] (%s): Publisher: no key: set Secret, PublicKey, PublicKeyFile or JWKS", i, is.Name)
		case c.Issuer != "":
			return errors.New("jwtauth: set Issuer or Issuers, not both")
		}
		seen[is.Name] = true
	}
	for _, k := range c.keys() {
		if !k.key.IsZero() && k.key.JWKS == "" {
			if err := k.key.Validate(); err != nil {
				return fmt.Errorf("jwtauth: %s: %w", k.name, err)
			}
		}
	}
	switch {
	case c.JWKSRefresh < 0:
		return errors.New("jwtauth: JWKSRefresh must not be negative")
	case c.JWKSMinRefresh < 0:
		return errors.New("jwtauth: JWKSMinRefresh must not be negative")
	case c.Leeway < 0:
		return errors.New("jwtauth: Leeway must not be negative")
	case c.MaxDetails < 0:
		return errors.New("jwtauth: MaxDetails must not be negative")
	case c.MaxMatchers < 0:
		return errors.New("jwtauth: MaxMatchers must not be negative")
	case c.MaxTokenBytes < 0:
		return errors.New("jwtauth: MaxTokenBytes must not be negative")
	case strings.ContainsAny(c.CookieName, " \t\r\n;,="):
		return errors.New("jwtauth: CookieName is not a valid cookie name")
	case slices.Contains(c.HubAudiences, ""):
		return errors.New("jwtauth: HubAudiences has an empty name")
	}
	return nil
}

// namedKey is a key of a Config and the name of its field.
type namedKey struct {
	name string
	key  Key
}

// keys lists the keys of c, named for messages.
func (c Config) keys() []namedKey {
	ks := []namedKey{{"Publisher", c.Publisher}, {"Subscriber", c.Subscriber}}
	for i, is := range c.Issuers {
		prefix := fmt.Sprintf("Issuers[%d] (%s).", i, is.Name)
		ks = append(ks, namedKey{prefix + "Publisher", is.Publisher}, namedKey{prefix + "Subscriber", is.Subscriber})
	}
	return ks
}
