package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ssehub/ssehub/hub"
)

// FileName is the name of the database file inside the data directory.
const FileName = "data.db"

var (
	bucketLog  = []byte("log")
	bucketIDs  = []byte("ids")
	bucketMeta = []byte("meta")
	keyEpoch   = []byte("epoch")
	// keyState holds the next seq, the retained bytes and the retained
	// count, 8 bytes each. Stores written before per-topic retention kept
	// only the first two: their count is the span of the log.
	keyState = []byte("state")
)

// Store is a hub.Store kept in a bbolt file. It is safe for concurrent use.
// Open starts its writer goroutine and Close stops it.
//
// Lock order: mu is never held while waiting for the writer; the writer
// takes mu (for writing) only after a transaction has been committed.
type Store struct {
	cfg   Config
	db    *bolt.DB
	dir   string
	epoch string

	reqs       chan *request
	quit       chan struct{} // closed by Close: the writer stops
	writerDone chan struct{} // closed when the writer has stopped
	closeOnce  sync.Once

	// Writer-owned: the next seq to assign, the retained bytes and count,
	// and whether the topic buckets may hold entries.
	next       uint64
	bytes      int64
	count      uint64
	topicIndex bool

	mu        sync.RWMutex
	closed    bool
	first     uint64        // oldest retained seq; first > last when empty
	last      uint64        // newest durable seq; 0 before any append
	newest    uint64        // newest retained seq; 0 when empty
	floor     uint64        // global limits deleted everything before it
	retained  int64         // bytes of the retained records (Size)
	kept      uint64        // number of retained records (Size)
	tail      []*hub.Update // recent updates, tail[i].Pos.Seq == tailFirst+i
	tailFirst uint64
	changed   chan struct{} // closed and replaced after every commit
}

var _ hub.Store = (*Store)(nil)

// request is one Append waiting for the writer.
type request struct {
	u     *hub.Update
	rec   []byte
	idp   [16]byte    // idPrefix(u.ID)
	votes []topicVote // its limited topics
	// pinned: one of its topics has no limit, so only the global limits
	// delete it.
	pinned bool
	state  atomic.Int32 // pending, taken or canceled
	done   chan error   // capacity 1; the writer answers every taken request
}

const (
	pending int32 = iota
	taken
	canceled
)

// Open opens the store in dir, creating the directory and an empty store
// (with a new epoch) if needed, and starts its writer. It fails with an
// error naming dir if another process has the directory open, after
// waiting cfg.LockTimeout for it to be released.
func Open(dir string, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: creating data directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{
		Timeout: cfg.LockTimeout,
		// The freelist is rebuilt when the file is opened instead of being
		// written by every commit: one page write less per fsync.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: data directory %s is in use by another ssehub process (its lock was not released within %v)", dir, cfg.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: opening %s: %w", dir, err)
	}
	s := &Store{
		cfg:        cfg,
		db:         db,
		dir:        dir,
		reqs:       make(chan *request, cfg.MaxBatch),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		changed:    make(chan struct{}),
	}
	if err := db.Update(s.load); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: opening %s: %w", dir, err)
	}
	go s.run()
	return s, nil
}

// load creates the buckets and epoch of a new store and reads the state of
// an existing one.
func (s *Store) load(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketLog, bucketIDs, bucketMeta, bucketTopics, bucketTopicState, bucketAges} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if err := upgradeIDs(tx); err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	if e := meta.Get(keyEpoch); e != nil {
		s.epoch = string(e)
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.epoch = hex.EncodeToString(b[:])
		if err := meta.Put(keyEpoch, []byte(s.epoch)); err != nil {
			return err
		}
	}
	s.next = 1
	st := meta.Get(keyState)
	switch len(st) {
	case 0:
	case 16, 24:
		s.next = binary.BigEndian.Uint64(st)
		s.bytes = int64(binary.BigEndian.Uint64(st[8:]))
	default:
		return fmt.Errorf("%w: state of %d bytes", errCorrupt, len(st))
	}
	s.last = s.next - 1
	s.first = s.next
	c := tx.Bucket(bucketLog).Cursor()
	if k, _ := c.First(); k != nil {
		s.first = binary.BigEndian.Uint64(k)
		k, _ = c.Last()
		s.newest = binary.BigEndian.Uint64(k)
	}
	if len(st) == 24 {
		s.count = binary.BigEndian.Uint64(st[16:])
	} else if s.newest != 0 {
		s.count = s.newest - s.first + 1 // no holes before per-topic retention
	}
	s.floor, s.retained, s.kept = s.first, s.bytes, s.count
	k, _ := tx.Bucket(bucketTopics).Cursor().First()
	s.topicIndex = s.cfg.TopicLimits != nil || k != nil
	return nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Append writes u durably and sets u.Pos. It returns once the transaction
// holding u has been fsynced; concurrent calls share that transaction. If u
// has no Time, Append sets it to Config.Now(). If ctx ends before the
// writer has taken u, Append returns ctx's error and u is not appended;
// once taken, Append waits for the commit. A write error fails every
// Append of the batch with an error wrapping it, and none of them is
// appended.
func (s *Store) Append(ctx context.Context, u *hub.Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.quit:
		return hub.ErrClosed
	default:
	}
	if u.Time.IsZero() {
		u.Time = s.cfg.Now()
	}
	r := &request{u: u, rec: encode(make([]byte, 0, encodedSize(u)), u), done: make(chan error, 1)}
	r.idp = idPrefix(u.ID)
	r.votes, r.pinned = votes(s.cfg.TopicLimits, u)
	select {
	case s.reqs <- r:
	case <-s.quit:
		return hub.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(pending, canceled) {
			return ctx.Err()
		}
		return <-r.done
	case <-s.writerDone:
		if r.state.CompareAndSwap(pending, canceled) {
			return hub.ErrClosed
		}
		return <-r.done
	}
}

// run is the writer: it commits pending appends in batches until Close.
func (s *Store) run() {
	defer close(s.writerDone)
	tick := time.NewTicker(s.cfg.RetentionInterval)
	defer tick.Stop()
	batch := make([]*request, 0, s.cfg.MaxBatch)
	prev := 0 // appends in the previous transaction
	for {
		batch = batch[:0]
		select {
		case <-s.quit:
			for {
				select {
				case r := <-s.reqs:
					if r.state.CompareAndSwap(pending, taken) {
						r.done <- hub.ErrClosed
					}
				default:
					return
				}
			}
		case <-tick.C:
			s.commit(nil)
			continue
		case r := <-s.reqs:
			batch = s.take(batch, r)
		}
	more:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case r := <-s.reqs:
				batch = s.take(batch, r)
			default:
				break more
			}
		}
		if len(batch) > 0 && prev >= s.cfg.delayAfter && s.cfg.CommitDelay > 0 {
			batch = s.linger(batch)
		}
		if len(batch) > 0 {
			s.commit(batch)
			prev = len(batch)
		}
	}
}

// linger adds to batch the appends that arrive within CommitDelay, until
// batch is full or the store closes.
func (s *Store) linger(batch []*request) []*request {
	timeout := s.cfg.after(s.cfg.CommitDelay)
	for len(batch) < s.cfg.MaxBatch {
		select {
		case r := <-s.reqs:
			batch = s.take(batch, r)
		case <-timeout:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// take adds r to batch unless its Append was canceled.
func (s *Store) take(batch []*request, r *request) []*request {
	if r.state.CompareAndSwap(pending, taken) {
		batch = append(batch, r)
	}
	return batch
}

// commit writes batch (which may be empty: retention only) in one
// transaction, then publishes it and answers its requests.
func (s *Store) commit(batch []*request) {
	now := s.cfg.Now()
	next := s.next
	floor := s.floor // writer-owned in practice: only the writer changes it
	last := next - 1 + uint64(len(batch))
	if len(batch) == 0 && !s.mustEvict(now) {
		return
	}
	var first, newest uint64
	var w *txn
	err := s.db.Update(func(tx *bolt.Tx) error {
		w = &txn{
			log: tx.Bucket(bucketLog), ids: tx.Bucket(bucketIDs),
			topics: tx.Bucket(bucketTopics), state: tx.Bucket(bucketTopicState), ages: tx.Bucket(bucketAges),
			total: s.bytes, count: s.count, budget: 2*len(batch) + 1024, topicIndex: s.topicIndex,
		}
		w.log.FillPercent = 1   // keys only ever grow: pack the pages
		w.ids.FillPercent = 0.9 // most keys grow (see ids.go)
		for i, r := range batch {
			seq := next + uint64(i)
			if err := w.log.Put(seqKey(seq), r.rec); err != nil {
				return err
			}
			if err := w.ids.Put(idKey(r.idp, seq), nil); err != nil {
				return err
			}
			w.total += int64(len(r.rec))
			w.count++
			if err := w.vote(seq, r); err != nil {
				return err
			}
		}
		// Global retention: delete from the oldest while a limit is
		// exceeded, at most a bounded number per transaction.
		c := w.log.Cursor()
		for w.budget > 0 {
			k, v := c.First()
			if k == nil {
				break
			}
			seq := binary.BigEndian.Uint64(k)
			h, err := decodeHeader(v)
			if err != nil {
				return fmt.Errorf("%w at seq %d", err, seq)
			}
			if !s.expired(w.count, w.total, h.time, now) {
				break
			}
			w.budget--
			if err := w.deleteUpdate(seq, v, true); err != nil {
				return err
			}
			floor = seq + 1
		}
		if err := w.expireTopics(now); err != nil {
			return err
		}
		first = last + 1
		if k, _ := c.First(); k != nil {
			first = binary.BigEndian.Uint64(k)
			k, _ = c.Last()
			newest = binary.BigEndian.Uint64(k)
		}
		if len(batch) == 0 && w.count == s.count && w.total == s.bytes {
			return nil
		}
		var st [24]byte
		binary.BigEndian.PutUint64(st[:], last+1)
		binary.BigEndian.PutUint64(st[8:], uint64(w.total))
		binary.BigEndian.PutUint64(st[16:], w.count)
		return tx.Bucket(bucketMeta).Put(keyState, st[:])
	})
	if err != nil {
		err = fmt.Errorf("boltstore: appending to %s: %w", s.dir, err)
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	s.next, s.bytes, s.count = last+1, w.total, w.count
	for i, r := range batch {
		r.u.Pos = hub.Position{Seq: next + uint64(i), Epoch: s.epoch}
	}
	s.mu.Lock()
	s.first, s.last, s.newest, s.floor = first, last, newest, floor
	s.retained, s.kept = w.total, w.count
	if len(batch) > 0 {
		if len(s.tail) == 0 || s.tailFirst+uint64(len(s.tail)) != next {
			s.tail, s.tailFirst = s.tail[:0], next
		}
		for _, r := range batch {
			s.tail = append(s.tail, r.u)
		}
		if n := len(s.tail); n > 2*s.cfg.TailSize {
			// Copy rather than reslice: followers may hold the old array.
			s.tail = slices.Clone(s.tail[n-s.cfg.TailSize:])
			s.tailFirst += uint64(n - s.cfg.TailSize)
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	for _, r := range batch {
		r.done <- nil
	}
}

// expired reports whether the oldest of count retained updates, holding
// total bytes, must go. The newest update is kept unless it is too old.
func (s *Store) expired(count uint64, total int64, t time.Time, now time.Time) bool {
	if count > uint64(s.cfg.MaxUpdates) || count > 1 && total > s.cfg.MaxBytes {
		return true
	}
	return s.cfg.MaxAge > 0 && !t.IsZero() && now.Sub(t) > s.cfg.MaxAge
}

// mustEvict reports whether the oldest update has outlived MaxAge, or an
// update has outlived the age limit of one of its topics.
func (s *Store) mustEvict(now time.Time) bool {
	if s.count == 0 {
		return false
	}
	var old bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		if _, v := tx.Bucket(bucketLog).Cursor().First(); v != nil && s.cfg.MaxAge > 0 {
			h, err := decodeHeader(v)
			old = err == nil && !h.time.IsZero() && now.Sub(h.time) > s.cfg.MaxAge
		}
		if k, _ := tx.Bucket(bucketAges).Cursor().First(); k != nil && !old {
			old = int64(binary.BigEndian.Uint64(k)^1<<63) < now.UnixNano()
		}
		return nil
	})
	return old
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// view runs fn in a read transaction unless the store is closed. It holds
// s.mu for reading, so fn sees first and last consistent with the
// transaction or older than it.
func (s *Store) view(fn func(tx *bolt.Tx, first, last uint64) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return hub.ErrClosed
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx, s.first, s.last) })
}

// Lookup returns the position of the earliest retained update with id,
// with one index seek and one record read.
func (s *Store) Lookup(ctx context.Context, id string) (hub.Position, error) {
	if err := ctx.Err(); err != nil {
		return hub.Position{}, err
	}
	p := idPrefix(id)
	var found uint64
	err := s.view(func(tx *bolt.Tx, first, last uint64) error {
		logB := tx.Bucket(bucketLog)
		c := tx.Bucket(bucketIDs).Cursor()
		for k, _ := c.Seek(p[:]); k != nil && bytes.HasPrefix(k, p[:]); k, _ = c.Next() {
			seq := binary.BigEndian.Uint64(k[16:])
			if seq < first || seq > last {
				continue
			}
			rec := logB.Get(k[16:])
			if rec == nil {
				continue
			}
			hd, err := decodeHeader(rec)
			if err != nil {
				return fmt.Errorf("%w at seq %d", err, seq)
			}
			if string(hd.id) == id {
				found = seq
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return hub.Position{}, err
	}
	if found == 0 {
		return hub.Position{}, hub.ErrNotFound
	}
	return hub.Position{Seq: found, Epoch: s.epoch}, nil
}

// Read calls fn with the retained updates after after, oldest first. It
// decodes them in growing batches, holding no transaction or lock while fn
// runs; updates discarded by retention between batches are skipped.
func (s *Store) Read(ctx context.Context, after hub.Position, fn func(*hub.Update) bool) error {
	return s.read(ctx, after, 0, func(u *hub.Update) bool { return fn(u) })
}

// read is Read up to seq upto (0: no bound).
func (s *Store) read(ctx context.Context, after hub.Position, upto uint64, fn func(*hub.Update) bool) error {
	var buf []*hub.Update
	size := 16
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf = buf[:0]
		err := s.view(func(tx *bolt.Tx, first, last uint64) error {
			if after.Epoch != "" && after.Epoch != s.epoch {
				return hub.ErrEpochChanged
			}
			if upto != 0 {
				last = min(last, upto)
			}
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.Seek(seqKey(max(after.Seq+1, first))); k != nil && len(buf) < size; k, v = c.Next() {
				seq := binary.BigEndian.Uint64(k)
				if seq > last {
					break
				}
				u, err := decode(v, hub.Position{Seq: seq, Epoch: s.epoch})
				if err != nil {
					return fmt.Errorf("%w at seq %d", err, seq)
				}
				buf = append(buf, u)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(buf) == 0 {
			return nil
		}
		for _, u := range buf {
			if !fn(u) {
				return nil
			}
			after = u.Pos
		}
		size = min(size*4, 1024)
	}
}

// Follow calls fn with every update appended after after, in order, once
// it is durable. Recent updates come from memory (the same values Append
// was given), whether or not per-topic limits have deleted them since;
// older ones are read from disk first, skipping what retention deleted. A
// position older than what the global limits retain follows from the
// oldest they retain.
func (s *Store) Follow(ctx context.Context, after hub.Position, fn func(*hub.Update)) error {
	if after.Epoch != "" && after.Epoch != s.epoch {
		s.mu.RLock()
		closed := s.closed
		s.mu.RUnlock()
		if closed {
			return hub.ErrClosed
		}
		return hub.ErrEpochChanged
	}
	next := after.Seq + 1
	var buf []*hub.Update
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return hub.ErrClosed
		}
		changed, last := s.changed, s.last
		next = max(next, s.floor)
		buf = buf[:0]
		disk := false
		if next <= last {
			if len(s.tail) > 0 && next >= s.tailFirst {
				buf = append(buf, s.tail[next-s.tailFirst:]...)
			} else {
				disk = true
			}
		}
		s.mu.RUnlock()
		if disk {
			err := s.read(ctx, hub.Position{Seq: next - 1}, last, func(u *hub.Update) bool {
				fn(u)
				next = u.Pos.Seq + 1
				return ctx.Err() == nil
			})
			if err != nil {
				return err
			}
			continue
		}
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
func (s *Store) Bounds(ctx context.Context) (oldest, newest hub.Position, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return hub.Position{}, hub.Position{}, hub.ErrClosed
	}
	oldest, newest = hub.Position{Epoch: s.epoch}, hub.Position{Epoch: s.epoch}
	if s.kept > 0 {
		oldest.Seq, newest.Seq = s.first, s.newest
	}
	return oldest, newest, nil
}

// Size returns the number of retained updates and the size of their
// records in bytes, as MaxBytes counts them. It is cheap: it reads no
// history.
func (s *Store) Size() (updates int, bytes int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int(s.kept), s.retained
}

// Close stops the writer, failing appends it has not taken with
// hub.ErrClosed (appends already in a transaction complete), wakes every
// follower, which returns hub.ErrClosed, and closes the file. Close is
// idempotent: later calls return nil.
func (s *Store) Close() error {
	err := hub.ErrClosed
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.writerDone
		s.mu.Lock()
		s.closed = true
		s.tail = nil
		close(s.changed)
		s.mu.Unlock()
		err = s.db.Close()
	})
	if errors.Is(err, hub.ErrClosed) {
		return nil
	}
	return err
}
