// Package proctest holds the tests that are about processes: the real
// ssehub binary started as a child, killed with SIGKILL, stopped with
// SIGTERM, or starved of disk. They build the binary once per run.
package proctest

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/internal/testsvc"
)

const key = "proctest-key-that-is-at-least-32-bytes"

var binary string

func TestMain(m *testing.M) {
	os.Exit(testsvc.MainWithSSEHub(m, true, "", &binary, testsvc.HTTPClientGoroutines...))
}

// hubProc is a running ssehub serve.
type hubProc struct {
	cmd    *exec.Cmd
	url    string // hub endpoint
	base   string
	stderr *strings.Builder
	exited chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startHub starts ssehub serve with args and waits until it is ready.
func startHub(t *testing.T, addr string, args ...string) *hubProc {
	t.Helper()
	all := append([]string{"serve", "--addr", addr, "--publisher-key", key, "--log-level", "debug"}, args...)
	cmd := exec.Command(binary, all...)
	p := &hubProc{cmd: cmd, base: "http://" + addr, url: "http://" + addr + "/.well-known/mercure", stderr: new(strings.Builder), exited: make(chan error, 1)}
	cmd.Stdout = io.Discard
	cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.exited
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.exited:
			t.Fatalf("ssehub exited before it was ready: %v\n%s", err, p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssehub not ready within 30 s\n%s", p.stderr)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func token(t *testing.T) string {
	t.Helper()
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(key)}, jwtauth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publish posts one update and returns the status and body.
func publish(ctx context.Context, c *http.Client, hubURL, tok string, form url.Values) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hubURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// rawStream opens a subscription and returns its body line by line.
func rawStream(t *testing.T, ctx context.Context, rawURL string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("subscribe: %s", resp.Status)
	}
	return resp, bufio.NewReader(resp.Body)
}
