package hub

import (
	"context"
	"errors"
	"strconv"
)

// Position is an update's place in a store's log. Seq increases by one or
// more with every append, so positions are totally ordered within one
// epoch. Epoch names one life of the log: it changes whenever the store
// loses history (an in-memory store restarted, a Redis stream deleted), and
// a position from another epoch cannot be resumed from.
type Position struct {
	Seq   uint64
	Epoch string
}

// String returns "epoch:seq", for logs.
func (p Position) String() string { return p.Epoch + ":" + strconv.FormatUint(p.Seq, 10) }

// Store is the hub's ordered log of updates: its history and the source of
// live delivery. Every hub appends to the store and every hub follows it,
// so an update published on one node reaches the subscribers of all nodes
// that share the store, in the same order everywhere.
//
// Implementations must be safe for concurrent use. After Close, every
// method returns ErrClosed.
type Store interface {
	// Append adds u to the end of the log and sets u.Pos (and u.Time, if it
	// is zero). It returns only once u is as durable as the store promises
	// (on disk for the embedded store) and will be passed to every Follow
	// callback. When it returns an error, u is not acknowledged and no
	// follower receives it (a store may still find it after a crash in the
	// middle of a failing fsync, as a database may). Stores must persist
	// every field of u, IdempotencyKey included (Publisher, which the hub
	// folds into IdempotencyKey, is always empty).
	Append(ctx context.Context, u *Update) error

	// Lookup returns the position of the earliest retained update whose ID
	// is id, or ErrNotFound. Its cost must not depend on the amount of
	// history: implementations keep an index.
	Lookup(ctx context.Context, id string) (Position, error)

	// Read calls fn with every retained update positioned after after, in
	// log order, until fn returns false or the log ends. It returns
	// ErrEpochChanged if after belongs to another epoch. A zero after (Seq 0)
	// reads from the oldest retained update.
	Read(ctx context.Context, after Position, fn func(*Update) bool) error

	// Follow calls fn, from a single goroutine, with every update appended
	// after after (by any node sharing the store), in log order, as soon as
	// it is durable. It blocks until ctx is done or the store fails, and
	// returns the cause: ErrEpochChanged if after belongs to another epoch.
	// A zero after follows from the start of the log.
	Follow(ctx context.Context, after Position, fn func(*Update)) error

	// Bounds returns the positions of the oldest and newest retained
	// updates. Both have Seq 0 when the log is empty; Epoch is always set.
	Bounds(ctx context.Context) (oldest, newest Position, err error)

	// Close releases the store's resources.
	Close() error
}

// Errors a Store returns.
var (
	// ErrNotFound reports an ID that no retained update carries.
	ErrNotFound = errors.New("hub: no retained update has that id")
	// ErrEpochChanged reports a position from an epoch the store no longer
	// has: the history it pointed into was lost.
	ErrEpochChanged = errors.New("hub: history epoch changed")
	// ErrClosed reports use of a closed hub or store.
	ErrClosed = errors.New("hub: closed")
)
