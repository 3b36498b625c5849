package clustertest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// subscriptionEvent is the part of a Mercure subscription event the test
// reads.
type subscriptionEvent struct {
	ID         string `json:"id"`
	Subscriber string `json:"subscriber"`
	Match      string `json:"match"`
	Active     bool   `json:"active"`
}

// watcher collects the subscription events one hub delivers, and the
// marker events that prove it has delivered everything before them.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	events []subscriptionEvent
	marks  []string
}

func watch(t *testing.T, base, token string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	q := "match_urlpattern=" + url.QueryEscape("/.well-known/mercure/subscriptions*") + "&match=" + url.QueryEscape(markTopic)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/mercure?"+q, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("watch: %v %v", resp, err)
	}
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer resp.Body.Close()
		dec := sse.NewDecoder(resp.Body)
		for {
			ev, err := dec.Decode()
			if err != nil {
				return
			}
			w.mu.Lock()
			if ev.Type == "mercure" {
				var e subscriptionEvent
				if json.Unmarshal([]byte(ev.Data), &e) == nil {
					w.events = append(w.events, e)
				}
			} else {
				w.marks = append(w.marks, ev.Data)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *watcher) stop() { w.cancel(); <-w.done }

// of returns the events about subscriber.
func (w *watcher) of(subscriber string) []subscriptionEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []subscriptionEvent
	for _, e := range w.events {
		if e.Subscriber == subscriber {
			out = append(out, e)
		}
	}
	return out
}

// withMatch returns the subscribers of the events whose match is m.
func (w *watcher) withMatch(m string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.events {
		if e.Match == m && e.Active {
			out = append(out, e.Subscriber)
		}
	}
	return out
}

func (w *watcher) marked(m string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.marks {
		if v == m {
			return true
		}
	}
	return false
}

const markTopic = "https://example.com/mark"

// listed returns the subscribers that the subscriptions API of base lists
// for the exact selector m.
func listed(t *testing.T, base, token, m string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/.well-known/mercure/subscriptions/exact/"+url.QueryEscape(m), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET subscriptions on %s: %d %s", base, resp.StatusCode, b)
	}
	var doc struct {
		Subscriptions []subscriptionEvent `json:"subscriptions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("GET subscriptions: %v in %s", err, b)
	}
	var out []string
	for _, s := range doc.Subscriptions {
		out = append(out, s.Subscriber)
	}
	return out
}

// openQuiet opens a stream of topic on base and returns its closer.
func openQuiet(t *testing.T, base, token, topic string) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/mercure?match="+url.QueryEscape(topic), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("subscribe: %v %v", resp, err)
	}
	go func() { _, _ = io.Copy(io.Discard, resp.Body) }()
	return func() { cancel(); resp.Body.Close() }
}

// TestPresenceAcrossCluster runs three hubs with --subscriptions on one
// engine: a subscription opened on one hub is announced on another and
// listed by the API of the third; its end is announced once when its
// client leaves; and when its hub is killed with SIGKILL, another hub
// reaps it after the lease and announces its end exactly once; a hub
// paused past its lease is reaped the same way, and announces its
// still-open subscription again when it resumes.
func TestPresenceAcrossCluster(t *testing.T) {
	forEachEngine(t, func(t *testing.T, start func(testing.TB) Engine) {
		const lease = time.Second
		c := StartCluster(t, binary, start, 3, "--subscriptions", "--presence-lease", lease.String())
		w := watch(t, c.Hubs[2].Base(), c.Token)

		// A subscriber on hub 0, seen from hubs 1 and 2.
		topicA, topicB := "https://example.com/presence-a", "https://example.com/presence-b"
		openQuiet(t, c.Hubs[0].Base(), c.Token, topicA)
		var subA string
		waitFor(t, 20*time.Second, "hub 2 to announce the subscription opened on hub 0", func() bool {
			s := w.withMatch(topicA)
			if len(s) > 0 {
				subA = s[0]
			}
			return subA != ""
		})
		for _, h := range c.Hubs[1:] {
			if got := listed(t, h.Base(), c.Token, topicA); len(got) != 1 || got[0] != subA {
				t.Fatalf("hub %d lists %v for %s, want [%s]", h.Index, got, topicA, subA)
			}
		}

		// A subscriber on hub 1 that leaves: one end, announced at once.
		closeB := openQuiet(t, c.Hubs[1].Base(), c.Token, topicB)
		var subB string
		waitFor(t, 20*time.Second, "the subscription on hub 1 to be announced", func() bool {
			if s := w.withMatch(topicB); len(s) > 0 {
				subB = s[0]
			}
			return subB != ""
		})
		closeB()
		waitFor(t, 20*time.Second, "the end of the subscription on hub 1", func() bool { return len(w.of(subB)) == 2 })
		if got := listed(t, c.Hubs[0].Base(), c.Token, topicB); len(got) != 0 {
			t.Errorf("hub 0 still lists %v for %s after its client left", got, topicB)
		}

		// Hub 0 dies without a word: after its lease, the others reap its
		// subscription and announce its end once.
		c.Hubs[0].Kill()
		waitFor(t, 30*time.Second, "the end of the killed hub's subscription", func() bool {
			ev := w.of(subA)
			return len(ev) >= 2 && !ev[len(ev)-1].Active
		})
		// Several more sweeps of both survivors, then a marker: nothing
		// more about the dead subscriber may come before it.
		time.Sleep(3 * lease)
		if code, err := publishData(http.DefaultClient, c.Hubs[1].Base(), c.Token, markTopic, "after-reap"); err != nil || code != 200 {
			t.Fatalf("publish marker: %d %v", code, err)
		}
		waitFor(t, 20*time.Second, "the marker", func() bool { return w.marked("after-reap") })
		if ev := w.of(subA); len(ev) != 2 || !ev[0].Active || ev[1].Active {
			t.Errorf("events of the killed hub's subscriber %s: %+v; want one start and one end", subA, ev)
		}
		for _, h := range c.Hubs[1:] {
			if got := listed(t, h.Base(), c.Token, topicA); len(got) != 0 {
				t.Errorf("hub %d still lists %v for %s after its hub died", h.Index, got, topicA)
			}
		}
		if out := c.Hubs[1].Output() + c.Hubs[2].Output(); !strings.Contains(out, "reaped the subscriptions of a hub") {
			t.Errorf("no hub logged the reap:\n%s", out)
		}

		// Hub 1 is paused past its lease: hub 2 reaps its subscription and
		// announces its end; when hub 1 resumes, its stream is still open,
		// so it registers it again and announces it again.
		topicC := "https://example.com/presence-c"
		openQuiet(t, c.Hubs[1].Base(), c.Token, topicC)
		var subC string
		waitFor(t, 20*time.Second, "the subscription on hub 1 to be announced", func() bool {
			if s := w.withMatch(topicC); len(s) > 0 {
				subC = s[0]
			}
			return subC != ""
		})
		c.Hubs[1].Signal(syscall.SIGSTOP)
		waitFor(t, 30*time.Second, "the end of the paused hub's subscription", func() bool { return len(w.of(subC)) >= 2 })
		c.Hubs[1].Signal(syscall.SIGCONT)
		waitFor(t, 30*time.Second, "the paused hub to announce its subscription again", func() bool { return len(w.of(subC)) >= 3 })
		if ev := w.of(subC); len(ev) != 3 || !ev[0].Active || ev[1].Active || !ev[2].Active {
			t.Errorf("events of the paused hub's subscriber: %+v; want start, end, start", ev)
		}
		if got := listed(t, c.Hubs[2].Base(), c.Token, topicC); len(got) != 1 || got[0] != subC {
			t.Errorf("hub 2 lists %v for %s after hub 1 resumed, want [%s]", got, topicC, subC)
		}
	})
}
