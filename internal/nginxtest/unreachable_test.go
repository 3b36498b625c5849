package nginxtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// retryBody is the answer deploy/nginx/ssehub.conf gives a subscribe that
// no hub answered: the form of a hub's own transient refusals.
var retryBody = regexp.MustCompile(`^: refused: unavailable: no hub reachable\nretry: (\d+)\n\n$`)

// answer is what nginx answered one request.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends method path through nginx with the given headers (pairs of
// name and value) and reads the whole answer.
func (s *stack) do(t *testing.T, method, path string, headers ...string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard against a hang
	defer cancel()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(url.Values{"topic": {"https://example.com/t"}, "data": {"x"}}.Encode())
	}
	req, _ := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s through nginx: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s through nginx: reading the body: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// checkRetry checks that a is the retryable answer, with the CORS headers
// for origin (none when origin is empty).
func checkRetry(t *testing.T, what string, a answer, origin string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Errorf("%s: status %d; want 200 (any other status ends an EventSource for good)\n%s", what, a.status, a.body)
		return
	}
	if ct := a.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("%s: Content-Type %q; want text/event-stream", what, ct)
	}
	if m := retryBody.FindStringSubmatch(a.body); m == nil {
		t.Errorf("%s: body %q; want a refusal comment and a retry field", what, a.body)
	} else if m[1] < "2250" || m[1] > "3650" || len(m[1]) != 4 {
		t.Errorf("%s: retry %s ms; want 2250-3650", what, m[1])
	}
	for name, want := range map[string]string{
		"Retry-After":                      "3",
		"Cache-Control":                    "no-cache",
		"Access-Control-Allow-Origin":      origin,
		"Access-Control-Allow-Credentials": map[bool]string{true: "true"}[origin != ""],
	} {
		if got := a.header.Get(name); got != want {
			t.Errorf("%s: %s %q; want %q", what, name, got, want)
		}
	}
}

// TestNoHubSubscribersRetry: with the hub down, nginx answers a subscribe
// from an EventSource (GET of /.well-known/mercure, Accept naming
// text/event-stream) with the hub's retryable refusal form (200, a
// refusal comment, a retry field, the end) instead of its 502, which a
// browser's EventSource would take as fatal. Publishes, other clients and
// other paths still get the 502.
func TestNoHubSubscribersRetry(t *testing.T) {
	t.Parallel()
	s := startStack(t, "25s", "75s")
	const sub = "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Ft"
	if a := s.do(t, http.MethodGet, "/healthz"); a.status != http.StatusOK {
		t.Fatalf("with the hub up, /healthz through nginx: %d", a.status)
	}
	s.hub.Kill()

	const origin = "https://app.example.com"
	checkRetry(t, "a subscribe from another origin", s.do(t, http.MethodGet, sub, "Accept", "text/event-stream", "Origin", origin, "Last-Event-ID", "urn:uuid:1"), origin)
	checkRetry(t, "a same-origin subscribe", s.do(t, http.MethodGet, sub, "Accept", "text/html, text/event-stream;q=0.9"), "")
	checkRetry(t, "a subscribe with Origin: null", s.do(t, http.MethodGet, sub, "Accept", "text/event-stream", "Origin", "null"), "")

	for _, c := range []struct {
		what, method, path string
		headers            []string
	}{
		{"a subscribe that does not accept text/event-stream", http.MethodGet, sub, []string{"Accept", "*/*"}},
		{"a publish", http.MethodPost, "/.well-known/mercure", []string{"Accept", "text/event-stream", "Authorization", "Bearer " + token(t)}},
		{"another path", http.MethodGet, "/healthz", []string{"Accept", "text/event-stream"}},
	} {
		if a := s.do(t, c.method, c.path, c.headers...); a.status != http.StatusBadGateway {
			t.Errorf("%s, with the hub down: %d %q; want nginx's 502", c.what, a.status, a.body)
		}
	}
}

// TestHubAnswersPassThrough: only the errors nginx generates itself are
// turned into the retryable answer. An upstream's own 503 (here a stand-in
// hub that answers every request so) reaches even an EventSource's
// subscribe unchanged; an upstream that accepts the connection and never
// answers makes nginx time out, which a subscribe sees as the retryable
// answer and a publish as nginx's 504.
func TestHubAnswersPassThrough(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("hang") {
			<-release
			return
		}
		w.Header().Set("Retry-After", "7")
		http.Error(w, "hub is shutting down", http.StatusServiceUnavailable)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(release); srv.Close() })
	// proxy_next_upstream retries a 503 on another hub: there is none.
	s := startStackTo(t, ln.Addr().String(), "", "1s")

	a := s.do(t, http.MethodGet, "/.well-known/mercure?topic=x", "Accept", "text/event-stream")
	if a.status != http.StatusServiceUnavailable || a.body != "hub is shutting down\n" || a.header.Get("Retry-After") != "7" {
		t.Errorf("the upstream's own 503 through nginx: %d %q, Retry-After %q; want it unchanged", a.status, a.body, a.header.Get("Retry-After"))
	}
	checkRetry(t, "a subscribe the upstream never answers", s.do(t, http.MethodGet, "/.well-known/mercure?topic=x&hang=1", "Accept", "text/event-stream"), "")
	if a := s.do(t, http.MethodGet, "/.well-known/mercure?topic=x&hang=1", "Accept", "*/*"); a.status != http.StatusGatewayTimeout {
		t.Errorf("a plain GET the upstream never answers: %d; want nginx's 504", a.status)
	}
}
