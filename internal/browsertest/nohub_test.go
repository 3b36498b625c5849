package browsertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/clustertest"
	"github.com/ssehub/ssehub/internal/testsvc"
)

// TestNoHubReachable: native EventSource objects in Chromium, through
// deploy/nginx/cluster.conf (TLS, HTTP/2) in front of two hubs sharing
// Redis, while both hubs are down. nginx must answer their reconnections
// with its retryable 200 (a refusal comment and a retry field), not the
// 502 an EventSource takes as fatal: none may end CLOSED, and each must
// come back once the hubs are, and receive every event exactly once, in
// order, the one published while no hub behind nginx was up included (a
// third hub on the same Redis, not behind nginx, publishes; the
// EventSource resumes from its Last-Event-ID). Half the EventSource
// objects are on a page of another origin (https://localhost:port),
// allowed by the hubs' --cors-origin, and send credentials: nginx's
// answer must pass Chromium's CORS check too. nohub.mjs is the pages' side.
func TestNoHubReachable(t *testing.T) {
	t.Parallel()
	nginx := testsvc.Require(t, "nginx", "nginx")
	// The other origin is nginx's own under another name: a page served
	// from the loopback interface, as the hubs are (Chromium would hold a
	// request from a public page to a loopback address to stricter rules).
	port := testsvc.FreePort(t)
	c := clustertest.StartCluster(t, binary, clustertest.Engines[0].Start, 3, "--cors-origin", "https://localhost:"+strconv.Itoa(port))
	behind, publisher := c.Hubs[:2], c.Hubs[2]
	base, accessLog := startNginxOn(t, nginx, port, behind...)

	const topic = "https://example.com/e2e/nohub"
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	published := 0
	var downSince time.Time
	runScenario(t, "nohub", base, map[string]step{
		"publish": func(json.RawMessage) any {
			published++
			form := url.Values{"topic": {topic}, "id": {fmt.Sprintf("n-%03d", published)}, "data": {strconv.Itoa(published)}}
			req, _ := http.NewRequest(http.MethodPost, publisher.Base()+"/.well-known/mercure", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+c.Token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("publish %d: %v", published, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("publish %d: %s %s", published, resp.Status, body)
			}
			return map[string]int{"published": published}
		},
		"stop-hubs": func(json.RawMessage) any {
			for _, h := range behind {
				h.Kill()
			}
			downSince = time.Now()
			return map[string]bool{"stopped": true}
		},
		"start-hubs": func(json.RawMessage) any {
			for _, h := range behind {
				h.Restart()
			}
			return map[string]bool{"started": true}
		},
	})
	if downSince.IsZero() {
		t.Fatal("the scenario never stopped the hubs")
	}

	// What nginx answered: 200 to every subscribe, the retries of the
	// outage among them (no upstream answered: its status is 502).
	var retries int
	other := map[string]int{}
	for _, e := range readAccessLog(t, accessLog) {
		if e.method != http.MethodGet || e.uri != "/.well-known/mercure" {
			continue
		}
		if e.status != "200" {
			other[e.status+" (upstream "+e.upstream+")"]++
		} else if strings.HasSuffix(e.upstream, "502") {
			retries++
		}
	}
	if len(other) > 0 {
		t.Errorf("subscribes answered otherwise than 200 (fatal to an EventSource): %v", other)
	}
	if retries == 0 {
		t.Error("nginx gave no retry answer: the hubs were never seen down, and the test proved nothing")
	}
	t.Logf("nginx answered %d subscribes with its retry while no hub was up", retries)
}
