package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// Presence describes a hub.Presence implementation to RunPresence.
type Presence struct {
	// Open returns the presence of a new node named node. Every node a
	// case opens shares one registry, empty when the case starts: Open
	// may create that registry on a test's first call and must keep
	// registries of different tests apart. Nodes are closed by the suite.
	Open func(t *testing.T, node string) hub.Presence
	// Lease is the nodes' lease. Zero means the registry knows one process
	// only (hub.LocalPresence): the cases with several nodes are skipped.
	Lease time.Duration
}

// RunPresence runs the conformance suite of hub.Presence.
func RunPresence(t *testing.T, p Presence) {
	open := func(t *testing.T, node string) hub.Presence {
		t.Helper()
		pr := p.Open(t, node)
		t.Cleanup(func() { _ = pr.Close() })
		if _, _, err := pr.Sweep(context.Background()); err != nil {
			t.Fatalf("first Sweep of %s: %v", node, err)
		}
		return pr
	}
	t.Run("JoinListLeave", func(t *testing.T) { testPresenceBasic(t, open(t, "a")) })
	t.Run("Closed", func(t *testing.T) { testPresenceClosed(t, open(t, "a")) })
	if p.Lease <= 0 {
		return
	}
	t.Run("SharedView", func(t *testing.T) { testPresenceShared(t, open) })
	t.Run("LapsedNodeReapedOnce", func(t *testing.T) { testPresenceLapse(t, open, p.Lease) })
	t.Run("CloseLeaves", func(t *testing.T) { testPresenceCloseLeaves(t, open, p.Lease) })
}

func entry(sub string, matches ...string) hub.PresenceEntry {
	e := hub.PresenceEntry{Subscriber: sub}
	for i, m := range matches {
		s := hub.PresenceSubscription{MatchType: "exact", Match: m}
		if i%2 == 1 {
			s.MatchType = "urlpattern"
			s.Payload = json.RawMessage(`{"name":"` + sub + `","n":[1,2]}`)
		}
		e.Subscriptions = append(e.Subscriptions, s)
	}
	return e
}

func list(t *testing.T, p hub.Presence) []hub.PresenceEntry {
	t.Helper()
	es, err := p.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	hub.SortPresence(es)
	return es
}

func subscribers(es []hub.PresenceEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Subscriber
	}
	slices.Sort(out)
	return out
}

func samePresence(t *testing.T, how string, got, want []hub.PresenceEntry) {
	t.Helper()
	hub.SortPresence(got)
	hub.SortPresence(want)
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries %v, want %d %v", how, len(got), subscribers(got), len(want), subscribers(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Subscriber != w.Subscriber || len(g.Subscriptions) != len(w.Subscriptions) {
			t.Fatalf("%s: entry %d = %+v, want %+v", how, i, g, w)
		}
		for j := range g.Subscriptions {
			gs, ws := g.Subscriptions[j], w.Subscriptions[j]
			if gs.MatchType != ws.MatchType || gs.Match != ws.Match || !sameJSON(gs.Payload, ws.Payload) {
				t.Fatalf("%s: %s subscription %d = %+v (payload %s), want %+v (payload %s)", how, g.Subscriber, j, gs, gs.Payload, ws, ws.Payload)
			}
		}
	}
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

func testPresenceBasic(t *testing.T, p hub.Presence) {
	ctx := context.Background()
	if got := list(t, p); len(got) != 0 {
		t.Fatalf("new registry lists %v", subscribers(got))
	}
	a := entry("urn:uuid:a", "https://example.com/books/1", "https://example.com/users/:id")
	b := entry("urn:uuid:b", "/.well-known/mercure/subscriptions/exact/x/y")
	b.Subscriptions[0].MatchType = "template"
	for _, e := range []hub.PresenceEntry{a, b} {
		if err := p.Join(ctx, e); err != nil {
			t.Fatalf("Join %s: %v", e.Subscriber, err)
		}
	}
	samePresence(t, "after two joins", list(t, p), []hub.PresenceEntry{a, b})

	a2 := entry("urn:uuid:a", "https://example.com/other")
	if err := p.Join(ctx, a2); err != nil {
		t.Fatal(err)
	}
	samePresence(t, "after a join replaced a", list(t, p), []hub.PresenceEntry{a2, b})

	if err := p.Leave(ctx, "urn:uuid:a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Leave(ctx, "urn:uuid:never-joined"); err != nil {
		t.Fatalf("Leave of an unknown subscriber: %v", err)
	}
	samePresence(t, "after a left", list(t, p), []hub.PresenceEntry{b})
	gone, back, err := p.Sweep(ctx)
	if err != nil || len(gone) != 0 || len(back) != 0 {
		t.Fatalf("Sweep of a live node = gone %v, back %v, %v; want nothing", subscribers(gone), subscribers(back), err)
	}
}

func testPresenceClosed(t *testing.T, p hub.Presence) {
	ctx := context.Background()
	if err := p.Join(ctx, entry("urn:uuid:a", "x")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Join(ctx, entry("urn:uuid:b", "x")); err == nil {
		t.Error("Join after Close succeeded")
	}
	if _, err := p.List(ctx); err == nil {
		t.Error("List after Close succeeded")
	}
	if _, _, err := p.Sweep(ctx); err == nil {
		t.Error("Sweep after Close succeeded")
	}
}

func testPresenceShared(t *testing.T, open func(*testing.T, string) hub.Presence) {
	ctx := context.Background()
	a, b := open(t, "node-a"), open(t, "node-b")
	ea, eb := entry("urn:uuid:on-a", "t1", "t2"), entry("urn:uuid:on-b", "t3")
	if err := a.Join(ctx, ea); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctx, eb); err != nil {
		t.Fatal(err)
	}
	samePresence(t, "listed on a", list(t, a), []hub.PresenceEntry{ea, eb})
	samePresence(t, "listed on b", list(t, b), []hub.PresenceEntry{ea, eb})
	if err := a.Leave(ctx, ea.Subscriber); err != nil {
		t.Fatal(err)
	}
	samePresence(t, "listed on b after a's subscriber left", list(t, b), []hub.PresenceEntry{eb})
}

// sweepUntil sweeps with every sweeper, concurrently, every lease/3 until
// they have reaped want entries between them, and returns what each
// reaped. It fails the test after the wait.
func sweepUntil(t *testing.T, lease time.Duration, want int, sweepers ...hub.Presence) (gone [][]hub.PresenceEntry) {
	t.Helper()
	gone = make([][]hub.PresenceEntry, len(sweepers))
	var mu sync.Mutex
	deadline := time.Now().Add(wait)
	for {
		var wg sync.WaitGroup
		for i, p := range sweepers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g, _, err := p.Sweep(context.Background())
				if err != nil {
					t.Errorf("Sweep: %v", err)
					return
				}
				mu.Lock()
				gone[i] = append(gone[i], g...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		n := 0
		for _, g := range gone {
			n += len(g)
		}
		if t.Failed() || n >= want {
			return gone
		}
		if time.Now().After(deadline) {
			t.Fatalf("reaped %d entries within %v, want %d", n, wait, want)
		}
		time.Sleep(lease / 3)
	}
}

func testPresenceLapse(t *testing.T, open func(*testing.T, string) hub.Presence, lease time.Duration) {
	ctx := context.Background()
	dead := open(t, "node-dead")
	b, c := open(t, "node-b"), open(t, "node-c")
	d1, d2 := entry("urn:uuid:d1", "t1"), entry("urn:uuid:d2", "t2", "t3")
	eb := entry("urn:uuid:b1", "t1")
	for _, j := range []struct {
		p hub.Presence
		e hub.PresenceEntry
	}{{dead, d1}, {dead, d2}, {b, eb}} {
		if err := j.p.Join(ctx, j.e); err != nil {
			t.Fatal(err)
		}
	}
	samePresence(t, "before the lapse", list(t, b), []hub.PresenceEntry{d1, d2, eb})

	// node-dead stops sweeping; b and c go on, concurrently, until they
	// have reaped both of its entries between them.
	gone := sweepUntil(t, lease, 2, b, c)
	reaped := append(slices.Clone(gone[0]), gone[1]...)
	samePresence(t, "reaped by b and c together (each entry once)", reaped, []hub.PresenceEntry{d1, d2})
	samePresence(t, "listed on c after the lapse", list(t, c), []hub.PresenceEntry{eb})

	// A few more sweeps reap nothing more.
	for range 3 {
		for _, p := range []hub.Presence{b, c} {
			if g, _, err := p.Sweep(ctx); err != nil || len(g) != 0 {
				t.Fatalf("a later Sweep reaped %v again (%v)", subscribers(g), err)
			}
		}
	}

	// The lapsed node comes back: its entries are registered again and
	// returned, so that the hub can announce them again.
	_, back, err := dead.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	samePresence(t, "back after the lapse", back, []hub.PresenceEntry{d1, d2})
	samePresence(t, "listed on b after the node came back", list(t, b), []hub.PresenceEntry{d1, d2, eb})
	if _, back, err := dead.Sweep(ctx); err != nil || len(back) != 0 {
		t.Fatalf("a second Sweep of the returned node = back %v, %v; want nothing", subscribers(back), err)
	}
}

func testPresenceCloseLeaves(t *testing.T, open func(*testing.T, string) hub.Presence, lease time.Duration) {
	ctx := context.Background()
	a, b := open(t, "node-a"), open(t, "node-b")
	if err := a.Join(ctx, entry("urn:uuid:a1", "t1")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := list(t, b); len(got) != 0 {
		t.Fatalf("b lists %v after a closed", subscribers(got))
	}
	// Nothing of a's is left to reap, even once its lease would have run out.
	time.Sleep(lease + lease/2)
	if g, _, err := b.Sweep(ctx); err != nil || len(g) != 0 {
		t.Fatalf("Sweep after a closed reaped %v (%v)", subscribers(g), err)
	}
}
