package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
	"github.com/ssehub/ssehub/internal/testsvc"
)

// wait bounds how long a test waits for something that should happen; it
// only turns a hang into a readable failure.
const wait = 60 * time.Second

func TestConformance(t *testing.T) {
	n := testsvc.StartNATS(t)
	storetest.Run(t, func(t *testing.T) hub.Store {
		return open(t, n, "stream="+newStream(), Config{})
	})
	storetest.RunRetention(t, storetest.Retention{
		New: func(t *testing.T, maxUpdates int) hub.Store {
			return open(t, n, "stream="+newStream(), Config{Limits: hub.Limits{MaxUpdates: maxUpdates}})
		},
	})
	storetest.RunTopicRetention(t, storetest.TopicRetention{
		New: func(t *testing.T, limits hub.TopicLimits, now func() time.Time) hub.Store {
			return open(t, n, "stream="+newStream(), Config{TopicLimits: limits, Now: now})
		},
	})
}

func upd(id string) *hub.Update {
	return &hub.Update{ID: id, Topics: []string{"https://example.com/t"}, Data: "data of " + id}
}

// collector runs Follow and collects what it delivers.
type collector struct {
	mu   sync.Mutex
	got  []*hub.Update
	more chan struct{}
	done chan error
}

func collect(ctx context.Context, s hub.Store, after hub.Position) *collector {
	c := &collector{more: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() {
		c.done <- s.Follow(ctx, after, func(u *hub.Update) {
			c.mu.Lock()
			c.got = append(c.got, u)
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		})
	}()
	return c
}

// waitFor waits until the collector has n updates and returns them.
func (c *collector) waitFor(t *testing.T, n int) []*hub.Update {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.got) >= n {
			got := slices.Clone(c.got)
			c.mu.Unlock()
			return got
		}
		have := len(c.got)
		c.mu.Unlock()
		select {
		case <-c.more:
		case err := <-c.done:
			t.Fatalf("Follow returned %v after %d of %d updates", err, have, n)
		case <-deadline.C:
			t.Fatalf("Follow delivered %d of %d updates within %v", have, n, wait)
		}
	}
}

func (c *collector) stop(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(wait):
		t.Fatal("Follow did not return")
		return nil
	}
}

func ids(us []*hub.Update) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func positions(us []*hub.Update) []hub.Position {
	out := make([]hub.Position, len(us))
	for i, u := range us {
		out[i] = u.Pos
	}
	return out
}

func readAll(t *testing.T, s hub.Store, after hub.Position) []*hub.Update {
	t.Helper()
	var got []*hub.Update
	if err := s.Read(context.Background(), after, func(u *hub.Update) bool { got = append(got, u); return true }); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got
}

// TestTwoNodes: two stores on one stream, both appending concurrently,
// both following: each delivers the identical sequence, which is exactly
// what was acknowledged.
func TestTwoNodes(t *testing.T) {
	n := testsvc.StartNATS(t)
	q := "stream=" + newStream()
	a, b := open(t, n, q, Config{}), open(t, n, q, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fa, fb := collect(ctx, a, hub.Position{}), collect(ctx, b, hub.Position{})

	const each = 200
	var mu sync.Mutex
	acked := map[uint64]string{}
	var wg sync.WaitGroup
	for node, s := range map[string]*Store{"a": a, "b": b} {
		for g := range 4 {
			wg.Go(func() {
				for i := range each {
					u := upd(fmt.Sprintf("%s%d-%d", node, g, i))
					if err := s.Append(context.Background(), u); err != nil {
						t.Errorf("Append on %s: %v", node, err)
						return
					}
					mu.Lock()
					acked[u.Pos.Seq] = u.ID
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	total := 2 * 4 * each
	if len(acked) != total {
		t.Fatalf("%d distinct sequence numbers acknowledged; want %d", len(acked), total)
	}
	ga, gb := fa.waitFor(t, total), fb.waitFor(t, total)
	if !slices.Equal(ids(ga), ids(gb)) || !slices.Equal(positions(ga), positions(gb)) {
		t.Fatal("the two nodes delivered different sequences")
	}
	for i, u := range ga {
		if u.Pos.Seq != uint64(i+1) || acked[u.Pos.Seq] != u.ID {
			t.Fatalf("delivery %d: %q at %v; want seq %d, which Append acknowledged as %q", i, u.ID, u.Pos, i+1, acked[uint64(i+1)])
		}
	}
	if len(ga) != total || len(gb) != total {
		t.Errorf("delivered %d and %d updates; want %d", len(ga), len(gb), total)
	}
	if !slices.Equal(ids(readAll(t, a, hub.Position{})), ids(readAll(t, b, hub.Position{}))) {
		t.Error("the two nodes read different histories")
	}
	cancel()
	fa.stop(t)
	fb.stop(t)
}

// TestKillServer: nats-server is killed with SIGKILL while appends run and
// is restarted on the same store: every acknowledged append is still
// there, and a Follow running throughout delivers the whole log once, in
// order, without a gap.
func TestKillServer(t *testing.T) {
	n := testsvc.StartNATS(t)
	q := "stream=" + newStream()
	s := open(t, n, q, Config{RequestTimeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := collect(ctx, s, hub.Position{})

	var mu sync.Mutex
	acked := map[uint64]string{}
	var failed int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				u := upd(fmt.Sprintf("g%d-%d", g, i))
				err := s.Append(context.Background(), u)
				mu.Lock()
				if err == nil {
					acked[u.Pos.Seq] = u.ID
				} else {
					failed++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	for round := range 3 {
		f.waitFor(t, 100*(round+1)) // appends are flowing and followed
		n.Kill()
		time.Sleep(200 * time.Millisecond) // appends fail meanwhile
		n.Restart()
	}
	// Appends succeed again after the last restart.
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	deadline := time.Now().Add(wait)
	for {
		mu.Lock()
		after := len(acked)
		mu.Unlock()
		if after >= before+100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appends did not recover after the restart: %d acknowledged before, %d now", before, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d appends acknowledged, %d failed while the server was down", len(acked), failed)

	read := readAll(t, s, hub.Position{})
	got := map[uint64]string{}
	for _, u := range read {
		got[u.Pos.Seq] = u.ID
	}
	for seq, id := range acked {
		if got[seq] != id {
			t.Errorf("acknowledged %q at seq %d; after the restarts that seq holds %q", id, seq, got[seq])
		}
	}
	followed := f.waitFor(t, len(read))
	for i, u := range followed {
		if u.Pos.Seq != uint64(i+1) {
			t.Fatalf("Follow delivered seq %d as its %dth update; want %d (no gap, no duplicate)", u.Pos.Seq, i+1, i+1)
		}
		if i < len(read) && u.ID != read[i].ID {
			t.Fatalf("Follow delivered %q at seq %d; Read has %q", u.ID, u.Pos.Seq, read[i].ID)
		}
	}
	cancel()
	if err := f.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Follow returned %v; want context.Canceled", err)
	}
}

// TestServerDown: while the server is down, Append fails (it never
// acknowledges what it could not store), and a Follow keeps waiting and
// resumes after the restart.
func TestServerDown(t *testing.T) {
	n := testsvc.StartNATS(t)
	s := open(t, n, "stream="+newStream(), Config{RequestTimeout: time.Second})
	first := upd("before")
	if err := s.Append(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := collect(ctx, s, first.Pos)
	n.Kill()
	for i := range 3 {
		actx, acancel := context.WithTimeout(context.Background(), wait)
		err := s.Append(actx, upd(fmt.Sprintf("down%d", i)))
		expired := actx.Err() != nil // before acancel, which sets it too
		acancel()
		if err == nil {
			t.Fatal("Append succeeded while the server was down")
		}
		if expired {
			t.Fatalf("Append waited for the test's deadline instead of failing: %v", err)
		}
	}
	if _, _, err := s.Bounds(context.Background()); err == nil {
		t.Error("Bounds succeeded while the server was down")
	}
	n.Restart()
	var next *hub.Update
	deadline := time.Now().Add(wait)
	for {
		next = upd("after")
		err := s.Append(context.Background(), next)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Append still fails after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := f.waitFor(t, 1)
	if len(got) != 1 || got[0].ID != "after" || got[0].Pos != next.Pos {
		t.Errorf("Follow after the restart delivered %v; want only %q at %v", ids(got), "after", next.Pos)
	}
	if all := readAll(t, s, hub.Position{}); !slices.Equal(ids(all), []string{"before", "after"}) {
		t.Errorf("history is %v; want [before after] (failed appends stored nothing)", ids(all))
	}
	cancel()
	f.stop(t)
}

// jsClient returns a JetStream client of its own, for tests that act on
// the stream behind the store's back.
func jsClient(t *testing.T, n *testsvc.NATS) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestStreamDeleted: deleting the stream ends its epoch: positions from it
// get ErrEpochChanged, a running Follow returns it, and the next Append
// creates the stream again in a new epoch, on every node.
func TestStreamDeleted(t *testing.T) {
	n := testsvc.StartNATS(t)
	name := newStream()
	a, b := open(t, n, "stream="+name, Config{}), open(t, n, "stream="+name, Config{})
	old := upd("old")
	if err := a.Append(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := collect(ctx, b, old.Pos)
	if err := jsClient(t, n).DeleteStream(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	if err := f.stop(t); !errors.Is(err, hub.ErrEpochChanged) {
		t.Errorf("Follow after the stream was deleted returned %v; want ErrEpochChanged", err)
	}
	newer := upd("new")
	if err := b.Append(context.Background(), newer); err != nil {
		t.Fatalf("Append after the stream was deleted: %v", err)
	}
	if newer.Pos.Epoch == old.Pos.Epoch || newer.Pos.Seq != 1 {
		t.Errorf("first append to the recreated stream at %v; want seq 1 in an epoch other than %q", newer.Pos, old.Pos.Epoch)
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		if err := s.Read(context.Background(), old.Pos, func(*hub.Update) bool { return true }); !errors.Is(err, hub.ErrEpochChanged) {
			t.Errorf("%s: Read from the old epoch: %v; want ErrEpochChanged", name, err)
		}
		if err := s.Follow(context.Background(), old.Pos, func(*hub.Update) {}); !errors.Is(err, hub.ErrEpochChanged) {
			t.Errorf("%s: Follow from the old epoch: %v; want ErrEpochChanged", name, err)
		}
		if _, err := s.Lookup(context.Background(), "old"); !errors.Is(err, hub.ErrNotFound) {
			t.Errorf("%s: Lookup of an update of the old epoch: %v; want ErrNotFound", name, err)
		}
		if _, newest, err := s.Bounds(context.Background()); err != nil || newest != newer.Pos {
			t.Errorf("%s: Bounds: newest %v, %v; want %v", name, newest, err, newer.Pos)
		}
		if got := readAll(t, s, hub.Position{}); !slices.Equal(ids(got), []string{"new"}) {
			t.Errorf("%s: Read from zero: %v; want [new]", name, ids(got))
		}
	}
	// a, which never saw the deletion through an append, appends to the
	// new epoch too.
	third := upd("third")
	if err := a.Append(context.Background(), third); err != nil || third.Pos.Epoch != newer.Pos.Epoch || third.Pos.Seq != 2 {
		t.Errorf("Append on the other node: %v, %v; want seq 2 of epoch %q", third.Pos, err, newer.Pos.Epoch)
	}
}

// TestIdempotencyKey: a second append with the same key, on the same or
// another node, stores nothing and reports the first update.
func TestIdempotencyKey(t *testing.T) {
	n := testsvc.StartNATS(t)
	q := "stream=" + newStream()
	a, b := open(t, n, q, Config{}), open(t, n, q, Config{})
	first := &hub.Update{ID: "first", Topics: []string{"t"}, Data: "x", IdempotencyKey: "order-42"}
	if err := a.Append(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Store{"same node": a, "other node": b} {
		retry := &hub.Update{ID: "retry", Topics: []string{"t"}, Data: "x", IdempotencyKey: "order-42"}
		if err := s.Append(context.Background(), retry); err != nil {
			t.Fatalf("%s: Append of a duplicate: %v", name, err)
		}
		if retry.ID != "first" || retry.Pos != first.Pos || !retry.Time.Equal(first.Time) {
			t.Errorf("%s: duplicate appended as %q at %v; want the first update, %q at %v", name, retry.ID, retry.Pos, first.ID, first.Pos)
		}
	}
	other := &hub.Update{ID: "other", Topics: []string{"t"}, Data: "x", IdempotencyKey: "order-43"}
	if err := b.Append(context.Background(), other); err != nil || other.Pos.Seq != 2 {
		t.Errorf("Append with another key: %v, %v; want seq 2", other.Pos, err)
	}
	if got := readAll(t, a, hub.Position{}); !slices.Equal(ids(got), []string{"first", "other"}) {
		t.Errorf("history is %v; want [first other]", ids(got))
	}
}

// TestOpenErrors: what Open refuses, with an error that says why.
func TestOpenErrors(t *testing.T) {
	n := testsvc.StartNATS(t)
	foreign := newStream()
	js := jsClient(t, n)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: foreign, Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	closedPort := fmt.Sprintf("nats://127.0.0.1:%d", testsvc.FreePort(t))
	for _, c := range []struct {
		name, url string
		cfg       Config
		want      string
	}{
		{"bad scheme", "http://" + n.Addr, Config{}, "scheme must be nats:// or tls://"},
		{"unknown parameter", n.URL() + "?bucket=x", Config{}, `unknown parameter "bucket"`},
		{"nobody listens", closedPort, Config{ConnectTimeout: time.Second}, "natsstore: connecting to " + closedPort},
		{"foreign stream", n.URL() + "?stream=" + foreign, Config{}, "was not created by ssehub"},
		{"replicas beyond the cluster", n.URL() + "?stream=" + newStream() + "&replicas=3", Config{}, "natsstore: opening stream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Logger = quiet
			s, err := Open(context.Background(), c.url, c.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", c.url)
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Open(%q): %q; want one line containing %q", c.url, err, c.want)
			}
		})
	}
}

// TestLimits: the configured limits become the stream's, and a node opened
// with other limits updates them.
func TestLimits(t *testing.T) {
	n := testsvc.StartNATS(t)
	name := newStream()
	s := open(t, n, "stream="+name, Config{Limits: hub.Limits{MaxUpdates: 100, MaxBytes: 1 << 20, MaxAge: time.Hour}, DuplicateWindow: 2 * time.Hour})
	js := jsClient(t, n)
	check := func(maxMsgs, maxBytes int64, maxAge, dup time.Duration) {
		t.Helper()
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		c := st.CachedInfo().Config
		if c.MaxMsgs != maxMsgs || c.MaxBytes != maxBytes || c.MaxAge != maxAge || c.Duplicates != dup {
			t.Errorf("stream limits: msgs %d, bytes %d, age %v, duplicates %v; want %d, %d, %v, %v", c.MaxMsgs, c.MaxBytes, c.MaxAge, c.Duplicates, maxMsgs, maxBytes, maxAge, dup)
		}
	}
	check(100, 1<<20, time.Hour, time.Hour) // the duplicate window is capped at MaxAge
	u := upd("kept")
	if err := s.Append(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, n, "stream="+name, Config{})
	check(-1, -1, 0, 10*time.Minute)
	if got := readAll(t, s2, hub.Position{}); !slices.Equal(ids(got), []string{"kept"}) || got[0].Pos != u.Pos {
		t.Errorf("after reopening with other limits: %v; want the same history and epoch", positions(got))
	}
}

// TestMaxBytes: the byte limit discards the oldest updates.
func TestMaxBytes(t *testing.T) {
	n := testsvc.StartNATS(t)
	s := open(t, n, "stream="+newStream(), Config{Limits: hub.Limits{MaxBytes: 4096}})
	for i := range 20 {
		u := &hub.Update{ID: fmt.Sprint(i), Topics: []string{"t"}, Data: strings.Repeat("x", 1000)}
		if err := s.Append(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, s, hub.Position{})
	if len(got) == 0 || len(got) > 4 || got[len(got)-1].ID != "19" {
		t.Errorf("retained %v with 1 KB each under a 4 KB limit; want the newest few", ids(got))
	}
}
