package jwtauth_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/auth/jwtauth"
)

// TestHubAudiences checks the aud rule the server applies by default: a
// token naming another audience is refused, one naming this hub or none
// is accepted, and a pinned Audience replaces the rule.
func TestHubAudiences(t *testing.T) {
	t.Parallel()
	const (
		base     = "https://hub.example.com"
		endpoint = base + "/.well-known/mercure"
	)
	hub := []string{base, endpoint}
	tests := []struct {
		name     string
		audience string   // Config.Audience
		hubAuds  []string // Config.HubAudiences
		aud      any      // the token's aud claim; nil omits it
		want     string   // "" when accepted, else the refusal
	}{
		{"no aud: v0.24 tokens stay accepted", "", hub, nil, ""},
		{"empty aud array counts as none", "", hub, []string{}, ""},
		{"the endpoint URL", "", hub, endpoint, ""},
		{"the public URL", "", hub, base, ""},
		{"an array naming this hub among others", "", hub, []string{"https://api.example.com", endpoint}, ""},
		{"another service", "", hub, "https://api.example.com", "wrong audience"},
		{"an array naming only others", "", hub, []string{"https://api.example.com", "billing"}, "wrong audience"},
		{"another hub's endpoint", "", hub, "https://other.example.com/.well-known/mercure", "wrong audience"},
		{"compared exactly: a trailing slash", "", hub, endpoint + "/", "wrong audience"},
		{"compared exactly: another scheme", "", hub, "http://hub.example.com/.well-known/mercure", "wrong audience"},
		{"an empty aud", "", hub, "", "wrong audience"},
		{"no hub audiences: not checked", "", nil, "https://api.example.com", ""},
		{"pinned audience replaces the rule", "urn:pinned", hub, "urn:pinned", ""},
		{"pinned audience: this hub's URL is not it", "urn:pinned", hub, endpoint, "wrong audience"},
		{"pinned audience is required", "urn:pinned", hub, nil, "token has no aud claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAuth(t, jwtauth.Config{Audience: tt.audience, HubAudiences: tt.hubAuds})
			c := jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}}
			if tt.aud != nil {
				c["aud"] = tt.aud
			}
			tok := hs256(t, c)
			for _, role := range []auth.Role{auth.Publisher, auth.Subscriber} {
				g, err := a.Authenticate(bearer(tok), role)
				if tt.want == "" {
					if err != nil || g == nil {
						t.Fatalf("%s: %v; want accepted", role, err)
					}
					continue
				}
				if g != nil {
					t.Fatalf("%s: accepted; want %q", role, tt.want)
				}
				wantAuthError(t, err, http.StatusUnauthorized, tt.want)
			}
		})
	}
}

func TestHubAudiencesConfig(t *testing.T) {
	t.Parallel()
	_, err := jwtauth.New(jwtauth.Config{Publisher: jwtauth.Key{Secret: secret}, HubAudiences: []string{"https://hub.example.com", ""}})
	if err == nil || err.Error() != "jwtauth: HubAudiences has an empty name" {
		t.Fatalf("New with an empty hub audience: %v", err)
	}
}
