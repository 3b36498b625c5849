package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/auth/jwtauth"
)

// TestTokenAudience checks the default audience rule end to end: a
// publisher token naming another service is refused, one naming this hub
// (its public URL or endpoint) or nothing is accepted, with the public URL
// configured or derived from the listener; a pinned audience replaces it.
func TestTokenAudience(t *testing.T) {
	t.Parallel()
	configured := start(t, Config{PublicURL: "https://hub.example.com/"})
	derived := start(t, Config{})
	pinned := start(t, Config{PublicURL: "https://hub.example.com", Auth: jwtauth.Config{Audience: "urn:ssehub"}})
	for _, tc := range []struct {
		name   string
		s      *Server
		aud    []string
		status int
	}{
		{"no aud", configured, nil, 200},
		{"endpoint URL", configured, []string{"https://hub.example.com/.well-known/mercure"}, 200},
		{"public URL", configured, []string{"https://hub.example.com"}, 200},
		{"public URL with slash", configured, []string{"https://hub.example.com/"}, 200},
		{"one of several", configured, []string{"https://api.example.com", "https://hub.example.com/.well-known/mercure"}, 200},
		{"another service", configured, []string{"https://api.example.com"}, 401},
		{"the listener's URL is not the public one", configured, []string{derived.HubURL()}, 401},
		{"derived: no aud", derived, nil, 200},
		{"derived: endpoint URL", derived, []string{derived.HubURL()}, 200},
		{"derived: another service", derived, []string{"https://api.example.com"}, 401},
		{"pinned: its audience", pinned, []string{"urn:ssehub"}, 200},
		{"pinned: the public URL is not it", pinned, []string{"https://hub.example.com/.well-known/mercure"}, 401},
		{"pinned: aud required", pinned, nil, 401},
	} {
		tok := mint(t, testKey, jwtauth.Claims{Publish: []string{"*"}, Audience: tc.aud})
		status, body := publish(t, http.DefaultClient, "http://"+tc.s.Addr().String()+"/.well-known/mercure", tok, url.Values{"topic": {"t"}, "data": {"x"}})
		if status != tc.status || (status == 401 && !strings.Contains(body, "aud")) {
			t.Errorf("%s: %d %q; want %d", tc.name, status, body, tc.status)
		}
	}
}
