package hub

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// idempotency remembers which update each idempotency key produced, for a
// window of time, so that a retried publish returns the first publish's ID
// instead of storing the update again.
//
// A key belongs to its publisher (Update.Publisher): the hub remembers,
// and stores, the scoped key derived from both (see scopedKey), so the
// same key from two publishers names two publishes.
//
// The scoped key travels inside the update, so it is exactly as durable as
// the update: after a restart the hub relearns the keys of recent history,
// and updates appended by other hubs sharing the store are learned when
// they are dispatched. Two hubs receiving the same key at the same instant
// can both append; engines with native deduplication close that window.
type idempotency struct {
	window   time.Duration
	max      int
	maxBytes int64
	now      func() time.Time
	bytes    int64 // idemCost of the entries in order; guarded by mu

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

// idemOverhead estimates the bytes an entry costs beyond its key and ID:
// the list element, the entry, the map's slot and the strings' headers.
const idemOverhead = 160

// idemCost is what an entry is counted for against maxBytes.
func idemCost(key, id string) int64 { return int64(len(key) + len(id) + idemOverhead) }

func newIdempotency(window time.Duration, max int, maxBytes int64, now func() time.Time) *idempotency {
	return &idempotency{
		window: window, max: max, maxBytes: maxBytes, now: now,
		ids: make(map[string]*list.Element), order: list.New(), inflight: make(map[string]*idemCall),
	}
}

// learn records that the scoped key produced id at time at. A key that is
// not scoped is ignored: it was stored by a version of the hub that did
// not scope keys, so no publisher can be told it is theirs.
func (c *idempotency) learn(key, id string, at time.Time) {
	if !isScopedKey(key) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ids[key]; ok {
		return // the first publish wins
	}
	// Copies: a decoded update's strings share one copy of its whole
	// record (data included), which a remembered key must not keep.
	key, id = strings.Clone(key), strings.Clone(id)
	c.ids[key] = c.order.PushBack(&idemEntry{key, id, at})
	c.bytes += idemCost(key, id)
	c.expire()
}

// expire drops entries older than the window or beyond max or maxBytes.
// c.mu is held.
func (c *idempotency) expire() {
	cutoff := c.now().Add(-c.window)
	for e := c.order.Front(); e != nil; e = c.order.Front() {
		en := e.Value.(*idemEntry)
		if c.order.Len() <= c.max && c.bytes <= c.maxBytes && en.at.After(cutoff) {
			return
		}
		c.order.Remove(e)
		delete(c.ids, en.key)
		c.bytes -= idemCost(en.key, en.id)
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

// scopedKeyPrefix starts every scoped key, and names its derivation.
const scopedKeyPrefix = "s1:"

// scopedKeyLen is the length of every scoped key: the prefix and 43
// base64url characters of a SHA-256.
const scopedKeyLen = len(scopedKeyPrefix) + 43

// scopedKey is the key the hub remembers and stores for key published by
// publisher: "s1:" and the unpadded base64url SHA-256 of publisher's
// length (a uvarint), publisher and key. The length prefix keeps every
// (publisher, key) pair apart; the fixed length bounds what each update
// carries, whatever the key, and the engines' deduplication (a JetStream
// Nats-Msg-Id) sees the scoped key too. Stable across hubs and versions:
// every hub sharing a store derives the same scoped key.
func scopedKey(publisher, key string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(publisher)))])
	h.Write([]byte(publisher))
	h.Write([]byte(key))
	return scopedKeyPrefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// isScopedKey reports whether k has the form of a scoped key. A bare key
// from a version that did not scope keys has it only if a publisher chose
// such a key, and then it names no publisher's key but by a SHA-256
// collision.
func isScopedKey(k string) bool {
	return len(k) == scopedKeyLen && strings.HasPrefix(k, scopedKeyPrefix)
}
