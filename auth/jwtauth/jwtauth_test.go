package jwtauth_test

import (
	"encoding/base64"
	"fmt"
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
	"github.com/ssehub/ssehub/selector"
)

// conformanceToken is the token of the Mercure conformance test suite,
// signed with HS256 and the Mercure development key.
const conformanceToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJhdWQiOiJodHRwczovL2xvY2FsaG9zdC8ud2VsbC1rbm93bi9tZXJjdXJlIiwiaXNzIjoiaHR0cHM6Ly9sb2NhbGhvc3QiLCJhdXRob3JpemF0aW9uX2RldGFpbHMiOlt7InR5cGUiOiJodHRwczovL21lcmN1cmUucm9ja3MvYXV0aG9yaXphdGlvbi1kZXRhaWwiLCJhY3Rpb25zIjpbInB1Ymxpc2giXSwidG9waWNzIjpbeyJtYXRjaCI6IioifV19LHsidHlwZSI6Imh0dHBzOi8vbWVyY3VyZS5yb2Nrcy9hdXRob3JpemF0aW9uLWRldGFpbCIsImFjdGlvbnMiOlsic3Vic2NyaWJlIl0sInRvcGljcyI6W3sibWF0Y2giOiIqIn1dfV0sImV4cCI6NDEwMjQ0NDgwMH0.z_S8IP5WZsCK8h3pcq0PB5zvJE0OdTrGA70khAYJQy4"

func TestConformanceToken(t *testing.T) {
	t.Parallel()
	a := newAuth(t, jwtauth.Config{
		Publisher:  jwtauth.Key{Secret: []byte("!ChangeThisMercureHubJWTSecretKey!")},
		Audience:   "https://localhost/.well-known/mercure",
		Issuer:     "https://localhost",
		RequireExp: true,
	})
	for _, role := range []auth.Role{auth.Publisher, auth.Subscriber} {
		g, err := a.Authenticate(bearer(conformanceToken), role)
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		topics := []string{"https://example.com/books/1", "urn:x", "/relative"}
		if !g.CanPublish(topics) || !g.CanRead(topics) {
			t.Errorf("%s: grant does not publish and read every topic: %+v", role, g)
		}
		if g.Source != auth.SourceHeader || !g.Expires.Equal(time.Unix(4102444800, 0)) {
			t.Errorf("%s: Source, Expires = %v, %v", role, g.Source, g.Expires)
		}
	}
	// The wrong secret refuses it.
	b := newAuth(t, jwtauth.Config{Publisher: jwtauth.Key{Secret: otherSecret}})
	_, err := b.Authenticate(bearer(conformanceToken), auth.Publisher)
	wantAuthError(t, err, 401, "signature is invalid")
}

func TestAttacks(t *testing.T) {
	t.Parallel()
	k := testKeys()
	exp := now.Add(time.Hour).Unix()
	valid := jwt.MapClaims{"exp": exp, "mercure": map[string]any{"publish": []string{"*"}}}
	with := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{"exp": exp}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	detail := func(fields map[string]any) []any {
		d := map[string]any{"type": jwtauth.DetailType, "actions": []string{"publish"}, "topics": []any{map[string]any{"match": "*"}}}
		for k, v := range fields {
			if v == nil {
				delete(d, k)
			} else {
				d[k] = v
			}
		}
		return []any{d}
	}
	rsaCfg := jwtauth.Config{Publisher: jwtauth.Key{PublicKey: k.rsaPEM, Algorithms: []string{"RS256"}}}
	noneToken, _ := jwt.NewWithClaims(jwt.SigningMethodNone, valid).SignedString(jwt.UnsafeAllowNoneSignatureType)
	goodParts := strings.Split(hs256(t, valid), ".")
	tampered := goodParts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":9999999999,"mercure":{"publish":["*"],"subscribe":["*"]}}`)) + "." + goodParts[2]
	manyDetails := make([]any, 1001)
	for i := range manyDetails {
		manyDetails[i] = detail(nil)[0]
	}
	manyTopics := make([]any, 1001)
	for i := range manyTopics {
		manyTopics[i] = map[string]any{"match": "*"}
	}

	tests := []struct {
		name  string
		cfg   jwtauth.Config
		role  auth.Role
		token string
		want  string
	}{
		{"alg none", jwtauth.Config{}, auth.Publisher, noneToken, "signing method none is not allowed"},
		{"alg none, empty signature", jwtauth.Config{}, auth.Publisher, strings.Join(strings.Split(noneToken, ".")[:2], ".") + ".", "signing method none is not allowed"},
		{"alg NONE", jwtauth.Config{}, auth.Publisher, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"alg": "NONE"}, valid), "signing method NONE is not allowed"},
		{"algorithm confusion: HS256 signed with the RSA public key",
			rsaCfg, auth.Publisher, sign(t, jwt.SigningMethodHS256, []byte(k.rsaPEM), nil, valid), "signing method HS256 is not allowed"},
		{"HS384 against HS256", jwtauth.Config{Publisher: jwtauth.Key{Secret: []byte(strings.Repeat("s", 48))}}, auth.Publisher,
			sign(t, jwt.SigningMethodHS384, []byte(strings.Repeat("s", 48)), nil, valid), "signing method HS384 is not allowed"},
		{"ES256 against EdDSA", jwtauth.Config{Publisher: jwtauth.Key{PublicKey: k.edPEM}}, auth.Publisher,
			sign(t, jwt.SigningMethodES256, k.p256, nil, valid), "signing method ES256 is not allowed"},
		{"unknown alg", jwtauth.Config{}, auth.Publisher, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"alg": "XX999"}, valid), "signing method XX999 is not allowed"},
		{"alg with odd characters", jwtauth.Config{}, auth.Publisher, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"alg": "HS256\n\""}, valid), "signing method (unprintable) is not allowed"},
		{"bad signature", jwtauth.Config{}, auth.Publisher, sign(t, jwt.SigningMethodHS256, otherSecret, nil, valid), "signature is invalid"},
		{"tampered claims", jwtauth.Config{}, auth.Publisher, tampered, "signature is invalid"},
		{"publisher token on the subscriber key",
			jwtauth.Config{Subscriber: jwtauth.Key{Secret: otherSecret}}, auth.Subscriber, hs256(t, valid), "signature is invalid"},
		{"subscriber token on the publisher key",
			jwtauth.Config{Subscriber: jwtauth.Key{Secret: otherSecret}}, auth.Publisher, sign(t, jwt.SigningMethodHS256, otherSecret, nil, valid), "signature is invalid"},
		{"expired", jwtauth.Config{}, auth.Publisher, hs256(t, jwt.MapClaims{"exp": now.Add(-time.Second).Unix()}), "token is expired"},
		{"expired beyond leeway", jwtauth.Config{Leeway: time.Minute}, auth.Publisher, hs256(t, jwt.MapClaims{"exp": now.Add(-2 * time.Minute).Unix()}), "token is expired"},
		{"nbf in the future", jwtauth.Config{}, auth.Publisher, hs256(t, with("nbf", now.Add(time.Minute).Unix())), "token is not valid yet"},
		{"iat in the future", jwtauth.Config{}, auth.Publisher, hs256(t, with("iat", now.Add(time.Minute).Unix())), "token is issued in the future"},
		{"no exp when required", jwtauth.Config{RequireExp: true}, auth.Publisher, hs256(t, jwt.MapClaims{"sub": "x"}), "token has no exp claim"},
		{"wrong aud", jwtauth.Config{Audience: "https://hub.example.com/.well-known/mercure"}, auth.Publisher, hs256(t, with("aud", "https://evil.example.com")), "wrong audience"},
		{"missing aud", jwtauth.Config{Audience: "https://hub.example.com/.well-known/mercure"}, auth.Publisher, hs256(t, valid), "token has no aud claim"},
		{"wrong iss", jwtauth.Config{Issuer: "https://example.com"}, auth.Publisher, hs256(t, with("iss", "https://evil.example.com")), "wrong issuer"},
		{"missing iss", jwtauth.Config{Issuer: "https://example.com"}, auth.Publisher, hs256(t, valid), "token has no iss claim"},
		{"exp is a string", jwtauth.Config{}, auth.Publisher, hs256(t, jwt.MapClaims{"exp": "tomorrow"}), "malformed claims: exp is not a number"},
		{"exp is a numeric string", jwtauth.Config{}, auth.Publisher, hs256(t, jwt.MapClaims{"exp": fmt.Sprint(exp)}), "malformed claims: exp is not a number"},
		{"exp is a numeric string, not required", jwtauth.Config{RequireExp: false}, auth.Publisher, hs256(t, with("exp", "4102444800")), "malformed claims: exp is not a number"},
		{"nbf is a numeric string", jwtauth.Config{}, auth.Publisher, hs256(t, with("nbf", fmt.Sprint(now.Unix()))), "malformed claims: nbf is not a number"},
		{"iat is a numeric string", jwtauth.Config{}, auth.Publisher, hs256(t, with("iat", fmt.Sprint(now.Unix()))), "malformed claims: iat is not a number"},
		{"exp is an array", jwtauth.Config{}, auth.Publisher, hs256(t, jwt.MapClaims{"exp": []int64{exp}}), "malformed claims: exp is not a number"},
		{"exp is true", jwtauth.Config{}, auth.Publisher, hs256(t, jwt.MapClaims{"exp": true}), "malformed claims: exp is not a number"},
		{"typ JWE", jwtauth.Config{}, auth.Publisher, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"typ": "JWE"}, valid), "token type JWE is not accepted"},
		{"typ dpop+jwt", jwtauth.Config{}, auth.Publisher, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"typ": "dpop+jwt"}, valid), "token type dpop+jwt is not accepted"},
		{"typ not a string", jwtauth.Config{}, auth.Publisher, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"typ": 1}, valid), "is not accepted"},
		{"crit header", jwtauth.Config{}, auth.Publisher, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"crit": []string{"exp"}}, valid), "critical header"},
		{"not a JWT", jwtauth.Config{}, auth.Publisher, "abc", "token is malformed"},
		{"three garbage parts", jwtauth.Config{}, auth.Publisher, "a.b.c", "token is malformed"},
		{"too long", jwtauth.Config{MaxTokenBytes: 20}, auth.Publisher, hs256(t, valid), "longer than 20 bytes"},

		// Malformed claims reject the whole token.
		{"mercure not an object", jwtauth.Config{}, auth.Publisher, hs256(t, with("mercure", []string{"*"})), "malformed claims: mercure claim is not an object"},
		{"mercure.publish not strings", jwtauth.Config{}, auth.Publisher, hs256(t, with("mercure", map[string]any{"publish": []any{"*", 1}})), "mercure.publish is not an array of strings"},
		{"mercure.subscribe a string", jwtauth.Config{}, auth.Publisher, hs256(t, with("mercure", map[string]any{"subscribe": "*"})), "mercure.subscribe is not an array of strings"},
		{"mercure bad template", jwtauth.Config{}, auth.Publisher, hs256(t, with("mercure", map[string]any{"publish": []string{"https://example.com/{id"}})), "mercure.publish[0]: selector: invalid URI template"},
		{"mercure control character", jwtauth.Config{}, auth.Publisher, hs256(t, with("mercure", map[string]any{"subscribe": []string{"a", "b\u200b"}})), "mercure.subscribe[1]: selector: template selector contains format character U+200B"},
		{"details not an array", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", map[string]any{})), "authorization_details is not an array"},
		{"detail not an object", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", []any{"publish"})), "authorization_details[0]: not an object"},
		{"detail type missing", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"type": nil}))), "type is not a string"},
		{"actions missing", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"actions": nil}))), "actions is not an array of strings"},
		{"actions empty", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"actions": []string{}}))), "actions is empty"},
		{"action not a string", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"actions": []any{"publish", 2}}))), "actions is not an array of strings"},
		{"topics missing", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": nil}))), "topics is not an array"},
		{"topics empty", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": []any{}}))), "topics is empty"},
		{"topic not an object", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": []any{"*"}}))), "topics[0]: not an object"},
		{"match missing", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": []any{map[string]any{"match_type": "exact"}}}))), "match is not a string"},
		{"match_type unknown", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": []any{map[string]any{"match": "*", "match_type": "regexp"}}}))), `unsupported matcher type "regexp"`},
		{"match_type template", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": []any{map[string]any{"match": "a", "match_type": "template"}}}))), "unsupported matcher type"},
		{"match_type not a string", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": []any{map[string]any{"match": "a", "match_type": 1}}}))), "match_type is not a string"},
		{"invalid URL pattern", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": []any{map[string]any{"match": "https://example.com/(", "match_type": "urlpattern"}}}))), "invalid URL pattern"},
		{"payload not an object", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"payload": "x"}))), "payload is not an object"},
		{"one bad detail among good ones", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", append(detail(nil), "bad"))), "authorization_details[1]: not an object"},
		{"too many details", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", manyDetails)), "more than 1000 authorization details"},
		{"too many topics", jwtauth.Config{}, auth.Publisher, hs256(t, with("authorization_details", detail(map[string]any{"topics": manyTopics}))), "more than 1000 topic selectors"},
		{"too many selectors across claims", jwtauth.Config{MaxMatchers: 2}, auth.Publisher,
			hs256(t, with("mercure", map[string]any{"publish": []string{"a", "b"}}, "authorization_details", detail(nil))), "more than 2 topic selectors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAuth(t, tt.cfg)
			g, err := a.Authenticate(bearer(tt.token), tt.role)
			if g != nil {
				t.Fatalf("got grant %+v; want error %q", g, tt.want)
			}
			ae := wantAuthError(t, err, http.StatusUnauthorized, tt.want)
			if ae.Code != "invalid_token" {
				t.Errorf("Code = %q; want invalid_token", ae.Code)
			}
			for _, part := range strings.Split(tt.token, ".") {
				if len(part) > 8 && strings.Contains(ae.Error()+ae.Challenge(), part) {
					t.Errorf("error %q contains part of the token", ae)
				}
			}
			if strings.Contains(ae.Error(), string(secret)) || strings.Contains(ae.Error(), "BEGIN") {
				t.Errorf("error %q contains key material", ae)
			}
		})
	}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	k := testKeys()
	claims := jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}}
	tests := []struct {
		name  string
		key   jwtauth.Key
		cfg   jwtauth.Config
		token string
	}{
		{"HS256 default", jwtauth.Key{Secret: secret}, jwtauth.Config{}, hs256(t, claims)},
		{"HS512", jwtauth.Key{Secret: []byte(strings.Repeat("k", 64)), Algorithms: []string{"HS256", "HS512"}}, jwtauth.Config{},
			sign(t, jwt.SigningMethodHS512, []byte(strings.Repeat("k", 64)), nil, claims)},
		{"RS256", jwtauth.Key{PublicKey: k.rsaPEM}, jwtauth.Config{}, sign(t, jwt.SigningMethodRS256, k.rsa, nil, claims)},
		{"PS384", jwtauth.Key{PublicKey: k.rsaPEM, Algorithms: []string{"RS256", "PS384"}}, jwtauth.Config{}, sign(t, jwt.SigningMethodPS384, k.rsa, nil, claims)},
		{"ES256", jwtauth.Key{PublicKey: k.p256PEM}, jwtauth.Config{}, sign(t, jwt.SigningMethodES256, k.p256, nil, claims)},
		{"ES384", jwtauth.Key{PublicKey: k.p384PEM}, jwtauth.Config{}, sign(t, jwt.SigningMethodES384, k.p384, nil, claims)},
		{"EdDSA", jwtauth.Key{PublicKey: k.edPEM}, jwtauth.Config{}, sign(t, jwt.SigningMethodEdDSA, k.ed, nil, claims)},
		{"typ at+jwt", jwtauth.Key{Secret: secret}, jwtauth.Config{}, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"typ": "at+jwt"}, claims)},
		{"typ application/AT+JWT", jwtauth.Key{Secret: secret}, jwtauth.Config{}, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"typ": "application/AT+JWT"}, claims)},
		{"typ absent", jwtauth.Key{Secret: secret}, jwtauth.Config{}, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"typ": nil}, claims)},
		{"no exp", jwtauth.Key{Secret: secret}, jwtauth.Config{}, hs256(t, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})},
		{"expired within leeway", jwtauth.Key{Secret: secret}, jwtauth.Config{Leeway: time.Minute},
			hs256(t, jwt.MapClaims{"exp": now.Add(-30 * time.Second).Unix(), "mercure": map[string]any{"publish": []string{"*"}}})},
		{"aud in an array", jwtauth.Key{Secret: secret}, jwtauth.Config{Audience: "https://hub"},
			hs256(t, jwt.MapClaims{"aud": []string{"x", "https://hub"}, "mercure": map[string]any{"publish": []string{"*"}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.Publisher = tt.key
			a := newAuth(t, cfg)
			g, err := a.Authenticate(bearer(tt.token), auth.Publisher)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if !g.CanPublish([]string{"https://example.com/x"}) {
				t.Errorf("grant cannot publish: %+v", g)
			}
		})
	}
}

func TestClaims(t *testing.T) {
	t.Parallel()
	sel, err := selector.New(selector.Config{HubURL: "https://hub.example.com/.well-known/mercure"})
	if err != nil {
		t.Fatal(err)
	}
	a := newAuth(t, jwtauth.Config{Selectors: sel})
	exp := now.Add(time.Hour)
	type check struct {
		publish, noPublish, read, noRead []string
	}
	tests := []struct {
		name   string
		claims jwt.MapClaims
		check  check
	}{
		{"v0.24 claim", jwt.MapClaims{"mercure": map[string]any{
			"publish":   []string{"https://example.com/books/{id}", "urn:exact"},
			"subscribe": []string{"https://example.com/users/42/{+rest}"},
		}}, check{
			publish:   []string{"https://example.com/books/1", "urn:exact", "https://example.com/books/{id}"},
			noPublish: []string{"https://example.com/books/1/x", "urn:exact2"},
			read:      []string{"https://example.com/users/42/books/1"},
			noRead:    []string{"https://example.com/users/43/books/1", "https://example.com/books/1"},
		}},
		{"1.0 details", jwt.MapClaims{"authorization_details": []any{
			map[string]any{"type": jwtauth.DetailType, "actions": []string{"publish"}, "topics": []any{
				map[string]any{"match": "https://example.com/books/:id", "match_type": "urlpattern"},
				map[string]any{"match": "https://example.com/{id}"},
			}},
			map[string]any{"type": jwtauth.DetailType, "actions": []string{"subscribe", "delete"}, "topics": []any{
				map[string]any{"match": "/.well-known/mercure/subscriptions/:topic", "match_type": "urlpattern"},
				map[string]any{"match": "https://example.com/books/1", "match_type": "exact"},
			}},
			map[string]any{"type": "https://other.example.com/detail", "actions": []string{"publish"}, "topics": "ignored"},
			map[string]any{"type": jwtauth.DetailType, "actions": []string{"future-action"}, "topics": []any{map[string]any{"match": "*"}}},
		}}, check{
			publish:   []string{"https://example.com/books/7", "https://example.com/{id}"},
			noPublish: []string{"https://example.com/1", "https://example.com/books/7/x", "https://example.com/authors/1"},
			read:      []string{"https://example.com/books/1", "/.well-known/mercure/subscriptions/abc", "https://hub.example.com/.well-known/mercure/subscriptions/abc"},
			noRead:    []string{"https://example.com/books/2", "https://example.com/anything"},
		}},
		{"both claims are united", jwt.MapClaims{
			"mercure": map[string]any{"publish": []string{"urn:a"}},
			"authorization_details": []any{
				map[string]any{"type": jwtauth.DetailType, "actions": []string{"publish", "subscribe"}, "topics": []any{map[string]any{"match": "urn:b"}}},
			},
		}, check{
			publish:   []string{"urn:a", "urn:b"},
			noPublish: []string{"urn:c"},
			read:      []string{"urn:b"},
			noRead:    []string{"urn:a"},
		}},
		{"wildcard with any match_type", jwt.MapClaims{"authorization_details": []any{
			map[string]any{"type": jwtauth.DetailType, "actions": []string{"subscribe"}, "topics": []any{map[string]any{"match": "*", "match_type": "urlpattern"}}},
		}}, check{read: []string{"not a url", "urn:x"}, noPublish: []string{"urn:x"}}},
		{"no Mercure claims grant nothing", jwt.MapClaims{"jti": "x"}, check{noPublish: []string{"urn:x"}, noRead: []string{"urn:x"}}},
		{"null claims grant nothing", jwt.MapClaims{"mercure": nil, "authorization_details": nil}, check{noPublish: []string{"urn:x"}, noRead: []string{"urn:x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			claims := jwt.MapClaims{"sub": "alice", "exp": exp.Unix()}
			for k, v := range tt.claims {
				claims[k] = v
			}
			g, err := a.Authenticate(bearer(hs256(t, claims)), auth.Subscriber)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if g.Subject != "alice" || !g.Expires.Equal(exp) {
				t.Errorf("Subject, Expires = %q, %v; want alice, %v", g.Subject, g.Expires, exp)
			}
			for _, topic := range tt.check.publish {
				if !g.CanPublish([]string{topic}) {
					t.Errorf("cannot publish %q", topic)
				}
			}
			for _, topic := range tt.check.noPublish {
				if g.CanPublish([]string{topic}) {
					t.Errorf("can publish %q", topic)
				}
			}
			for _, topic := range tt.check.read {
				if !g.CanRead([]string{topic}) {
					t.Errorf("cannot read %q", topic)
				}
			}
			for _, topic := range tt.check.noRead {
				if g.CanRead([]string{topic}) {
					t.Errorf("can read %q", topic)
				}
			}
		})
	}
}

func TestPayloads(t *testing.T) {
	t.Parallel()
	a := newAuth(t, jwtauth.Config{})
	claims := jwt.MapClaims{
		"mercure": map[string]any{"subscribe": []string{"*"}, "payload": map[string]any{"legacy": true}},
		"authorization_details": []any{
			map[string]any{"type": jwtauth.DetailType, "actions": []string{"subscribe"}, "topics": []any{map[string]any{"match": "https://example.com/foo"}}, "payload": map[string]any{"custom1": 1}},
			map[string]any{"type": jwtauth.DetailType, "actions": []string{"subscribe"}, "topics": []any{map[string]any{"match": "https://example.com/bar/:id", "match_type": "urlpattern"}}, "payload": map[string]any{"custom2": 2}},
			map[string]any{"type": jwtauth.DetailType, "actions": []string{"publish"}, "topics": []any{map[string]any{"match": "*"}}, "payload": map[string]any{"publish": "ignored"}},
			map[string]any{"type": jwtauth.DetailType, "actions": []string{"subscribe"}, "topics": []any{map[string]any{"match": "*"}}, "payload": map[string]any{"custom3": 3}},
		},
	}
	g, err := a.Authenticate(bearer(hs256(t, claims)), auth.Subscriber)
	if err != nil {
		t.Fatal(err)
	}
	if string(g.Payload) != `{"legacy":true}` {
		t.Errorf("Payload = %s", g.Payload)
	}
	for sel, want := range map[string]string{
		"https://example.com/foo":     `{"custom1":1}`,
		"https://example.com/bar/:id": `{"custom2":2}`,
		"https://example.com/bar/7":   `{"custom2":2}`,
		"urn:other":                   `{"custom3":3}`,
	} {
		if got := string(g.PayloadFor(sel)); got != want {
			t.Errorf("PayloadFor(%q) = %s; want %s", sel, got, want)
		}
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	token := hs256(t, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"*"}}})
	badToken := sign(t, jwt.SigningMethodHS256, otherSecret, nil, jwt.MapClaims{})
	req := func(mod func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/.well-known/mercure?match=*", nil)
		mod(r)
		return r
	}
	cookie := func(name, value string) func(r *http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: name, Value: value}) }
	}
	tests := []struct {
		name   string
		cfg    jwtauth.Config
		r      *http.Request
		want   auth.Source // 0: no grant
		status int         // error status, 0 for none
		desc   string
	}{
		{"none", jwtauth.Config{}, req(func(*http.Request) {}), 0, 0, ""},
		{"header", jwtauth.Config{}, bearer(token), auth.SourceHeader, 0, ""},
		{"header scheme is case-insensitive", jwtauth.Config{}, req(func(r *http.Request) { r.Header.Set("Authorization", "bEaReR "+token) }), auth.SourceHeader, 0, ""},
		{"default cookie", jwtauth.Config{}, req(cookie("mercureAuthorization", token)), auth.SourceCookie, 0, ""},
		{"secure cookie", jwtauth.Config{}, req(cookie("__Secure-mercure_access_token", token)), auth.SourceCookie, 0, ""},
		{"custom cookie", jwtauth.Config{CookieName: "hub"}, req(cookie("hub", token)), auth.SourceCookie, 0, ""},
		{"custom cookie replaces the default", jwtauth.Config{CookieName: "hub"}, req(cookie("mercureAuthorization", token)), 0, 0, ""},
		{"empty cookie", jwtauth.Config{}, req(cookie("mercureAuthorization", "")), 0, 0, ""},
		{"header wins over cookie", jwtauth.Config{}, req(func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			r.AddCookie(&http.Cookie{Name: "mercureAuthorization", Value: badToken})
		}), auth.SourceHeader, 0, ""},
		{"bad cookie is an error", jwtauth.Config{}, req(cookie("mercureAuthorization", badToken)), 0, 401, "signature is invalid"},
		{"query ignored by default", jwtauth.Config{}, httptest.NewRequest(http.MethodGet, "/?authorization="+token, nil), 0, 0, ""},
		{"query when enabled", jwtauth.Config{AllowQueryToken: true}, httptest.NewRequest(http.MethodGet, "/?authorization="+token, nil), auth.SourceQuery, 0, ""},
		{"cookie wins over query", jwtauth.Config{AllowQueryToken: true}, func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/?authorization="+badToken, nil)
			r.AddCookie(&http.Cookie{Name: "mercureAuthorization", Value: token})
			return r
		}(), auth.SourceCookie, 0, ""},
		{"basic scheme", jwtauth.Config{}, req(func(r *http.Request) { r.SetBasicAuth("user", "pass") }), 0, 400, "Bearer scheme"},
		{"bearer without token", jwtauth.Config{}, req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }), 0, 400, "bearer token is empty"},
		{"bearer with spaces only", jwtauth.Config{}, req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer   ") }), 0, 400, "bearer token is empty"},
		{"token with a space", jwtauth.Config{}, req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer a b") }), 0, 400, "invalid characters"},
		{"empty header", jwtauth.Config{}, req(func(r *http.Request) { r.Header.Set("Authorization", "") }), 0, 400, "Bearer scheme"},
		{"two headers", jwtauth.Config{}, req(func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+token)
			r.Header.Add("Authorization", "Bearer "+token)
		}), 0, 400, "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAuth(t, tt.cfg)
			g, err := a.Authenticate(tt.r, auth.Subscriber)
			if tt.status != 0 {
				ae := wantAuthError(t, err, tt.status, tt.desc)
				if tt.status == 400 && ae.Code != "invalid_request" {
					t.Errorf("Code = %q; want invalid_request", ae.Code)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			switch {
			case tt.want == 0 && g != nil:
				t.Errorf("got grant %+v; want none", g)
			case tt.want != 0 && (g == nil || g.Source != tt.want):
				t.Errorf("grant = %+v; want Source %v", g, tt.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	k := testKeys()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "rsa.pem")
	if err := os.WriteFile(keyFile, []byte(k.rsaPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  jwtauth.Config
		want string // "" for valid
	}{
		{"secret", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}}, ""},
		{"key file", jwtauth.Config{Publisher: jwtauth.Key{PublicKeyFile: keyFile, Algorithms: []string{"RS256", "PS256"}}}, ""},
		{"separate keys", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}, Subscriber: jwtauth.Key{PublicKey: k.edPEM}}, ""},
		{"no publisher key", jwtauth.Config{Subscriber: jwtauth.Key{Secret: secret}}, "Publisher: no key"},
		{"PEM public key as HMAC secret", jwtauth.Config{Publisher: jwtauth.Key{Secret: []byte(k.rsaPEM)}}, "looks like a PEM key"},
		{"PEM public key as HS256 secret", jwtauth.Config{Publisher: jwtauth.Key{Secret: []byte(k.p256PEM), Algorithms: []string{"HS256"}}}, "looks like a PEM key"},
		{"short secret", jwtauth.Config{Publisher: jwtauth.Key{Secret: []byte("!ChangeMe!")}}, "10 bytes; HS256 needs at least 32"},
		{"secret too short for HS512", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret, Algorithms: []string{"HS512"}}}, "HS512 needs at least 64"},
		{"alg none", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret, Algorithms: []string{"none"}}}, `"none" is never accepted`},
		{"RS256 with a secret", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret, Algorithms: []string{"RS256"}}}, `"RS256" cannot be used with an HMAC secret`},
		{"HS256 with an RSA key", jwtauth.Config{Publisher: jwtauth.Key{PublicKey: k.rsaPEM, Algorithms: []string{"HS256"}}}, `"HS256" cannot be used with this RSA key`},
		{"ES384 with a P-256 key", jwtauth.Config{Publisher: jwtauth.Key{PublicKey: k.p256PEM, Algorithms: []string{"ES384"}}}, `"ES384" cannot be used with this ECDSA P-256 key`},
		{"EdDSA with an RSA key", jwtauth.Config{Publisher: jwtauth.Key{PublicKey: k.rsaPEM, Algorithms: []string{"EdDSA"}}}, "cannot be used"},
		{"small RSA key", jwtauth.Config{Publisher: jwtauth.Key{PublicKey: k.rsaSmall}}, "1024 bits"},
		{"private key", jwtauth.Config{Publisher: jwtauth.Key{PublicKey: k.privPEM}}, "private key"},
		{"not PEM", jwtauth.Config{Publisher: jwtauth.Key{PublicKey: "hello"}}, "not PEM-encoded"},
		{"two kinds of key", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret, PublicKey: k.rsaPEM}}, "only one of"},
		{"missing file", jwtauth.Config{Publisher: jwtauth.Key{PublicKeyFile: filepath.Join(dir, "missing.pem")}}, "reading the public key"},
		{"bad subscriber key", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}, Subscriber: jwtauth.Key{Secret: []byte("short")}}, "Subscriber:"},
		{"negative leeway", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}, Leeway: -time.Second}, "Leeway"},
		{"negative limits", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}, MaxDetails: -1}, "MaxDetails"},
		{"bad cookie name", jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}, CookieName: "a;b"}, "CookieName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := jwtauth.New(tt.cfg)
			if tt.want == "" {
				if err != nil || a == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v; want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), string(secret)) || strings.Contains(err.Error(), "MII") {
				t.Errorf("error %q contains key material", err)
			}
		})
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	key := jwtauth.Key{Secret: secret}
	a := newAuth(t, jwtauth.Config{Audience: "https://hub", Issuer: "https://app", RequireExp: true})
	token, err := jwtauth.Mint(key, jwtauth.Claims{
		Subject:   "bob",
		Publish:   []string{"https://example.com/books/{id}"},
		Subscribe: []string{"*"},
		Payload:   map[string]string{"name": "Bob"},
		Details: []jwtauth.Detail{{
			Actions: []string{"publish"},
			Topics:  []jwtauth.TopicMatcher{{Match: "https://example.com/authors/:id", MatchType: "urlpattern"}},
		}},
		Expires:  now.Add(time.Hour),
		IssuedAt: now,
		Audience: []string{"https://hub"},
		Issuer:   "https://app",
	})
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil || parsed.Header["typ"] != "at+jwt" || parsed.Header["alg"] != "HS256" {
		t.Errorf("header = %v, %v; want typ at+jwt, alg HS256", parsed.Header, err)
	}
	if _, ok := parsed.Claims.(jwt.MapClaims)["mercure"]; !ok {
		t.Error("no mercure claim")
	}
	g, err := a.Authenticate(bearer(token), auth.Publisher)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if g.Subject != "bob" || g.Issuer != "https://app" || string(g.Payload) != `{"name":"Bob"}` || !g.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("grant = %+v", g)
	}
	if !g.CanPublish([]string{"https://example.com/books/1", "https://example.com/authors/2"}) || g.CanPublish([]string{"urn:x"}) || !g.CanRead([]string{"urn:x"}) {
		t.Errorf("grant rights are wrong: %+v", g)
	}

	for _, bad := range []jwtauth.Key{
		{PublicKey: testKeys().edPEM},
		{Secret: []byte(testKeys().rsaPEM)},
		{Secret: []byte("short")},
	} {
		if _, err := jwtauth.Mint(bad, jwtauth.Claims{}); err == nil {
			t.Errorf("Mint with %d-byte secret, public key %v: got no error", len(bad.Secret), bad.PublicKey != "")
		}
	}
}

func TestSubscriberDefaultsToPublisherKey(t *testing.T) {
	t.Parallel()
	a := newAuth(t, jwtauth.Config{})
	if _, err := a.Authenticate(bearer(hs256(t, jwt.MapClaims{})), auth.Subscriber); err != nil {
		t.Errorf("subscriber token on the shared key: %v", err)
	}
}

func FuzzAuthorizationHeader(f *testing.F) {
	f.Add("Bearer " + conformanceToken)
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJtZXJjdXJlIjp7fX0.")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer a.b.c")
	f.Add("bearer   x")
	f.Add("")
	claims := jwt.MapClaims{"authorization_details": []any{map[string]any{"type": jwtauth.DetailType, "actions": []string{"publish"}, "topics": []any{map[string]any{"match": "/a/:b", "match_type": "urlpattern"}}}}}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if s, err := tok.SignedString(secret); err == nil {
		f.Add("Bearer " + s)
	}
	a, err := jwtauth.New(jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}, Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{header}
		g, err := a.Authenticate(r, auth.Publisher)
		if err != nil {
			ae, ok := err.(*auth.Error)
			if !ok || (ae.Status != 400 && ae.Status != 401) || g != nil {
				t.Fatalf("Authenticate(%q) = %v, %v", header, g, err)
			}
			_ = ae.Challenge()
			return
		}
		if g == nil {
			t.Fatalf("Authenticate(%q) = nil, nil with a header present", header)
		}
	})
}
