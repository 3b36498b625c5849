package ssehttp

import (
	"runtime"
	"sync"
)

// flushers is the pool that flushes hijacked TCP streams: a queue of
// streams with something pending and at most GOMAXPROCS goroutines taking
// them in chunks. A stream is in the queue at most once (its pending
// counter says whether it is queued or being flushed), a goroutine is
// started only when a stream is queued and fewer than GOMAXPROCS run, and
// a goroutine exits when the queue is empty, so that idle streams still
// cost no goroutine. Compared with a goroutine per flush, one event fanned
// out to 10,000 streams starts two goroutines instead of 10,000, and
// under load a stream's turn comes after the others': the events queued
// for it meanwhile go out in one write.
//
// Nothing on a pool goroutine waits for one subscriber: see flushPooled.
//
// A second pool of the same kind, the replayers, serves the streams that
// replay history (a resume): each turn drains one batch of history, which
// reads the store and may wait for it, and writes it without waiting. It
// runs at most replayersPerProc×GOMAXPROCS goroutines, so that a resume
// storm (thousands of clients resuming at once) reads and holds a bounded
// number of history batches at a time, instead of one per resuming
// stream on a goroutine of its own: what the storm leaves behind in the
// process's memory is bounded by the pool, not by the number of clients.
type flushers struct {
	mu      sync.Mutex
	queue   []*hijacked
	head    int // queue[head:] is waiting
	running int
	limit   int  // GOMAXPROCS (times replayersPerProc), read when a goroutine exits (reading it takes a runtime lock)
	replay  bool // the replayers: work runs replayPooled; set before use
	peak    int  // the most goroutines that ran at once, for tests
}

// flushChunk is how many streams a pool goroutine takes at a time.
const flushChunk = 64

// replayersPerProc is how many replaying streams per GOMAXPROCS take
// their turn at once: more than one, since a turn may wait for the
// store's disk.
const replayersPerProc = 4

// enqueue queues st, whose pending counter just left zero (or which has
// more pending after its turn), and starts a pool goroutine if fewer than
// GOMAXPROCS run.
func (f *flushers) enqueue(st *hijacked) {
	f.mu.Lock()
	f.queue = append(f.queue, st)
	if f.limit == 0 {
		f.limit = runtime.GOMAXPROCS(0)
		if f.replay {
			f.limit *= replayersPerProc
		}
	}
	start := f.running < f.limit
	if start {
		f.running++
		f.peak = max(f.peak, f.running)
	}
	f.mu.Unlock()
	if start {
		go f.work()
	}
}

// work flushes queued streams until the queue is empty.
func (f *flushers) work() {
	batch := make([]*hijacked, 0, flushChunk)
	for {
		f.mu.Lock()
		k := min(len(f.queue)-f.head, flushChunk)
		if k == 0 {
			f.limit = 0 // read again at the next start
			f.running--
			f.queue, f.head = f.queue[:0], 0
			f.mu.Unlock()
			return
		}
		batch = append(batch[:0], f.queue[f.head:f.head+k]...)
		clear(f.queue[f.head : f.head+k])
		f.head += k
		switch {
		case f.head == len(f.queue):
			f.queue, f.head = f.queue[:0], 0
		case f.head >= 1024 && 2*f.head >= len(f.queue):
			// Move the waiting part down, so that a queue that never
			// empties does not grow.
			n := copy(f.queue, f.queue[f.head:])
			clear(f.queue[n:])
			f.queue, f.head = f.queue[:n], 0
		}
		f.mu.Unlock()
		for _, st := range batch {
			if f.replay {
				st.replayPooled()
			} else {
				st.flushPooled()
			}
		}
		clear(batch)
	}
}
