package jwtauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/auth/jwtauth"
)

var (
	secret      = []byte("!ChangeThisMercureHubJWTSecretKey!")
	otherSecret = []byte("another-secret-of-at-least-32-bytes!!")
	now         = time.Unix(1_800_000_000, 0)
)

func clock() time.Time { return now }

// keys holds asymmetric test keys, generated once.
type keys struct {
	rsa      *rsa.PrivateKey
	rsaPEM   string
	p256     *ecdsa.PrivateKey
	p256PEM  string
	p384     *ecdsa.PrivateKey
	p384PEM  string
	ed       ed25519.PrivateKey
	edPEM    string
	rsaSmall string
	privPEM  string
}

var testKeys = sync.OnceValue(func() *keys {
	k := &keys{}
	var err error
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.rsaPEM = pubPEM(&k.rsa.PublicKey)
	k.p256PEM = pubPEM(&k.p256.PublicKey)
	k.p384PEM = pubPEM(&k.p384.PublicKey)
	k.edPEM = pubPEM(k.ed.Public())
	k.rsaSmall = pubPEM(&small.PublicKey)
	der, err := x509.MarshalPKCS8PrivateKey(k.p256)
	must(err)
	k.privPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return k
})

func pubPEM(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sign signs claims with method and key, setting extra header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

func hs256(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, secret, nil, claims)
}

// bearer returns a request carrying token in the Authorization header.
func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/.well-known/mercure", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func newAuth(t testing.TB, cfg jwtauth.Config) *jwtauth.Authenticator {
	t.Helper()
	if cfg.Publisher.IsZero() {
		cfg.Publisher = jwtauth.Key{Secret: secret}
	}
	if cfg.Now == nil {
		cfg.Now = clock
	}
	a, err := jwtauth.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// wantAuthError checks err is an *auth.Error with the status and a
// description containing desc.
func wantAuthError(t testing.TB, err error, status int, desc string) *auth.Error {
	t.Helper()
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T); want *auth.Error", err, err)
	}
	if ae.Status != status || !strings.Contains(ae.Description, desc) {
		t.Fatalf("error = %d %q; want %d containing %q", ae.Status, ae.Error(), status, desc)
	}
	return ae
}
