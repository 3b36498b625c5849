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
	// keyLog holds the number of the newest write-ahead log segment bbolt
	// knows of (8 bytes) and a byte that is 1 if the store was closed
	// with every logged update applied (the log holds nothing bbolt
	// lacks), else 0. It is the evidence that a log existed, and how far
	// it reached, when its newest segments are lost.
	keyLog = []byte("wal")
	// keyEpochStart holds the first seq of the current epoch (8 bytes) and
	// the previous epoch, when AcceptLostUpdates started one: the updates
	// before it belong to the previous epoch for Lookup.
	keyEpochStart = []byte("epochstart")
	// keySealed holds the first seq whose record had to be sealed (8
	// bytes): the next seq when the store was first opened with seals.
	keySealed = []byte("sealed")
)

// Store is a hub.Store kept in a bbolt file behind a write-ahead log. It
// is safe for concurrent use. Open starts its writer and applier
// goroutines and Close stops them.
//
// Lock order: mu is never held while waiting for the writer or the
// applier; they take mu (for writing) only after their own I/O.
type Store struct {
	cfg   Config
	db    *bolt.DB
	dir   string
	epoch string
	// epochStart is the first seq of epoch if an earlier one was ended by
	// a loss (AcceptLostUpdates), else 0; oldEpoch is that earlier epoch.
	epochStart uint64
	oldEpoch   string
	// bare: records of seqs below it may be bare (see unseal).
	bare uint64
	// lost is the damage Open accepted (Config.AcceptLostUpdates).
	lost error

	reqs        chan *request
	quit        chan struct{} // closed by Close: the writer stops
	writerDone  chan struct{} // closed when the writer has stopped
	applierDone chan struct{} // closed when the applier has stopped
	kick        chan struct{} // capacity 1: the applier has work or a retry to do
	hurry       chan struct{} // capacity 1: a reader waits for the applier
	closeOnce   sync.Once

	// Writer-owned: the next seq to assign, the log, and the records of
	// the frame being written (reused).
	next uint64
	wal  *wal
	recs [][]byte
	// frames counts the frames written, for tests.
	frames atomic.Uint64

	// Applier-owned: the next seq bbolt will hold, the retained bytes and
	// count, and whether the topic buckets may hold entries.
	dbNext     uint64
	logSeg     uint64 // keyLog's segment number
	logClean   bool   // keyLog's clean flag, as Open found it
	bytes      int64
	count      uint64
	topicIndex bool
	// inDB is the newest seq bbolt holds durably, for the writer, which
	// reuses the log segments holding nothing newer.
	inDB atomic.Uint64
	// gathering is set while the applier waits in gather: the writer
	// wakes it only for a full batch.
	gathering atomic.Bool
	// awaited is how many queued appends the writer waits for in wait
	// (0 when it is not waiting); the Append that queues the last of them
	// signals filled. inbox counts the requests sent to reqs and not yet
	// taken: the writer stores awaited then reads inbox, an Append adds to
	// inbox then reads awaited, so one of them sees the other's write.
	awaited atomic.Int64
	inbox   atomic.Int64
	filled  chan struct{}

	mu        sync.RWMutex
	closed    bool
	first     uint64        // oldest seq retained in bbolt; first > applied when none
	last      uint64        // newest durable (logged) seq; 0 before any append
	applied   uint64        // newest seq bbolt holds
	newest    uint64        // newest seq retained in bbolt; 0 when none
	floor     uint64        // global limits deleted everything before it
	retained  int64         // bytes of the records retained in bbolt (Size)
	kept      uint64        // number of records retained in bbolt (Size)
	queue     []*request    // logged, not yet in bbolt, oldest first
	queued    int64         // bytes of the records in queue
	applyErr  error         // why the last attempt to apply failed; nil if it did not
	attempts  uint64        // attempts to apply so far
	tail      []*hub.Update // recent updates, tail[i].Pos.Seq == tailFirst+i
	tailFirst uint64
	tailBytes int64         // tailCost of the updates in tail
	changed   chan struct{} // closed and replaced after every frame and every apply
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
	seq    uint64       // set once logged
	seg    uint64       // the log segment it was logged in; 0 if unknown
}

// newRequest returns the request to append u, whose record is rec.
func (s *Store) newRequest(u *hub.Update, rec []byte) *request {
	r := &request{u: u, rec: rec, idp: idPrefix(u.ID)}
	r.votes, r.pinned = votes(s.cfg.TopicLimits, u)
	return r
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
	path := filepath.Join(dir, FileName)
	inUse := fmt.Errorf("boltstore: data directory %s is in use by another ssehub process (its lock was not released within %v)", dir, cfg.LockTimeout)
	logKeys, err := checkLocked(path, cfg.LockTimeout)
	var damage fileDamage
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, inUse
	case errors.As(err, &damage) || errors.Is(err, errPanicked):
		return nil, damagedFile(path, err)
	case err != nil:
		return nil, fmt.Errorf("boltstore: checking %s: %w", path, err)
	}
	var db *bolt.DB
	err = guard(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout: cfg.LockTimeout,
			// The freelist is rebuilt when the file is opened instead of
			// being written by every commit: one page write less per fsync.
			NoFreelistSync: true,
			FreelistType:   bolt.FreelistMapType,
		})
		return err
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, inUse
	}
	if errors.Is(err, errPanicked) || errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		if db != nil {
			_ = db.Close()
		}
		return nil, damagedFile(path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: opening %s: %w", dir, err)
	}
	s := &Store{
		cfg:         cfg,
		db:          db,
		dir:         dir,
		reqs:        make(chan *request, cfg.MaxBatch),
		quit:        make(chan struct{}),
		writerDone:  make(chan struct{}),
		applierDone: make(chan struct{}),
		kick:        make(chan struct{}, 1),
		filled:      make(chan struct{}, 1),
		hurry:       make(chan struct{}, 1),
		changed:     make(chan struct{}),
	}
	if err := guard(func() error { return db.Update(s.load) }); err != nil {
		_ = db.Close()
		if errors.Is(err, errPanicked) || errors.Is(err, errCorrupt) || errors.Is(err, errDamagedRecord) || errors.Is(err, berrors.ErrIncompatibleValue) {
			return nil, damagedFile(path, err)
		}
		return nil, fmt.Errorf("boltstore: opening %s: %w", dir, err)
	}
	if s.count != logKeys {
		_ = db.Close()
		return nil, damagedFile(path, fmt.Errorf("its log bucket holds %d updates, its state says %d", logKeys, s.count))
	}
	if err := s.recover(); err != nil {
		_ = db.Close()
		if errors.Is(err, errLogDamaged) {
			return nil, fmt.Errorf("boltstore: opening %s: %w; updates it acknowledged may be lost, so the store does not open: restore %s from a copy taken while the hub was stopped, or open it once with AcceptLostUpdates (ssehub serve --accept-lost-updates) to keep what it holds under a new epoch, which tells resuming clients of the gap", dir, err, dir)
		}
		return nil, fmt.Errorf("boltstore: opening %s: %w", dir, err)
	}
	go s.run()
	go s.applier()
	return s, nil
}

// recover applies to bbolt the updates the write-ahead log holds after
// bbolt's newest, and starts a log segment for the writer. Unless the
// store was closed cleanly, it fails with errLogDamaged if the log is
// damaged at its end or lacks segments bbolt knows of: updates it
// acknowledged may be lost.
func (s *Store) recover() error {
	w, rec, err := openWAL(s.dir, s.cfg.SegmentSize, s.next, s.cfg.bufferedWAL, s.cfg.walFault)
	if err != nil {
		return err
	}
	var lost error
	if !s.logClean {
		switch {
		case rec.damage != "":
			lost = fmt.Errorf("%w at its end: %s", errLogDamaged, rec.damage)
		case s.logSeg > rec.newest:
			lost = fmt.Errorf("%w: %s is missing (%s records it)", errLogDamaged, w.path(s.logSeg), FileName)
		case rec.expect > rec.newest:
			lost = fmt.Errorf("%w: %s is missing (%s ends pointing to it)", errLogDamaged, w.path(rec.expect), rec.pointer)
		}
	}
	if lost != nil && !s.cfg.AcceptLostUpdates {
		return lost
	}
	for len(rec.recs) > 0 {
		n := min(len(rec.recs), maxApply)
		batch := make([]*request, n)
		for i, b := range rec.recs[:n] {
			seq := rec.first + uint64(i)
			u, err := decode(b, hub.Position{Seq: seq, Epoch: s.epoch})
			if err != nil {
				return fmt.Errorf("%w at seq %d in the write-ahead log", err, seq)
			}
			batch[i] = s.newRequest(u, b)
			batch[i].seq = seq
		}
		publish, err := s.commit(batch)
		if err != nil {
			return fmt.Errorf("applying the write-ahead log: %w", err)
		}
		publish()
		rec.first += uint64(n)
		rec.recs = rec.recs[n:]
	}
	s.next = s.dbNext
	if lost != nil {
		if err := s.newEpoch(); err != nil {
			return err
		}
		s.lost = lost
	}
	if err := w.next(s.dbNext - 1); err != nil { // every segment is applied
		return err
	}
	// From here on the log may hold updates bbolt lacks: record the
	// segment they go to before the first is acknowledged.
	if err := s.markLog(w.segs[len(w.segs)-1].num, false); err != nil {
		_ = w.close()
		return err
	}
	s.wal = w
	s.last = s.next - 1
	s.inDB.Store(s.last)
	return nil
}

// newEpoch starts a new epoch at s.next, after a loss of acknowledged
// updates the operator accepted.
func (s *Store) newEpoch() error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	epoch := hex.EncodeToString(b[:])
	v := append(binary.BigEndian.AppendUint64(nil, s.next), s.epoch...)
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyEpoch, []byte(epoch)); err != nil {
			return err
		}
		return meta.Put(keyEpochStart, v)
	})
	if err != nil {
		return fmt.Errorf("starting a new epoch: %w", err)
	}
	s.oldEpoch, s.epoch, s.epochStart = s.epoch, epoch, s.next
	return nil
}

// markLog records in bbolt that the log has reached segment num, and
// whether the store is closing with every logged update applied.
func (s *Store) markLog(num uint64, clean bool) error {
	v := logMark(num, clean)
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyLog, v) })
	if err != nil {
		return fmt.Errorf("recording the write-ahead log in %s: %w", FileName, err)
	}
	s.logSeg = num
	return nil
}

// logMark is keyLog's value: the segment number, then 1 when the store
// was closed cleanly (bbolt holds everything the log does), else 0.
func logMark(num uint64, clean bool) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 9), num)
	if clean {
		return append(v, 1)
	}
	return append(v, 0)
}

// load creates the buckets and epoch of a new store and reads the state of
// an existing one.
func (s *Store) load(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketLog, bucketIDs, bucketMeta, bucketTopics, bucketTopicState, bucketAges} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keySealed); {
	case len(v) == 8:
		s.bare = binary.BigEndian.Uint64(v)
	case v != nil:
		return fmt.Errorf("%w: sealed mark of %d bytes", errCorrupt, len(v))
	default:
		// Every record to come is sealed; those before are bare.
		s.bare = 1
		if st := meta.Get(keyState); len(st) >= 8 {
			s.bare = binary.BigEndian.Uint64(st)
		}
		if err := meta.Put(keySealed, seqKey(s.bare)); err != nil {
			return err
		}
	}
	if err := upgradeIDs(tx, s.bare); err != nil {
		return err
	}
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
	if v := meta.Get(keyEpochStart); v != nil {
		if len(v) < 9 {
			return fmt.Errorf("%w: epoch start of %d bytes", errCorrupt, len(v))
		}
		s.epochStart, s.oldEpoch = binary.BigEndian.Uint64(v), string(v[8:])
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
	if l := meta.Get(keyLog); l != nil {
		if len(l) != 9 {
			return fmt.Errorf("%w: log mark of %d bytes", errCorrupt, len(l))
		}
		s.logSeg, s.logClean = binary.BigEndian.Uint64(l), l[8] == 1
	}
	s.dbNext = s.next
	s.last = s.next - 1
	s.applied = s.last
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

// Lost returns the damage to the write-ahead log that Open accepted
// because of Config.AcceptLostUpdates, having started a new epoch; nil if
// it found none.
func (s *Store) Lost() error { return s.lost }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Append writes u durably and sets u.Pos. It returns once the log frame
// holding u has been fdatasynced; concurrent calls share that frame. If u
// has no Time, Append sets it to Config.Now(). If ctx ends before the
// writer has taken u, Append returns ctx's error and u is not appended;
// once taken, Append waits for the frame. A write error fails every
// Append of the frame with an error wrapping it, and none of them is
// appended; so does a failure to apply earlier appends to bbolt, until the
// applier succeeds again.
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
	r := s.newRequest(u, encode(make([]byte, 0, encodedSize(u)), u))
	r.done = make(chan error, 1)
	select {
	case s.reqs <- r:
		k := s.inbox.Add(1)
		if n := s.awaited.Load(); n > 0 && k >= n {
			poke(s.filled)
		}
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

// maxApply caps how many updates one bbolt transaction applies.
const maxApply = 8192

// run is the writer: it logs pending appends in batches, one frame and
// one fdatasync each, until Close.
func (s *Store) run() {
	defer close(s.writerDone)
	defer func() { _ = s.wal.close() }()
	batch := make([]*request, 0, s.cfg.MaxBatch)
	prev := 0   // appends in the previous frame
	expect := 0 // appends the next frame can expect: see wait
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
		case r := <-s.reqs:
			batch = s.take(batch, r)
		}
		batch = s.drain(batch)
		switch {
		case prev >= s.cfg.delayAfter && s.cfg.CommitDelay > 0:
			batch = s.wait(batch, s.cfg.after(s.cfg.CommitDelay), s.cfg.MaxBatch)
		case len(batch) < expect && s.cfg.fillWait > 0:
			batch = s.wait(batch, s.cfg.fillAfter(s.cfg.fillWait), expect)
		}
		if len(batch) > 0 {
			queued := s.log(batch)
			prev = len(batch)
			expect = min(prev+queued, s.cfg.MaxBatch)
		}
		// The array is reused: it must not keep answered requests (their
		// updates and records) past the next, smaller, frames.
		clear(batch)
	}
}

// drain adds to batch the appends already waiting, until batch is full.
func (s *Store) drain(batch []*request) []*request {
	for len(batch) < s.cfg.MaxBatch {
		select {
		case r := <-s.reqs:
			batch = s.take(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// wait adds to batch the appends that arrive before timeout, until batch
// holds want or the store closes.
//
// With Config.CommitDelay, the writer waits so after a large frame. Else
// it fills frames: appenders that were answered go on to append again, but
// while a frame is synced the ones that arrive meanwhile queue for the next,
// so that with n appenders in a loop, frames settle at half of them each
// (while one half's frame syncs, the other half queues). A frame waits,
// briefly, for the appenders of the previous frame and those that queued
// during it: then every frame carries them all.
//
// The writer does not take the appends one by one as they arrive: it
// sleeps until the Append that queues the last one it waits for wakes it
// (see awaited). Waking it for each append would cost a switch of
// goroutines per append, on the cores the appenders need.
func (s *Store) wait(batch []*request, timeout <-chan time.Time, want int) []*request {
	defer s.awaited.Store(0)
	for {
		batch = s.drain(batch)
		need := want - len(batch)
		if need <= 0 {
			return batch
		}
		s.awaited.Store(int64(need))
		if s.inbox.Load() >= int64(need) {
			continue // they queued before the store: no signal comes
		}
		select {
		case <-s.filled: // maybe an old signal: drain and check again
		case <-timeout:
			return s.drain(batch)
		case <-s.quit:
			return batch
		}
	}
}

// take adds r, just received from reqs, to batch unless its Append was
// canceled.
func (s *Store) take(batch []*request, r *request) []*request {
	s.inbox.Add(-1)
	if r.state.CompareAndSwap(pending, taken) {
		batch = append(batch, r)
	}
	return batch
}

// log writes batch to the log, publishes it and answers its requests,
// then returns how many appends queued meanwhile. If applying to bbolt is
// failing, it first asks the applier to try again, and fails the batch if
// that fails too.
func (s *Store) log(batch []*request) (queued int) {
	err := s.healthy()
	first := s.next
	if err == nil {
		s.recs = s.recs[:0]
		for _, r := range batch {
			s.recs = append(s.recs, r.rec)
		}
		err = s.wal.append(first, s.recs, s.inDB.Load())
		clear(s.recs)
	}
	if err != nil {
		err = fmt.Errorf("boltstore: appending to %s: %w", s.dir, err)
		for _, r := range batch {
			r.done <- err
		}
		return len(s.reqs)
	}
	queued = len(s.reqs)
	s.frames.Add(1)
	s.next += uint64(len(batch))
	var size int64
	seg := s.wal.segs[len(s.wal.segs)-1].num
	for i, r := range batch {
		r.seq = first + uint64(i)
		r.seg = seg
		r.u.Pos = hub.Position{Seq: r.seq, Epoch: s.epoch}
		size += int64(len(r.rec))
	}
	s.mu.Lock()
	s.last = s.next - 1
	s.queue = append(s.queue, batch...)
	s.queued += size
	if len(s.tail) == 0 || s.tailFirst+uint64(len(s.tail)) != first {
		clear(s.tail)
		s.tail, s.tailFirst, s.tailBytes = s.tail[:0], first, 0
	}
	for _, r := range batch {
		s.tail = append(s.tail, r.u)
		s.tailBytes += tailCost(r.u)
	}
	s.trimTail()
	backlog := s.backlogged()
	kick := !s.gathering.Load() || len(s.queue) >= applyBatch
	s.notify()
	s.mu.Unlock()
	if kick {
		poke(s.kick)
	}
	for _, r := range batch {
		r.done <- nil
	}
	if backlog {
		s.drainBacklog()
	}
	return queued
}

// trimTail keeps in the tail at most 2*TailSize updates and TailBytes
// bytes (see tailCost), and every update bbolt does not hold yet. It
// trims down to TailSize updates and half of TailBytes, so that the copy
// a trim makes is amortized over many appends. s.mu must be held.
func (s *Store) trimTail() {
	n := len(s.tail)
	movable := n - len(s.queue) // the oldest updates, which bbolt holds
	drop := 0
	if keep := max(s.cfg.TailSize, len(s.queue)); n > 2*keep {
		drop = n - keep
	}
	var dropped int64
	for _, u := range s.tail[:drop] {
		dropped += tailCost(u)
	}
	if s.tailBytes > s.cfg.TailBytes {
		for drop < movable && s.tailBytes-dropped > s.cfg.TailBytes/2 {
			dropped += tailCost(s.tail[drop])
			drop++
		}
	}
	if drop == 0 {
		return
	}
	// Copy rather than reslice: followers may hold the old array, and
	// a reslice would keep the dropped updates reachable through it.
	s.tail = slices.Clone(s.tail[drop:])
	s.tailFirst += uint64(drop)
	s.tailBytes -= dropped
}

// tailCost is what an update in the tail is counted for: its fields,
// its SSE frame (the dispatcher encodes every update, and the frame is
// about as large as the fields) and a fixed overhead for the structures.
// It depends only on fields that do not change once appended.
func tailCost(u *hub.Update) int64 {
	n := 2*(len(u.Data)+len(u.ID)+len(u.Type)) + 256
	for _, t := range u.Topics {
		n += len(t) + 16
	}
	return int64(n)
}

// maxBacklog caps how many logged updates may wait for bbolt.
const maxBacklog = 4 * maxApply

// backlogged reports whether the updates waiting for bbolt have reached
// maxBacklog or a segment's worth of bytes: then the writer waits for the
// applier, so that the log stays within a few segments, and so does the
// space bbolt needs to catch up after a full disk is given room again.
// s.mu must be held.
func (s *Store) backlogged() bool {
	return len(s.queue) >= maxBacklog || s.queued >= s.cfg.SegmentSize
}

// drainBacklog waits until the applier has brought the backlog below
// its bounds, applying fails, or the store closes.
func (s *Store) drainBacklog() {
	s.await(func() bool { return !s.backlogged() || s.applyErr != nil }, s.quit, nil)
}

// healthy returns nil unless the last attempt to apply to bbolt failed.
// Then it asks the applier to try again, waits for that attempt and
// returns its error.
func (s *Store) healthy() error {
	s.mu.RLock()
	err, attempts := s.applyErr, s.attempts
	s.mu.RUnlock()
	if err == nil {
		return nil
	}
	poke(s.kick)
	if !s.await(func() bool { return s.attempts > attempts }, s.quit, nil) {
		return hub.ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applyErr
}

// await waits until done, called with s.mu held for reading, holds, after
// every frame and every apply; it pokes nudge (if not nil) before each
// wait. It returns false if stop is closed first.
func (s *Store) await(done func() bool, stop <-chan struct{}, nudge chan struct{}) bool {
	for {
		s.mu.RLock()
		ok, changed := done(), s.changed
		s.mu.RUnlock()
		if ok {
			return true
		}
		if nudge != nil {
			poke(nudge)
		}
		select {
		case <-changed:
		case <-stop:
			return false
		}
	}
}

// poke signals ch (capacity 1) unless a signal is already pending.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// notify wakes followers and waiters. s.mu must be held for writing.
func (s *Store) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// applier brings bbolt up to date with the log, and enforces the age
// limits every RetentionInterval, until the writer has stopped; then it
// applies what is left and returns.
func (s *Store) applier() {
	defer close(s.applierDone)
	tick := time.NewTicker(s.cfg.RetentionInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.kick:
			s.gather()
			s.apply(false)
		case <-s.hurry:
			s.apply(false)
		case <-tick.C:
			s.apply(true)
		case <-s.writerDone:
			s.apply(false)
			return
		}
	}
}

// gather waits, up to ApplyDelay, for the backlog to reach applyBatch
// updates, so that bbolt commits (two fdatasyncs each, and a copy of the
// pages on the path to every change) are few and large. A reader that
// needs bbolt up to date (settle) or a failing apply cuts the wait short.
func (s *Store) gather() {
	s.mu.RLock()
	n, failed := len(s.queue), s.applyErr != nil
	s.mu.RUnlock()
	if n >= applyBatch || failed || s.cfg.ApplyDelay <= 0 {
		return
	}
	timeout := s.cfg.applyAfter(s.cfg.ApplyDelay)
	s.gathering.Store(true)
	defer s.gathering.Store(false)
	for {
		select {
		case <-timeout:
			return
		case <-s.hurry:
			return
		case <-s.writerDone:
			return
		case <-s.kick:
			s.mu.RLock()
			n = len(s.queue)
			s.mu.RUnlock()
			if n >= applyBatch {
				return
			}
		}
	}
}

// applyBatch is the backlog at which the applier stops gathering.
const applyBatch = 4096

// apply commits the queue to bbolt, in transactions of at most maxApply,
// and, if retention is set, enforces the limits even if the queue is
// empty. Between transactions it gathers again, unless a reader waits.
func (s *Store) apply(retention bool) {
	for {
		s.mu.RLock()
		batch := s.queue[:min(len(s.queue), maxApply)]
		// After a failure, try again even with nothing queued (the
		// failure may have been retention's), so that a waiting writer
		// (healthy) gets an answer.
		retention = retention || s.applyErr != nil
		s.mu.RUnlock()
		if len(batch) == 0 && !retention {
			return
		}
		retention = false
		publish, err := s.commit(batch)
		s.mu.Lock()
		s.attempts++
		s.applyErr = err
		if err == nil {
			publish()
			for _, r := range batch {
				s.queued -= int64(len(r.rec))
			}
			// batch shares the queue's array: done with it.
			n := copy(s.queue, s.queue[len(batch):])
			clear(s.queue[n:])
			s.queue = s.queue[:n]
		}
		n := len(s.queue)
		s.notify()
		s.mu.Unlock()
		if err != nil || n == 0 {
			return
		}
		s.gather()
	}
}

// commit writes batch (which may be empty: retention only) to bbolt in one
// transaction. It returns the function that publishes the new state, to
// be called with s.mu held for writing.
func (s *Store) commit(batch []*request) (publish func(), err error) {
	now := s.cfg.Now()
	next := s.dbNext
	floor := s.floor // applier-owned in practice: only the applier changes it
	last := next - 1 + uint64(len(batch))
	if len(batch) == 0 && !s.mustEvict(now) {
		return func() {}, nil
	}
	if s.cfg.applyFault != nil {
		if err := s.cfg.applyFault(); err != nil {
			return nil, fmt.Errorf("boltstore: applying to %s: %w", s.dir, err)
		}
	}
	if len(batch) > 0 && batch[0].seq != next {
		return nil, fmt.Errorf("%w: applying seq %d after %d", errCorrupt, batch[0].seq, next-1)
	}
	var first, newest uint64
	var w *txn
	logSeg := s.logSeg
	if n := len(batch); n > 0 {
		logSeg = max(logSeg, batch[n-1].seg)
	}
	err = guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			w = &txn{
				log: tx.Bucket(bucketLog), ids: tx.Bucket(bucketIDs),
				topics: tx.Bucket(bucketTopics), state: tx.Bucket(bucketTopicState), ages: tx.Bucket(bucketAges),
				total: s.bytes, count: s.count, budget: 2*len(batch) + 1024, topicIndex: s.topicIndex, bare: s.bare,
			}
			w.log.FillPercent = 1   // keys only ever grow: pack the pages
			w.ids.FillPercent = 0.9 // most keys grow (see ids.go)
			// The sealed values, in one buffer that lives until the commit
			// (bbolt keeps the slices until then).
			n := 0
			for _, r := range batch {
				n += sealLen + len(r.rec)
			}
			vals := make([]byte, 0, n)
			for i, r := range batch {
				seq := next + uint64(i)
				at := len(vals)
				vals = seal(vals, seq, r.rec)
				if err := w.log.Put(seqKey(seq), vals[at:len(vals):len(vals)]); err != nil {
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
				rec, err := unseal(k, v, s.bare)
				if err != nil {
					return fmt.Errorf("%w at seq %d", err, seq)
				}
				h, err := decodeHeader(rec)
				if err != nil {
					return fmt.Errorf("%w at seq %d", err, seq)
				}
				if !s.expired(w.count, w.total, h.time, now) {
					break
				}
				w.budget--
				if err := w.deleteUpdate(seq, rec, true); err != nil {
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
			if logSeg > s.logSeg {
				if err := tx.Bucket(bucketMeta).Put(keyLog, logMark(logSeg, false)); err != nil {
					return err
				}
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
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: applying to %s: %w", s.dir, err)
	}
	s.dbNext, s.bytes, s.count, s.logSeg = last+1, w.total, w.count, logSeg
	s.inDB.Store(last)
	return func() {
		s.first, s.applied, s.newest, s.floor = first, last, newest, floor
		s.retained, s.kept = w.total, w.count
	}, nil
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
	_ = guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			if k, v := tx.Bucket(bucketLog).Cursor().First(); v != nil && len(k) == 8 && s.cfg.MaxAge > 0 {
				rec, err := unseal(k, v, s.bare)
				if err == nil {
					var h header
					h, err = decodeHeader(rec)
					old = err == nil && !h.time.IsZero() && now.Sub(h.time) > s.cfg.MaxAge
				}
			}
			if k, _ := tx.Bucket(bucketAges).Cursor().First(); k != nil && !old {
				old = int64(binary.BigEndian.Uint64(k)^1<<63) < now.UnixNano()
			}
			return nil
		})
	})
	return old
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// settle waits until bbolt holds every update logged before the call,
// unless applying is failing: then the ones it lacks are read from the
// tail. It returns ctx's error if ctx ends first, and hub.ErrClosed if the
// store is closed.
func (s *Store) settle(ctx context.Context) error {
	s.mu.RLock()
	target := s.last
	s.mu.RUnlock()
	settled := func() bool { return s.closed || s.applied >= target || s.applyErr != nil }
	if !s.await(settled, ctx.Done(), s.hurry) {
		return ctx.Err()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return hub.ErrClosed
	}
	return nil
}

// unapplied returns the logged updates bbolt does not hold yet, from seq
// from on (only while applying fails, once settled). s.mu must be held.
func (s *Store) unapplied(from uint64) []*hub.Update {
	from = max(from, s.applied+1)
	if from > s.last || len(s.tail) == 0 || from < s.tailFirst {
		return nil
	}
	return s.tail[from-s.tailFirst : s.last-s.tailFirst+1]
}

// view runs fn in a read transaction unless the store is closed. It holds
// s.mu for reading, so fn sees first and applied consistent with the
// transaction or older than it, and the updates bbolt lacks.
func (s *Store) view(fn func(tx *bolt.Tx, first, applied uint64) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return hub.ErrClosed
	}
	return guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error { return fn(tx, s.first, s.applied) })
	})
}

// Lookup returns the position of the earliest retained update with id,
// with one index seek and one record read.
func (s *Store) Lookup(ctx context.Context, id string) (hub.Position, error) {
	if err := s.settle(ctx); err != nil {
		return hub.Position{}, err
	}
	p := idPrefix(id)
	var found uint64
	err := s.view(func(tx *bolt.Tx, first, applied uint64) error {
		logB := tx.Bucket(bucketLog)
		c := tx.Bucket(bucketIDs).Cursor()
		for k, _ := c.Seek(p[:]); k != nil && bytes.HasPrefix(k, p[:]); k, _ = c.Next() {
			if len(k) != 24 {
				return fmt.Errorf("%w: ID index key of %d bytes", errCorrupt, len(k))
			}
			seq := binary.BigEndian.Uint64(k[16:])
			if seq < first || seq > applied {
				continue
			}
			v := logB.Get(k[16:])
			if v == nil {
				continue
			}
			rec, err := unseal(k[16:], v, s.bare)
			if err != nil {
				return fmt.Errorf("%w at seq %d", err, seq)
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
		// Applying is failing: the newest are only in the tail (at
		// most maxBacklog of them).
		for _, u := range s.unapplied(0) {
			if u.ID == id {
				found = u.Pos.Seq
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
	if found < s.epochStart {
		// From before a loss: a client resuming from it must learn of
		// the gap.
		return hub.Position{Seq: found, Epoch: s.oldEpoch}, nil
	}
	return hub.Position{Seq: found, Epoch: s.epoch}, nil
}

// readBatchBytes caps the records one batch of read decodes (past the
// first), so that a reader that stops early, as a replay does after each
// of its own batches, never decodes much more than it takes, whatever the
// size of the updates.
const readBatchBytes = 256 << 10

// Read calls fn with the retained updates after after, oldest first. It
// decodes them in growing batches (16 to 1024 updates, at most
// readBatchBytes past the first), holding no transaction or lock while fn
// runs; updates discarded by retention between batches are skipped.
func (s *Store) Read(ctx context.Context, after hub.Position, fn func(*hub.Update) bool) error {
	return s.read(ctx, after, 0, func(u *hub.Update) bool { return fn(u) })
}

// read is Read up to seq upto (0: no bound).
func (s *Store) read(ctx context.Context, after hub.Position, upto uint64, fn func(*hub.Update) bool) error {
	if err := s.settle(ctx); err != nil {
		return err
	}
	var buf []*hub.Update
	size := 16
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		clear(buf) // the previous batch: fn has seen it
		buf = buf[:0]
		var fromTail bool
		if buf, fromTail = s.readTail(after, upto, size, buf); !fromTail {
			var err error
			if buf, err = s.readDisk(after, upto, size, buf); err != nil {
				return err
			}
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

// readDisk appends to buf up to size updates after after (and at most
// upto, unless 0), decoded from bbolt (at most readBatchBytes of records
// past the first), or, when bbolt holds none of them yet, from the updates
// it has not applied.
func (s *Store) readDisk(after hub.Position, upto uint64, size int, buf []*hub.Update) ([]*hub.Update, error) {
	err := s.view(func(tx *bolt.Tx, first, applied uint64) error {
		if after.Epoch != "" && after.Epoch != s.epoch {
			return hub.ErrEpochChanged
		}
		last := applied
		if upto != 0 {
			last = min(last, upto)
		}
		c := tx.Bucket(bucketLog).Cursor()
		n := 0
		for k, v := c.Seek(seqKey(max(after.Seq+1, first))); k != nil && len(buf) < size && n < readBatchBytes; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if seq > last {
				break
			}
			rec, err := unseal(k, v, s.bare)
			if err != nil {
				return fmt.Errorf("%w at seq %d", err, seq)
			}
			u, err := decode(rec, hub.Position{Seq: seq, Epoch: s.epoch})
			if err != nil {
				return fmt.Errorf("%w at seq %d", err, seq)
			}
			buf = append(buf, u)
			n += len(v)
		}
		if len(buf) == 0 {
			for _, u := range s.unapplied(after.Seq + 1) {
				if upto != 0 && u.Pos.Seq > upto || len(buf) == size {
					break
				}
				buf = append(buf, u)
			}
		}
		return nil
	})
	return buf, err
}

// readTail appends to buf up to size updates after after (and at most
// upto, unless 0) from the tail, the updates Append was given, shared by
// every reader instead of decoded for each (a resume storm reads the same
// recent updates thousands of times), with no bbolt transaction. It
// reports false, appending nothing, when the tail does not hold the first
// of them, when per-topic limits are set (they delete updates the tail
// still holds), or when the store is closed or after is from another epoch
// (read's transaction then reports it).
func (s *Store) readTail(after hub.Position, upto uint64, size int, buf []*hub.Update) ([]*hub.Update, bool) {
	if s.cfg.TopicLimits != nil {
		return buf, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || len(s.tail) == 0 || (after.Epoch != "" && after.Epoch != s.epoch) {
		return buf, false
	}
	last := s.applied
	if upto != 0 {
		last = min(last, upto)
	}
	from := max(after.Seq+1, s.first)
	if from < s.tailFirst || from > last {
		return buf, false
	}
	for seq := from; seq <= last && len(buf) < size; seq++ {
		buf = append(buf, s.tail[seq-s.tailFirst])
	}
	return buf, true
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
	// Start from what the global limits retain once every update logged
	// before the call is applied.
	if err := s.settle(ctx); err != nil {
		return err
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
		// buf is reused: it must not keep updates the tail dropped.
		clear(buf)
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
	if err := s.settle(ctx); err != nil {
		return hub.Position{}, hub.Position{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return hub.Position{}, hub.Position{}, hub.ErrClosed
	}
	oldest, newest = hub.Position{Epoch: s.epoch}, hub.Position{Epoch: s.epoch}
	if s.kept > 0 {
		oldest.Seq, newest.Seq = s.first, s.newest
	}
	if s.last > s.applied { // applying is failing
		if s.kept == 0 {
			oldest.Seq = s.applied + 1
		}
		newest.Seq = s.last
	}
	return oldest, newest, nil
}

// Size returns the number of retained updates and the size of their
// records in bytes, as MaxBytes counts them. It is cheap: it reads no
// history. It waits for bbolt to hold the updates logged before the call,
// unless applying is failing: then it counts those bbolt lacks as well.
func (s *Store) Size() (updates int, bytes int64) {
	_ = s.settle(context.Background())
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int(s.kept) + len(s.queue), s.retained + s.queued
}

// Close stops the writer, failing appends it has not taken with
// hub.ErrClosed (appends already in a frame complete), lets the applier
// apply what was logged (what it cannot, the next Open applies from the
// log), wakes every follower, which returns hub.ErrClosed, and closes the
// files. Close is idempotent: later calls return nil.
func (s *Store) Close() error {
	err := hub.ErrClosed
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.writerDone
		<-s.applierDone
		// bbolt holds every logged update: say so, so that the next Open
		// needs nothing from the log. (Without it, the next Open checks
		// that the log is whole, as after a crash.)
		s.mu.RLock()
		clean := s.applyErr == nil && len(s.queue) == 0
		s.mu.RUnlock()
		if clean && s.wal != nil && len(s.wal.segs) > 0 {
			_ = s.markLog(s.wal.segs[len(s.wal.segs)-1].num, true)
		}
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
