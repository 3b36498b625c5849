package nginxtest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/internal/testsvc"
	"github.com/ssehub/ssehub/sse"
)

const key = "nginxtest-key-that-is-at-least-32-bytes"

// binary is the ssehub binary built for this run.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testsvc.MainWithSSEHub(m, false, "", &binary))
}

// stack is ssehub behind nginx configured by deploy/nginx/ssehub.conf.
type stack struct {
	base      string // https://127.0.0.1:port, through nginx
	client    *http.Client
	accessLog string
	hub       *testsvc.Process // nil when the upstream is the test's own
}

// readTimeout is what the documented configuration sets.
const documentedReadTimeout = "proxy_read_timeout 75s;"

// startStack starts ssehub with --heartbeat heartbeat and nginx in front
// of it with the documented configuration, proxy_read_timeout set to
// readTimeout.
func startStack(t *testing.T, heartbeat, readTimeout string) *stack {
	t.Helper()
	return startStackTo(t, "", heartbeat, readTimeout)
}

// startStackTo is startStack with nginx's upstream at upstream (host:port)
// instead of a hub it starts, unless upstream is empty.
func startStackTo(t *testing.T, upstream, heartbeat, readTimeout string) *stack {
	t.Helper()
	nginx := testsvc.Require(t, "nginx", "nginx")
	dir := t.TempDir()
	tlsPort, httpPort := testsvc.FreePort(t), testsvc.FreePort(t)
	base := "https://" + testsvc.Addr(tlsPort)

	var hub *testsvc.Process
	if upstream == "" {
		upstream = testsvc.Addr(testsvc.FreePort(t))
		hub = testsvc.Start(t, binary, "serve", "--addr", upstream, "--store", "memory",
			"--heartbeat", heartbeat, "--publisher-key", key, "--public-url", base, "--log-level", "debug")
		testsvc.WaitTCP(t, hub, upstream, 30*time.Second)
	}

	certFile, keyFile, pool := certificate(t, dir)
	doc, err := os.ReadFile("../../deploy/nginx/ssehub.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(doc)
	accessLog := filepath.Join(dir, "access.log")
	for _, r := range []struct{ old, new string }{
		{"server 127.0.0.1:8080;", "server " + upstream + ";"},
		{"listen 443 ssl http2;", "listen " + testsvc.Addr(tlsPort) + " ssl http2;"},
		{"listen 80;", "listen " + testsvc.Addr(httpPort) + ";"},
		{"/etc/ssl/certs/hub.example.com.pem", certFile},
		{"/etc/ssl/private/hub.example.com.key", keyFile},
		{"/var/log/nginx/ssehub.access.log", accessLog},
		{documentedReadTimeout, "proxy_read_timeout " + readTimeout + ";"},
	} {
		if n := strings.Count(conf, r.old); n != 1 {
			t.Fatalf("deploy/nginx/ssehub.conf holds %q %d times; the test substitutes it and needs it once", r.old, n)
		}
		conf = strings.Replace(conf, r.old, r.new, 1)
	}
	write(t, filepath.Join(dir, "ssehub.conf"), conf)
	// The main configuration a distribution's nginx.conf would provide,
	// with every path inside the temporary directory. One process, no
	// master: killing it at the end of the test leaves no orphaned
	// worker holding its output open.
	write(t, filepath.Join(dir, "nginx.conf"), fmt.Sprintf(`master_process off;
pid %[1]s/nginx.pid;
error_log stderr info;
events { worker_connections 256; }
http {
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    access_log off;
    include %[1]s/ssehub.conf;
}
`, dir))
	ng := testsvc.Start(t, nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off;")
	testsvc.WaitTCP(t, ng, testsvc.Addr(tlsPort), 30*time.Second)

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &stack{base: base, client: &http.Client{Transport: tr}, accessLog: accessLog, hub: hub}
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// certificate writes a self-signed certificate for 127.0.0.1 and returns
// its files and a pool trusting it.
func certificate(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hub.example.com"},
		DNSNames:     []string{"hub.example.com"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile, pool
}

func token(t *testing.T) string {
	t.Helper()
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(key)}, jwtauth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publish posts an update through nginx and returns its ID.
func (s *stack) publish(t *testing.T, tok, topic, data string) string {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	req, _ := http.NewRequest(http.MethodPost, s.base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("publish through nginx: %s %s", resp.Status, b)
	}
	return strings.TrimSpace(string(b))
}

// subscribe opens a stream through nginx. ctx's deadline guards the whole
// test against a hang; it is not a measure of promptness.
func (s *stack) subscribe(t *testing.T, ctx context.Context, topic string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/.well-known/mercure?topic="+url.QueryEscape(topic), nil)
	// As EventSource does: these streams take the configuration's path
	// for subscribes (the "if ($ssehub_subscribe)" block), which must
	// stream as the rest does.
	req.Header.Set("Accept", "text/event-stream")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("subscribe through nginx: %s", resp.Status)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("nginx spoke %s to the client; want HTTP/2", resp.Proto)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type through nginx: %q", ct)
	}
	return resp
}

// TestEventsArriveOneByOne: each event can be read through the proxy
// before the next one is published, so nginx passes every event on as it
// arrives instead of buffering (a buffering proxy would hold event N until
// more data pushed it out, and the read would hang until the guard
// deadline).
func TestEventsArriveOneByOne(t *testing.T) {
	t.Parallel()
	s := startStack(t, "25s", "75s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tok := token(t)
	d := sse.NewDecoder(s.subscribe(t, ctx, "https://example.com/books/1").Body)
	for i := range 10 {
		data := fmt.Sprintf("event %d", i)
		id := s.publish(t, tok, "https://example.com/books/1", data)
		ev, err := d.Decode()
		if err != nil {
			t.Fatalf("reading event %d through nginx: %v", i, err)
		}
		if ev.Data != data || ev.ID != id {
			t.Fatalf("event %d through nginx: id %q data %q; want id %q data %q", i, ev.ID, ev.Data, id, data)
		}
	}
}

// TestHeartbeatOutlivesReadTimeout: with nginx's proxy_read_timeout at 3s
// and the hub's heartbeat at 1s, a stream that carries no event for more
// than 5s stays open and still delivers.
func TestHeartbeatOutlivesReadTimeout(t *testing.T) {
	t.Parallel()
	s := startStack(t, "1s", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	br := bufio.NewReader(s.subscribe(t, ctx, "https://example.com/idle").Body)
	// Six heartbeats, one second apart at least (the first may come
	// early): the stream has been idle for more than 5s, beyond the
	// proxy's 3s read timeout.
	for beats := 0; beats < 6; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the idle stream ended after %d heartbeats: %v", beats, err)
		}
		if strings.HasPrefix(line, ":") {
			beats++
		}
	}
	s.publish(t, token(t), "https://example.com/idle", "still here")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event after the idle time: %v", err)
		}
		if line == "data: still here\n" {
			return
		}
	}
}

// TestReadTimeoutCutsSilentStream is the control of the test above: with
// the heartbeat far apart, nginx ends a silent stream after its 3s read
// timeout. The substituted timeout is in force, so the test above shows
// the heartbeat at work.
func TestReadTimeoutCutsSilentStream(t *testing.T) {
	t.Parallel()
	s := startStack(t, "1h", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp := s.subscribe(t, ctx, "https://example.com/silent")
	_, err := io.Copy(io.Discard, resp.Body)
	if ctx.Err() != nil {
		t.Fatalf("the silent stream was not ended by nginx's read timeout (%v)", err)
	}
}

// TestProxyKeepsTokensAndMetricsIn: /metrics is not reachable through the
// proxy, and the access log records paths without their query string,
// where a token may be.
func TestProxyKeepsTokensAndMetricsIn(t *testing.T) {
	t.Parallel()
	s := startStack(t, "25s", "75s")
	get := func(path string) int {
		resp, err := s.client.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/metrics"); code != 404 {
		t.Errorf("/metrics through nginx: %d; want 404", code)
	}
	if code := get("/healthz"); code != 200 {
		t.Errorf("/healthz through nginx: %d; want 200", code)
	}
	tok := token(t)
	if code := get("/.well-known/mercure/history?match=*&authorization=" + tok); code == 0 {
		t.Fatal("no answer")
	}
	// nginx logs a request as it finalizes it, which may be just after
	// the client read the end of the answer.
	var log []byte
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(string(log), "/.well-known/mercure/history"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the access log lacks the history request after 30 s:\n%s", log)
		}
		var err error
		if log, err = os.ReadFile(s.accessLog); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(string(log), tok) || strings.Contains(string(log), "authorization=") {
		t.Errorf("the access log records the query string:\n%s", log)
	}
}
