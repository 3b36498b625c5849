package hub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Hub. The zero value is usable: an in-memory store and
// the documented defaults.
type Config struct {
	// Store is the log the hub appends to and follows. Nil means a new
	// MemoryStore with default limits, which the hub closes on Close; a
	// store given here is owned by the caller.
	Store Store
	// QueueSize caps how many updates may wait for one subscriber before it
	// is ended as a slow consumer. Zero means 1000.
	QueueSize int
	// QueueBytes caps the bytes that may wait for one subscriber. Zero
	// means 8 MiB.
	QueueBytes int
	// ReplayLimit, when positive, caps how many updates one resume
	// replays: past it the replay stops with a replay-limit gap notice and
	// live delivery continues. Zero, the default, replays every retained
	// update the subscriber missed, however many: the replay is read from
	// the store a batch at a time, each batch only once the consumer has
	// drained the previous one, so its pace is the subscriber's and its
	// memory a batch (see Subscription.Drain). Negative means zero.
	ReplayLimit int
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// IdempotencyWindow is how long an update's IdempotencyKey is
	// remembered. Zero means 10 minutes.
	IdempotencyWindow time.Duration
	// IdempotencyKeys caps how many keys are remembered; the oldest are
	// forgotten first. Zero means 1,000,000. At start the hub relearns the
	// keys of at most this many of the newest retained updates.
	IdempotencyKeys int
	// IdempotencyBytes caps the memory of the remembered keys, in bytes,
	// each counted as its (scoped) key and update ID plus 160 bytes; the
	// oldest are forgotten first. Zero means 256 MiB, which holds the
	// IdempotencyKeys default with IDs of typical length (a urn:uuid);
	// it binds first for long IDs (up to 1024 bytes each).
	IdempotencyBytes int64
	// Logger receives slow-consumer and store errors. Nil discards them.
	Logger *slog.Logger
	// InlinePatterns is the most pattern selectors (matchers that are not
	// an ExactMatcher's one topic) of a subscription that the dispatcher
	// tests itself. A subscription with more is offered every update and
	// tests them in its own Drain, so that the cost of its patterns delays
	// only itself: see SubscribeRequest.Topics. Zero means 4.
	InlinePatterns int
	// MatchBudget bounds the pattern tests the dispatcher makes for one
	// update, in the units of CostlyMatcher.MatchCost (about a
	// microsecond each): only the Match calls of CostlyMatchers that
	// Known cannot answer are counted. A subscription whose test would
	// spend more than is left of the budget is offered the update
	// untested, and from then on tests every update in its own Drain, as
	// one with more than InlinePatterns patterns does. So does, after its
	// last test, a subscription whose tests have cost more than a
	// sixteenth of MatchBudget over the updates since one cost nothing:
	// its patterns are costly and their results not cached (distinct
	// selectors, new topics), so it would spend the budget again and
	// again. Results that are known (cached, typically because
	// subscriptions share the selector) keep a subscription with the
	// dispatcher. Zero means 1000.
	MatchBudget int
}

// DefaultIdempotencyBytes is the default of Config.IdempotencyBytes.
const DefaultIdempotencyBytes = 256 << 20

// Stats are the hub's counters since it started. Counters only grow.
type Stats struct {
	// Subscribers is the number of active subscriptions.
	Subscribers int
	// Published counts updates this hub appended to the store.
	Published uint64
	// Dispatched counts updates fanned out from the store's log, whichever
	// hub published them.
	Dispatched uint64
	// Delivered counts updates queued to subscribers, live and replayed.
	Delivered uint64
	// Replayed counts updates served from history on resume.
	Replayed uint64
	// SlowConsumers counts subscriptions ended because their queue
	// overflowed.
	SlowConsumers uint64
	// Gaps counts gap notices sent to resuming subscribers.
	Gaps uint64
	// GapsUnknownID, GapsReplayLimit and GapsHistoryLost count the gap
	// notices by GapReason; they add up to Gaps.
	GapsUnknownID, GapsReplayLimit, GapsHistoryLost uint64
}

// counters are the atomics behind Stats.
type counters struct {
	published, dispatched, delivered, replayed, slow, gaps atomic.Uint64
	gapUnknown, gapLimit, gapLost                          atomic.Uint64
}

// countGap counts a gap notice for reason.
func (c *counters) countGap(reason GapReason) {
	c.gaps.Add(1)
	switch reason {
	case GapUnknownID:
		c.gapUnknown.Add(1)
	case GapReplayLimit:
		c.gapLimit.Add(1)
	case GapHistoryLost:
		c.gapLost.Add(1)
	}
}

// Errors a Hub returns.
var (
	// ErrSlowConsumer ends a subscription whose queue overflowed.
	ErrSlowConsumer = errors.New("hub: subscriber too slow, queue overflowed")
	// ErrHistoryLost ends every subscription when the store lost its
	// history (a new epoch); clients resume and are told of the gap.
	ErrHistoryLost = errors.New("hub: the store lost its history")
	// ErrInvalidUpdate is wrapped by every validation error of Publish.
	ErrInvalidUpdate = errors.New("hub: invalid update")
)

// Hub fans updates out to subscriptions and replays history. It is safe for
// concurrent use.
type Hub struct {
	cfg      Config
	store    Store
	ownStore bool
	stats    counters
	idem     *idempotency
	log      *slog.Logger

	cancel context.CancelFunc
	done   chan struct{} // closed when the dispatcher exits
	runErr error         // why the dispatcher exited, set before done closes

	// mu guards the index and makes registration atomic with dispatch:
	// the dispatcher holds it for reading while it sets lastSeq and offers
	// an update, Subscribe and unsubscribe hold it for writing.
	mu       sync.RWMutex
	exact    map[string]map[*Subscription]struct{}
	patterns map[*Subscription]struct{}
	late     map[*Subscription]struct{} // matched in their own Drain
	moved    []*Subscription            // dispatcher-owned: to move from patterns to late
	count    int
	closed   bool
	lastSeq  atomic.Uint64 // seq of the last update dispatched
	epoch    atomic.Pointer[string]
}

// New starts a hub following cfg.Store from its current end.
func New(cfg Config) (*Hub, error) {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 8 << 20
	}
	cfg.ReplayLimit = max(cfg.ReplayLimit, 0)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdempotencyWindow <= 0 {
		cfg.IdempotencyWindow = 10 * time.Minute
	}
	if cfg.IdempotencyKeys <= 0 {
		cfg.IdempotencyKeys = 1_000_000
	}
	if cfg.IdempotencyBytes <= 0 {
		cfg.IdempotencyBytes = DefaultIdempotencyBytes
	}
	if cfg.InlinePatterns <= 0 {
		cfg.InlinePatterns = 4
	}
	if cfg.MatchBudget <= 0 {
		cfg.MatchBudget = 1000
	}
	h := &Hub{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger,
		exact:    make(map[string]map[*Subscription]struct{}),
		patterns: make(map[*Subscription]struct{}),
		late:     make(map[*Subscription]struct{}),
		done:     make(chan struct{}),
	}
	if h.store == nil {
		h.store, h.ownStore = NewMemoryStore(MemoryConfig{}), true
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	_, newest, err := h.store.Bounds(context.Background())
	if err != nil {
		return nil, fmt.Errorf("hub: reading store bounds: %w", err)
	}
	h.lastSeq.Store(newest.Seq)
	h.epoch.Store(&newest.Epoch)
	h.idem = newIdempotency(cfg.IdempotencyWindow, cfg.IdempotencyKeys, cfg.IdempotencyBytes, cfg.Now)
	if err := h.relearnKeys(newest); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go h.run(ctx, newest)
	return h, nil
}

// run is the dispatcher: it follows the store and fans every update out.
// When the store reports that its history was lost (a new epoch: a Redis
// flushed, a JetStream stream recreated), every subscription is ended so
// that its client resumes and is told of the gap, and dispatch goes on in
// the new epoch. Any other failure is retried after a pause; stores are
// expected to ride out transient faults themselves.
func (h *Hub) run(ctx context.Context, from Position) {
	defer close(h.done)
	pause := 100 * time.Millisecond
	for {
		err := h.store.Follow(ctx, from, h.dispatch)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrClosed) {
			h.log.Error("hub: the store was closed; ending all subscriptions")
			h.runErr = err
			h.endAll(fmt.Errorf("hub: store failed: %w", err))
			return
		}
		if errors.Is(err, ErrEpochChanged) {
			if _, newest, berr := h.store.Bounds(ctx); berr == nil && newest.Epoch != from.Epoch {
				h.log.Warn("hub: the store lost its history; ending every subscription so that clients resume and learn of the gap",
					"old_epoch", from.Epoch, "new_epoch", newest.Epoch)
				h.epoch.Store(&newest.Epoch)
				h.lastSeq.Store(newest.Seq)
				h.endAll(ErrHistoryLost)
				from, pause = newest, 100*time.Millisecond
				continue
			}
		}
		h.log.Error("hub: following the store failed; retrying", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
		// Resume after the last update dispatched.
		from = Position{Seq: h.lastSeq.Load(), Epoch: *h.epoch.Load()}
	}
}

// relearnKeys reads the idempotency keys of recent history.
func (h *Hub) relearnKeys(newest Position) error {
	from := Position{Epoch: newest.Epoch}
	if n := uint64(h.cfg.IdempotencyKeys); newest.Seq > n {
		from.Seq = newest.Seq - n
	}
	cutoff := h.cfg.Now().Add(-h.cfg.IdempotencyWindow)
	err := h.store.Read(context.Background(), from, func(u *Update) bool {
		if u.Pos.Seq > newest.Seq {
			return false
		}
		if u.IdempotencyKey != "" && u.Time.After(cutoff) {
			h.idem.learn(u.IdempotencyKey, u.ID, u.Time)
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("hub: reading recent idempotency keys: %w", err)
	}
	return nil
}

// dispatch offers u to every subscription that matches it.
func (h *Hub) dispatch(u *Update) {
	u.Frame() // encode once, outside any subscriber's lock
	h.idem.learn(u.IdempotencyKey, u.ID, u.Time)
	n := 0
	h.mu.RLock()
	h.lastSeq.Store(u.Pos.Seq)
	for _, t := range u.Topics {
		for s := range h.exact[t] {
			if s.offer(u) {
				n++
			}
		}
	}
	left := h.cfg.MatchBudget
	for s := range h.patterns {
		if u.Pos.Seq <= max(s.lastOffered, s.skipUpTo) {
			continue // offered already (an exact topic), or replay's
		}
		match, ok, spent := false, true, 0
		if s.costly == nil {
			match = anyMatch(s.patterns, u.Topics)
		} else {
			spent = left
			match, ok = s.matchCostly(u.Topics, &left)
			spent -= left
		}
		if !ok {
			// Out of budget: s tests this update and the next ones in
			// its own Drain.
			s.startLate(u.Pos.Seq)
			h.moved = append(h.moved, s)
			s.offer(u) // counted as delivered by Drain, if it matches
			continue
		}
		if match && s.offer(u) {
			n++
		}
		if spent == 0 {
			if s.matchDebt != 0 {
				s.matchDebt = 0
			}
			continue
		}
		if s.matchDebt += spent; s.matchDebt > h.cfg.MatchBudget/matchDebtShare {
			// Costly and uncached, update after update: s tests the
			// next ones in its own Drain.
			s.startLate(u.Pos.Seq + 1)
			h.moved = append(h.moved, s)
		}
	}
	for s := range h.late {
		s.offer(u) // counted as delivered by Drain, if it matches
	}
	h.mu.RUnlock()
	if len(h.moved) > 0 {
		h.moveLate()
	}
	h.stats.dispatched.Add(1)
	h.stats.delivered.Add(uint64(n))
}

// matchDebtShare divides Config.MatchBudget into what one subscription
// may cost the dispatcher, update after update since a test that cost
// nothing, before it tests its updates in its own Drain.
const matchDebtShare = 16

// moveLate moves the subscriptions in h.moved, which now test updates in
// their own Drain, from the patterns and exact topics the dispatcher tests
// to the subscriptions it offers every update, as register does for those
// with more than InlinePatterns patterns.
func (h *Hub) moveLate() {
	h.mu.Lock()
	for _, s := range h.moved {
		if !s.registered {
			continue
		}
		for _, t := range s.exactTopics {
			if set := h.exact[t]; set != nil {
				delete(set, s)
				if len(set) == 0 {
					delete(h.exact, t)
				}
			}
		}
		delete(h.patterns, s)
		h.late[s] = struct{}{}
	}
	h.mu.Unlock()
	clear(h.moved)
	h.moved = h.moved[:0]
}

// startLate makes Drain test the updates queued from seq on: the
// dispatcher stops testing s's patterns (Config.MatchBudget).
func (s *Subscription) startLate(seq uint64) {
	s.mu.Lock()
	s.matchLate, s.lateFrom = true, seq
	s.mu.Unlock()
}

// Publish validates u, assigns its ID (a random "urn:uuid:" when empty) and
// time, and appends it to the store. It returns the ID once the store has
// accepted u; delivery to subscribers follows asynchronously. Validation
// errors wrap ErrInvalidUpdate. Publish takes ownership of u.
//
// When u.IdempotencyKey was already published by the same u.Publisher
// within the idempotency window, or is being published concurrently,
// Publish stores nothing and returns the ID of that first publish. A key
// belongs to its publisher: the same key from another publisher is another
// publish. Publish replaces u.IdempotencyKey with the key scoped by
// u.Publisher, which the store persists, and clears u.Publisher.
func (h *Hub) Publish(ctx context.Context, u *Update) (string, error) {
	if err := ValidateUpdate(u); err != nil {
		return "", err
	}
	key := ""
	if u.IdempotencyKey != "" {
		key = scopedKey(u.Publisher, u.IdempotencyKey)
	}
	u.IdempotencyKey, u.Publisher = key, ""
	if key != "" {
		return h.idem.do(ctx, key, func() (string, error) { return h.publish(ctx, u) })
	}
	return h.publish(ctx, u)
}

func (h *Hub) publish(ctx context.Context, u *Update) (string, error) {
	if u.ID == "" {
		u.ID = NewID()
	}
	u.Time = h.cfg.Now()
	h.mu.RLock()
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return "", ErrClosed
	}
	if err := h.store.Append(ctx, u); err != nil {
		return "", err
	}
	h.stats.published.Add(1)
	h.idem.learn(u.IdempotencyKey, u.ID, u.Time)
	return u.ID, nil
}

// ValidateUpdate checks what the hub itself requires of an update: at least
// one non-empty topic, and an ID and type that cannot inject SSE fields.
// Protocol rules (reserved names, character classes) belong to the caller.
func ValidateUpdate(u *Update) error {
	if len(u.Topics) == 0 {
		return fmt.Errorf("%w: no topic", ErrInvalidUpdate)
	}
	for _, t := range u.Topics {
		if t == "" {
			return fmt.Errorf("%w: empty topic", ErrInvalidUpdate)
		}
	}
	if err := u.Event().Validate(); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidUpdate, strings.TrimPrefix(err.Error(), "sse: "))
	}
	return nil
}

// NewID returns a new RFC 9562 version 7 UUID as a "urn:uuid:" IRI: 48
// bits of Unix milliseconds, 12 bits of sub-millisecond time (RFC 9562
// section 6.2, method 3) and 62 random bits. The IDs one process makes
// sort in the order it made them, even if its clock steps back, so a store
// that indexes IDs by their bytes adds each new one at the end of its
// index instead of at a random place.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[8:])
	v := newIDs.next(time.Now())
	binary.BigEndian.PutUint64(b[:8], v>>12<<16|0x7000|v&0xfff)
	b[8] = b[8]&0x3f | 0x80
	const prefix = "urn:uuid:"
	var s [len(prefix) + 36]byte
	copy(s[:], prefix)
	p := len(prefix)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[p] = '-'
			p++
		}
		hex.Encode(s[p:p+2], []byte{c})
		p += 2
	}
	return string(s[:])
}

// idClock hands out the times of new IDs: Unix milliseconds << 12 | the
// fraction of the millisecond in 1/4096ths, never the same twice.
type idClock struct{ last atomic.Uint64 }

// newIDs is the clock of NewID.
var newIDs idClock

// next returns the time of an ID made at now: now's, or one tick after the
// newest ID's if that is not earlier.
func (c *idClock) next(now time.Time) uint64 {
	ns := uint64(now.UnixNano())
	v := ns/1e6<<12 | ns%1e6*4096/1e6
	for {
		last := c.last.Load()
		next := max(v, last+1)
		if c.last.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Store returns the hub's store.
func (h *Hub) Store() Store { return h.store }

// Stats returns the hub's counters. It is cheap and safe to call
// concurrently.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	n := h.count
	h.mu.RUnlock()
	c := &h.stats
	return Stats{
		Subscribers:   n,
		Published:     c.published.Load(),
		Dispatched:    c.dispatched.Load(),
		Delivered:     c.delivered.Load(),
		Replayed:      c.replayed.Load(),
		SlowConsumers: c.slow.Load(),
		Gaps:          c.gaps.Load(),

		GapsUnknownID:   c.gapUnknown.Load(),
		GapsReplayLimit: c.gapLimit.Load(),
		GapsHistoryLost: c.gapLost.Load(),
	}
}

// Close stops the dispatcher and ends every subscription with ErrClosed,
// closing the store if the hub created it. Consumers see the end at their
// next Drain, after the updates already queued. Close is idempotent; it
// returns ctx's error if ctx ends before the dispatcher stopped.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	already := h.closed
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	select {
	case <-h.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if already {
		return nil
	}
	h.endAll(ErrClosed)
	if h.ownStore {
		return h.store.Close()
	}
	return nil
}

// Done is closed when the hub stops dispatching: after Close, or when its
// store was closed under it. (A store that loses its history, or fails for
// a while, does not stop the hub: see the dispatcher.)
func (h *Hub) Done() <-chan struct{} { return h.done }

// endAll ends every subscription with err, letting queued updates drain.
func (h *Hub) endAll(err error) {
	h.mu.Lock()
	subs := make([]*Subscription, 0, h.count)
	for s := range h.patterns {
		subs = append(subs, s)
	}
	for s := range h.late {
		subs = append(subs, s)
	}
	for _, set := range h.exact {
		for s := range set {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.end(err, false)
	}
}

// register adds s to the index and returns the last dispatched seq.
func (h *Hub) register(s *Subscription) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, ErrClosed
	}
	for _, t := range s.exactTopics {
		if s.matchLate {
			break // Drain tests its exact topics too
		}
		set := h.exact[t]
		if set == nil {
			set = make(map[*Subscription]struct{})
			h.exact[t] = set
		}
		set[s] = struct{}{}
	}
	switch {
	case s.matchLate:
		h.late[s] = struct{}{}
	case len(s.patterns) > 0:
		h.patterns[s] = struct{}{}
	}
	h.count++
	s.registered = true
	return h.lastSeq.Load(), nil
}

// unregister removes s from the index. It is idempotent.
func (h *Hub) unregister(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.registered {
		return
	}
	s.registered = false
	for _, t := range s.exactTopics {
		if set := h.exact[t]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(h.exact, t)
			}
		}
	}
	delete(h.patterns, s)
	delete(h.late, s)
	h.count--
}
