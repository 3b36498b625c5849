package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Earliest is the Last-Event-ID value that asks for all retained history.
const Earliest = "earliest"

// GapEventType is the SSE event type of the in-band gap notice: an event
// the hub sends, before anything else, when it cannot replay everything a
// resuming client missed. Handlers of plain "message" events never see it;
// a client that cares listens for it and refetches its state. Its data is a
// JSON object {"reason": ..., "lastEventId": ...}; see GapReason.
const GapEventType = "ssehub.gap"

// GapReason says why a resume could not replay everything.
type GapReason string

// The gap reasons.
const (
	// GapNone means the resume was complete.
	GapNone GapReason = ""
	// GapUnknownID means the requested ID is not in the retained history:
	// it expired, was never published here, or history was lost.
	GapUnknownID GapReason = "unknown-id"
	// GapReplayLimit means more updates were missed than one replay sends
	// (only with a Config.ReplayLimit set); the replay stopped short and
	// live delivery continued.
	GapReplayLimit GapReason = "replay-limit"
	// GapHistoryLost means the store lost history during the replay.
	GapHistoryLost GapReason = "history-lost"
)

// SubscribeRequest describes a subscription.
type SubscribeRequest struct {
	// Topics are the routing selectors: an update is delivered if any of
	// them matches any of its topics. At least one is required.
	//
	// The dispatcher, which serves every subscription in turn, looks
	// exact topics up in a map and tests up to Config.InlinePatterns
	// patterns itself. When there are more, it tests none of them: it
	// queues every update for the subscription, and Drain tests them, a
	// bounded number of Match calls at a time, so that the cost of many
	// or costly patterns falls on this subscription alone. Such a
	// subscription must drain at the rate of all updates, matching or
	// not, or it overflows its queue and ends with ErrSlowConsumer. A
	// subscription of fewer patterns moves to testing them in Drain too,
	// for good, once its tests would cost the dispatcher more than is left
	// of Config.MatchBudget, or keep costing it (see there).
	Topics []Matcher
	// CanRead reports whether the subscriber may read a private update with
	// the given topics. Nil means it reads public updates only.
	CanRead func(topics []string) bool
	// LastEventID is the ID of the last update the client saw, or a
	// stream cursor (see Subscription.Cursor): updates after it are
	// replayed first. Empty means live updates only; Earliest means all
	// retained history.
	LastEventID string
	// Notify, when set, is called instead of signalling the Ready channel
	// whenever Drain has something new to return: updates, a gap notice or
	// the end of the subscription. It may be called from any goroutine,
	// also before Subscribe returns, and must not block. It lets a server
	// keep no goroutine at all for an idle subscriber: Notify schedules the
	// work, and whoever runs it calls Drain. Calls to Drain and Close must
	// still never overlap.
	Notify func()
	// OnOverflow, when set, is called once, on the dispatcher goroutine,
	// when the hub ends the subscription because its queue overflowed
	// (after Notify, so Drain already returns ErrSlowConsumer). It must
	// not block. It lets a server cut a stream whose write to a stalled
	// client is blocked at once, instead of when that write times out:
	// until the consumer calls Drain again, which a blocked write delays,
	// the stream holds whatever it was writing.
	OnOverflow func()
}

// Resume describes how a subscription's LastEventID was resolved.
type Resume struct {
	// Requested is SubscribeRequest.LastEventID.
	Requested string
	// Anchor is the ID of the update preceding the first one replayed: the
	// requested ID (or stream cursor) when it was found, otherwise
	// Earliest. This is the
	// value of the Mercure-Last-Event-ID response header. It is never the
	// ID of an update the subscriber may not see.
	Anchor string
	// Gap says why the replay is incomplete, if it is.
	Gap GapReason
}

// Subscription is one subscriber's view of the hub. One goroutine consumes
// it: it waits on Ready, calls Drain, and calls Close when done.
type Subscription struct {
	h           *Hub
	exactTopics []string
	patterns    []Matcher
	all         []Matcher
	canRead     func([]string) bool
	resume      Resume
	cursor      Position        // the registration position P, for Cursor
	registered  bool            // guarded by h.mu
	costly      []CostlyMatcher // of each of patterns, or nil: see matchCostly
	matchLate   bool            // guarded by mu: Drain tests the selectors (SubscribeRequest.Topics, Config.MatchBudget)
	lateFrom    uint64          // guarded by mu: queued updates before this seq were matched by the dispatcher

	ready      chan struct{} // capacity 1: "Drain has something to say"; nil with notify
	notify     func()
	onOverflow func()

	// dispatcher-owned
	lastOffered uint64
	matchDebt   int    // MatchCost spent on s since a test that cost nothing
	skipUpTo    uint64 // live updates at or before this seq are replay's

	mu     sync.Mutex
	queue  []*Update
	qbytes int
	err    error

	// consumer-owned
	replaying   bool
	replayAfter Position
	replayUpto  uint64
	replayed    int
	pendingGap  *Update
	closed      bool
	late        []*Update // taken from the queue, still to be tested
	lateHead    int       // late[:lateHead] are tested
	lateNext    int       // index in all of the next selector to test against late[lateHead]
}

// Subscribe registers a subscription and resolves its LastEventID. The
// subscription receives every matching update appended after this call,
// preceded by the replay of matching retained updates after LastEventID.
// ctx bounds only the resolution; the subscription lives until Close.
func (h *Hub) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscription, error) {
	if len(req.Topics) == 0 {
		return nil, errors.New("hub: subscription has no topic selector")
	}
	s := &Subscription{
		h:       h,
		all:     req.Topics,
		canRead: req.CanRead,
		notify:  req.Notify,
		resume:  Resume{Requested: req.LastEventID},

		onOverflow: req.OnOverflow,
	}
	if s.notify == nil {
		s.ready = make(chan struct{}, 1)
	}
	seen := make(map[string]bool)
	for _, m := range req.Topics {
		if em, ok := m.(ExactMatcher); ok {
			if t, ok := em.Exact(); ok {
				if !seen[t] {
					seen[t] = true
					s.exactTopics = append(s.exactTopics, t)
				}
				continue
			}
		}
		s.patterns = append(s.patterns, m)
	}
	s.matchLate = len(s.patterns) > h.cfg.InlinePatterns
	s.costly = costlyOf(s.patterns)

	switch req.LastEventID {
	case "":
	case Earliest:
		s.replaying = true
		s.replayAfter = Position{Epoch: *h.epoch.Load()}
		s.resume.Anchor = Earliest
	default:
		pos, err := h.resolve(ctx, s, req.LastEventID)
		switch {
		case err == nil:
			s.replaying = true
			s.replayAfter = pos
			s.skipUpTo = pos.Seq
			s.resume.Anchor = req.LastEventID
		case errors.Is(err, ErrNotFound):
			// As the Mercure-Last-Event-ID "earliest" says: the gap notice,
			// then every retained update (up to a ReplayLimit, if set), so that
			// a client using the hub as its event store can rebuild. An
			// ID the subscriber may not see is treated exactly the same.
			s.resume.Anchor = Earliest
			s.setGap(GapUnknownID)
			s.replaying = true
			s.replayAfter = Position{Epoch: *h.epoch.Load()}
		default:
			return nil, err
		}
	}

	// Everything appended before now is history, whether or not the
	// dispatcher has reached it: live delivery skips it, replay covers it.
	_, newest, err := h.store.Bounds(ctx)
	if err != nil {
		return nil, fmt.Errorf("hub: reading store bounds: %w", err)
	}
	s.skipUpTo = max(s.skipUpTo, newest.Seq)
	upto, err := h.register(s)
	if err != nil {
		return nil, err
	}
	s.replayUpto = max(upto, newest.Seq)
	s.cursor = Position{Seq: s.replayUpto, Epoch: newest.Epoch}
	if s.replaying || s.pendingGap != nil {
		s.signal()
	}
	return s, nil
}

// resolve finds the position of id, an update ID or a stream cursor,
// treating an update the subscriber may not see as unknown so that its
// existence is not disclosed.
func (h *Hub) resolve(ctx context.Context, s *Subscription, id string) (Position, error) {
	if strings.HasPrefix(id, CursorPrefix) {
		return h.resolveCursor(ctx, id)
	}
	pos, err := h.store.Lookup(ctx, id)
	if err != nil {
		return Position{}, err
	}
	var found *Update
	err = h.store.Read(ctx, Position{Seq: pos.Seq - 1, Epoch: pos.Epoch}, func(u *Update) bool {
		found = u
		return false
	})
	if err != nil && !errors.Is(err, ErrEpochChanged) {
		return Position{}, err
	}
	if found == nil || found.Pos.Seq != pos.Seq || (found.Private && !s.mayRead(found)) {
		return Position{}, ErrNotFound
	}
	return pos, nil
}

func (s *Subscription) mayRead(u *Update) bool {
	return s.canRead != nil && s.canRead(u.Topics)
}

// visible reports whether u is for this subscriber.
func (s *Subscription) visible(u *Update) bool {
	return anyMatch(s.all, u.Topics) && (!u.Private || s.mayRead(u))
}

// Replaying reports whether the next Drain reads history from the store
// (which may wait on it) rather than only the queue of live updates.
// Like Drain, only the consuming goroutine may call it.
func (s *Subscription) Replaying() bool { return s.replaying }

// Resume reports how the subscription's LastEventID was resolved.
func (s *Subscription) Resume() Resume { return s.resume }

// Ready is signalled when Drain has updates or an error to return. It is
// nil, and never ready, for a subscription with a Notify callback.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

func (s *Subscription) signal() {
	if s.notify != nil {
		s.notify()
		return
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// setGap records a gap and queues the in-band notice ahead of anything else.
func (s *Subscription) setGap(reason GapReason) {
	if s.resume.Gap == GapNone {
		s.resume.Gap = reason
	}
	data, _ := json.Marshal(struct {
		Reason      GapReason `json:"reason"`
		LastEventID string    `json:"lastEventId"`
	}{reason, s.resume.Requested})
	s.pendingGap = &Update{Type: GapEventType, Data: string(data)}
	s.h.stats.countGap(reason)
}

// offer queues u without blocking. It runs on the dispatcher goroutine and
// reports whether u was queued.
func (s *Subscription) offer(u *Update) bool {
	if u.Pos.Seq <= s.lastOffered {
		return false // already offered through another selector
	}
	s.lastOffered = u.Pos.Seq
	if u.Pos.Seq <= s.skipUpTo || (u.Private && !s.mayRead(u)) {
		return false
	}
	cfg := &s.h.cfg
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	size := u.size()
	if len(s.queue) >= cfg.QueueSize || s.qbytes+size > cfg.QueueBytes {
		s.err, s.queue, s.qbytes = ErrSlowConsumer, nil, 0
		s.mu.Unlock()
		s.signal()
		if s.onOverflow != nil {
			s.onOverflow()
		}
		s.h.stats.slow.Add(1)
		s.h.log.Warn("hub: ending slow subscriber", "reason", "queue-overflow", "queued", cfg.QueueSize)
		return false
	}
	// Only the first update of an empty queue signals: until Drain takes
	// the queue, the consumer has been told already and will take the
	// later ones with it. (A replaying Drain leaves the queue and signals
	// itself again until it reaches it.) At high rates this saves the
	// consumer's wake-up machinery a call per coalesced update.
	first := len(s.queue) == 0
	s.queue = append(s.queue, u)
	s.qbytes += size
	s.mu.Unlock()
	if first {
		s.signal()
	}
	return true
}

// end makes Drain return err once the queue is empty.
func (s *Subscription) end(err error, drop bool) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		if drop {
			s.queue, s.qbytes = nil, 0
		}
	}
	s.mu.Unlock()
	s.signal()
}

// lateMatchBudget bounds the pattern tests (Match calls) one Drain makes
// for a subscription matched late, give or take the topics of one update:
// a few milliseconds when none is cached (a URL pattern takes ~30 us on a
// 100-byte topic), so that Drain does not hold a goroutine that drains
// other subscriptions too (ssehttp's flusher pool) for long.
const lateMatchBudget = 256

// What one Drain takes from history: at most replayBatch updates and,
// past the first, replayBatchBytes (as charged to queues), examining at
// most 16 times replayBatch. The next batch is read from the store only
// when the consumer calls Drain again, after writing this one: a replay of
// any length holds one batch per subscriber and goes at its pace.
const (
	replayBatch      = 256
	replayBatchBytes = 256 << 10
)

// Drain appends to dst what the subscriber should receive next, in order:
// a gap notice if any, replayed history, then queued live updates. It
// returns a non-nil error when the subscription has ended (ErrSlowConsumer,
// ErrClosed, or a store error); updates returned with that error should
// still be written. If more remains after a call, Ready is signalled again.
// For a subscription that tests its own patterns (see
// SubscribeRequest.Topics), a call may return nothing: the updates it
// tested did not match.
// While the subscription replays history, one call returns at most one
// batch of it, read from the store by that call: a consumer that writes
// what Drain returned before calling it again paces the replay and holds
// one batch at a time, however long the replay.
func (s *Subscription) Drain(ctx context.Context, dst []*Update) ([]*Update, error) {
	if s.closed {
		return dst, ErrClosed
	}
	if s.pendingGap != nil {
		dst = append(dst, s.pendingGap)
		s.pendingGap = nil
	}
	if s.replaying {
		var err error
		if dst, err = s.replay(ctx, dst); err != nil {
			return dst, err
		}
		if s.replaying {
			s.signal()
			return dst, nil
		}
	}
	s.mu.Lock()
	if s.err == ErrSlowConsumer {
		s.mu.Unlock()
		return dst, ErrSlowConsumer
	}
	if s.matchLate {
		return s.drainLate(dst)
	}
	dst = append(dst, s.queue...)
	clear(s.queue)
	s.queue, s.qbytes = s.queue[:0], 0
	err := s.err
	s.mu.Unlock()
	return dst, err
}

// drainLate is Drain's end for a subscription matched late, called with
// s.mu held: it takes the queue when everything taken before is tested,
// and tests the updates taken, outside the lock (the dispatcher offers
// meanwhile), until lateMatchBudget Match calls are spent. It signals
// Ready when more remains, and returns the subscription's end once
// everything is tested.
func (s *Subscription) drainLate(dst []*Update) ([]*Update, error) {
	if s.lateHead == len(s.late) {
		s.late, s.queue = s.queue, s.late[:0]
		s.lateHead, s.qbytes = 0, 0
	}
	queued, err, from := len(s.queue) > 0, s.err, s.lateFrom
	s.mu.Unlock()
	calls, n := 0, 0
	for s.lateHead < len(s.late) && calls < lateMatchBudget {
		u := s.late[s.lateHead]
		if u.Pos.Seq < from {
			// Matched, and counted, by the dispatcher before it
			// stopped testing s (Config.MatchBudget).
			dst = append(dst, u)
			s.late[s.lateHead] = nil
			s.lateHead++
			continue
		}
		match := false
		for ; s.lateNext < len(s.all) && calls < lateMatchBudget && !match; s.lateNext++ {
			for _, t := range u.Topics {
				calls++
				if s.all[s.lateNext].Match(t) {
					match = true
					break
				}
			}
		}
		if !match && s.lateNext < len(s.all) {
			break // out of budget within this update
		}
		if match {
			dst = append(dst, u)
			n++
		}
		s.late[s.lateHead] = nil
		s.lateHead, s.lateNext = s.lateHead+1, 0
	}
	s.h.stats.delivered.Add(uint64(n))
	if s.lateHead < len(s.late) || queued {
		s.signal()
		return dst, nil
	}
	s.late, s.lateHead = s.late[:0], 0
	return dst, err
}

// replay appends the next batch of retained updates to dst and clears
// s.replaying when history up to replayUpto has been served.
func (s *Subscription) replay(ctx context.Context, dst []*Update) ([]*Update, error) {
	limit := s.h.cfg.ReplayLimit
	n, bytes, scanned, finished := 0, 0, 0, true
	err := s.h.store.Read(ctx, s.replayAfter, func(u *Update) bool {
		if u.Pos.Seq > s.replayUpto {
			return false // caught up with live delivery
		}
		if limit > 0 && s.replayed >= limit {
			s.setGap(GapReplayLimit)
			dst = append(dst, s.pendingGap)
			s.pendingGap = nil
			return false
		}
		s.replayAfter = u.Pos
		scanned++
		if s.visible(u) {
			dst = append(dst, u)
			n++
			bytes += u.size()
			s.replayed++
			s.h.stats.replayed.Add(1)
			s.h.stats.delivered.Add(1)
		}
		if n >= replayBatch || bytes >= replayBatchBytes || scanned >= 16*replayBatch {
			finished = false // this call's share is done; more may remain
			return false
		}
		return true
	})
	switch {
	case errors.Is(err, ErrEpochChanged):
		s.setGap(GapHistoryLost)
		dst = append(dst, s.pendingGap)
		s.pendingGap = nil
	case err != nil:
		return dst, fmt.Errorf("hub: replaying history: %w", err)
	}
	if finished {
		s.replaying = false
	}
	return dst, nil
}

// Close unregisters the subscription. Drain then returns ErrClosed. Close is
// idempotent and safe to call from the consuming goroutine only.
func (s *Subscription) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.h.unregister(s)
	s.mu.Lock()
	s.queue = nil
	s.mu.Unlock()
	s.late, s.lateHead = nil, 0
}
