package hub

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryConfig configures a MemoryStore. The zero value is usable.
type MemoryConfig struct {
	// MaxUpdates caps how many updates are retained; the oldest are
	// discarded first. Zero means 10000.
	MaxUpdates int
	// MaxBytes caps the total size retained: the data, ID, type and topics
	// of every update, plus 64 bytes each. The newest update is always
	// retained. Zero means 64 MiB.
	MaxBytes int
	// MaxAge is how long an update is retained after its Time. Zero means
	// no limit.
	MaxAge time.Duration
	// TopicLimits, when set, limits the history of single topics (see
	// TopicLimits for the semantics); MaxUpdates, MaxBytes and MaxAge
	// still apply to the whole log.
	TopicLimits TopicLimits
	// Now returns the current time, for age limits and for stamping
	// updates appended without a Time. Nil means time.Now.
	Now func() time.Time
}

// MemoryStore is a Store that keeps a bounded window of history in memory.
// It is the single-process store with no durability: its history and its
// epoch are lost when the process exits. It is safe for concurrent use.
//
// Limits are enforced when an update is appended; age limits are also
// enforced when history is read (Read, Lookup, Bounds), so an expired
// update is never served from history. Per-topic limits discard updates
// from the middle of the log: Read skips them and Lookup no longer finds
// their IDs, but a follower close behind the newest update (within the
// last 1024 appends) still receives every update in turn, retained or
// not, so live delivery loses nothing.
type MemoryStore struct {
	cfg   MemoryConfig
	epoch string
	// deadline is the Unix time in nanoseconds after which an age limit
	// discards something; math.MaxInt64 when no age limit is pending. It
	// lets readers skip the write lock.
	deadline atomic.Int64

	mu sync.RWMutex
	// log holds the appended updates in seq order, oldest first. Entries
	// discarded from the middle stay as dead entries until more than half
	// of the log is dead; log[0] and log[len(log)-1] are always live.
	log       []*memEntry
	dead      int    // dead entries in log
	live      int    // retained updates
	next      uint64 // seq of the next append
	floor     uint64 // the global limits discarded every update before it
	bytes     int    // size of the retained updates
	ids       map[string]idList
	topics    map[string]*topicQueue // limited topics that retain something
	ages      ageHeap                // the topics of topics with a MaxAge
	tail      []*Update              // the newest appends, retained or not; tail[i].Pos.Seq == tailFirst+i
	tailFirst uint64
	tailCap   int
	changed   chan struct{} // closed and replaced on every append
	closed    bool
}

var _ Store = (*MemoryStore)(nil)

// memEntry is one appended update in a MemoryStore's log.
type memEntry struct {
	seq  uint64
	u    *Update // nil once the update is discarded
	size int
	// votes counts the limited topics whose limits still retain the
	// update; pinned is set when one of its topics has no limits. An
	// update that is not pinned goes when its last vote does.
	votes          int
	pinned         bool
	prevID, nextID *memEntry // the other retained updates with the same ID
}

// idList is the retained updates with one ID, in seq order.
type idList struct{ first, last *memEntry }

// topicQueue is a limited topic: the updates it retains, oldest first.
type topicQueue struct {
	name  string
	lim   Limits
	items []*memEntry
	bytes int64
	hidx  int // index in MemoryStore.ages, or -1
}

// NewMemoryStore returns an empty MemoryStore with a fresh random epoch.
func NewMemoryStore(cfg MemoryConfig) *MemoryStore {
	if cfg.MaxUpdates <= 0 {
		cfg.MaxUpdates = 10000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &MemoryStore{
		cfg:     cfg,
		epoch:   newEpoch(),
		next:    1,
		floor:   1,
		ids:     make(map[string]idList),
		topics:  make(map[string]*topicQueue),
		tailCap: min(1024, cfg.MaxUpdates),
		changed: make(chan struct{}),
	}
	s.tailFirst = 1
	s.deadline.Store(math.MaxInt64)
	return s
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// memSize is what an update counts against byte limits.
func memSize(u *Update) int {
	n := len(u.Data) + len(u.ID) + len(u.Type) + 64
	for _, t := range u.Topics {
		n += len(t)
	}
	return n
}

// Append adds u to the log, sets its Time if it has none, enforces the
// limits and wakes every follower.
func (s *MemoryStore) Append(ctx context.Context, u *Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	now := s.cfg.Now()
	if u.Time.IsZero() {
		u.Time = now
	}
	u.Pos = Position{Seq: s.next, Epoch: s.epoch}
	s.next++
	e := &memEntry{seq: u.Pos.Seq, u: u, size: memSize(u)}
	s.log = append(s.log, e)
	s.live++
	s.bytes += e.size
	if l, ok := s.ids[u.ID]; ok {
		l.last.nextID, e.prevID = e, l.last
		s.ids[u.ID] = idList{l.first, e}
	} else {
		s.ids[u.ID] = idList{e, e}
	}
	if len(s.tail) == 0 {
		s.tailFirst = e.seq
	}
	s.tail = append(s.tail, u)
	if n := len(s.tail); n > 2*s.tailCap {
		// Copy rather than reslice, so the discarded ones can be freed.
		s.tail = slices.Clone(s.tail[n-s.tailCap:])
		s.tailFirst += uint64(n - s.tailCap)
	}
	s.vote(e)
	s.enforce(now)
	s.settle()
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// vote enters e in the queues of its limited topics and enforces their
// count and byte limits. The caller holds s.mu.
func (s *MemoryStore) vote(e *memEntry) {
	if s.cfg.TopicLimits == nil {
		e.pinned = true
		return
	}
	topics := e.u.Topics
	var mine []*topicQueue
	for i, t := range topics {
		if slices.Contains(topics[:i], t) {
			continue
		}
		q := s.topics[t]
		if q == nil {
			lim, ok := s.cfg.TopicLimits(t)
			if !ok || !lim.limited() {
				e.pinned = true
				continue
			}
			q = &topicQueue{name: t, lim: lim, hidx: -1}
			s.topics[t] = q
		}
		q.items = append(q.items, e)
		q.bytes += int64(e.size)
		e.votes++
		if q.lim.MaxAge > 0 && q.hidx < 0 {
			heap.Push(&s.ages, q)
		}
		mine = append(mine, q)
	}
	for _, q := range mine {
		for len(q.items) > 1 && q.over() {
			s.dropVote(q)
		}
	}
}

// limited reports whether l limits anything.
func (l Limits) limited() bool { return l.MaxUpdates > 0 || l.MaxBytes > 0 || l.MaxAge > 0 }

// over reports whether q exceeds its count or byte limit.
func (q *topicQueue) over() bool {
	return q.lim.MaxUpdates > 0 && len(q.items) > q.lim.MaxUpdates ||
		q.lim.MaxBytes > 0 && q.bytes > q.lim.MaxBytes
}

// popVote removes the oldest update of q from q and returns it. The
// caller holds s.mu.
func (s *MemoryStore) popVote(q *topicQueue) *memEntry {
	x := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	q.bytes -= int64(x.size)
	x.votes--
	switch {
	case len(q.items) == 0:
		delete(s.topics, q.name)
		if q.hidx >= 0 {
			heap.Remove(&s.ages, q.hidx)
		}
	case q.hidx >= 0:
		heap.Fix(&s.ages, q.hidx)
	}
	return x
}

// dropVote removes the oldest update of q from q, and from the log if no
// other topic retains it. The caller holds s.mu.
func (s *MemoryStore) dropVote(q *topicQueue) {
	if x := s.popVote(q); x.votes == 0 && !x.pinned && x.u != nil {
		s.discard(x)
	}
}

// enforce applies the global limits and the topics' age limits. The
// caller holds s.mu.
func (s *MemoryStore) enforce(now time.Time) {
	for s.live > 1 && (s.live > s.cfg.MaxUpdates || s.bytes > s.cfg.MaxBytes) {
		s.discardOldest()
	}
	for s.cfg.MaxAge > 0 && s.live > 0 && now.Sub(s.log[0].u.Time) > s.cfg.MaxAge {
		s.discardOldest()
	}
	for len(s.ages) > 0 && now.After(s.ages.deadline(0)) {
		s.dropVote(s.ages[0])
	}
}

// discardOldest discards log[0], the oldest retained update, taking it
// out of the topic queues it is the oldest of. The caller holds s.mu.
func (s *MemoryStore) discardOldest() {
	x := s.log[0]
	s.floor = x.seq + 1
	for _, t := range x.u.Topics {
		if q := s.topics[t]; q != nil && q.items[0] == x {
			s.popVote(q)
		}
	}
	s.discard(x)
}

// discard removes x from the log and the ID index. The caller holds s.mu.
func (s *MemoryStore) discard(x *memEntry) {
	id := x.u.ID
	switch l := s.ids[id]; {
	case l.first == x && l.last == x:
		delete(s.ids, id)
	case l.first == x:
		x.nextID.prevID = nil
		s.ids[id] = idList{x.nextID, l.last}
	case l.last == x:
		x.prevID.nextID = nil
		s.ids[id] = idList{l.first, x.prevID}
	default:
		x.prevID.nextID, x.nextID.prevID = x.nextID, x.prevID
	}
	x.prevID, x.nextID = nil, nil
	s.live--
	s.bytes -= x.size
	x.u = nil
	s.dead++
	for len(s.log) > 0 && s.log[0].u == nil {
		s.log[0] = nil
		s.log = s.log[1:]
		s.dead--
	}
	for n := len(s.log); n > 0 && s.log[n-1].u == nil; n-- {
		s.log[n-1] = nil
		s.log = s.log[:n-1]
		s.dead--
	}
}

// settle compacts the log once most of it is dead and records the next
// age deadline. The caller holds s.mu.
func (s *MemoryStore) settle() {
	if s.dead > 64 && s.dead > s.live || cap(s.log) > 2*s.cfg.MaxUpdates+64 && len(s.log) < cap(s.log)/4 {
		live := make([]*memEntry, 0, s.live+s.live/4)
		for _, e := range s.log {
			if e.u != nil {
				live = append(live, e)
			}
		}
		s.log, s.dead = live, 0
	}
	d := int64(math.MaxInt64)
	if s.cfg.MaxAge > 0 && s.live > 0 {
		d = s.log[0].u.Time.Add(s.cfg.MaxAge).UnixNano()
	}
	if len(s.ages) > 0 {
		d = min(d, s.ages.deadline(0).UnixNano())
	}
	s.deadline.Store(d)
}

// expire applies the age limits if one of them is due.
func (s *MemoryStore) expire() {
	now := s.cfg.Now()
	if now.UnixNano() <= s.deadline.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.enforce(now)
		s.settle()
	}
}

// search returns the index in log of the first entry after seq. The
// caller holds s.mu.
func (s *MemoryStore) search(seq uint64) int {
	return sort.Search(len(s.log), func(i int) bool { return s.log[i].seq > seq })
}

// Lookup returns the position of the earliest retained update with id.
func (s *MemoryStore) Lookup(ctx context.Context, id string) (Position, error) {
	s.expire()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Position{}, ErrClosed
	}
	l, ok := s.ids[id]
	if !ok {
		return Position{}, ErrNotFound
	}
	return Position{Seq: l.first.seq, Epoch: s.epoch}, nil
}

// Read calls fn with the retained updates after after, oldest first. It
// holds no lock while fn runs.
func (s *MemoryStore) Read(ctx context.Context, after Position, fn func(*Update) bool) error {
	const batch = 256
	var buf []*Update
	s.expire()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return ErrClosed
		}
		if after.Epoch != "" && after.Epoch != s.epoch {
			s.mu.RUnlock()
			return ErrEpochChanged
		}
		buf = buf[:0]
		for _, e := range s.log[s.search(after.Seq):] {
			if e.u != nil {
				if buf = append(buf, e.u); len(buf) == batch {
					break
				}
			}
		}
		s.mu.RUnlock()
		if len(buf) == 0 {
			return nil
		}
		for _, u := range buf {
			if !fn(u) {
				return nil
			}
			after = u.Pos
		}
	}
}

// Follow calls fn with every update appended after after until ctx is
// done. The newest appends are delivered whether or not per-topic limits
// have already discarded them; a follower further behind skips what was
// discarded, and one behind the global limits skips to the oldest update
// they retain.
func (s *MemoryStore) Follow(ctx context.Context, after Position, fn func(*Update)) error {
	const batch = 256
	var buf []*Update
	next := after.Seq + 1
	for {
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return ErrClosed
		}
		if after.Epoch != "" && after.Epoch != s.epoch {
			s.mu.RUnlock()
			return ErrEpochChanged
		}
		changed := s.changed
		next = max(next, s.floor)
		buf = buf[:0]
		switch {
		case next >= s.next:
		case next >= s.tailFirst:
			buf = append(buf, s.tail[next-s.tailFirst:]...)
		default: // behind the tail: what is retained, then the tail
			for _, e := range s.log[s.search(next-1):] {
				if e.seq >= s.tailFirst || len(buf) == batch {
					break
				}
				if e.u != nil {
					buf = append(buf, e.u)
				}
			}
			if len(buf) == 0 {
				next = s.tailFirst
				s.mu.RUnlock()
				continue
			}
		}
		s.mu.RUnlock()
		for _, u := range buf {
			fn(u)
			next = u.Pos.Seq + 1
		}
		if len(buf) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Bounds returns the oldest and newest retained positions.
func (s *MemoryStore) Bounds(ctx context.Context) (oldest, newest Position, err error) {
	s.expire()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Position{}, Position{}, ErrClosed
	}
	oldest, newest = Position{Epoch: s.epoch}, Position{Epoch: s.epoch}
	if len(s.log) > 0 {
		oldest.Seq = s.log[0].seq
		newest.Seq = s.log[len(s.log)-1].seq
	}
	return oldest, newest, nil
}

// Size returns the number of retained updates and their size in bytes,
// as MaxBytes counts it. It is cheap: it copies nothing.
func (s *MemoryStore) Size() (updates int, bytes int64) {
	s.expire()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live, int64(s.bytes)
}

// Close discards the history and wakes every follower, which returns
// ErrClosed. Close is idempotent.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.log, s.ids, s.topics, s.ages, s.tail = nil, nil, nil, nil, nil
		close(s.changed)
	}
	return nil
}

// ageHeap orders the topics with a MaxAge by the deadline of their oldest
// update: the first one to expire is ages[0].
type ageHeap []*topicQueue

func (h ageHeap) deadline(i int) time.Time {
	return h[i].items[0].u.Time.Add(h[i].lim.MaxAge)
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
