package natsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub/hub"
)

const (
	// directReads is how many updates Read fetches one by one before it
	// creates a consumer: most Reads want one update or a few.
	directReads = 8
	// batchSize is how many messages a consumer pulls per request.
	batchSize = 256
)

// epochFor returns the stream's epoch and handle, checking that want (if
// not empty) is that epoch: hub.ErrEpochChanged if it is not.
func (s *Store) epochFor(ctx context.Context, want string) (string, jetstream.Stream, error) {
	epoch, st, err := s.current(ctx)
	if err != nil || want == "" || want == epoch {
		return epoch, st, err
	}
	// Our view may be older than the position: read the stream again.
	if epoch, st, err = s.ensure(ctx, false); err != nil {
		return "", nil, err
	}
	if want != epoch {
		return "", nil, hub.ErrEpochChanged
	}
	return epoch, st, nil
}

// readerConfig is the configuration of the ephemeral consumers Read and
// Follow create: every update of epoch from seq start on, delivered
// without acknowledgements, kept in memory, deleted by the server a minute
// after its reader stopped pulling (its reader deletes it sooner).
func (s *Store) readerConfig(epoch string, start uint64) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Description:       "ssehub reader",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(start, 1),
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     s.prefix + epoch + ".>",
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	}
}

// deleteConsumer deletes a reader's consumer, if the server can be reached
// quickly; otherwise the server deletes it once it has been inactive.
func (s *Store) deleteConsumer(c jetstream.Consumer) {
	if s.isClosed() || !s.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(s.cfg.RequestTimeout, time.Second))
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, s.name, c.CachedInfo().Name)
}

// Read calls fn with every retained update after after, in stream order,
// until fn returns false or the log ends. The first few updates are
// fetched one by one (the stream's next-message-after lookup); a longer
// read creates an ephemeral consumer and pulls batches. It returns
// hub.ErrEpochChanged if after belongs to another life of the stream.
func (s *Store) Read(ctx context.Context, after hub.Position, fn func(*hub.Update) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return hub.ErrClosed
	}
	rctx, cancel := s.request(ctx)
	epoch, st, err := s.epochFor(rctx, after.Epoch)
	cancel()
	if err != nil {
		return err
	}
	filter := s.prefix + epoch + ".>"
	seq := after.Seq + 1
	for range directReads {
		rctx, cancel := s.request(ctx)
		m, err := st.GetMsg(rctx, seq, jetstream.WithGetMsgSubject(filter))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return s.readErr(ctx, after, err)
		}
		u, err := decode(m.Data, hub.Position{Seq: m.Sequence, Epoch: epoch})
		if err != nil {
			return fmt.Errorf("natsstore: stream %s, seq %d: %w", s.name, m.Sequence, err)
		}
		if !fn(u) {
			return nil
		}
		seq = m.Sequence + 1
	}
	return s.readConsumer(ctx, after, epoch, seq, fn)
}

// readErr is the error of a Read that failed.
func (s *Store) readErr(ctx context.Context, after hub.Position, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.markStale()
		if after.Epoch != "" {
			return fmt.Errorf("%w: stream %s was deleted", hub.ErrEpochChanged, s.name)
		}
		return nil
	}
	return s.wrap("reading stream", err)
}

// readConsumer reads with an ephemeral consumer from seq on, up to the
// updates the stream held when it started.
func (s *Store) readConsumer(ctx context.Context, after hub.Position, epoch string, seq uint64, fn func(*hub.Update) bool) error {
	rctx, cancel := s.request(ctx)
	cons, err := s.js.CreateConsumer(rctx, s.name, s.readerConfig(epoch, seq))
	cancel()
	if err != nil {
		return s.readErr(ctx, after, err)
	}
	defer s.deleteConsumer(cons)
	remaining := cons.CachedInfo().NumPending
	for remaining > 0 {
		rctx, cancel := s.request(ctx)
		batch, err := cons.Fetch(int(min(remaining, batchSize)), jetstream.FetchContext(rctx))
		if err != nil {
			cancel()
			return s.readErr(ctx, after, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				cancel()
				return s.wrap("reading stream", err)
			}
			u, err := decode(m.Data(), hub.Position{Seq: meta.Sequence.Stream, Epoch: epoch})
			if err != nil {
				cancel()
				return fmt.Errorf("natsstore: stream %s, seq %d: %w", s.name, meta.Sequence.Stream, err)
			}
			remaining = min(remaining-1, meta.NumPending)
			if !fn(u) {
				cancel()
				return nil
			}
		}
		cancel()
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return s.readErr(ctx, after, err)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if n == 0 {
			return nil // the rest was discarded meanwhile
		}
	}
	return nil
}
