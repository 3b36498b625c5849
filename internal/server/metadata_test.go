package server

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/ssehub/ssehub/auth/jwtauth"
)

// TestResourceMetadata checks the RFC 9728 document the Mercure spec asks
// for, and that a 401 for a missing token points to it.
func TestResourceMetadata(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want resourceMetadata
	}{
		{"defaults", Config{}, resourceMetadata{BearerMethods: []string{"header"}, Cookie: "mercureAuthorization"}},
		{"query tokens, cookie, subscriptions", Config{Subscriptions: true, Auth: jwtauth.Config{AllowQueryToken: true, CookieName: "hubToken"}},
			resourceMetadata{BearerMethods: []string{"header", "query"}, Cookie: "hubToken", Subscriptions: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.cfg)
			resp, err := http.Get(s.URL() + "/.well-known/oauth-protected-resource/.well-known/mercure")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var md resourceMetadata
			if err := json.Unmarshal(b, &md); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("metadata: %d %s (%v)", resp.StatusCode, b, err)
			}
			if md.Resource != s.HubURL() || !slices.Equal(md.DetailTypes, []string{"https://mercure.rocks/authorization-detail"}) ||
				!slices.Equal(md.BearerMethods, tc.want.BearerMethods) || md.Cookie != tc.want.Cookie || md.Subscriptions != tc.want.Subscriptions ||
				!slices.Equal(md.MatcherTypes, []string{"exact", "urlpattern"}) {
				t.Errorf("metadata = %s", b)
			}

			// A publish without a token: the challenge names the document.
			resp, err = http.Post(s.HubURL(), "application/x-www-form-urlencoded", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := `Bearer resource_metadata="` + s.URL() + `/.well-known/oauth-protected-resource/.well-known/mercure"`
			if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || got != want {
				t.Errorf("publish without a token: %d, WWW-Authenticate %q; want 401, %q", resp.StatusCode, got, want)
			}
		})
	}
}
