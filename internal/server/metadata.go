package server

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/ssehttp"
)

// resourceMetadataPath is where the hub's OAuth 2.0 Protected Resource
// Metadata (RFC 9728) lives: the well-known prefix followed by the hub's
// path, as the Mercure spec derives it.
const resourceMetadataPath = "/.well-known/oauth-protected-resource" + ssehttp.DefaultPath

// resourceMetadata is the RFC 9728 document, with the Mercure members.
type resourceMetadata struct {
	Resource              string   `json:"resource"`
	DetailTypes           []string `json:"authorization_details_types_supported"`
	BearerMethods         []string `json:"bearer_methods_supported"`
	Cookie                string   `json:"mercure_cookie,omitempty"`
	MatcherTypes          []string `json:"mercure_matcher_types_supported"`
	Subscriptions         bool     `json:"mercure_subscriptions,omitempty"`
	ResourceDocumentation string   `json:"resource_documentation,omitempty"`
}

// metadataHandler serves the hub's protected resource metadata: what a
// client needs to get and present a token, discovered from the hub URL.
func metadataHandler(hubURL string, jc jwtauth.Config, subscriptions bool) http.Handler {
	md := resourceMetadata{
		Resource:      hubURL,
		DetailTypes:   []string{"https://mercure.rocks/authorization-detail"},
		BearerMethods: []string{"header"},
		Cookie:        jc.CookieName,
		MatcherTypes:  []string{"exact", "urlpattern"},
		Subscriptions: subscriptions,
	}
	if md.Cookie == "" {
		md.Cookie = jwtauth.DefaultCookieName
	}
	if jc.AllowQueryToken {
		md.BearerMethods = append(md.BearerMethods, "query")
	}
	body, _ := json.Marshal(md) // plain strings and booleans: cannot fail
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*") // public, and carries no credentials
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(body)
	})
}

// metadataURL is the absolute URL of the metadata of the hub at base (its
// public URL, without the hub path).
func metadataURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base + resourceMetadataPath
	}
	u.Path = resourceMetadataPath
	return u.String()
}
