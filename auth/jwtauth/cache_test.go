package jwtauth_test

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/auth/jwtauth"
)

// TestVerifiedCache checks that remembering verified tokens changes no
// answer: an accepted token is refused from its exp on, and before its nbf
// when the clock goes back; a refused token stays refused; every caller
// gets a grant of its own.
func TestVerifiedCache(t *testing.T) {
	var at atomic.Int64
	at.Store(now.UnixNano())
	setNow := func(tm time.Time) { at.Store(tm.UnixNano()) }
	a := newAuth(t, jwtauth.Config{Now: func() time.Time { return time.Unix(0, at.Load()) }})
	claims := jwt.MapClaims{
		"nbf":     now.Add(-time.Minute).Unix(),
		"exp":     now.Add(time.Hour).Unix(),
		"mercure": map[string]any{"publish": []string{"*"}},
	}
	tok := hs256(t, claims)

	for i := range 3 {
		g, err := a.Authenticate(bearer(tok), auth.Publisher)
		if err != nil || !g.CanPublish([]string{"https://example.com/a"}) || g.Source != auth.SourceHeader {
			t.Fatalf("request %d: grant %+v, %v; want a publish grant from the header", i, g, err)
		}
		g.Source, g.Publish = 0, nil // must not reach the next caller
	}

	setNow(now.Add(time.Hour)) // exp
	_, err := a.Authenticate(bearer(tok), auth.Publisher)
	wantAuthError(t, err, http.StatusUnauthorized, "token is expired")

	setNow(now.Add(-2 * time.Minute)) // before nbf, after a verification
	_, err = a.Authenticate(bearer(tok), auth.Publisher)
	wantAuthError(t, err, http.StatusUnauthorized, "token is not valid yet")

	setNow(now)
	if _, err := a.Authenticate(bearer(tok), auth.Publisher); err != nil {
		t.Fatalf("back in the validity window: %v", err)
	}

	bad := sign(t, jwt.SigningMethodHS256, otherSecret, nil, claims)
	for range 2 {
		_, err = a.Authenticate(bearer(bad), auth.Publisher)
		wantAuthError(t, err, http.StatusUnauthorized, "signature is invalid")
	}

	// More distinct tokens than the cache holds: each is still verified
	// and accepted (the cache stays bounded by evicting).
	for i := range 1500 {
		tk := hs256(t, jwt.MapClaims{"sub": strconv.Itoa(i), "mercure": map[string]any{"publish": []string{"*"}}})
		if _, err := a.Verify(tk, auth.Publisher); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
}

// BenchmarkAuthenticate measures authenticating a publisher that reuses its
// token, as backends do.
func BenchmarkAuthenticate(b *testing.B) {
	a := newAuth(b, jwtauth.Config{})
	tok := hs256(b, jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}})
	r := bearer(tok)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(r, auth.Publisher); err != nil {
			b.Fatal(err)
		}
	}
}
