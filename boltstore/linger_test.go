package boltstore

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// delayClock is a Config.after that hands the test each wait it starts.
type delayClock struct {
	started chan time.Duration    // the delay of each wait the writer starts
	fire    chan chan<- time.Time // the channel of each wait, to end it
}

func newDelayClock() *delayClock {
	return &delayClock{started: make(chan time.Duration, 16), fire: make(chan chan<- time.Time, 16)}
}

func (c *delayClock) after(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.fire <- ch
	c.started <- d
	return ch
}

// appendAsync appends an update with id and returns where its error will
// arrive.
func appendAsync(s *Store, id string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- s.Append(context.Background(), &hub.Update{ID: id, Topics: []string{"t"}, Data: "x"})
	}()
	return done
}

// frames returns how many frames s has logged.
func frames(s *Store) int { return int(s.frames.Load()) }

func TestCommitDelayGathersAppends(t *testing.T) {
	dir := t.TempDir()
	clock := newDelayClock()
	s, err := Open(dir, Config{CommitDelay: time.Hour, MaxBatch: 3, after: clock.after, delayAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The first transaction follows none: it does not wait.
	if err := <-appendAsync(s, "a"); err != nil {
		t.Fatal(err)
	}
	if n := len(clock.started); n != 0 {
		t.Fatalf("the first commit waited (%d waits)", n)
	}

	// The next waits; appends arriving meanwhile join it until the batch
	// is full (MaxBatch 3), which ends the wait.
	before := frames(s)
	b := appendAsync(s, "b")
	if d := <-clock.started; d != time.Hour {
		t.Fatalf("waited %v, want CommitDelay", d)
	}
	<-clock.fire
	c, d := appendAsync(s, "c"), appendAsync(s, "d")
	for _, done := range []<-chan error{b, c, d} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := frames(s) - before; got != 1 {
		t.Fatalf("b, c and d took %d frames, want 1", got)
	}

	// A wait that ends commits what it has.
	before = frames(s)
	e := appendAsync(s, "e")
	<-clock.started
	(<-clock.fire) <- time.Now()
	if err := <-e; err != nil {
		t.Fatal(err)
	}
	if got := frames(s) - before; got != 1 {
		t.Fatalf("e took %d frames, want 1", got)
	}

	// Close during a wait commits what it has, then closes.
	f := appendAsync(s, "f")
	<-clock.started
	<-clock.fire
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-f; err != nil {
		t.Fatalf("append under way at Close: %v", err)
	}
	s, err = Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, id := range []string{"a", "b", "c", "d", "e", "f"} {
		if _, err := s.Lookup(context.Background(), id); err != nil {
			t.Errorf("update %d (%s) after reopening: %v", i, id, err)
		}
	}
}

func TestCommitDelayOnlyUnderLoad(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		// One appender at a time: no transaction carries 32 appends.
		{"light load", Config{CommitDelay: time.Hour}},
		// Off (the default): no transaction waits, whatever it follows.
		{"off", Config{delayAfter: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newDelayClock()
			tt.cfg.after = clock.after
			s, err := Open(t.TempDir(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := range 40 {
				if err := <-appendAsync(s, fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(clock.started); n != 0 {
				t.Errorf("%d commits waited, want none", n)
			}
		})
	}
}

// TestFrameWaitsForPreviousAppenders checks how a frame fills: it waits
// for as many appends as the previous frame carried plus those that queued
// while it was written, is written as soon as the last of them is queued
// (the timer does not have to fire), and is written with what it has when
// the timer fires.
func TestFrameWaitsForPreviousAppenders(t *testing.T) {
	clock := newDelayClock()
	hold := make(chan struct{})
	var held atomic.Bool
	s, err := Open(t.TempDir(), Config{fillAfter: clock.after, walFault: func(*os.File) error {
		if held.CompareAndSwap(false, true) {
			<-hold // the first frame's write, until b, c and d are queued
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	a := appendAsync(s, "a")
	for len(s.reqs) > 0 || !held.Load() {
		runtime.Gosched()
	}
	b, c, d := appendAsync(s, "b"), appendAsync(s, "c"), appendAsync(s, "d")
	for len(s.reqs) < 3 {
		runtime.Gosched()
	}
	close(hold)
	if err := <-a; err != nil {
		t.Fatal(err)
	}
	// The next frame expects 1 (a's frame) + 3 (queued meanwhile) = 4: it
	// takes b, c and d, and waits for one more.
	if d := <-clock.started; d != 200*time.Microsecond {
		t.Fatalf("the frame waited %v, want 200µs", d)
	}
	<-clock.fire // never fired
	e := appendAsync(s, "e")
	for _, done := range []<-chan error{b, c, d, e} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := frames(s); got != 2 {
		t.Fatalf("a, then b to e, took %d frames, want 2", got)
	}

	// The next expects 4 again; f comes alone, and the timer ends the wait.
	f := appendAsync(s, "f")
	<-clock.started
	(<-clock.fire) <- time.Now()
	if err := <-f; err != nil {
		t.Fatal(err)
	}
	if got := frames(s); got != 3 {
		t.Fatalf("f took %d frames, want 1", got-2)
	}
}
