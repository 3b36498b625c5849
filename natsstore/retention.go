package natsstore

import (
	"container/heap"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub/hub"
)

// retention enforces Config.TopicLimits on the stream: JetStream has no
// such limits, so each node keeps, from the stream it reads, the queue of
// retained updates of every topic with a rule, and drops an update when
// the last of its topics lets it go (see the package documentation,
// # Retention).
//
// A dropped update is hidden at once from this node's Read, Lookup and
// Bounds, and deleted from the stream EvictionDelay later, so that every
// node's Follow and retention have read it first: a node that never reads
// an update cannot account for it in its topics' queues.
//
// Lock order: mu before hmu, and mu before the Store's locks. Neither is
// held while a Read callback runs.
type retention struct {
	s        *Store
	limits   hub.TopicLimits
	now      func() time.Time
	delay    time.Duration
	interval time.Duration

	mu     sync.Mutex
	epoch  string
	next   uint64 // the stream sequence to account for next
	topics map[string]*topicQueue
	ages   ageHeap
	votes  map[uint64]int // updates all of whose topics have rules: how many still retain each

	hmu    sync.RWMutex
	hepoch string               // the epoch of hidden
	hidden map[uint64]time.Time // dropped but not yet deleted: when (wall clock) they were dropped
}

// retItem is one update in a topic's queue.
type retItem struct {
	seq  uint64
	size int64
	time time.Time
}

// topicQueue is the retained updates of a topic with a rule, oldest first.
type topicQueue struct {
	name  string
	lim   hub.Limits
	items []retItem
	bytes int64
	hidx  int // index in retention.ages, or -1
}

func newRetention(s *Store) *retention {
	return &retention{
		s: s, limits: s.cfg.TopicLimits, now: s.cfg.Now,
		delay: s.cfg.EvictionDelay, interval: s.cfg.RetentionInterval,
		topics: make(map[string]*topicQueue), votes: make(map[uint64]int),
		hidden: make(map[uint64]time.Time),
	}
}

// reset forgets everything: the stream is in a new epoch. The caller holds
// mu.
func (r *retention) reset(epoch string) {
	r.epoch, r.next = epoch, 1
	r.topics, r.ages, r.votes = make(map[string]*topicQueue), nil, make(map[uint64]int)
	r.hmu.Lock()
	r.hepoch, r.hidden = epoch, make(map[uint64]time.Time)
	r.hmu.Unlock()
}

// isHidden reports whether the update at seq of epoch was dropped by a
// topic rule (and not deleted yet).
func (r *retention) isHidden(epoch string, seq uint64) bool {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	if epoch != r.hepoch {
		return false
	}
	_, ok := r.hidden[seq]
	return ok
}

// anyHidden reports whether some update of epoch is hidden.
func (r *retention) anyHidden(epoch string) bool {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	return epoch == r.hepoch && len(r.hidden) > 0
}

func limited(l hub.Limits) bool { return l.MaxUpdates > 0 || l.MaxBytes > 0 || l.MaxAge > 0 }

// over reports whether q exceeds its count or byte limit.
func (q *topicQueue) over() bool {
	return q.lim.MaxUpdates > 0 && len(q.items) > q.lim.MaxUpdates ||
		q.lim.MaxBytes > 0 && q.bytes > q.lim.MaxBytes
}

// account enters the update at seq, of the given size, in the queues of
// its topics with rules and applies their count and byte limits. The
// caller holds mu, and calls it for every update of the stream in order.
func (r *retention) account(seq uint64, u *hub.Update, size int64) {
	pinned := false
	var mine []*topicQueue
	for i, t := range u.Topics {
		if slices.Contains(u.Topics[:i], t) {
			continue
		}
		q := r.topics[t]
		if q == nil {
			lim, ok := r.limits(t)
			if !ok || !limited(lim) {
				pinned = true
				continue
			}
			q = &topicQueue{name: t, lim: lim, hidx: -1}
			r.topics[t] = q
		}
		q.items = append(q.items, retItem{seq: seq, size: size, time: u.Time})
		q.bytes += size
		if q.lim.MaxAge > 0 && q.hidx < 0 {
			heap.Push(&r.ages, q)
		}
		mine = append(mine, q)
	}
	if !pinned && len(mine) > 0 {
		r.votes[seq] = len(mine)
	}
	for _, q := range mine {
		for len(q.items) > 1 && q.over() {
			r.pop(q, true)
		}
	}
	r.next = seq + 1
}

// pop removes the oldest update of q from q; if drop is set and no other
// topic retains it, the update is dropped. The caller holds mu.
func (r *retention) pop(q *topicQueue, drop bool) {
	x := q.items[0]
	q.items[0] = retItem{}
	q.items = q.items[1:]
	q.bytes -= x.size
	switch {
	case len(q.items) == 0:
		delete(r.topics, q.name)
		if q.hidx >= 0 {
			heap.Remove(&r.ages, q.hidx)
		}
	case q.hidx >= 0:
		heap.Fix(&r.ages, q.hidx)
	}
	n, ok := r.votes[x.seq]
	switch {
	case !ok:
	case n > 1:
		r.votes[x.seq] = n - 1
	default:
		delete(r.votes, x.seq)
		if drop {
			r.hmu.Lock()
			r.hidden[x.seq] = time.Now()
			r.hmu.Unlock()
		}
	}
}

// expire applies the topics' age limits at now. The caller holds mu.
func (r *retention) expire(now time.Time) {
	for len(r.ages) > 0 && now.After(r.ages.deadline(0)) {
		r.pop(r.ages[0], true)
	}
}

// prune forgets the updates before first, which the stream's own limits
// discarded. The caller holds mu.
func (r *retention) prune(first uint64) {
	for _, q := range r.topics {
		for len(q.items) > 0 && q.items[0].seq < first {
			r.pop(q, false)
		}
	}
	r.hmu.Lock()
	for seq := range r.hidden {
		if seq < first {
			delete(r.hidden, seq)
		}
	}
	r.hmu.Unlock()
}

// advance accounts for the updates of the stream up to seq upTo, or, if
// upTo is zero, up to the end of the stream (then also forgetting what the
// stream's own limits discarded). The caller holds mu.
func (r *retention) advance(ctx context.Context, upTo uint64) error {
	s := r.s
	rctx, cancel := s.request(ctx)
	epoch, _, err := s.current(rctx)
	if err == nil && upTo == 0 {
		// A fresh handle: the Store's is shared, and Info would update it.
		var fresh jetstream.Stream
		if fresh, err = s.js.Stream(rctx, s.name); err == nil {
			info := fresh.CachedInfo()
			if tok, _ := s.tokenOf(info.Config); tok != epoch {
				s.markStale()
				err = errors.New("the stream changed")
			}
			upTo = info.State.LastSeq
			if epoch == r.epoch {
				r.prune(info.State.FirstSeq)
			}
		}
	}
	cancel()
	if err != nil {
		return s.lost("reading the state of stream", err)
	}
	if epoch != r.epoch {
		r.reset(epoch)
	}
	if r.next > upTo {
		return nil
	}
	err = s.read(ctx, hub.Position{Seq: r.next - 1, Epoch: epoch}, true, func(u *hub.Update, size int) bool {
		if u.Pos.Seq > upTo {
			return false
		}
		r.account(u.Pos.Seq, u, int64(size))
		return true
	})
	if err != nil {
		return err
	}
	r.next = max(r.next, upTo+1) // the rest were deleted meanwhile
	return nil
}

// appended accounts for the update u, which this node just appended, and
// for the updates before it that other nodes appended, then applies the
// age limits. A failure is logged: the update is stored, and the next
// sweep catches up.
func (r *retention) appended(ctx context.Context, u *hub.Update, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case u.Pos.Epoch == r.epoch && u.Pos.Seq == r.next:
		r.account(u.Pos.Seq, u, int64(size))
	case u.Pos.Epoch != r.epoch || u.Pos.Seq > r.next:
		if err := r.advance(ctx, u.Pos.Seq); err != nil {
			r.s.cfg.Logger.Warn("natsstore: applying the topic rules after an append failed; the next sweep retries", "stream", r.s.name, "seq", u.Pos.Seq, "err", err)
			return
		}
	}
	r.expire(r.now())
}

// run sweeps every interval until the store is closed.
func (r *retention) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.sweep(ctx); err != nil && ctx.Err() == nil {
			r.s.cfg.Logger.Warn("natsstore: topic retention sweep failed", "stream", r.s.name, "err", err)
		}
	}
}

// sweep accounts for the updates other nodes appended, applies the age
// limits, and deletes from the stream the updates dropped EvictionDelay
// ago or earlier.
func (r *retention) sweep(ctx context.Context) error {
	r.mu.Lock()
	err := r.advance(ctx, 0)
	if err == nil {
		r.expire(r.now())
	}
	epoch := r.epoch
	r.mu.Unlock()
	if err != nil {
		return err
	}
	due := r.due(epoch, time.Now().Add(-r.delay))
	if len(due) == 0 {
		return nil
	}
	rctx, cancel := r.s.request(ctx)
	defer cancel()
	_, st, err := r.s.epochFor(rctx, epoch)
	if err != nil {
		return err
	}
	var done []uint64
	defer func() { r.forget(epoch, done) }()
	for _, seq := range due {
		err := st.DeleteMsg(rctx, seq)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return r.s.lost("deleting an update from stream", err)
		}
		done = append(done, seq)
	}
	return nil
}

// due returns the hidden updates of epoch dropped before cutoff, in order.
func (r *retention) due(epoch string, cutoff time.Time) []uint64 {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	if epoch != r.hepoch {
		return nil
	}
	var out []uint64
	for seq, at := range r.hidden {
		if !at.After(cutoff) {
			out = append(out, seq)
		}
	}
	slices.Sort(out)
	return out
}

// forget stops hiding the given updates of epoch: they are deleted.
func (r *retention) forget(epoch string, seqs []uint64) {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if epoch != r.hepoch {
		return
	}
	for _, seq := range seqs {
		delete(r.hidden, seq)
	}
}

// ageHeap orders the topics with a MaxAge by the deadline of their oldest
// update: the first one to expire is ages[0].
type ageHeap []*topicQueue

func (h ageHeap) deadline(i int) time.Time {
	return h[i].items[0].time.Add(h[i].lim.MaxAge)
}

// Len, Less, Swap, Push and Pop implement heap.Interface.
func (h ageHeap) Len() int           { return len(h) }
func (h ageHeap) Less(i, j int) bool { return h.deadline(i).Before(h.deadline(j)) }
func (h ageHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}

func (h *ageHeap) Push(x any) {
	q := x.(*topicQueue)
	q.hidx = len(*h)
	*h = append(*h, q)
}

func (h *ageHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	q.hidx = -1
	*h = old[:len(old)-1]
	return q
}
