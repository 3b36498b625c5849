package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/testsvc"
	"github.com/ssehub/ssehub/redisstore"
)

// wait bounds how long a test waits for something that should happen; it
// only turns a hang into a readable failure.
const wait = 60 * time.Second

func upd(id string) *hub.Update {
	return &hub.Update{ID: id, Topics: []string{"https://example.com/t"}, Data: "data of " + id, Time: time.Now()}
}

func mustAppend(t testing.TB, s hub.Store, u *hub.Update) *hub.Update {
	t.Helper()
	if err := s.Append(context.Background(), u); err != nil {
		t.Fatalf("Append(%q): %v", u.ID, err)
	}
	return u
}

func readAll(t testing.TB, s hub.Store, after hub.Position) []*hub.Update {
	t.Helper()
	var got []*hub.Update
	if err := s.Read(context.Background(), after, func(u *hub.Update) bool {
		got = append(got, u)
		return true
	}); err != nil {
		t.Fatalf("Read(%v): %v", after, err)
	}
	return got
}

func positions(us []*hub.Update) []hub.Position {
	out := make([]hub.Position, len(us))
	for i, u := range us {
		out[i] = u.Pos
	}
	return out
}

func idsOf(us []*hub.Update) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// follower runs Follow on its own goroutine and collects what it delivers.
type follower struct {
	mu     sync.Mutex
	got    []*hub.Update
	more   chan struct{} // signaled after each delivery
	done   chan error
	cancel context.CancelFunc
}

func follow(s hub.Store, after hub.Position) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{more: make(chan struct{}, 1), done: make(chan error, 1), cancel: cancel}
	go func() {
		f.done <- s.Follow(ctx, after, func(u *hub.Update) {
			f.mu.Lock()
			f.got = append(f.got, u)
			f.mu.Unlock()
			select {
			case f.more <- struct{}{}:
			default:
			}
		})
	}()
	return f
}

// until waits until Follow has delivered the update at seq (or later) and
// returns everything it delivered.
func (f *follower) until(t *testing.T, seq uint64) []*hub.Update {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		got := slices.Clone(f.got)
		f.mu.Unlock()
		if len(got) > 0 && got[len(got)-1].Pos.Seq >= seq {
			return got
		}
		select {
		case <-f.more:
		case err := <-f.done:
			t.Fatalf("Follow returned %v after %d updates, before seq %d", err, len(got), seq)
		case <-timer.C:
			t.Fatalf("Follow delivered %d updates, not up to seq %d, within %v", len(got), seq, wait)
		}
	}
}

// result waits for Follow to return.
func (f *follower) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.done:
		return err
	case <-time.After(wait):
		t.Fatalf("Follow did not return within %v", wait)
		return nil
	}
}

func (f *follower) stop(t *testing.T) {
	t.Helper()
	f.cancel()
	if err := f.result(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Follow after cancel: %v; want context.Canceled", err)
	}
}

// checkSequence fails unless us have strictly increasing seqs of one epoch.
func checkSequence(t *testing.T, name string, us []*hub.Update) {
	t.Helper()
	for i, u := range us {
		if i > 0 && (u.Pos.Seq <= us[i-1].Pos.Seq || u.Pos.Epoch != us[0].Pos.Epoch) {
			t.Fatalf("%s: update %d at %v after %v; want increasing seqs in one epoch (no repeat)", name, i, u.Pos, us[i-1].Pos)
		}
	}
}

func client(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestTwoNodes appends on two stores sharing one Redis, concurrently, and
// checks that both Follows deliver the same sequence, which is the log.
func TestTwoNodes(t *testing.T) {
	r := testsvc.StartRedis(t)
	url := freshURL(r)
	a, b := open(t, url, redisstore.Config{}), open(t, url, redisstore.Config{})
	_, start, err := a.Bounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := follow(a, start), follow(b, start)
	const perNode, appenders = 150, 4
	var wg sync.WaitGroup
	var newest atomic.Uint64
	for _, node := range []struct {
		name string
		s    hub.Store
	}{{"a", a}, {"b", b}} {
		for g := range appenders {
			wg.Go(func() {
				for i := range perNode / appenders {
					u := mustAppend(t, node.s, upd(fmt.Sprintf("%s%d-%d", node.name, g, i)))
					for {
						n := newest.Load()
						if u.Pos.Seq <= n || newest.CompareAndSwap(n, u.Pos.Seq) {
							break
						}
					}
				}
			})
		}
	}
	wg.Wait()
	log := readAll(t, a, start)
	if want := 2 * appenders * (perNode / appenders); len(log) != want {
		t.Fatalf("the log holds %d updates; want %d", len(log), want)
	}
	gotA, gotB := fa.until(t, newest.Load()), fb.until(t, newest.Load())
	for name, got := range map[string][]*hub.Update{"node a": gotA, "node b": gotB} {
		if !slices.Equal(positions(got), positions(log)) || !slices.Equal(idsOf(got), idsOf(log)) {
			t.Errorf("%s followed %d updates that differ from the log's %d", name, len(got), len(log))
		}
	}
	fa.stop(t)
	fb.stop(t)
}

// TestKillRedis kills redis-server with SIGKILL three times while four
// goroutines append, restarting it each time, and checks that every
// acknowledged append is in the log at its position, and that a Follow on
// another node, running throughout, delivered the whole log once, in order.
func TestKillRedis(t *testing.T) {
	r := testsvc.StartRedis(t)
	url := freshURL(r)
	cfg := redisstore.Config{Timeout: 2 * time.Second}
	a, b := open(t, url, cfg), open(t, url, cfg)
	_, start, err := a.Bounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := follow(b, start)

	var (
		mu       sync.Mutex
		acked    []*hub.Update
		failures atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				u := upd(fmt.Sprintf("g%d-%d", g, i))
				if err := a.Append(context.Background(), u); err != nil {
					failures.Add(1)
					time.Sleep(10 * time.Millisecond) // do not spin while Redis is down
					continue
				}
				mu.Lock()
				acked = append(acked, u)
				mu.Unlock()
			}
		})
	}
	for range 3 {
		before := ackedCount()
		waitFor(t, "100 acknowledged appends", func() bool { return ackedCount() >= before+100 })
		r.Kill()
		failed := failures.Load()
		waitFor(t, "appends failing", func() bool { return failures.Load() >= failed+8 })
		r.Restart()
	}
	before := ackedCount()
	waitFor(t, "appends succeeding after the restart", func() bool { return ackedCount() >= before+100 })
	stop.Store(true)
	wg.Wait()

	log := readAll(t, a, hub.Position{})
	checkSequence(t, "the log", log)
	inLog := make(map[hub.Position]string, len(log))
	for _, u := range log {
		inLog[u.Pos] = u.ID
	}
	for _, u := range acked {
		if inLog[u.Pos] != u.ID {
			t.Fatalf("acknowledged %q at %v is missing from the log after the kills (found %q)", u.ID, u.Pos, inLog[u.Pos])
		}
	}
	if start.Epoch != log[0].Pos.Epoch {
		t.Errorf("epoch changed from %s to %s across kills with appendfsync always", start.Epoch, log[0].Pos.Epoch)
	}
	got := f.until(t, log[len(log)-1].Pos.Seq)
	checkSequence(t, "Follow", got)
	if !slices.Equal(positions(got), positions(log)) {
		t.Errorf("Follow across the kills delivered %d updates; the log holds %d (gap or duplicate)", len(got), len(log))
	}
	t.Logf("%d acknowledged, %d failed appends, %d in the log", len(acked), failures.Load(), len(log))
	f.stop(t)
}

// waitFor polls cond until it holds, failing the test after wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisDown checks that Append fails, acknowledging nothing, while
// Redis is down, and that Follow delivers again once it is back.
func TestRedisDown(t *testing.T) {
	r := testsvc.StartRedis(t)
	url := freshURL(r)
	s := open(t, url, redisstore.Config{Timeout: time.Second})
	first := mustAppend(t, s, upd("before"))
	f := follow(s, first.Pos)
	r.Kill()
	lost := upd("while-down")
	if err := s.Append(context.Background(), lost); err == nil {
		t.Fatal("Append with Redis down succeeded")
	} else if lost.Pos != (hub.Position{}) {
		t.Errorf("a failed Append set the position %v", lost.Pos)
	}
	if _, _, err := s.Bounds(context.Background()); err == nil {
		t.Error("Bounds with Redis down succeeded")
	}
	if _, err := s.Lookup(context.Background(), "before"); err == nil || errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Lookup with Redis down: %v; want a connection error", err)
	}
	r.Restart()
	var after *hub.Update
	waitFor(t, "successful append after the restart", func() bool {
		after = upd("after")
		return s.Append(context.Background(), after) == nil
	})
	got := f.until(t, after.Pos.Seq)
	if ids := idsOf(got); !slices.Equal(ids, []string{"after"}) {
		t.Errorf("Follow across the outage delivered %q; want [after]", ids)
	}
	if _, err := s.Lookup(context.Background(), "while-down"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Lookup of the update whose Append failed: %v; want ErrNotFound", err)
	}
	f.stop(t)
}

// TestFlushAll loses the data (FLUSHALL): the epoch changes, Follow and
// Read from old positions report it, and appends start the new epoch.
func TestFlushAll(t *testing.T) {
	r := testsvc.StartRedis(t)
	url := freshURL(r)
	a := open(t, url, redisstore.Config{})
	// Node b blocks for long, so that it must notice the change from the
	// entries it reads, not from an idle check.
	b := open(t, url, redisstore.Config{BlockTimeout: time.Hour})
	var old []*hub.Update
	for i := range 10 {
		old = append(old, mustAppend(t, a, upd(fmt.Sprintf("old%d", i))))
	}
	idle := follow(a, old[9].Pos)
	busy := follow(b, old[2].Pos)
	busy.until(t, old[9].Pos.Seq)
	if err := client(t, r.Addr).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := idle.result(t); !errors.Is(err, hub.ErrEpochChanged) {
		t.Errorf("idle Follow after FLUSHALL: %v; want ErrEpochChanged", err)
	}
	var fresh []*hub.Update
	for i := range 20 {
		fresh = append(fresh, mustAppend(t, a, upd(fmt.Sprintf("new%d", i))))
	}
	if err := busy.result(t); !errors.Is(err, hub.ErrEpochChanged) {
		t.Errorf("Follow reading past FLUSHALL: %v; want ErrEpochChanged", err)
	}
	busy.mu.Lock()
	for _, u := range busy.got {
		if u.Pos.Epoch != old[0].Pos.Epoch {
			t.Errorf("Follow delivered %q of the new epoch %v", u.ID, u.Pos)
		}
	}
	busy.mu.Unlock()
	if fresh[0].Pos.Epoch == old[0].Pos.Epoch || fresh[0].Pos.Seq != 1 {
		t.Errorf("first append after FLUSHALL at %v; want seq 1 of a new epoch (old %s)", fresh[0].Pos, old[0].Pos.Epoch)
	}
	err := a.Read(context.Background(), old[3].Pos, func(*hub.Update) bool { return true })
	if !errors.Is(err, hub.ErrEpochChanged) {
		t.Errorf("Read from an old position: %v; want ErrEpochChanged", err)
	}
	if _, err := a.Lookup(context.Background(), "old5"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Lookup of a lost ID: %v; want ErrNotFound", err)
	}
	oldest, newest, err := b.Bounds(context.Background())
	if err != nil || oldest != fresh[0].Pos || newest != fresh[19].Pos {
		t.Errorf("Bounds after FLUSHALL = %v, %v, %v; want %v, %v", oldest, newest, err, fresh[0].Pos, fresh[19].Pos)
	}
}

// TestFlushAllEmpty checks that a store whose data was lost before any
// append reports a new epoch in Bounds.
func TestFlushAllEmpty(t *testing.T) {
	r := testsvc.StartRedis(t)
	s := open(t, freshURL(r), redisstore.Config{})
	before, _, err := s.Bounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := client(t, r.Addr).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	after, _, err := s.Bounds(context.Background())
	if err != nil || after.Epoch == before.Epoch || after.Seq != 0 {
		t.Errorf("Bounds after FLUSHALL = %v, %v; want seq 0 of an epoch other than %s", after, err, before.Epoch)
	}
}

// TestRollback restarts a Redis without AOF from an RDB snapshot older
// than the newest appends: the log's counter goes back, but the epoch key
// survives. The nodes, which saw later seqs, start a new epoch instead of
// reusing seqs, so the loss is a reported gap.
func TestRollback(t *testing.T) {
	bin := testsvc.Require(t, "redis-server", "redis-server")
	port := testsvc.FreePort(t)
	addr := testsvc.Addr(port)
	args := []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", t.TempDir(),
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"}
	start := func() *testsvc.Process {
		p := testsvc.Start(t, bin, args...)
		testsvc.WaitTCP(t, p, addr, 20*time.Second)
		return p
	}
	p := start()
	url := "redis://" + addr + "?prefix=rollback"
	a, b := open(t, url, redisstore.Config{}), open(t, url, redisstore.Config{})
	var us []*hub.Update
	for i := range 5 {
		us = append(us, mustAppend(t, a, upd(fmt.Sprintf("u%d", i))))
	}
	if err := client(t, addr).Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 10; i++ {
		us = append(us, mustAppend(t, a, upd(fmt.Sprintf("u%d", i))))
	}
	f := follow(b, us[0].Pos)
	f.until(t, us[9].Pos.Seq)
	p.Kill()
	start()

	if err := f.result(t); !errors.Is(err, hub.ErrEpochChanged) {
		t.Errorf("Follow across a rollback: %v; want ErrEpochChanged", err)
	}
	u := mustAppend(t, a, upd("after"))
	if u.Pos.Epoch == us[0].Pos.Epoch || u.Pos.Seq <= us[9].Pos.Seq {
		t.Errorf("append after the rollback at %v; want a new epoch and a seq after %d", u.Pos, us[9].Pos.Seq)
	}
	if got := readAll(t, b, hub.Position{}); !slices.Equal(idsOf(got), []string{"after"}) {
		t.Errorf("the new epoch holds %q; want [after]", idsOf(got))
	}
	err := a.Read(context.Background(), us[3].Pos, func(*hub.Update) bool { return true })
	if !errors.Is(err, hub.ErrEpochChanged) {
		t.Errorf("Read from a position before the rollback: %v; want ErrEpochChanged", err)
	}
}

// TestOpenErrors checks the one-line errors of Open.
func TestOpenErrors(t *testing.T) {
	port := testsvc.FreePort(t) // nothing listens there
	for _, c := range []struct {
		url, want string
	}{
		{"http://localhost:6379", `redisstore: invalid URL "http://localhost:6379": the scheme must be redis or rediss`},
		{"redis://", `redisstore: invalid URL "redis://": no host`},
		{"redis://localhost:6379/x", `redisstore: invalid URL "redis://localhost:6379/x": invalid database number: "x"`},
		{"redis://localhost:6379?prefix=a{b}", `redisstore: invalid URL "redis://localhost:6379?prefix=a{b}": prefix "a{b}" contains a brace`},
		{"redis://localhost:6379?prefix=", `redisstore: invalid URL "redis://localhost:6379?prefix=": prefix is empty`},
		{"redis://localhost:6379?prefix=a&prefix=b", `redisstore: invalid URL "redis://localhost:6379?prefix=a&prefix=b": prefix given 2 times`},
		{"redis://localhost:6379?bogus=1", `redisstore: invalid URL "redis://localhost:6379?bogus=1": unexpected option: bogus`},
		{"redis://:secret@localhost:6379?bogus=1", `redisstore: invalid URL "redis://:xxxxx@localhost:6379?bogus=1": unexpected option: bogus`},
		{"redis://local host", `redisstore: invalid URL: invalid character " " in host name`},
		{fmt.Sprintf("redis://127.0.0.1:%d", port), fmt.Sprintf("redisstore: opening redis at 127.0.0.1:%d: dial tcp 127.0.0.1:%d: connect: connection refused", port, port)},
	} {
		s, err := redisstore.Open(context.Background(), c.url, redisstore.Config{Timeout: time.Second})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", c.url)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("Open(%q):\n got %s\nwant %s", c.url, err, c.want)
		}
	}
}

// TestAppendTooLarge checks that an update the script cannot store (more
// fields than a Lua call takes) fails without changing the log.
func TestAppendTooLarge(t *testing.T) {
	r := testsvc.StartRedis(t)
	s := open(t, freshURL(r), redisstore.Config{})
	a := mustAppend(t, s, upd("a"))
	big := upd("big")
	for i := range 5000 {
		big.Topics = append(big.Topics, fmt.Sprint("t", i))
	}
	err := s.Append(context.Background(), big)
	if err == nil {
		t.Fatal("Append of an update with 5000 topics succeeded")
	}
	t.Logf("Append of 5000 topics: %v", err)
	b := mustAppend(t, s, upd("b"))
	if b.Pos.Seq != a.Pos.Seq+1 {
		t.Errorf("the append after a failed one got seq %d; want %d (nothing changed)", b.Pos.Seq, a.Pos.Seq+1)
	}
	if _, err := s.Lookup(context.Background(), "big"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Lookup of the failed update: %v; want ErrNotFound", err)
	}
}
