// Package browsertest drives the hub's web UI in headless Chromium: the
// real ssehub binary serves it, Node scripts (*.mjs, using the npm package
// playwright-core pinned in package-lock.json) drive the pages, and the Go
// test publishes, stops and restarts the hub between their steps.
//
// The test installs node_modules with `npm ci` when it is missing or
// stale, under a file lock, so concurrent test binaries do not race.
// Chromium is Debian's (/usr/bin/chromium); playwright never downloads a
// browser. Run with -update-screenshots to refresh docs/images.
package browsertest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/internal/testsvc"
)

var updateShots = flag.Bool("update-screenshots", false, "write the screenshots to docs/images")

const key = "browsertest-key-that-is-at-least-32-bytes"

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	// SSEHUB_BROWSERTEST_BINARY names a prebuilt ssehub, to iterate on the UI quickly.
	os.Exit(testsvc.MainWithSSEHub(m, true, os.Getenv("SSEHUB_BROWSERTEST_BINARY"), &binary, testsvc.HTTPClientGoroutines...))
}

// hubProc is a running `ssehub serve`.
type hubProc struct {
	*testsvc.Process
	base string
	args []string
}

// startHub starts ssehub serve on addr with args and waits until /readyz
// answers 200.
func startHub(t *testing.T, addr string, args ...string) *hubProc {
	t.Helper()
	all := append([]string{"serve", "--addr", addr, "--publisher-key", key, "--log-level", "debug"}, args...)
	p := &hubProc{Process: testsvc.Start(t, binary, all...), base: "http://" + addr, args: args}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if p.Exited() {
			t.Fatalf("ssehub exited before it was ready:\n%s", p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssehub not ready within 30 s:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func token(t *testing.T) string {
	t.Helper()
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(key)}, jwtauth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publish posts one update and returns its ID.
func publish(t *testing.T, base, tok string, form url.Values) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %s %s", resp.Status, b)
	}
	return strings.TrimSpace(string(b))
}

// step answers one STEP of a scenario: it gets the step's JSON data and
// returns the JSON answer.
type step func(data json.RawMessage) any

// runScenario runs the Node script name.mjs against base, answering its
// steps with steps. It fails the test if the script fails or asks for a
// step it has no answer for.
func runScenario(t *testing.T, name, base string, steps map[string]step) {
	t.Helper()
	installNodeModules(t)
	chromium := testsvc.Require(t, "chromium", "chromium")
	node := requireNode(t)
	shots := t.TempDir()
	if *updateShots {
		shots = filepath.Join("..", "..", "docs", "images")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, name+".mjs")
	cmd.Env = append(os.Environ(),
		"SSEHUB_BASE="+base,
		"SSEHUB_TOKEN="+token(t),
		"SSEHUB_SHOTS="+shots,
		"SSEHUB_USER_DATA="+t.TempDir(),
		"SSEHUB_CHROMIUM="+chromium,
	)
	if *updateShots {
		cmd.Env = append(cmd.Env, "SSEHUB_SCREENSHOT_LOAD=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) } // Chromium too
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() { // when a step failed the test: stop Node and Chromium
		if !waited {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	passed := false
	for sc.Scan() {
		line := sc.Text()
		rest, isStep := strings.CutPrefix(line, "STEP ")
		if !isStep {
			t.Log(name + ": " + line)
			passed = passed || line == "PASS"
			continue
		}
		stepName, data, _ := strings.Cut(rest, " ")
		fn, ok := steps[stepName]
		if !ok {
			fmt.Fprintf(stdin, "FAIL no step %q\n", stepName)
			t.Errorf("%s asked for unknown step %q", name, stepName)
			continue
		}
		t.Logf("%s: step %s %s", name, stepName, data)
		answer, err := json.Marshal(fn(json.RawMessage(data)))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(stdin, "OK %s\n", answer)
	}
	stdin.Close()
	err = cmd.Wait()
	waited = true
	if err != nil || !passed {
		t.Fatalf("%s failed (%v):\n%s", name, err, stderr.String())
	}
}

// installNodeModules runs `npm ci` in this directory unless node_modules
// already holds the playwright-core version package-lock.json pins. A file
// lock keeps concurrent test binaries from installing at once.
func installNodeModules(t *testing.T) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	npm := testsvc.Require(t, "npm", "npm")
	sum := sha256.Sum256([]byte(dir))
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "ssehub-browsertest-"+hex.EncodeToString(sum[:6])+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	want, err := pinnedVersion("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	if have, err := pinnedVersion(filepath.Join("node_modules", ".package-lock.json")); err == nil && have == want {
		return
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if have, err := pinnedVersion(filepath.Join("node_modules", ".package-lock.json")); err != nil || have != want {
		t.Fatalf("after npm ci, node_modules has playwright-core %q (%v); want %q", have, err, want)
	}
}

// pinnedVersion reads the playwright-core version of a package lock (npm
// writes node_modules/.package-lock.json for what it installed).
func pinnedVersion(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	v := lock.Packages["node_modules/playwright-core"].Version
	if v == "" {
		return "", fmt.Errorf("%s pins no playwright-core", file)
	}
	return v, nil
}

// TestDebugger: an event published with the page's form appears in the
// page's event list within a second; so does a private one published over
// HTTP; history lists both; resuming replays; EventSource reads a private
// event with the token in a cookie. It is the one test with a browser-level
// deadline (the "within a second"), so it does not run in parallel
// with the other browser tests of the package.
func TestDebugger(t *testing.T) {
	p := startHub(t, testsvc.Addr(testsvc.FreePort(t)), "--store", "memory")
	tok := token(t)
	runScenario(t, "debugger", p.base, map[string]step{
		"publish-private": func(data json.RawMessage) any {
			var in struct{ Topic, Data string }
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			id := publish(t, p.base, tok, url.Values{"topic": {in.Topic}, "data": {in.Data}, "private": {"on"}})
			return map[string]string{"id": id}
		},
	})
}

// TestDashboard: the dashboard's counters move when load is applied.
func TestDashboard(t *testing.T) {
	t.Parallel()
	p := startHub(t, testsvc.Addr(testsvc.FreePort(t)), "--store", "memory")
	tok := token(t)
	runScenario(t, "dashboard", p.base, map[string]step{
		"load": func(data json.RawMessage) any {
			var in struct{ N int }
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			// A subscriber, so that deliveries happen, open while the page
			// watches the counters move.
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/.well-known/mercure?topic=load", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { resp.Body.Close() })
			go io.Copy(io.Discard, resp.Body)
			for i := range in.N {
				publish(t, p.base, tok, url.Values{"topic": {"load"}, "data": {strconv.Itoa(i)}})
			}
			return map[string]int{"published": in.N}
		},
		"steady-load": func(data json.RawMessage) any {
			var in struct{ Seconds int }
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			steadyLoad(t, p.base, tok, time.Duration(in.Seconds)*time.Second)
			return map[string]bool{"done": true}
		},
	})
}

// TestReconnectAfterRestart: a page subscribed with the browser's native
// EventSource keeps every event exactly once, in order, across a SIGTERM
// and restart of the hub on the same port and data directory.
func TestReconnectAfterRestart(t *testing.T) {
	t.Parallel()
	addr := testsvc.Addr(testsvc.FreePort(t))
	data := filepath.Join(t.TempDir(), "data")
	p := startHub(t, addr, "--data", data, "--shutdown-grace", "5s")
	tok := token(t)
	const topic = "https://example.com/e2e/reconnect"
	next := 1
	publishRange := func(n int) []string {
		var ids []string
		for range n {
			id := fmt.Sprintf("r-%03d", next)
			next++
			publish(t, p.base, tok, url.Values{"topic": {topic}, "id": {id}, "data": {"event " + id}})
			ids = append(ids, id)
		}
		return ids
	}
	runScenario(t, "reconnect", p.base, map[string]step{
		"publish": func(data json.RawMessage) any {
			var in struct{ N int }
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			return map[string][]string{"ids": publishRange(in.N)}
		},
		"restart": func(json.RawMessage) any {
			p.Signal(syscall.SIGTERM)
			if err := p.Wait(30 * time.Second); err != nil {
				t.Fatalf("ssehub after SIGTERM: %v\n%s", err, p.Output())
			}
			p = startHub(t, addr, p.args...)
			return map[string]bool{"restarted": true}
		},
	})
}

// TestResumeFromConnecting: a page whose native EventSource has received
// nothing but its stream's cursor when the hub restarts resumes from that
// cursor, and receives the update published while it was away (its
// reconnection is held until then). Without the cursor it had no last
// event ID, went live again, and never saw that update.
func TestResumeFromConnecting(t *testing.T) {
	t.Parallel()
	addr := testsvc.Addr(testsvc.FreePort(t))
	data := filepath.Join(t.TempDir(), "data")
	p := startHub(t, addr, "--data", data, "--shutdown-grace", "20s")
	tok := token(t)
	runScenario(t, "cursor", p.base, map[string]step{
		"restart-and-publish": func(json.RawMessage) any {
			p.Signal(syscall.SIGTERM)
			if err := p.Wait(30 * time.Second); err != nil {
				t.Fatalf("ssehub after SIGTERM: %v\n%s", err, p.Output())
			}
			p = startHub(t, addr, p.args...)
			id := publish(t, p.base, tok, url.Values{"topic": {"https://example.com/e2e/cursor"}, "data": {"published while away"}})
			return map[string]string{"id": id}
		},
	})
	// The browser resumed with the cursor, without a gap.
	if out := p.Output(); !regexp.MustCompile(`msg="stream opened" .* resume=#[A-Za-z0-9_-]+ gap=""`).MatchString(out) {
		t.Errorf("the restarted hub saw no resume from a stream cursor:\n%s", out)
	}
}

// steadyLoad shapes traffic for the dashboard screenshots: subscribers
// come and go, some resume (replays, and a gap), and the publish rate
// follows a wave. It only runs with -update-screenshots.
func steadyLoad(t *testing.T, base, tok string, d time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subscribe := func(query string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/mercure?"+query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("subscribe: %v", err)
			return
		}
		go func() { defer resp.Body.Close(); io.Copy(io.Discard, resp.Body) }()
	}
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		sec := time.Since(start).Seconds()
		if i%40 == 0 {
			subscribe("topic=load")
		}
		if i%150 == 75 {
			subscribe("topic=load&lastEventID=earliest")
		}
		if i == 300 {
			subscribe("topic=load&lastEventID=no-such-id")
		}
		publish(t, base, tok, url.Values{"topic": {"load"}, "data": {strconv.Itoa(i)}})
		// 10 to 50 publishes a second, in a slow wave.
		rate := 30 + 20*math.Sin(sec/3)
		time.Sleep(time.Duration(float64(time.Second) / rate))
	}
}

// requireNode returns the path of node, failing the test when it is older
// than playwright-core supports.
func requireNode(t *testing.T) string {
	t.Helper()
	node := testsvc.Require(t, "node", "nodejs")
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _, _ := strings.Cut(v, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 20 {
		t.Fatalf("node %s is too old: playwright-core needs Node 20 or newer (https://nodejs.org)", v)
	}
	return node
}
