package ssehttp

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"

	"github.com/ssehub/ssehub/hub"
)

// TestFlushersManyStreams fans events out to many hijacked streams at
// once, some of them resuming (their first turns replay history on the
// replayers, then they join the pool): every stream gets
// every event once, in order, and the pool's goroutines are gone after
// the streams (TestMain checks for leaks).
func TestFlushersManyStreams(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const history, live, streams = 20, 100, 60
	publish := func(i int) {
		if _, err := f.hub.Publish(context.Background(), &hub.Update{Topics: []string{"a"}, ID: fmt.Sprint(i), Data: fmt.Sprint(i)}); err != nil {
			t.Error(err)
		}
	}
	for i := range history {
		publish(i)
	}
	subs := make([]*stream, streams)
	for i := range subs {
		var hd http.Header // live only
		if i%3 == 0 {
			hd = http.Header{"Last-Event-Id": {"0"}} // history after event 0, then live
		}
		subs[i] = f.subscribe(t, "topic=a", hd)
	}
	waitFor(t, "every stream", func() bool { return f.handler.Streams() == streams })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := history; i < history+live; i++ {
			publish(i)
		}
	}()
	for i, s := range subs {
		want := history
		if i%3 == 0 {
			want = 1
		}
		for ; want < history+live; want++ {
			ev := s.next(t)
			if ev.ID != fmt.Sprint(want) {
				t.Fatalf("stream %d: event %q, want %d", i, ev.ID, want)
			}
		}
	}
	wg.Wait()
}

// TestReplayersBounded resumes many streams at once, each replaying more
// history than one batch: every stream gets its history and then live
// events, once and in order, and the replays ran on the replayers, never
// more of them at once than their limit (a resume storm holds a bounded
// number of history batches, not one per stream).
func TestReplayersBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const history, live, streams = 300, 5, 40
	publish := func(i int) {
		if _, err := f.hub.Publish(context.Background(), &hub.Update{Topics: []string{"a"}, ID: fmt.Sprint(i), Data: fmt.Sprint(i)}); err != nil {
			t.Error(err)
		}
	}
	for i := range history {
		publish(i)
	}
	subs := make([]*stream, streams)
	for i := range subs {
		subs[i] = f.subscribe(t, "topic=a", http.Header{"Last-Event-Id": {"0"}})
	}
	waitFor(t, "every stream", func() bool { return f.handler.Streams() == streams })
	for i := history; i < history+live; i++ {
		publish(i)
	}
	for i, s := range subs {
		for want := 1; want < history+live; want++ {
			if ev := s.next(t); ev.ID != fmt.Sprint(want) {
				t.Fatalf("stream %d: event %q, want %d", i, ev.ID, want)
			}
		}
	}
	r := &f.handler.hijacks.replayers
	r.mu.Lock()
	peak := r.peak
	r.mu.Unlock()
	if limit := replayersPerProc * runtime.GOMAXPROCS(0); peak == 0 || peak > limit {
		t.Fatalf("at most %d replayers ran at once, want between 1 and %d", peak, limit)
	}
}
