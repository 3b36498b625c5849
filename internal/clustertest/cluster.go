package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/internal/testsvc"
)

// Key is the publisher key of every hub the tests start.
const Key = "clustertest-key-that-is-at-least-32-bytes"

// Heartbeat is the hubs' heartbeat interval: short, so that clients can
// use a short read timeout.
const Heartbeat = 500 * time.Millisecond

// ShutdownGrace is the hubs' --shutdown-grace.
const ShutdownGrace = 5 * time.Second

// Engine is a shared store server: a redis-server or a nats-server.
type Engine interface {
	// URL is what ssehub serve --store takes.
	URL() string
	// Kill stops it with SIGKILL and waits; Restart starts it again on the
	// same port and data directory.
	Kill()
	Restart()
	// Signal sends it a signal (SIGSTOP, SIGCONT).
	Signal(os.Signal)
}

// Engines names the engines the tests run on, and starts one.
var Engines = []struct {
	Name  string
	Start func(testing.TB) Engine
}{
	{"redis", func(t testing.TB) Engine { return testsvc.StartRedis(t) }},
	{"nats", func(t testing.TB) Engine { return testsvc.StartNATS(t) }},
}

// Cluster is an engine and the hubs sharing it.
type Cluster struct {
	t      testing.TB
	bin    string
	Engine Engine
	Hubs   []*Hub
	// Token may publish and subscribe on every topic.
	Token string
}

// Hub is one ssehub serve process of a Cluster.
type Hub struct {
	t     testing.TB
	bin   string
	Index int
	Addr  string // host:port
	args  []string
	mu    sync.Mutex
	proc  *testsvc.Process
}

// Base returns the hub's base URL, http://host:port.
func (h *Hub) Base() string { return "http://" + h.Addr }

// StartCluster starts an engine with start and n hubs on it, and waits
// until every hub is ready. extra arguments go to every hub.
func StartCluster(t testing.TB, bin string, start func(testing.TB) Engine, n int, extra ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: bin, Engine: start(t)}
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(Key)}, jwtauth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	c.Token = tok
	for i := range n {
		addr := testsvc.Addr(testsvc.FreePort(t))
		args := append([]string{"serve", "--addr", addr, "--store", c.Engine.URL(),
			"--publisher-key", Key, "--heartbeat", Heartbeat.String(),
			"--shutdown-grace", ShutdownGrace.String(), "--log-level", "info"}, extra...)
		c.Hubs = append(c.Hubs, &Hub{t: t, bin: bin, Index: i, Addr: addr, args: args})
	}
	// All at once, as a deployment starts them: the first ones race to
	// create the log.
	for _, h := range c.Hubs {
		h.launch()
	}
	for _, h := range c.Hubs {
		h.WaitReady()
	}
	return c
}

// Nodes returns every hub's base URL.
func (c *Cluster) Nodes() []string {
	out := make([]string, len(c.Hubs))
	for i, h := range c.Hubs {
		out[i] = h.Base()
	}
	return out
}

func (h *Hub) launch() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.proc = testsvc.Start(h.t, h.bin, h.args...)
}

func (h *Hub) process() *testsvc.Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.proc
}

// WaitReady waits until /readyz answers 200, failing the test if the
// process exits or 60 s pass.
func (h *Hub) WaitReady() {
	h.t.Helper()
	p := h.process()
	c := &http.Client{Timeout: 2 * time.Second}
	defer c.CloseIdleConnections()
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := c.Get(h.Base() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.Exited() {
			h.t.Fatalf("hub %d exited before it was ready:\n%s", h.Index, p.Output())
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("hub %d not ready within 60 s:\n%s", h.Index, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the hub with SIGKILL and waits for it.
func (h *Hub) Kill() { h.process().Kill() }

// Restart starts the hub again on the same address and waits until it is
// ready.
func (h *Hub) Restart() {
	h.t.Helper()
	h.launch()
	h.WaitReady()
}

// Terminate sends SIGTERM and waits for the hub to drain and exit; it
// fails the test unless the hub exits 0 within its grace period (plus a
// generous margin for a loaded machine).
func (h *Hub) Terminate() {
	h.t.Helper()
	p := h.process()
	p.Signal(syscall.SIGTERM)
	switch err := p.Wait(ShutdownGrace + 30*time.Second); err {
	case nil:
	case context.DeadlineExceeded:
		h.t.Errorf("hub %d did not exit within %v of SIGTERM", h.Index, ShutdownGrace+30*time.Second)
		p.Kill()
	default:
		h.t.Errorf("hub %d exited with %v after SIGTERM:\n%s", h.Index, err, p.Output())
	}
}

// Signal sends sig to the hub's process.
func (h *Hub) Signal(sig os.Signal) { h.process().Signal(sig) }

// Output returns what the hub's current process wrote.
func (h *Hub) Output() string { return h.process().Output() }

// History reads the whole retained history through the node's catch-up
// endpoint, following cursors, and returns the IDs in order.
func History(ctx context.Context, base string) ([]string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	var ids []string
	q := url.Values{"topic": {"*"}, "after": {"earliest"}, "limit": {"1000"}}
	for pages := 0; ; pages++ {
		if pages > 10000 {
			return nil, fmt.Errorf("history paging from %s does not end", base)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/mercure/history?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		var page struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
			NextCursor string `json:"next_cursor"`
			More       bool   `json:"more"`
			Gap        string `json:"gap"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("history from %s: %s", base, resp.Status)
		}
		if err != nil {
			return nil, fmt.Errorf("history from %s: %w", base, err)
		}
		if page.Gap != "" {
			return nil, fmt.Errorf("history from %s reports a gap: %s", base, page.Gap)
		}
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		if !page.More {
			return ids, nil
		}
		q.Del("after")
		q.Set("cursor", page.NextCursor)
	}
}
