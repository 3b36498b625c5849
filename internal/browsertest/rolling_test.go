package browsertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/clustertest"
	"github.com/ssehub/ssehub/internal/testsvc"
)

// maxStreams is each hub's --max-streams in TestRollingRestart: three
// hubs hold the 200 clients, two cannot.
const maxStreams = 80

// TestRollingRestart: 200 native EventSource objects in one Chromium page,
// through deploy/nginx/cluster.conf (served over TLS and HTTP/2) in front
// of three real hubs sharing Redis, each limited to 80 streams. A
// publisher publishes numbered events throughout while the hubs are
// restarted one after the other (SIGTERM, drain, start again); each stays
// down until the two others have refused a reconnection for the stream
// limit. Every EventSource must keep receiving and end with every event
// exactly once, in order (rolling.mjs), and nginx must have answered every
// subscribe with 200: a refusal an EventSource reads as fatal would show
// here as another status.
func TestRollingRestart(t *testing.T) {
	t.Parallel()
	nginx := testsvc.Require(t, "nginx", "nginx")
	c := clustertest.StartCluster(t, binary, clustertest.Engines[0].Start, 3, "--max-streams", strconv.Itoa(maxStreams))
	base, accessLog := startNginx(t, nginx, c.Hubs...)

	t.Cleanup(func() { // what nginx answered to subscribes, for a failure's diagnosis
		answers := map[string]int{}
		for _, e := range readAccessLog(t, accessLog) {
			if e.method == http.MethodGet && e.uri == "/.well-known/mercure" {
				answers[fmt.Sprintf("%s (upstream %s, Retry-After %q)", e.status, e.upstream, e.retryAfter)]++
			}
		}
		t.Logf("subscribes through nginx: %v", answers)
		if t.Failed() {
			var b strings.Builder
			for _, e := range readAccessLog(t, accessLog) {
				fmt.Fprintf(&b, "%s %s %s %s %s %s\n", e.msec, e.method, e.status, e.upstream, e.retryAfter, e.addr)
			}
			for _, h := range c.Hubs {
				fmt.Fprintf(&b, "hub %d is %s\n", h.Index, h.Addr)
			}
			t.Logf("nginx access log:\n%s", b.String())
		}
	})
	const topic = "https://example.com/e2e/rolling"
	var (
		mu        sync.Mutex // held across a publish, so that switching target waits for it
		target    int        // the hub the publisher publishes to: never one being restarted
		published int
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	publishOne := func() bool {
		mu.Lock()
		defer mu.Unlock()
		seq := published + 1
		form := url.Values{"topic": {topic}, "id": {fmt.Sprintf("r-%06d", seq)}, "data": {strconv.Itoa(seq)}}
		// A publish that fails is retried with the same Idempotency-Key,
		// so that one stored but not acknowledged is not stored twice.
		for attempt := 0; ; attempt++ {
			req, _ := http.NewRequest(http.MethodPost, c.Hubs[target].Base()+"/.well-known/mercure", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+c.Token)
			req.Header.Set("Idempotency-Key", "rolling-"+strconv.Itoa(seq))
			resp, err := client.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					published = seq
					return true
				}
				err = fmt.Errorf("%s %s", resp.Status, body)
			}
			if attempt == 4 {
				t.Errorf("publish %d to hub %d: %v", seq, target, err)
				return false
			}
			t.Logf("publish %d to hub %d: %v; retrying", seq, target, err)
		}
	}
	startPublishing := func() {
		go func() {
			defer close(done)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if !publishOne() {
						return
					}
				}
			}
		}()
	}
	stopped := false
	stopPublishing := func() int {
		if !stopped {
			stopped = true
			close(stop)
			<-done
		}
		mu.Lock()
		defer mu.Unlock()
		return published
	}
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			stopPublishing()
		}
	})

	runScenario(t, "rolling", base, map[string]step{
		"start-publishing": func(json.RawMessage) any {
			startPublishing()
			return map[string]bool{"started": true}
		},
		"published": func(json.RawMessage) any {
			mu.Lock()
			defer mu.Unlock()
			return map[string]int{"published": published}
		},
		"restart": func(data json.RawMessage) any {
			var in struct{ Hub int }
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			target = (in.Hub + 1) % len(c.Hubs)
			mu.Unlock()
			before := streamLimitRefusals(t, accessLog)
			h := c.Hubs[in.Hub]
			h.Terminate()
			// Down until its streams, come back to the two others, were
			// refused for the stream limit at least once.
			for deadline := time.Now().Add(60 * time.Second); streamLimitRefusals(t, accessLog) == before; {
				if time.Now().After(deadline) {
					t.Fatalf("no stream-limit refusal within 60 s of stopping hub %d", in.Hub)
				}
				time.Sleep(100 * time.Millisecond)
			}
			h.Restart()
			return map[string]int{"refusals": streamLimitRefusals(t, accessLog)}
		},
		"stop-publishing": func(json.RawMessage) any {
			return map[string]int{"total": stopPublishing()}
		},
	})

	// What nginx answered the browser: 200 to every subscribe, refusals
	// included (the hub's 200 with Retry-After).
	var subscribes, refusals int
	other := map[string]int{}
	for _, e := range readAccessLog(t, accessLog) {
		if e.method != http.MethodGet || e.uri != "/.well-known/mercure" {
			continue
		}
		subscribes++
		if e.status != "200" {
			other[e.status+" (upstream "+e.upstream+")"]++
		}
		if e.retryAfter != "" {
			refusals++
		}
	}
	if len(other) > 0 {
		t.Errorf("subscribes answered otherwise than 200 (fatal to an EventSource): %v", other)
	}
	t.Logf("%d subscribes through nginx, %d of them refused with 200 and a retry (%d for the stream limit)", subscribes, refusals, streamLimitRefusals(t, accessLog))
}

// logEntry is one line of the test's nginx access log.
type logEntry struct {
	method, uri, status, upstream, retryAfter string
	addr, msec                                string // the hub's address; the time, in seconds with milliseconds
}

// readAccessLog parses the access log written with the "refusals" format.
func readAccessLog(t *testing.T, name string) []logEntry {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []logEntry
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 7 {
			continue
		}
		e := logEntry{method: f[0], uri: f[1], status: f[2], upstream: f[3], retryAfter: f[4], addr: f[5], msec: f[6]}
		if e.retryAfter == "-" {
			e.retryAfter = ""
		}
		out = append(out, e)
	}
	return out
}

// streamLimitRefusals counts the subscribes refused for the stream limit:
// those whose Retry-After is 5 s or more (a drain asks for about 3 s),
// whatever their status (the test checks that separately).
func streamLimitRefusals(t *testing.T, name string) int {
	t.Helper()
	n := 0
	for _, e := range readAccessLog(t, name) {
		if s, err := strconv.Atoi(e.retryAfter); err == nil && s >= 5 && e.method == http.MethodGet {
			n++
		}
	}
	return n
}

// startNginx runs deploy/nginx/cluster.conf in front of hubs (at most
// three), substituting only the hubs' addresses and the listen line (TLS
// and HTTP/2 with a self-signed certificate, as ssehub.conf does, and room
// for 200 concurrent streams on one connection), and returns its base URL
// and access log. The server lines of the file beyond len(hubs) are
// commented out.
func startNginx(t *testing.T, nginx string, hubs ...*clustertest.Hub) (base, accessLog string) {
	t.Helper()
	return startNginxOn(t, nginx, testsvc.FreePort(t), hubs...)
}

// startNginxOn is startNginx listening on port of 127.0.0.1.
func startNginxOn(t *testing.T, nginx string, port int, hubs ...*clustertest.Hub) (base, accessLog string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := certificate(t, dir)
	conf, err := os.ReadFile("../../deploy/nginx/cluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	site := string(conf)
	subs := []struct{ old, new string }{{"listen 80;", fmt.Sprintf(
		"listen %s ssl http2;\n    ssl_certificate %s;\n    ssl_certificate_key %s;\n    http2_max_concurrent_streams 512;",
		testsvc.Addr(port), certFile, keyFile)}}
	for i := range 3 {
		line := "# unused: "
		if i < len(hubs) {
			line = "server " + hubs[i].Addr + " "
		}
		subs = append(subs, struct{ old, new string }{fmt.Sprintf("server 10.0.0.1%d:8080 ", i+1), line})
	}
	for _, r := range subs {
		if n := strings.Count(site, r.old); n != 1 {
			t.Fatalf("cluster.conf holds %q %d times; the test substitutes it and needs it once", r.old, n)
		}
		site = strings.Replace(site, r.old, r.new, 1)
	}
	accessLog = filepath.Join(dir, "access.log")
	write := func(name, content string) {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "cluster.conf"), site)
	// One process, no master: killing it at the end of the test leaves no
	// orphaned worker holding its output open.
	write(filepath.Join(dir, "nginx.conf"), fmt.Sprintf(`master_process off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 2048; }
http {
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    log_format refusals "$request_method|$uri|$status|$upstream_status|$upstream_http_retry_after|$upstream_addr|$msec";
    access_log %[2]s refusals;
    include %[1]s/cluster.conf;
}
`, dir, accessLog))
	ng := testsvc.Start(t, nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off;")
	testsvc.WaitTCP(t, ng, testsvc.Addr(port), 30*time.Second)
	return "https://" + testsvc.Addr(port), accessLog
}

// certificate writes a self-signed certificate for 127.0.0.1 (Chromium
// runs with --ignore-certificate-errors) and returns its files.
func certificate(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
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
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
