package natsstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub/hub"
)

// Store is a hub.Store kept in a NATS JetStream stream. Several Stores, in
// several processes, may share one stream: they then act as one log. It is
// safe for concurrent use.
//
// Lock order: ensureMu before mu. Neither is held while a callback runs.
type Store struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	name     string // stream name
	prefix   string // "ssehub.<name>.": every subject of the stream starts so
	replicas int

	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	subs      []*nats.Subscription // stream advisories

	ret     *retention         // nil without Config.TopicLimits
	retStop context.CancelFunc // stops ret's sweeps
	retDone chan struct{}      // closed when ret's sweeps stopped

	ensureMu sync.Mutex // serializes ensure: one stream lookup or creation at a time

	mu     sync.Mutex
	epoch  string           // the stream's current epoch, as last seen
	stream jetstream.Stream // handle of the stream of that epoch
	stale  bool             // epoch must be re-read (reconnected, or the stream changed)
	reset  chan struct{}    // closed and replaced whenever stale is set: wakes followers
}

var _ hub.Store = (*Store)(nil)

// Open connects to the NATS servers rawURL names and opens the stream,
// creating it if it does not exist, and updating its limits to cfg's if it
// does. rawURL is one or more comma-separated nats:// (or tls://) URLs,
// user information allowed, with optional query parameters:
//
//	stream=NAME   the stream (default SSEHUB); letters, digits, '-' and '_'
//	replicas=N    the stream's replica count, 1 to 5 (default 1)
//
// for example nats://user:pass@nats-1:4222,nats://nats-2:4222?stream=EVENTS&replicas=3.
// Open fails, with an error naming the problem, if the URL is bad, no
// server answers within cfg.ConnectTimeout or ctx, the server has no
// JetStream, or a stream of that name exists that ssehub did not create.
//
// With cfg.TopicLimits, Open reads the whole retained stream once, to
// learn what each topic retains (see the package documentation,
// # Retention), and starts the store's retention sweeps.
func Open(ctx context.Context, rawURL string, cfg Config) (*Store, error) {
	t, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:      cfg,
		name:     t.stream,
		prefix:   "ssehub." + t.stream + ".",
		replicas: t.replicas,
		closed:   make(chan struct{}),
		reset:    make(chan struct{}),
	}
	timeout := cfg.ConnectTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	log := cfg.Logger
	s.nc, err = nats.Connect(strings.Join(t.servers, ","),
		nats.Name("ssehub"),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		// Publishing while disconnected fails at once instead of being
		// buffered and sent after Append has already reported an error.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("natsstore: disconnected from NATS; reconnecting", "stream", s.name, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("natsstore: reconnected to NATS", "stream", s.name, "server", nc.ConnectedUrlRedacted())
			s.markStale()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("natsstore: NATS client error", "stream", s.name, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("natsstore: connecting to %s: %w", redactAll(t.servers), err)
	}
	if !s.nc.HeadersSupported() {
		s.nc.Close()
		return nil, errors.New("natsstore: the NATS server does not support headers (nats-server 2.2 or later is needed; JetStream needs 2.9)")
	}
	s.js, err = jetstream.New(s.nc, jetstream.WithDefaultTimeout(cfg.RequestTimeout))
	if err != nil {
		s.nc.Close()
		return nil, fmt.Errorf("natsstore: %w", err)
	}
	for _, ev := range []string{"CREATED", "DELETED", "UPDATED"} {
		sub, err := s.nc.Subscribe("$JS.EVENT.ADVISORY.STREAM."+ev+"."+s.name, func(*nats.Msg) { s.markStale() })
		if err != nil {
			s.nc.Close()
			return nil, fmt.Errorf("natsstore: subscribing to stream advisories: %w", err)
		}
		s.subs = append(s.subs, sub)
	}
	rctx, cancel := context.WithTimeout(ctx, max(cfg.RequestTimeout, timeout))
	defer cancel()
	if _, _, err := s.ensure(rctx, true); err != nil {
		s.nc.Close()
		return nil, err
	}
	if cfg.TopicLimits != nil {
		s.ret = newRetention(s)
		s.ret.mu.Lock()
		err := s.ret.advance(ctx, 0)
		s.ret.mu.Unlock()
		if err != nil {
			s.nc.Close()
			return nil, fmt.Errorf("natsstore: reading stream %s to apply the topic rules: %w", s.name, err)
		}
		var rctx context.Context
		rctx, s.retStop = context.WithCancel(context.Background())
		s.retDone = make(chan struct{})
		go func() {
			defer close(s.retDone)
			s.ret.run(rctx)
		}()
	}
	return s, nil
}

// redactAll returns the servers, comma-separated, without passwords.
func redactAll(servers []string) string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = redact(s)
	}
	return strings.Join(out, ",")
}

// Stream returns the name of the stream.
func (s *Store) Stream() string { return s.name }

// streamConfig is the configuration of the stream in epoch token.
func (s *Store) streamConfig(token string) jetstream.StreamConfig {
	lim := s.cfg.Limits
	c := jetstream.StreamConfig{
		Name:        s.name,
		Description: "ssehub update log, epoch " + token,
		Subjects:    []string{s.prefix + token + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
		// Per-subject limits would count messages per ID hash: none.
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          s.replicas,
		Duplicates:        s.cfg.DuplicateWindow,
		// Reads go to the stream leader, which has every acknowledged
		// message; direct gets could be answered by a lagging replica.
		AllowDirect: false,
	}
	if lim.MaxUpdates > 0 {
		c.MaxMsgs = int64(lim.MaxUpdates)
	}
	if lim.MaxBytes > 0 {
		c.MaxBytes = lim.MaxBytes
	}
	if lim.MaxAge > 0 {
		c.MaxAge = lim.MaxAge
	}
	return c
}

// newToken returns a fresh epoch: 16 random hex digits.
func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tokenOf returns the epoch of a stream configuration created by
// streamConfig, or an error if the stream was not created by ssehub.
func (s *Store) tokenOf(c jetstream.StreamConfig) (string, error) {
	if len(c.Subjects) == 1 {
		subj := c.Subjects[0]
		if tok, ok := strings.CutPrefix(subj, s.prefix); ok {
			if tok, ok = strings.CutSuffix(tok, ".>"); ok && validToken(tok) {
				return tok, nil
			}
		}
	}
	return "", fmt.Errorf("natsstore: stream %s exists but was not created by ssehub (its subjects are %q, want %q); delete it or choose another name with ?stream=", s.name, c.Subjects, s.prefix+"<epoch>.>")
}

func validToken(tok string) bool {
	if len(tok) != 16 {
		return false
	}
	_, err := hex.DecodeString(tok)
	return err == nil
}

// subject returns the subject of an update with the given ID in epoch: the
// ID's hash, so that the stream's per-subject index finds an ID.
func (s *Store) subject(epoch, id string) string {
	sum := sha256.Sum256([]byte(id))
	return s.prefix + epoch + "." + hex.EncodeToString(sum[:16])
}

// epochOf returns the epoch token of a subject of the stream.
func (s *Store) epochOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, s.prefix)
	if !ok {
		return ""
	}
	tok, _, _ := strings.Cut(rest, ".")
	return tok
}

// markStale makes the next use re-read the stream and wakes followers, so
// that a stream deleted, recreated or lost by a restarted server is noticed
// at once.
func (s *Store) markStale() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stale = true
	close(s.reset)
	s.reset = make(chan struct{})
}

// current returns the stream's epoch and handle, re-reading them if they
// may have changed.
func (s *Store) current(ctx context.Context) (string, jetstream.Stream, error) {
	s.mu.Lock()
	epoch, st, stale := s.epoch, s.stream, s.stale
	s.mu.Unlock()
	if stale || st == nil {
		return s.ensure(ctx, false)
	}
	return epoch, st, nil
}

// ensure reads the stream, creating it (with a new epoch) if it does not
// exist. At Open (update set) it also brings the stream's limits to the
// configured ones.
func (s *Store) ensure(ctx context.Context, update bool) (string, jetstream.Stream, error) {
	s.ensureMu.Lock()
	defer s.ensureMu.Unlock()
	s.mu.Lock()
	s.stale = false // set again by any change noticed from now on
	s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		st, err := s.js.Stream(ctx, s.name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			st, err = s.js.CreateStream(ctx, s.streamConfig(newToken()))
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt < 3 {
				continue // another node created it first: use theirs
			}
			if err == nil {
				s.cfg.Logger.Info("natsstore: created stream", "stream", s.name, "epoch", s.epochOfStream(st), "replicas", s.replicas)
			}
		}
		if err != nil {
			s.markStale()
			return "", nil, s.wrap("opening stream", err)
		}
		info := st.CachedInfo()
		tok, err := s.tokenOf(info.Config)
		if err != nil {
			return "", nil, err
		}
		if update && s.needsUpdate(info.Config) {
			want := s.streamConfig(tok)
			want.Description = info.Config.Description
			if st, err = s.js.UpdateStream(ctx, want); err != nil {
				return "", nil, s.wrap("updating the limits of stream", err)
			}
			s.cfg.Logger.Info("natsstore: updated stream limits", "stream", s.name, "max_msgs", want.MaxMsgs, "max_bytes", want.MaxBytes, "max_age", want.MaxAge, "duplicates", want.Duplicates, "replicas", want.Replicas)
		}
		s.mu.Lock()
		if s.epoch != "" && s.epoch != tok {
			s.cfg.Logger.Warn("natsstore: the stream's epoch changed: its history was lost", "stream", s.name, "old_epoch", s.epoch, "epoch", tok)
		}
		s.epoch, s.stream = tok, st
		s.mu.Unlock()
		return tok, st, nil
	}
}

func (s *Store) epochOfStream(st jetstream.Stream) string {
	tok, _ := s.tokenOf(st.CachedInfo().Config)
	return tok
}

// needsUpdate reports whether the stream's limits differ from the
// configured ones.
func (s *Store) needsUpdate(have jetstream.StreamConfig) bool {
	want := s.streamConfig("")
	return have.MaxMsgs != want.MaxMsgs || have.MaxBytes != want.MaxBytes || have.MaxAge != want.MaxAge ||
		have.Duplicates != want.Duplicates || have.Replicas != want.Replicas
}

// wrap names the stream in err and turns the errors of a closed store into
// hub.ErrClosed.
func (s *Store) wrap(what string, err error) error {
	if s.isClosed() || errors.Is(err, nats.ErrConnectionClosed) {
		return hub.ErrClosed
	}
	return fmt.Errorf("natsstore: %s %s: %w", what, s.name, err)
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// request returns ctx bounded by the request timeout.
func (s *Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// Append publishes u to the stream and sets u.Pos to the stream sequence
// the server acknowledged. It returns only after the JetStream
// acknowledgement (PubAck): the update is then stored as the stream's
// settings promise (see the package documentation) and every follower
// will receive it. While the server is unreachable Append fails at once;
// a request unanswered within Config.RequestTimeout (or ctx) fails with
// the context's error, and the update may then still have been stored, as
// a database may commit a transaction whose acknowledgement was lost.
//
// If u has no Time, Append sets it to Config.Now(). If u.IdempotencyKey
// was appended within the stream's duplicate window, the stream stores
// nothing, and Append sets u's ID, Time and Pos to those of the update
// stored first, as its IdempotencyKey names it.
//
// If the stream no longer exists, Append creates it, in a new epoch.
//
// With Config.TopicLimits, Append then applies the topic rules to the
// update and to those other nodes appended before it (reading them from
// the stream), so that what the rules drop is hidden from this node's
// Read, Lookup and Bounds when Append returns.
func (s *Store) Append(ctx context.Context, u *hub.Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return hub.ErrClosed
	}
	if u.Time.IsZero() {
		u.Time = s.cfg.Now()
	}
	body := encode(make([]byte, 0, encodedSize(u)), u)
	for attempt := 0; ; attempt++ {
		rctx, cancel := s.request(ctx)
		epoch, st, err := s.current(rctx)
		if err != nil {
			cancel()
			return err
		}
		msg := &nats.Msg{Subject: s.subject(epoch, u.ID), Data: body, Header: nats.Header{}}
		opts := []jetstream.PublishOpt{jetstream.WithExpectStream(s.name), jetstream.WithRetryAttempts(0)}
		if u.IdempotencyKey != "" {
			opts = append(opts, jetstream.WithMsgID(u.IdempotencyKey))
		}
		ack, err := s.js.PublishMsg(rctx, msg, opts...)
		if err == nil && ack.Duplicate {
			err = s.duplicate(rctx, st, epoch, ack.Sequence, u)
			cancel()
			return err
		}
		cancel()
		if err == nil {
			u.Pos = hub.Position{Seq: ack.Sequence, Epoch: epoch}
			if s.ret != nil {
				s.ret.appended(ctx, u, len(body))
			}
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) && attempt == 0 {
			// No stream listens on the subjects of this epoch: the stream
			// was deleted or recreated. Find (or create) the current one.
			s.markStale()
			continue
		}
		return s.wrap("appending to stream", err)
	}
}

// duplicate fills u from the update first stored with u's idempotency key,
// at seq.
func (s *Store) duplicate(ctx context.Context, st jetstream.Stream, epoch string, seq uint64, u *hub.Update) error {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("natsstore: appending to stream %s: idempotency key %q was used by update %d, which is no longer retained", s.name, u.IdempotencyKey, seq)
	}
	if err != nil {
		return s.wrap("reading the first update with an idempotency key from stream", err)
	}
	first, err := decode(m.Data, hub.Position{Seq: seq, Epoch: epoch})
	if err != nil {
		return fmt.Errorf("natsstore: stream %s, seq %d: %w", s.name, seq, err)
	}
	if first.IdempotencyKey != u.IdempotencyKey {
		return fmt.Errorf("natsstore: stream %s reported update %d as a duplicate of idempotency key %q, but it has key %q", s.name, seq, u.IdempotencyKey, first.IdempotencyKey)
	}
	u.ID, u.Time, u.Pos = first.ID, first.Time, first.Pos
	return nil
}

// Lookup returns the position of the earliest retained update whose ID is
// id. The ID's subject (a hash of it) is looked up in the stream's
// per-subject index: first its last message, which the server answers
// from its subject index at once, so an unknown, forged or discarded ID
// costs one index probe; then, for a known ID, the first message on the
// subject.
func (s *Store) Lookup(ctx context.Context, id string) (hub.Position, error) {
	if err := ctx.Err(); err != nil {
		return hub.Position{}, err
	}
	if s.isClosed() {
		return hub.Position{}, hub.ErrClosed
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	epoch, st, err := s.current(rctx)
	if err != nil {
		return hub.Position{}, err
	}
	subj := s.subject(epoch, id)
	end := uint64(math.MaxUint64)
	if s.ret == nil {
		// Without topic rules nothing is deleted from the middle of the
		// stream, and the per-subject index answers for an unknown ID at
		// once. With them it cannot be trusted on nats-server 2.9: once
		// the last message of a subject is deleted, the server may say the
		// subject has none, so the scan below is the only answer.
		last, err := st.GetLastMsgForSubject(rctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return hub.Position{}, hub.ErrNotFound
		}
		if err != nil {
			return hub.Position{}, s.lost("looking up an ID in stream", err)
		}
		end = last.Sequence
	}
	// The earliest message on the subject. Another ID with the same
	// 128-bit hash would be skipped.
	for seq := uint64(0); seq <= end; {
		m, err := st.GetMsg(rctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // discarded meanwhile
		}
		if err != nil {
			return hub.Position{}, s.lost("looking up an ID in stream", err)
		}
		seq = m.Sequence + 1
		if s.hidden(epoch, m.Sequence) {
			continue // dropped by a topic rule
		}
		u, err := decode(m.Data, hub.Position{})
		if err != nil {
			return hub.Position{}, fmt.Errorf("natsstore: stream %s, seq %d: %w", s.name, m.Sequence, err)
		}
		if u.ID == id {
			return hub.Position{Seq: m.Sequence, Epoch: epoch}, nil
		}
	}
	return hub.Position{}, hub.ErrNotFound
}

// lost wraps err, first noting that the stream may have changed if the
// server says it does not exist.
func (s *Store) lost(what string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.markStale()
	}
	return s.wrap(what, err)
}

// Bounds returns the positions of the oldest and newest retained updates,
// from the stream's state.
func (s *Store) Bounds(ctx context.Context) (oldest, newest hub.Position, err error) {
	if s.isClosed() {
		return hub.Position{}, hub.Position{}, hub.ErrClosed
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	for attempt := 0; attempt < 3; attempt++ {
		epoch, _, err := s.current(rctx)
		if err != nil {
			return hub.Position{}, hub.Position{}, err
		}
		st, err := s.js.Stream(rctx, s.name)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return hub.Position{}, hub.Position{}, s.wrap("reading the state of stream", err)
		}
		if err == nil {
			info := st.CachedInfo()
			if tok, _ := s.tokenOf(info.Config); tok == epoch {
				oldest, newest = hub.Position{Epoch: epoch}, hub.Position{Epoch: epoch}
				if info.State.Msgs > 0 {
					oldest.Seq, newest.Seq = info.State.FirstSeq, info.State.LastSeq
				}
				if oldest.Seq > 0 && s.ret != nil && s.ret.anyHidden(epoch) {
					return s.visibleBounds(rctx, st, oldest, newest)
				}
				return oldest, newest, nil
			}
		}
		s.markStale() // deleted or recreated since: read it again
	}
	return hub.Position{}, hub.Position{}, fmt.Errorf("natsstore: stream %s keeps being deleted or recreated", s.name)
}

// visibleBounds narrows the stream's first and last updates to the oldest
// and newest that no topic rule dropped.
func (s *Store) visibleBounds(ctx context.Context, st jetstream.Stream, first, last hub.Position) (oldest, newest hub.Position, err error) {
	epoch := first.Epoch
	filter := s.prefix + epoch + ".>"
	oldest, newest = hub.Position{Epoch: epoch}, hub.Position{Epoch: epoch}
	// The oldest: the next message from first on that is not hidden.
	for seq := first.Seq; seq <= last.Seq; {
		if s.hidden(epoch, seq) {
			seq++
			continue
		}
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return oldest, newest, s.lost("reading the bounds of stream", err)
		}
		if s.hidden(epoch, m.Sequence) {
			seq = m.Sequence + 1
			continue
		}
		oldest.Seq = m.Sequence
		break
	}
	if oldest.Seq == 0 {
		return oldest, newest, nil // everything is hidden
	}
	// The newest: the last message back from last that is not hidden.
	for seq := last.Seq; seq >= oldest.Seq; seq-- {
		if s.hidden(epoch, seq) {
			continue
		}
		if seq == oldest.Seq {
			newest.Seq = seq
			break
		}
		_, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			return oldest, newest, s.lost("reading the bounds of stream", err)
		}
		newest.Seq = seq
		break
	}
	return oldest, newest, nil
}

// Close closes the connection: running Follows return hub.ErrClosed, and
// appends waiting for an acknowledgement fail with it. The stream and its
// history stay on the server. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.retStop != nil {
			s.retStop()
			<-s.retDone
		}
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
		s.nc.Close()
	})
	return nil
}
