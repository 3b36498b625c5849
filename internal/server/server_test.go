package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "test-key-that-is-at-least-32-bytes-long"

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.PublisherKey == "" {
		cfg.PublisherKey = testKey
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-s.Done(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func mint(t *testing.T, key string, c jwtauth.Claims) string {
	t.Helper()
	if c.Expires.IsZero() {
		c.Expires = time.Now().Add(time.Hour)
	}
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(key)}, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func publish(t *testing.T, c *http.Client, hubURL, token string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, hubURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// open subscribes and returns a decoder over the stream.
func open(t *testing.T, ctx context.Context, c *http.Client, rawURL, token string) (*http.Response, *sse.Decoder) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("subscribe: %s", resp.Status)
	}
	return resp, sse.NewDecoder(resp.Body)
}

func TestJWTPublishAndPrivateDelivery(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Anonymous: true, SubscriberKey: "subscriber-key-that-is-32-bytes-or-more"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pubTok := mint(t, testKey, jwtauth.Claims{Publish: []string{"https://example.com/books/{id}"}})
	subTok := mint(t, "subscriber-key-that-is-32-bytes-or-more", jwtauth.Claims{
		Details: []jwtauth.Detail{{Actions: []string{"subscribe"}, Topics: []jwtauth.TopicMatcher{{Match: "https://example.com/books/1"}}}},
	})
	u := s.HubURL() + "?match_urlpattern=" + url.QueryEscape("https://example.com/books/:id")
	_, anon := open(t, ctx, http.DefaultClient, u, "")
	_, reader := open(t, ctx, http.DefaultClient, u, subTok)

	for _, tc := range []struct {
		token  string
		form   url.Values
		status int
	}{
		{pubTok, url.Values{"topic": {"https://example.com/books/1"}, "data": {"secret"}, "private": {"on"}}, 200},
		{pubTok, url.Values{"topic": {"https://example.com/books/2"}, "data": {"public"}}, 200},
		{pubTok, url.Values{"topic": {"https://example.com/authors/1"}, "data": {"x"}}, 403},
		{subTok, url.Values{"topic": {"https://example.com/books/1"}, "data": {"x"}}, 401}, // subscriber key cannot publish
		{mint(t, testKey, jwtauth.Claims{Publish: []string{"*"}, Expires: time.Now().Add(-time.Minute)}), url.Values{"topic": {"x"}}, 401},
	} {
		if status, body := publish(t, http.DefaultClient, s.HubURL(), tc.token, tc.form); status != tc.status {
			t.Errorf("publish %v: %d %q; want %d", tc.form, status, body, tc.status)
		}
	}
	if ev, err := anon.Decode(); err != nil || ev.Data != "public" {
		t.Errorf("anonymous: %+v %v; want only the public update", ev, err)
	}
	for _, want := range []string{"secret", "public"} {
		if ev, err := reader.Decode(); err != nil || ev.Data != want {
			t.Errorf("reader: %+v %v; want %q", ev, err, want)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and returns its paths and pool.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ssehub test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestManyStreamsOverOneHTTP2Connection opens 50 streams over a single
// HTTP/2 connection, over TLS and over cleartext h2c, and checks that all
// of them receive an event published afterwards.
func TestManyStreamsOverOneHTTP2Connection(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		tr   func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport
	}{
		{"tls", Config{TLSCert: certFile, TLSKey: keyFile, Anonymous: true}, func(dial func(context.Context, string, string) (net.Conn, error)) *http.Transport {
			p := new(http.Protocols)
			p.SetHTTP2(true)
			return &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: p}
		}},
		{"h2c", Config{H2C: true, Anonymous: true}, func(dial func(context.Context, string, string) (net.Conn, error)) *http.Transport {
			p := new(http.Protocols)
			p.SetUnencryptedHTTP2(true)
			return &http.Transport{DialContext: dial, Protocols: p}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, tc.cfg)
			var dials atomic.Int32
			var d net.Dialer
			tr := tc.tr(func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return d.DialContext(ctx, network, addr)
			})
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			hubURL := s.HubURL()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			const streams = 50
			decs := make([]*sse.Decoder, streams)
			for i := range decs {
				resp, dec := open(t, ctx, c, hubURL+"?topic=h2", "")
				if resp.ProtoMajor != 2 {
					t.Fatalf("stream %d uses %s", i, resp.Proto)
				}
				decs[i] = dec
			}
			tok := mint(t, testKey, jwtauth.Claims{Publish: []string{"*"}})
			if status, body := publish(t, c, hubURL, tok, url.Values{"topic": {"h2"}, "data": {"over h2"}}); status != 200 {
				t.Fatalf("publish: %d %s", status, body)
			}
			var wg sync.WaitGroup
			var got atomic.Int32
			for _, dec := range decs {
				wg.Go(func() {
					if ev, err := dec.Decode(); err == nil && ev.Data == "over h2" {
						got.Add(1)
					}
				})
			}
			wg.Wait()
			if got.Load() != streams {
				t.Errorf("%d of %d streams received the event", got.Load(), streams)
			}
			if n := dials.Load(); n != 1 {
				t.Errorf("%d connections dialled; want 1 for every stream and the publish", n)
			}
		})
	}
}

func TestGracefulShutdownEndsStreamsCleanly(t *testing.T) {
	t.Parallel()
	s, err := Start(Config{Addr: "127.0.0.1:0", PublisherKey: testKey, Anonymous: true, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, dec := open(t, ctx, http.DefaultClient, s.HubURL()+"?topic=a", "")
	tok := mint(t, testKey, jwtauth.Claims{Publish: []string{"*"}})
	publish(t, http.DefaultClient, s.HubURL(), tok, url.Values{"topic": {"a"}, "data": {"before"}})
	if ev, err := dec.Decode(); err != nil || ev.Data != "before" {
		t.Fatalf("got %+v %v", ev, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	// The stream ends cleanly: the decoder sees EOF, not a broken event.
	if _, err := dec.Decode(); !errors.Is(err, io.EOF) {
		t.Errorf("stream ended with %v; want a clean EOF", err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-s.Done(); err != nil {
		t.Errorf("serve: %v", err)
	}
	if _, err := http.Get(s.URL() + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

func TestHealthAndRoot(t *testing.T) {
	t.Parallel()
	s := start(t, Config{})
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/": "ssehub"} {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %.60q; want 200 containing %q", path, resp.StatusCode, b, want)
		}
	}
}

func TestHistorySurvivesRestartAndDataDirIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := Config{Addr: "127.0.0.1:0", PublisherKey: testKey, Anonymous: true, DataDir: dir}
	s1, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(cfg); err == nil || !strings.Contains(err.Error(), "in use by another ssehub process") {
		t.Errorf("second hub on %s: %v; want a clear 'in use' error", dir, err)
	}
	tok := mint(t, testKey, jwtauth.Claims{Publish: []string{"*"}})
	var ids []string
	for i := range 3 {
		_, id := publish(t, http.DefaultClient, s1.HubURL(), tok, url.Values{"topic": {"t"}, "data": {fmt.Sprint(i)}})
		ids = append(ids, id)
	}
	if err := s1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-s1.Done()

	s2 := start(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s2.HubURL()+"?topic=t", nil)
	req.Header.Set("Last-Event-ID", ids[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Mercure-Last-Event-ID"); got != ids[0] {
		t.Errorf("Mercure-Last-Event-ID %q; want %q", got, ids[0])
	}
	dec := sse.NewDecoder(resp.Body)
	for _, want := range ids[1:] {
		if ev, err := dec.Decode(); err != nil || ev.ID != want {
			t.Fatalf("after restart got %+v %v; want %s", ev, err, want)
		}
	}
}
