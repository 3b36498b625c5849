package jwtauth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/auth/jwtauth"
)

// FuzzAuthenticate feeds arbitrary token strings, in the header and in the
// cookie, to authenticators with an HMAC secret, an RSA public key and a
// JWK Set. None of the seeds is signed with a configured key, so nothing
// may ever be accepted; every refusal must be a one-line *auth.Error that
// does not echo the token.
func FuzzAuthenticate(f *testing.F) {
	k := testKeys()
	claims := jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}, "subscribe": []string{"*"}}}
	seed := func(method jwt.SigningMethod, key any, header map[string]any) {
		tok := jwt.NewWithClaims(method, claims)
		for k, v := range header {
			tok.Header[k] = v
		}
		if s, err := tok.SignedString(key); err == nil {
			f.Add(s)
		}
	}
	seed(jwt.SigningMethodHS256, otherSecret, nil)
	seed(jwt.SigningMethodHS256, []byte(k.rsaPEM), nil)
	seed(jwt.SigningMethodRS256, mustRSAForFuzz(), map[string]any{"kid": "k1"})
	seed(jwt.SigningMethodRS256, mustRSAForFuzz(), map[string]any{"kid": "k1", "jku": "http://127.0.0.1:1/jwks"})
	seed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil)
	seed(jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "k1"}) // EdDSA is not allowed
	f.Add(conformanceToken[:len(conformanceToken)-2] + "xx")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("a.b.c")
	f.Add("....")
	f.Add("")

	jwksPath := filepath.Join(f.TempDir(), "jwks.json")
	doc, _ := json.Marshal(map[string]any{"keys": []any{rsaJWK("k1", &k.rsa.PublicKey), octJWK("h", secret)}})
	if err := os.WriteFile(jwksPath, doc, 0o600); err != nil {
		f.Fatal(err)
	}
	var auths []*jwtauth.Authenticator
	for _, cfg := range []jwtauth.Config{
		{Publisher: jwtauth.Key{Secret: secret}, AllowQueryToken: true},
		{Publisher: jwtauth.Key{PublicKey: k.rsaPEM, Algorithms: []string{"RS256", "PS256"}}, Audience: "https://hub", RequireExp: true},
		{Publisher: jwtauth.Key{JWKS: jwksPath, Algorithms: []string{"RS256", "ES256"}}, Issuers: []jwtauth.Issuer{{Name: "https://a", Publisher: jwtauth.Key{Secret: otherSecret}}}},
	} {
		cfg.Now = clock
		a, err := jwtauth.New(cfg)
		if err != nil {
			f.Fatal(err)
		}
		auths = append(auths, a)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, a := range auths {
			for _, where := range []string{"header", "cookie", "verify"} {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				var g *auth.Grant
				var err error
				switch where {
				case "header":
					r.Header["Authorization"] = []string{"Bearer " + token}
					g, err = a.Authenticate(r, auth.Publisher)
				case "cookie":
					r.Header["Cookie"] = []string{"mercureAuthorization=" + token}
					g, err = a.Authenticate(r, auth.Subscriber)
				default:
					var ae *auth.Error
					g, ae = a.Verify(token, auth.Publisher)
					if ae != nil {
						err = ae
					}
				}
				if g != nil {
					t.Fatalf("%s: accepted %q", where, token)
				}
				if err == nil {
					continue // no token found in the request
				}
				var ae *auth.Error
				if !errors.As(err, &ae) || (ae.Status != 400 && ae.Status != 401) {
					t.Fatalf("%s: error %v (%T)", where, err, err)
				}
				if strings.ContainsAny(ae.Description, "\r\n") {
					t.Fatalf("%s: description is not one line: %q", where, ae.Description)
				}
				if len(token) >= 24 && strings.Contains(ae.Description, token) {
					t.Fatalf("%s: description echoes the token: %q", where, ae.Description)
				}
				_ = ae.Challenge()
			}
		}
	})
}

// mustRSAForFuzz returns a fresh RSA key that no authenticator trusts.
func mustRSAForFuzz() any {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}
