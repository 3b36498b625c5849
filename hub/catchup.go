package hub

import (
	"context"
	"errors"
	"fmt"
)

// CatchUpRequest asks for one page of retained history.
type CatchUpRequest struct {
	// Topics and CanRead select updates exactly as for a subscription.
	Topics  []Matcher
	CanRead func(topics []string) bool
	// After is the ID of the last update the client has; the page starts
	// after it. Empty or Earliest starts at the oldest retained update.
	After string
	// Cursor, when its Seq is not zero, continues from a previous page's
	// Next and takes precedence over After.
	Cursor Position
	// Limit caps the updates in the page. Zero means 100; it is capped at
	// MaxCatchUpLimit and at the hub's ReplayLimit when that is set.
	Limit int
}

// MaxCatchUpLimit caps CatchUpRequest.Limit: one page is built in memory.
const MaxCatchUpLimit = 10000

// CatchUpPage is one page of history.
type CatchUpPage struct {
	// Updates are the matching updates after the requested ID, oldest
	// first.
	Updates []*Update
	// Next is the position of the last update examined: pass it as Cursor
	// for the next page. It is a position, not an ID, so it discloses no ID
	// of an update the subscriber may not see.
	Next Position
	// LastID is the ID of the last update in Updates, or After when the
	// page is empty.
	LastID string
	// More reports that more retained updates may follow.
	More bool
	// Gap says why the page cannot continue from the requested ID: the ID
	// is unknown (or not visible to the subscriber), so the page starts at
	// the oldest retained update and the client must refetch its state.
	Gap GapReason
}

// CatchUp returns one page of the retained updates a subscriber with req's
// selectors and grant may see, after req.After. The cost of resolving
// req.After is an index lookup, and one page examines at most 16 times its
// limit, so a forged or ancient ID costs no more than a known one.
func (h *Hub) CatchUp(ctx context.Context, req CatchUpRequest) (CatchUpPage, error) {
	if len(req.Topics) == 0 {
		return CatchUpPage{}, errors.New("hub: catch-up has no topic selector")
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxCatchUpLimit)
	if h.cfg.ReplayLimit > 0 {
		limit = min(limit, h.cfg.ReplayLimit)
	}
	s := &Subscription{h: h, all: req.Topics, canRead: req.CanRead}
	var page CatchUpPage
	after := Position{Epoch: *h.epoch.Load()}
	page.LastID = req.After
	switch {
	case req.Cursor.Seq != 0:
		after = req.Cursor
	case req.After != "" && req.After != Earliest:
		pos, err := h.resolve(ctx, s, req.After)
		switch {
		case err == nil:
			after = pos
		case errors.Is(err, ErrNotFound):
			page.Gap = GapUnknownID
		default:
			return CatchUpPage{}, err
		}
	}
	page.Next = after
	scanned, budget := 0, 16*limit
	err := h.store.Read(ctx, after, func(u *Update) bool {
		if len(page.Updates) == limit || scanned == budget {
			page.More = true
			return false
		}
		scanned++
		page.Next = u.Pos
		if s.visible(u) {
			page.Updates = append(page.Updates, u)
			page.LastID = u.ID
		}
		return true
	})
	switch {
	case errors.Is(err, ErrEpochChanged):
		page.Gap = GapHistoryLost
	case err != nil:
		return CatchUpPage{}, fmt.Errorf("hub: reading history: %w", err)
	}
	return page, nil
}
