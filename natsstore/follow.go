package natsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub/hub"
)

// errReset makes a follower start over: a reconnection, a change of the
// stream, or a gap in the consumer's delivery.
var errReset = errors.New("natsstore: follower reset")

// permanentError is a Follow failure that retrying cannot cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Follow calls fn, from one goroutine, with every update appended to the
// stream after after, in stream order, by any Store sharing the stream.
//
// It reads through an ephemeral consumer that it recreates, from the
// sequence after the last one it passed to fn, whenever the connection is
// lost and regained, the server misses two heartbeats, or the consumer
// disappears (a restarted server forgets it): so it neither skips nor
// repeats an update across server restarts, and keeps retrying, with
// backoff, while the server is unreachable. Each time it starts over it
// checks the stream: if it was deleted or recreated (a new epoch), or it
// lost updates Follow already delivered, Follow returns
// hub.ErrEpochChanged. Otherwise it returns only when ctx ends (its
// error) or the Store is closed (hub.ErrClosed). A position older than the
// oldest retained update follows from the oldest.
func (s *Store) Follow(ctx context.Context, after hub.Position, fn func(*hub.Update)) error {
	if s.isClosed() {
		return hub.ErrClosed
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-fctx.Done():
		}
	}()
	f := &follower{s: s, epoch: after.Epoch, next: after.Seq + 1, fn: fn}
	failing := false
	backoff := 50 * time.Millisecond
	for {
		reset := s.resetChan()
		err := f.run(fctx)
		switch {
		case s.isClosed():
			return hub.ErrClosed
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, hub.ErrEpochChanged):
			return err
		case errors.As(err, new(permanentError)):
			return err
		}
		if f.progressed {
			backoff, f.progressed = 50*time.Millisecond, false
			if failing {
				s.cfg.Logger.Info("natsstore: following the stream again", "stream", s.name, "next", f.next)
				failing = false
			}
		}
		if !errors.Is(err, errReset) && !failing {
			s.cfg.Logger.Warn("natsstore: following the stream failed; retrying", "stream", s.name, "next", f.next, "err", err)
			failing = true
		}
		if errors.Is(err, errReset) {
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-fctx.Done():
		case <-reset:
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, 2*time.Second)
	}
}

// resetChan returns the channel closed at the next reconnection or change
// of the stream.
func (s *Store) resetChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reset
}

// follower is the state of one Follow.
type follower struct {
	s          *Store
	epoch      string // "" until the first run learns it
	next       uint64 // the stream sequence to deliver next
	fn         func(*hub.Update)
	progressed bool // a run delivered something or started cleanly
}

// run checks the stream and delivers from f.next with a new consumer until
// something goes wrong.
func (f *follower) run(ctx context.Context) error {
	s := f.s
	reset := s.resetChan()
	rctx, cancel := s.request(ctx)
	st, err := s.js.Stream(rctx, s.name)
	cancel()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.markStale()
		if f.epoch != "" {
			return fmt.Errorf("%w: stream %s was deleted", hub.ErrEpochChanged, s.name)
		}
		rctx, cancel := s.request(ctx)
		_, _, err = s.ensure(rctx, false) // a zero position follows whatever stream there is
		cancel()
		if err == nil {
			err = errReset
		}
		return err
	}
	if err != nil {
		return err
	}
	info := st.CachedInfo()
	tok, err := s.tokenOf(info.Config)
	if err != nil {
		return permanentError{err}
	}
	if f.epoch == "" {
		f.epoch = tok
	}
	if tok != f.epoch {
		s.markStale()
		return fmt.Errorf("%w: stream %s was recreated (epoch %s, was %s)", hub.ErrEpochChanged, s.name, tok, f.epoch)
	}
	if info.State.LastSeq+1 < f.next {
		return fmt.Errorf("%w: stream %s ends at seq %d, but seq %d was already delivered: the server lost acknowledged updates", hub.ErrEpochChanged, s.name, info.State.LastSeq, f.next-1)
	}
	f.next = max(f.next, info.State.FirstSeq)

	rctx, cancel = s.request(ctx)
	cons, err := s.js.CreateConsumer(rctx, s.name, s.readerConfig(f.epoch, f.next))
	cancel()
	if err != nil {
		return err
	}
	defer s.deleteConsumer(cons)
	f.progressed = true
	hb := s.cfg.Heartbeat
	var cseq uint64 // the consumer sequence of the last delivery
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*hb)
		batch, err := cons.Fetch(batchSize, jetstream.FetchContext(pctx), jetstream.FetchHeartbeat(hb))
		if err != nil {
			cancel()
			return err
		}
		err = f.deliver(ctx, batch, reset, &cseq)
		cancel()
		if err != nil {
			return err
		}
	}
}

// deliver passes the messages of one pull to fn.
func (f *follower) deliver(ctx context.Context, batch jetstream.MessageBatch, reset <-chan struct{}, cseq *uint64) error {
	s := f.s
	msgs := batch.Messages()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-reset:
			return errReset
		case m, ok := <-msgs:
			if !ok {
				err := batch.Error()
				if err == nil || errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					return nil // the pull expired: pull again
				}
				return err
			}
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			if meta.Sequence.Consumer != *cseq+1 {
				return errReset // a delivery went missing: start over from f.next
			}
			*cseq = meta.Sequence.Consumer
			seq := meta.Sequence.Stream
			if seq < f.next {
				continue // never deliver twice
			}
			if tok := s.epochOf(m.Subject()); tok != f.epoch {
				return fmt.Errorf("%w: stream %s holds updates of epoch %s, was %s", hub.ErrEpochChanged, s.name, tok, f.epoch)
			}
			u, err := decode(m.Data(), hub.Position{Seq: seq, Epoch: f.epoch})
			if err != nil {
				return permanentError{fmt.Errorf("natsstore: stream %s, seq %d: %w", s.name, seq, err)}
			}
			f.fn(u)
			f.next = seq + 1
			f.progressed = true
		}
	}
}
