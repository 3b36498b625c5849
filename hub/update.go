package hub

import (
	"sync"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// Update is one published event: the unit the hub stores, replays and fans
// out. A stored Update is immutable; the hub shares one value between every
// subscriber and encodes it once.
type Update struct {
	// ID is the event ID subscribers see and resume from. The hub generates
	// a "urn:uuid:" ID when the publisher gives none. IDs need not be
	// unique: a Last-Event-ID resolves to the earliest update bearing it.
	ID string
	// Topics lists the update's topics; the first is the canonical topic
	// and the rest are alternates. There is at least one.
	Topics []string
	// Type is the SSE event type; empty means "message".
	Type string
	// Data is the payload.
	Data string
	// Retry, when positive, is sent as the SSE retry field.
	Retry time.Duration
	// Private updates reach only subscribers whose grant matches one of
	// Topics.
	Private bool
	// Time is when the hub accepted the update.
	Time time.Time
	// Pos is the update's place in the log, assigned by Store.Append.
	Pos Position
	// IdempotencyKey, when set, identifies the publish request: a retry
	// by the same Publisher with the same key within the hub's
	// IdempotencyWindow returns the first publish's ID and stores nothing.
	// Publish replaces it with the key scoped by Publisher (an opaque
	// "s1:" string of fixed length), which stores persist.
	IdempotencyKey string
	// Publisher identifies who publishes u, and scopes IdempotencyKey: the
	// same key from two publishers names two publishes, and neither ever
	// gets the other's ID. It is any stable string that tells publishers
	// apart (ssehttp uses the token's subject, else its publish grant);
	// empty is the anonymous publisher, one scope shared by every publish
	// without one. It is not stored: Publish folds it into IdempotencyKey
	// and clears it.
	Publisher string

	frameOnce sync.Once
	frame     []byte
}

// Event returns the SSE event that carries u.
func (u *Update) Event() sse.Event {
	return sse.Event{ID: u.ID, Type: u.Type, Data: u.Data, Retry: u.Retry}
}

// Frame returns the wire form of u. It is computed once and shared by all
// callers, who must not modify it. An update that fails validation (which
// Publish prevents) encodes to nil.
func (u *Update) Frame() []byte {
	u.frameOnce.Do(func() {
		u.frame, _ = sse.AppendEvent(nil, u.Event())
	})
	return u.frame
}

// size is the memory an update is charged against a subscriber's queue.
func (u *Update) size() int {
	return len(u.Data) + len(u.ID) + len(u.Type) + 64
}
