package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// MemoryConfig configures a MemoryStore. The zero value is usable.
type MemoryConfig struct {
	// MaxUpdates caps how many updates are retained; the oldest are
	// discarded first. Zero means 10000.
	MaxUpdates int
	// MaxBytes caps the total payload size retained (data, ID and type of
	// every update). Zero means 64 MiB.
	MaxBytes int
}

// MemoryStore is a Store that keeps a bounded window of history in memory.
// It is the single-process store with no durability: its history and its
// epoch are lost when the process exits. It is safe for concurrent use.
type MemoryStore struct {
	cfg   MemoryConfig
	epoch string

	mu      sync.RWMutex
	log     []*Update // retained updates, oldest first; log[i].Pos.Seq == first+i
	first   uint64    // seq of log[0]; 1 when empty and nothing was ever appended
	bytes   int
	ids     map[string]idRef // id -> the earliest retained update with it
	changed chan struct{}    // closed and replaced on every append
	closed  bool
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore with a fresh random epoch.
func NewMemoryStore(cfg MemoryConfig) *MemoryStore {
	if cfg.MaxUpdates <= 0 {
		cfg.MaxUpdates = 10000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	return &MemoryStore{
		cfg:     cfg,
		epoch:   newEpoch(),
		first:   1,
		ids:     make(map[string]idRef),
		changed: make(chan struct{}),
	}
}

// idRef locates the earliest retained update with an ID and counts the
// retained updates that share it.
type idRef struct {
	seq uint64
	n   int
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Append adds u to the log and wakes every follower.
func (s *MemoryStore) Append(ctx context.Context, u *Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	u.Pos = Position{Seq: s.first + uint64(len(s.log)), Epoch: s.epoch}
	s.log = append(s.log, u)
	s.bytes += u.size()
	ref, ok := s.ids[u.ID]
	if !ok {
		ref.seq = u.Pos.Seq
	}
	ref.n++
	s.ids[u.ID] = ref
	for len(s.log) > 1 && (len(s.log) > s.cfg.MaxUpdates || s.bytes > s.cfg.MaxBytes) {
		s.evictOldest()
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// evictOldest discards log[0]. The caller holds s.mu.
func (s *MemoryStore) evictOldest() {
	old := s.log[0]
	s.log[0] = nil
	s.log = s.log[1:]
	s.first++
	s.bytes -= old.size()
	ref := s.ids[old.ID]
	if ref.n--; ref.n == 0 {
		delete(s.ids, old.ID)
	} else {
		// A later update reuses the ID: it becomes the earliest. Only
		// reused IDs pay for this scan.
		for _, u := range s.log {
			if u.ID == old.ID {
				ref.seq = u.Pos.Seq
				break
			}
		}
		s.ids[old.ID] = ref
	}
	if cap(s.log) > 2*s.cfg.MaxUpdates && len(s.log) < cap(s.log)/4 {
		s.log = append([]*Update(nil), s.log...)
	}
}

// Lookup returns the position of the earliest retained update with id.
func (s *MemoryStore) Lookup(ctx context.Context, id string) (Position, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Position{}, ErrClosed
	}
	ref, ok := s.ids[id]
	if !ok {
		return Position{}, ErrNotFound
	}
	return Position{Seq: ref.seq, Epoch: s.epoch}, nil
}

// Read calls fn with the retained updates after after, oldest first. It
// holds no lock while fn runs.
func (s *MemoryStore) Read(ctx context.Context, after Position, fn func(*Update) bool) error {
	const batch = 256
	var buf []*Update
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
		start := 0
		if after.Seq >= s.first {
			start = int(after.Seq - s.first + 1)
		}
		if start >= len(s.log) {
			s.mu.RUnlock()
			return nil
		}
		end := min(start+batch, len(s.log))
		buf = append(buf[:0], s.log[start:end]...)
		s.mu.RUnlock()
		for _, u := range buf {
			if !fn(u) {
				return nil
			}
			after = u.Pos
		}
	}
}

// Follow calls fn with every update appended after after until ctx is done.
func (s *MemoryStore) Follow(ctx context.Context, after Position, fn func(*Update)) error {
	var buf []*Update
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
		next := after.Seq + 1
		if next < s.first {
			next = s.first // fell behind retention; skip what was discarded
		}
		buf = buf[:0]
		if i := int(next - s.first); i < len(s.log) {
			buf = append(buf, s.log[i:]...)
		}
		s.mu.RUnlock()
		for _, u := range buf {
			fn(u)
			after = u.Pos
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Position{}, Position{}, ErrClosed
	}
	oldest, newest = Position{Epoch: s.epoch}, Position{Epoch: s.epoch}
	if len(s.log) > 0 {
		oldest.Seq = s.first
		newest.Seq = s.first + uint64(len(s.log)) - 1
	}
	return oldest, newest, nil
}

// Close discards the history and wakes every follower, which returns
// ErrClosed. Close is idempotent.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.log, s.ids = nil, nil
		close(s.changed)
	}
	return nil
}
