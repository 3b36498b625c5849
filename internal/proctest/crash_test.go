package proctest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKill9LosesNoAcknowledgedEvent publishes from several goroutines,
// kills the hub with SIGKILL at a random moment, restarts it on the same
// data directory, and repeats. At the end every acknowledged ID must be in
// history exactly once, each publisher's IDs in the order it published
// them; publishes that were not acknowledged may be there at most once.
func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	tok := token(t)
	const publishers = 8
	pad := strings.Repeat(".", 1000)
	rounds := 20
	if testing.Short() {
		rounds = 2
	}
	budget := time.Now().Add(90 * time.Second)
	acked := make([][]string, publishers) // per publisher, in order
	attempted := map[string]bool{}
	var mu sync.Mutex
	for round := 0; round < rounds && time.Now().Before(budget); round++ {
		// Small log segments and 1 KB events: kills land around segment
		// switches and reuse.
		p := startHub(t, addr, "--data", dir, "--wal-segment-size", "65536")
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := range publishers {
			wg.Go(func() {
				c := &http.Client{Transport: &http.Transport{}}
				defer c.CloseIdleConnections()
				for i := 0; ctx.Err() == nil; i++ {
					id := fmt.Sprintf("r%d-p%d-%06d", round, g, i)
					mu.Lock()
					attempted[id] = true
					mu.Unlock()
					status, body, err := publish(ctx, c, p.url, tok, url.Values{"topic": {"crash"}, "id": {id}, "data": {"payload " + id + pad}})
					if err != nil || status != http.StatusOK {
						return // the hub died (or is dying) under us
					}
					if body != id {
						t.Errorf("publish %s answered %q", id, body)
						return
					}
					mu.Lock()
					acked[g] = append(acked[g], id)
					mu.Unlock()
				}
			})
		}
		// Kill at a random moment, 50 to 400 ms into the round.
		time.Sleep(time.Duration(50+rand.IntN(350)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		cancel()
		wg.Wait()
	}

	p := startHub(t, addr, "--data", dir)
	history := readHistory(t, p.base, tok)
	seen := map[string]int{}
	for i, id := range history {
		seen[id]++
		if seen[id] > 1 {
			t.Errorf("%s is in history twice (at %d)", id, i)
		}
		if !attempted[id] {
			t.Errorf("history holds %s, which nobody published", id)
		}
	}
	pos := map[string]int{}
	for i, id := range history {
		pos[id] = i
	}
	total := 0
	for g, ids := range acked {
		total += len(ids)
		last := -1
		for _, id := range ids {
			at, ok := pos[id]
			if !ok {
				t.Errorf("acknowledged %s is missing after kill -9", id)
				continue
			}
			if at < last {
				t.Errorf("publisher %d: %s is out of order", g, id)
			}
			last = at
		}
	}
	if total == 0 {
		t.Fatal("no publish was acknowledged: the test proved nothing")
	}
	segs, _ := os.ReadDir(filepath.Join(dir, "wal"))
	var newest string
	for _, e := range segs {
		newest = max(newest, e.Name())
	}
	t.Logf("%d rounds; %d acknowledged, %d attempted, %d in history; newest log segment %s (one per start, the rest switches)", rounds, total, len(attempted), len(history), newest)

	// Resume from the middle of history over the stream: exactly the IDs
	// after it, in order.
	mid := history[len(history)/2]
	want := history[len(history)/2+1:]
	if len(want) > 2000 {
		want = want[:2000]
	}
	got := streamIDs(t, p.url+"?topic=crash", mid, len(want))
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("resume after %s: got %d IDs, want %d; first difference at %d", mid, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// readHistory pages through the catch-up endpoint.
func readHistory(t *testing.T, base, tok string) []string {
	t.Helper()
	var ids []string
	q := url.Values{"topic": {"*"}, "after": {"earliest"}, "limit": {"1000"}}
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("history paging does not end")
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/.well-known/mercure/history?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
			NextCursor string `json:"next_cursor"`
			More       bool   `json:"more"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("history: %d %v", resp.StatusCode, err)
		}
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		if !page.More {
			return ids
		}
		q.Del("after")
		q.Set("cursor", page.NextCursor)
	}
}

// streamIDs subscribes after last and returns the IDs of the next n events.
func streamIDs(t *testing.T, rawURL, last string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, r := rawStream(t, ctx, rawURL+"&last_event_id="+url.QueryEscape(last))
	defer resp.Body.Close()
	var ids []string
	for len(ids) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream after %d of %d events: %v", len(ids), n, err)
		}
		if id, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "id: "); ok {
			ids = append(ids, id)
		}
	}
	return ids
}
