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
//
// Updates that a topic rule dropped but that are not deleted from the
// stream yet (see the package documentation, # Retention) are skipped.
func (s *Store) Read(ctx context.Context, after hub.Position, fn func(*hub.Update) bool) error {
	return s.read(ctx, after, false, func(u *hub.Update, _ int) bool { return fn(u) })
}

// read is Read, passing fn each update's encoded size too; raw includes
// the updates topic rules dropped.
func (s *Store) read(ctx context.Context, after hub.Position, raw bool, fn func(u *hub.Update, size int) bool) error {
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
		seq = m.Sequence + 1
		if !raw && s.hidden(epoch, m.Sequence) {
			continue
		}
		u, err := decode(m.Data, hub.Position{Seq: m.Sequence, Epoch: epoch})
		if err != nil {
			return fmt.Errorf("natsstore: stream %s, seq %d: %w", s.name, m.Sequence, err)
		}
		if !fn(u, len(m.Data)) {
			return nil
		}
	}
	return s.readConsumer(ctx, after, epoch, st, seq, raw, fn)
}

// hidden reports whether a topic rule dropped the update at seq of epoch,
// which is not deleted from the stream yet.
func (s *Store) hidden(epoch string, seq uint64) bool {
	return s.ret != nil && s.ret.isHidden(epoch, seq)
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

// readConsumer reads with ephemeral consumers from seq on, up to the
// updates the stream held when it started.
//
// It does not count on the consumer's pending count, which nats-server 2.9
// gets wrong (both ways) once messages were deleted from the middle of the
// stream, as per-topic retention does: it reads up to the stream's last
// sequence, pulling without waiting, and when a pull brings nothing it
// asks the stream whether an update remains after the last one read (a
// next-message lookup), starting a new consumer there if so.
func (s *Store) readConsumer(ctx context.Context, after hub.Position, epoch string, st jetstream.Stream, seq uint64, raw bool, fn func(*hub.Update, int) bool) error {
	rctx, cancel := s.request(ctx)
	fresh, err := s.js.Stream(rctx, s.name)
	cancel()
	if err != nil {
		return s.readErr(ctx, after, err)
	}
	end := fresh.CachedInfo().State.LastSeq
	filter := s.prefix + epoch + ".>"
	for restarts := 0; seq <= end; restarts++ {
		more, err := s.readBatches(ctx, after, epoch, seq, end, raw, &seq, fn)
		if err != nil || !more || seq > end {
			return err
		}
		rctx, cancel := s.request(ctx)
		m, err := st.GetMsg(rctx, seq, jetstream.WithGetMsgSubject(filter))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return s.readErr(ctx, after, err)
		}
		if m.Sequence > end {
			return nil
		}
		if restarts == 3 {
			return fmt.Errorf("natsstore: reading stream %s: a consumer from seq %d keeps delivering nothing", s.name, seq)
		}
	}
	return nil
}

// readBatches reads with one ephemeral consumer from seq on, up to seq
// end, keeping *next at the sequence after the last one read, until a
// pull brings nothing (more set) or fn returns false or end is read (more
// unset).
func (s *Store) readBatches(ctx context.Context, after hub.Position, epoch string, seq, end uint64, raw bool, next *uint64, fn func(*hub.Update, int) bool) (more bool, err error) {
	rctx, cancel := s.request(ctx)
	cons, err := s.js.CreateConsumer(rctx, s.name, s.readerConfig(epoch, seq))
	cancel()
	if err != nil {
		return false, s.readErr(ctx, after, err)
	}
	defer s.deleteConsumer(cons)
	for {
		// Without waiting: the server answers with what it has.
		batch, err := cons.FetchNoWait(int(min(end-*next+1, batchSize)))
		if err != nil {
			return false, s.readErr(ctx, after, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return false, s.wrap("reading stream", err)
			}
			seq := meta.Sequence.Stream
			if seq < *next {
				continue
			}
			*next = seq + 1
			if seq > end {
				return false, nil
			}
			if !raw && s.hidden(epoch, seq) {
				continue
			}
			u, err := decode(m.Data(), hub.Position{Seq: seq, Epoch: epoch})
			if err != nil {
				return false, fmt.Errorf("natsstore: stream %s, seq %d: %w", s.name, seq, err)
			}
			if !fn(u, len(m.Data())) {
				return false, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return false, s.readErr(ctx, after, err)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return false, ctxErr
		}
		if *next > end {
			return false, nil
		}
		if n == 0 {
			return true, nil
		}
	}
}
