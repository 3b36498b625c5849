package hub

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// idempotency remembers which update each idempotency key produced, for a
// window of time, so that a retried publish returns the first publish's ID
// instead of storing the update again.
//
// The key travels inside the update, so it is exactly as durable as the
// update: after a restart the hub relearns the keys of recent history, and
// updates appended by other hubs sharing the store are learned when they
// are dispatched. Two hubs receiving the same key at the same instant can
// both append; engines with native deduplication close that window.
type idempotency struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu       sync.Mutex
	ids      map[string]*list.Element // key -> element of order
	order    *list.List               // *idemEntry, oldest first
	inflight map[string]*idemCall
}

type idemEntry struct {
	key, id string
	at      time.Time
}

type idemCall struct {
	done chan struct{}
	id   string
	err  error
}

func newIdempotency(window time.Duration, max int, now func() time.Time) *idempotency {
	return &idempotency{
		window: window, max: max, now: now,
		ids: make(map[string]*list.Element), order: list.New(), inflight: make(map[string]*idemCall),
	}
}

// learn records that key produced id at time at.
func (c *idempotency) learn(key, id string, at time.Time) {
	if key == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ids[key]; ok {
		return // the first publish wins
	}
	c.ids[key] = c.order.PushBack(&idemEntry{key, id, at})
	c.expire()
}

// expire drops entries older than the window or beyond max. c.mu is held.
func (c *idempotency) expire() {
	cutoff := c.now().Add(-c.window)
	for e := c.order.Front(); e != nil; e = c.order.Front() {
		en := e.Value.(*idemEntry)
		if c.order.Len() <= c.max && en.at.After(cutoff) {
			return
		}
		c.order.Remove(e)
		delete(c.ids, en.key)
	}
}

// do returns the ID key already produced, or runs publish once for all
// concurrent callers with the same key and returns its result.
func (c *idempotency) do(ctx context.Context, key string, publish func() (string, error)) (string, error) {
	c.mu.Lock()
	c.expire()
	if e, ok := c.ids[key]; ok {
		c.mu.Unlock()
		return e.Value.(*idemEntry).id, nil
	}
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			if call.err != nil {
				return c.do(ctx, key, publish) // the first attempt failed: try ours
			}
			return call.id, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	call := &idemCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.mu.Unlock()

	call.id, call.err = publish()
	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(call.done)
	return call.id, call.err
}
