package hub

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
)

// CursorPrefix starts every stream cursor (see Subscription.Cursor). No
// update ID may start with it: publishers' IDs beginning with "#" are
// refused, so a Last-Event-ID is a cursor or an update ID, never both.
const CursorPrefix = "#"

// EncodePosition makes p opaque to clients: the base64url form of
// "epoch.seq". It names a place in the log, not an update, so it
// discloses no update ID. The history endpoint's cursors and stream
// cursors (CursorPrefix plus this) use it.
func EncodePosition(p Position) string {
	if p.Seq == 0 && p.Epoch == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(p.Epoch + "." + strconv.FormatUint(p.Seq, 10)))
}

// DecodePosition parses what EncodePosition made. It reports false for
// anything else.
func DecodePosition(s string) (Position, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Position{}, false
	}
	i := strings.LastIndexByte(string(b), '.')
	if i < 0 {
		return Position{}, false
	}
	epoch, seq := string(b[:i]), string(b[i+1:])
	if seq == "" || seq[0] < '0' || seq[0] > '9' {
		return Position{}, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return Position{}, false
	}
	return Position{Epoch: epoch, Seq: n}, true
}

// Cursor returns the subscription's stream cursor: an opaque last event ID
// (CursorPrefix and EncodePosition) for its registration position P, the
// point after which every update it selects is delivered live. Resuming
// from it (SubscribeRequest.LastEventID) replays every retained update
// after P, on this hub after a restart with a durable store, or on any
// hub sharing the store, since positions are the store's. A server sends
// it to a new stream before any update, as a lone SSE id field: the
// client adopts it as its last event ID without an event being
// dispatched, so a stream that drops before its first update resumes
// from the moment it connected instead of going live again. It names a
// position, not an update, so it discloses no update ID.
func (s *Subscription) Cursor() string { return CursorPrefix + EncodePosition(s.cursor) }

// resolveCursor resolves a stream cursor. It reports ErrNotFound when the
// cursor is malformed, from another epoch (the history it points into was
// lost), ahead of the log (forged), or older than what is retained (some
// update after it has expired), so that the resume gets the unknown-id gap
// and replays from the oldest retained update. A forged cursor within the
// log only moves where its own replay starts: replay shows a subscriber
// only what it may see.
func (h *Hub) resolveCursor(ctx context.Context, id string) (Position, error) {
	pos, ok := DecodePosition(strings.TrimPrefix(id, CursorPrefix))
	if !ok {
		return Position{}, ErrNotFound
	}
	oldest, newest, err := h.store.Bounds(ctx)
	if err != nil {
		return Position{}, err
	}
	// The log may be empty (everything expired) while the hub has
	// dispatched updates: the end of the log is the later of the two.
	last := max(newest.Seq, h.lastSeq.Load())
	first := oldest.Seq // the oldest retained; the next append if none is
	if newest.Seq == 0 {
		first = last + 1
	}
	switch {
	case pos.Epoch != newest.Epoch, pos.Seq > last:
		return Position{}, ErrNotFound
	case first > pos.Seq+1:
		// The stores number appends consecutively: a retained log
		// starting past pos+1 has discarded an update after pos. (A store
		// whose seqs skip, as Position allows, would only cause a needless
		// gap notice here, never a silent loss.)
		return Position{}, ErrNotFound
	}
	return pos, nil
}

// Cursor returns a stream cursor (see Subscription.Cursor) for the end of
// the log as of the call: resuming from it (SubscribeRequest.LastEventID,
// or the history endpoint's after) replays every update appended after the
// call began, whether or not this hub has dispatched the updates before
// it, on this hub or any hub sharing the store. An update appended while
// Cursor runs may fall on either side. It returns Earliest while the log
// has never held an update. The cursor names a position, not an update,
// so it discloses no update ID; it does reveal how far the log has
// advanced, as every stream cursor does.
//
// The Mercure subscriptions API hands it out with its list: a presence
// registry changes before the subscription event that announces the
// change is appended, so a list read after Cursor returns reflects every
// subscription event up to the cursor.
func (h *Hub) Cursor(ctx context.Context) (string, error) {
	_, newest, err := h.store.Bounds(ctx)
	if err != nil {
		return "", err
	}
	// As for a new subscription: the log may be empty (everything
	// expired) while the hub has dispatched updates.
	seq := newest.Seq
	if *h.epoch.Load() == newest.Epoch {
		seq = max(seq, h.lastSeq.Load())
	}
	if seq == 0 {
		return Earliest, nil
	}
	return CursorPrefix + EncodePosition(Position{Seq: seq, Epoch: newest.Epoch}), nil
}
