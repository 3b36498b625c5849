package cli

import "testing"

// TestHubEndpoint: --hub takes the hub's endpoint or its base URL, as
// serve's banner prints both, and refuses anything but http(s) URLs.
func TestHubEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"http://localhost:8080/.well-known/mercure", "http://localhost:8080/.well-known/mercure", true},
		{"http://localhost:8080", "http://localhost:8080/.well-known/mercure", true},
		{"http://localhost:8080/", "http://localhost:8080/.well-known/mercure", true},
		{"https://hub.example.com?x=1", "https://hub.example.com/.well-known/mercure?x=1", true},
		{"https://hub.example.com/prefix/.well-known/mercure", "https://hub.example.com/prefix/.well-known/mercure", true},
		{"https://hub.example.com/custom", "https://hub.example.com/custom", true},
		{"ftp://hub.example.com", "", false},
		{"localhost:8080", "", false},
		{"http://", "", false},
		{"http://%zz", "", false},
	} {
		got, ok := hubEndpoint(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("hubEndpoint(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
