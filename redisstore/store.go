package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub/hub"
)

// Store is a hub.Store kept in Redis Streams, shared by every ssehub node
// that opens the same Redis and prefix. It is safe for concurrent use.
type Store struct {
	cfg     Config
	rdb     *redis.Client
	addr    string   // host:port, for errors
	keys    []string // the KEYS of every script
	logKey  string
	metaKey string
	idsKey  string
	tprefix string // prefix of the per-topic list keys
	limits  []any  // the global limits as script arguments

	quit      chan struct{} // closed by Close
	closed    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup // the sweeper

	mu sync.Mutex
	hw hub.Position // the highest position seen, for rollback detection
}

var _ hub.Store = (*Store)(nil)

// Open connects to the Redis at rawURL and returns a Store on it, creating
// the log's epoch if this is the first node. rawURL is a redis:// or
// rediss:// (TLS) URL as go-redis's ParseURL reads it, for instance
// "redis://:password@host:6379/0?dial_timeout=3s", plus an optional
// "prefix" parameter naming the key namespace (default "ssehub": the keys
// are "{ssehub}:log" and so on; nodes that should act as one hub use the
// same prefix). Open fails with a one-line error for a bad URL or an
// unreachable server, after cfg.Timeout at most.
func Open(ctx context.Context, rawURL string, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	opts, prefix, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	// A retried script could append twice: go-redis must not retry on its
	// own (Follow reconnects by itself; Append reports the error).
	opts.MaxRetries = -1
	// Socket deadlines follow the caller's context (and Config.Timeout).
	opts.ContextTimeoutEnabled = true
	tag := "{" + prefix + "}:"
	s := &Store{
		cfg:     cfg,
		rdb:     redis.NewClient(opts),
		addr:    opts.Addr,
		logKey:  tag + "log",
		metaKey: tag + "meta",
		idsKey:  tag + "ids",
		tprefix: tag + "t:",
		quit:    make(chan struct{}),
	}
	s.keys = []string{s.metaKey, s.logKey, s.idsKey, tag + "dup", tag + "ret", tag + "tbytes", tag + "tlimits", tag + "texpiry"}
	l := cfg.Limits
	s.limits = []any{max(l.MaxUpdates, 0), max(l.MaxBytes, 0), ageMillis(l.MaxAge)}

	octx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if _, err := s.state(octx); err != nil {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redisstore: opening redis at %s: %w", s.addr, err)
	}
	for _, sc := range []*redis.Script{appendScript, sweepScript} {
		if err := sc.Load(octx, s.rdb).Err(); err != nil {
			_ = s.rdb.Close()
			return nil, fmt.Errorf("redisstore: loading scripts into redis at %s: %w", s.addr, err)
		}
	}
	if cfg.RetentionInterval > 0 && (l.MaxAge > 0 || cfg.TopicLimits != nil) {
		s.wg.Add(1)
		go s.sweeper()
	}
	return s, nil
}

// ageMillis turns an age limit into the scripts' milliseconds (0: none).
func ageMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe raises the high-water mark to p.
func (s *Store) observe(p hub.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Epoch != s.hw.Epoch {
		s.hw = p
	} else if p.Seq > s.hw.Seq {
		s.hw.Seq = p.Seq
	}
}

// run runs script with the common arguments followed by extra.
func (s *Store) run(ctx context.Context, script *redis.Script, extra ...any) *redis.Cmd {
	s.mu.Lock()
	hw := s.hw
	s.mu.Unlock()
	args := make([]any, 0, 5+len(extra))
	args = append(args, s.tprefix, newEpoch(), hw.Epoch, hw.Seq, s.cfg.Now().UnixMilli())
	args = append(args, extra...)
	return script.Run(ctx, s.rdb, s.keys, args...)
}

// state is the log's state as stateScript reports it.
type state struct {
	epoch                string
	last, oldest, newest uint64 // last assigned seq; retained range
}

func (s *Store) state(ctx context.Context) (state, error) {
	res, err := s.run(ctx, stateScript).StringSlice()
	if err != nil {
		return state{}, err
	}
	if len(res) != 4 || res[0] == "" {
		return state{}, fmt.Errorf("%w: state %q", errCorrupt, res)
	}
	st := state{epoch: res[0]}
	for i, p := range []*uint64{&st.last, &st.oldest, &st.newest} {
		if *p, err = strconv.ParseUint(res[i+1], 10, 64); err != nil {
			return state{}, fmt.Errorf("%w: state %q", errCorrupt, res)
		}
	}
	s.observe(hub.Position{Seq: st.last, Epoch: st.epoch})
	return st, nil
}

// fail turns a Redis error into the error a method returns.
func (s *Store) fail(what string, err error) error {
	if s.closed.Load() {
		return hub.ErrClosed
	}
	return fmt.Errorf("redisstore: %s redis at %s: %w", what, s.addr, err)
}

// Append adds u to the shared log with one script that assigns the next
// seq, adds the stream entry every node's Follow is blocked on, indexes
// the ID and applies retention, atomically. It returns once Redis has
// acknowledged the script, which under appendfsync always means the entry
// is on Redis's disk. If u has no Time, Append sets it to Config.Now().
//
// An error means u was not acknowledged. As with any remote database, an
// error that comes from losing the connection after the script was sent
// (a timeout, Redis dying mid-reply) cannot say whether it ran: the update
// may then still appear in the log. Publishers that retry use an
// idempotency key.
func (s *Store) Append(ctx context.Context, u *hub.Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return hub.ErrClosed
	}
	if len(u.Topics) == 0 {
		return errors.New("redisstore: an update needs at least one topic")
	}
	if u.Time.IsZero() {
		u.Time = s.cfg.Now()
	}
	args := make([]any, 0, 16+2*len(u.Topics)+4)
	args = append(args, s.limits...)
	args = append(args, u.ID, size(u), u.Time.UnixMilli(), 0)
	nfIndex := len(args) - 1
	args = appendFields(args, u)
	args[nfIndex] = (len(args) - nfIndex - 1) / 2
	args = s.appendRules(args, u.Topics)

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := s.run(ctx, appendScript, args...).StringSlice()
	if err != nil {
		return s.fail("appending to", err)
	}
	if len(res) != 2 {
		return fmt.Errorf("%w: append answered %q", errCorrupt, res)
	}
	seq, err := strconv.ParseUint(res[1], 10, 64)
	if err != nil {
		return fmt.Errorf("%w: append answered %q", errCorrupt, res)
	}
	u.Pos = hub.Position{Seq: seq, Epoch: res[0]}
	s.observe(u.Pos)
	return nil
}

// appendRules appends the per-topic arguments of appendScript: whether a
// topic without a rule retains the update, and the limits of each distinct
// topic with one.
func (s *Store) appendRules(args []any, topics []string) []any {
	if s.cfg.TopicLimits == nil {
		return append(args, "1", 0)
	}
	pinned := "0"
	at := len(args)
	args = append(args, pinned, 0)
	n := 0
	for i, t := range topics {
		if slices.Contains(topics[:i], t) {
			continue
		}
		l, ok := s.cfg.TopicLimits(t)
		if !ok || max(l.MaxUpdates, 0) == 0 && max(l.MaxBytes, 0) == 0 && ageMillis(l.MaxAge) == 0 {
			pinned = "1" // this topic retains the update for ever
			continue
		}
		args = append(args, t, max(l.MaxUpdates, 0), max(l.MaxBytes, 0), ageMillis(l.MaxAge))
		n++
	}
	args[at], args[at+1] = pinned, n
	return args
}

// Lookup returns the position of the earliest retained update with id: one
// HGET of the ID index (and of the epoch, in the same transaction).
func (s *Store) Lookup(ctx context.Context, id string) (hub.Position, error) {
	if err := ctx.Err(); err != nil {
		return hub.Position{}, err
	}
	if s.closed.Load() {
		return hub.Position{}, hub.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var ep, ref *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ep = p.HGet(ctx, s.metaKey, "epoch")
		ref = p.HGet(ctx, s.idsKey, id)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return hub.Position{}, hub.ErrNotFound
	}
	if err != nil {
		return hub.Position{}, s.fail("looking up an ID in", err)
	}
	first, _, _ := strings.Cut(ref.Val(), " ")
	seq, err := strconv.ParseUint(first, 10, 64)
	if err != nil {
		return hub.Position{}, fmt.Errorf("%w: index entry %q", errCorrupt, ref.Val())
	}
	return hub.Position{Seq: seq, Epoch: ep.Val()}, nil
}

// Read calls fn with the retained updates after after, oldest first, in
// batches read with XRANGE (each in one transaction with the epoch),
// growing from 16 to 256 updates so that a short read stays small. It
// holds no connection while fn runs.
func (s *Store) Read(ctx context.Context, after hub.Position, fn func(*hub.Update) bool) error {
	batch := 16
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed.Load() {
			return hub.ErrClosed
		}
		if after.Seq == math.MaxUint64 {
			return nil
		}
		epoch, msgs, err := s.readBatch(ctx, after.Seq+1, int64(batch))
		if err != nil {
			return err
		}
		if epoch == "" || after.Epoch != "" && after.Epoch != epoch {
			if after.Epoch != "" {
				return hub.ErrEpochChanged
			}
			return nil // no epoch: the log is empty
		}
		after.Epoch = epoch
		for _, m := range msgs {
			u, err := decode(m.ID, m.Values)
			if err != nil {
				return err
			}
			if u.Pos.Epoch != epoch {
				return hub.ErrEpochChanged
			}
			if !fn(u) {
				return nil
			}
			after = u.Pos
		}
		if len(msgs) < batch {
			return nil
		}
		batch = min(4*batch, 256)
	}
}

// readBatch returns the epoch ("" if there is none) and up to n entries
// from seq from on.
func (s *Store) readBatch(ctx context.Context, from uint64, n int64) (string, []redis.XMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var ep *redis.StringCmd
	var rng *redis.XMessageSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ep = p.HGet(ctx, s.metaKey, "epoch")
		rng = p.XRangeN(ctx, s.logKey, strconv.FormatUint(from, 10)+"-0", "+", n)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", nil, s.fail("reading from", err)
	}
	if ep.Err() != nil {
		return "", nil, nil
	}
	return ep.Val(), rng.Val(), nil
}

// Follow calls fn with every update appended after after, by any node, in
// log order. One XREAD BLOCK loop reads the stream from the last seq passed
// to fn; when Redis fails or is unreachable it retries with backoff (50ms
// doubling to Config.MaxBackoff) and resumes from that seq, so nothing is
// skipped or repeated. It returns hub.ErrEpochChanged when the log's epoch
// is not after's (checked on start, after every error and every idle
// BlockTimeout, and on every entry), ctx's error when ctx ends (within
// BlockTimeout), and hub.ErrClosed on Close. A position older than the
// oldest retained update follows from the oldest.
func (s *Store) Follow(ctx context.Context, after hub.Position, fn func(*hub.Update)) error {
	epoch, last := after.Epoch, after.Seq
	var backoff time.Duration
	failing, check := false, true
	for {
		if s.closed.Load() {
			return hub.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if check {
			var st state
			cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			st, err = s.state(cctx)
			cancel()
			if err == nil {
				if epoch == "" {
					epoch = st.epoch
				}
				if st.epoch != epoch {
					return hub.ErrEpochChanged
				}
				check = false
			}
		}
		var res []redis.XStream
		if err == nil {
			res, err = s.rdb.XRead(ctx, &redis.XReadArgs{
				Streams: []string{s.logKey, strconv.FormatUint(last, 10) + "-0"},
				Count:   256,
				Block:   s.cfg.BlockTimeout,
			}).Result()
			if errors.Is(err, redis.Nil) {
				check = true // idle: look at the epoch again
				continue
			}
		}
		if err != nil {
			if s.closed.Load() {
				return hub.ErrClosed
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !failing {
				s.cfg.Logger.Warn("redisstore: following the log failed; retrying", "redis", s.addr, "after", hub.Position{Seq: last, Epoch: epoch}.String(), "err", err)
				failing = true
			}
			check = true
			if err := s.pause(ctx, &backoff); err != nil {
				return err
			}
			continue
		}
		if failing {
			s.cfg.Logger.Info("redisstore: following the log again", "redis", s.addr, "after", hub.Position{Seq: last, Epoch: epoch}.String())
			failing, backoff = false, 0
		}
		for _, st := range res {
			for _, m := range st.Messages {
				u, err := decode(m.ID, m.Values)
				if err != nil {
					return err
				}
				if u.Pos.Epoch != epoch {
					return hub.ErrEpochChanged
				}
				fn(u)
				last = u.Pos.Seq
				s.observe(u.Pos)
			}
		}
	}
}

// pause waits before the next attempt of a failing Follow.
func (s *Store) pause(ctx context.Context, backoff *time.Duration) error {
	*backoff = min(max(2**backoff, 50*time.Millisecond), s.cfg.MaxBackoff)
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return hub.ErrClosed
	case <-t.C:
		return nil
	}
}

// Bounds returns the oldest and newest retained positions.
func (s *Store) Bounds(ctx context.Context) (oldest, newest hub.Position, err error) {
	if err := ctx.Err(); err != nil {
		return hub.Position{}, hub.Position{}, err
	}
	if s.closed.Load() {
		return hub.Position{}, hub.Position{}, hub.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	st, err := s.state(ctx)
	if err != nil {
		return hub.Position{}, hub.Position{}, s.fail("reading the bounds from", err)
	}
	return hub.Position{Seq: st.oldest, Epoch: st.epoch}, hub.Position{Seq: st.newest, Epoch: st.epoch}, nil
}

// sweeper enforces age limits every RetentionInterval until Close.
func (s *Store) sweeper() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			if err := s.sweep(context.Background()); err != nil && !s.closed.Load() {
				s.cfg.Logger.Warn("redisstore: enforcing age retention failed", "redis", s.addr, "err", err)
			}
		}
	}
}

// sweep enforces the age limits once.
func (s *Store) sweep(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return s.run(ctx, sweepScript, s.limits...).Err()
}

// Close stops the sweeper and closes the connections. Follows return
// hub.ErrClosed, and every later call too. Close is idempotent. It leaves
// the data in Redis: the other nodes go on.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		s.wg.Wait()
		err = s.rdb.Close()
	})
	return err
}
