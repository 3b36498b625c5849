package abusetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/internal/server"
	"github.com/ssehub/ssehub/ssehttp"
)

const key = "abuse-test-key-that-is-at-least-32-bytes"

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func mint(t *testing.T, secret string, c jwtauth.Claims) string {
	t.Helper()
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(secret)}, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestNoTokenInLogs captures every log line of a server at debug level,
// its net/http error log included, while clients present valid, expired,
// forged and malformed tokens in the Authorization header, the cookie and
// the query string, to the stream, the publish and the history endpoints,
// and in requests net/http itself refuses. No part of any token may appear
// in the logs.
func TestNoTokenInLogs(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	s, err := server.Start(server.Config{
		Addr:          "127.0.0.1:0",
		Engine:        "memory",
		PublisherKey:  key,
		Auth:          jwtauth.Config{AllowQueryToken: true, MaxTokenBytes: 4096},
		Limits:        ssehttp.Limits{MaxStreamsPerSubject: 1, PublishRate: 1000},
		Logger:        slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ShutdownGrace: 15 * time.Second, // generous: CI runs this beside the cluster tests
	})
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(time.Hour)
	tokens := map[string]string{
		"valid":     mint(t, key, jwtauth.Claims{Subject: "alice", Publish: []string{"*"}, Subscribe: []string{"*"}, Expires: hour}),
		"expired":   mint(t, key, jwtauth.Claims{Subject: "bob", Publish: []string{"*"}, Expires: time.Now().Add(-time.Hour)}),
		"forged":    mint(t, strings.Repeat("x", 32), jwtauth.Claims{Subject: "mallory", Publish: []string{"*"}, Expires: hour}),
		"no grant":  mint(t, key, jwtauth.Claims{Subject: "carol", Subscribe: []string{"urn:other"}, Expires: hour}),
		"malformed": "not-a-jwt-but-a-secret-opaque-value-0123456789",
		"too long":  mint(t, key, jwtauth.Claims{Subject: strings.Repeat("s", 5000), Expires: hour}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, rawURL string, hdr http.Header, body string) {
		req, _ := http.NewRequestWithContext(ctx, method, rawURL, strings.NewReader(body))
		for k, v := range hdr {
			req.Header[k] = v
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			return
		}
		if resp.StatusCode == 200 && method == http.MethodGet && strings.Contains(rawURL, "?topic") {
			// A stream: keep it open until the end, reading it.
			wg.Go(func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() })
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	hubURL, histURL := s.HubURL(), s.URL()+ssehttp.HistoryPath
	for name, tok := range tokens {
		for _, where := range []string{"header", "cookie", "query"} {
			hdr := http.Header{}
			q := "topic=a&topic=" + url.QueryEscape("https://example.com/"+name)
			switch where {
			case "header":
				hdr.Set("Authorization", "Bearer "+tok)
			case "cookie":
				hdr.Set("Cookie", "mercureAuthorization="+tok)
			case "query":
				q += "&authorization=" + url.QueryEscape(tok)
			}
			do(http.MethodGet, hubURL+"?"+q, hdr, "")
			do(http.MethodGet, hubURL+"?"+q, hdr, "") // over the per-subject limit: 429
			do(http.MethodGet, hubURL+"?"+q+"&match_regex=x", hdr, "")
			do(http.MethodGet, hubURL+"?"+q+"&topic=%zz", hdr, "")
			do(http.MethodGet, histURL+"?"+q+"&after=earliest", hdr, "")
			do(http.MethodPost, hubURL+"?"+q, hdr, "topic=a&data=x")
			do(http.MethodPost, hubURL+"?"+q, hdr, "topic=a&id=bad%0Aid")
			do(http.MethodPost, hubURL+"?"+q, hdr, "topic=urn:forbidden&data=x")
			do(http.MethodPut, hubURL+"?"+q, hdr, "")
			do(http.MethodGet, s.URL()+"/nope?"+q, hdr, "")
		}
		// Requests net/http refuses itself, and a body that never comes.
		for _, raw := range []string{
			"GET /.well-known/mercure?topic=a&authorization=" + tok + " HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
			"GET /.well-known/mercure?topic=a&authorization=" + tok + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n",
			"GET /.well-known/mercure?topic=a&authorization=" + tok + " HTTP/9.9\r\nHost: x\r\n\r\n",
			"POST /.well-known/mercure?authorization=" + tok + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\nto",
		} {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(c, raw)
			if strings.HasPrefix(raw, "POST") {
				c.Close() // hang up mid-body
				continue
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = http.ReadResponse(bufio.NewReader(c), nil)
			c.Close()
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	<-s.Done()
	cancel()
	wg.Wait()
	client.CloseIdleConnections()

	out := logs.String()
	for _, want := range []string{"request refused", "stream opened", "stream closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs lack %q: the test did not exercise them\n%s", want, out)
		}
	}
	for name, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			if len(part) >= 16 && strings.Contains(out, part) {
				t.Errorf("token %q: a part of it is in the logs", name)
			}
		}
		if len(tok) >= 16 && strings.Contains(out, tok[:16]) {
			t.Errorf("token %q: its start is in the logs", name)
		}
	}
	if strings.Contains(out, key) {
		t.Error("the key is in the logs")
	}
}
