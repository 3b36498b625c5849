package boltstore

import (
	"math"
	"os"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// Config configures a Store. The zero value is usable: every zero field
// means the default documented on it.
type Config struct {
	// MaxUpdates caps how many updates are retained; the oldest are
	// deleted first. Zero means 1,000,000; a negative value means no limit.
	MaxUpdates int
	// MaxBytes caps the total size of the retained updates' encoded
	// records, in bytes (the data, ID, type and topics plus about ten bytes;
	// the file is larger, by the index and B+tree overhead measured in
	// docs/design/storage.md). The newest update is always retained. Zero
	// means 1 GiB; a negative value means no limit.
	MaxBytes int64
	// MaxAge is how long an update is retained after its Time. Zero means
	// 24 hours; a negative value means no limit.
	MaxAge time.Duration
	// RetentionInterval is how often the writer enforces MaxAge (and the
	// age limits of TopicLimits) while no updates arrive (appends enforce every limit as they commit). Zero
	// means one minute.
	RetentionInterval time.Duration
	// MaxBatch caps how many appends share one transaction and fsync.
	// Zero means 1024.
	MaxBatch int
	// CommitDelay is how long the writer waits for more appends to join a
	// transaction when the previous one carried at least 32 appends, as
	// PostgreSQL's commit_delay does. A commit costs CPU besides its
	// fsyncs, so with many concurrent HTTP publishers fewer, larger
	// commits leave more CPU for serving them (docs/BENCHMARKS.md, "Commit
	// delay": 2 ms gave 3-24% more durable publishes/s with 128 and 256
	// publishers). But when every appender is already in the transaction,
	// the wait only delays it: 32 or 256 appenders calling Append in a
	// loop lose up to half their throughput. Zero or negative (the
	// default) means no wait.
	CommitDelay time.Duration
	// ApplyDelay is how long the applier, which copies logged updates into
	// bbolt behind the write-ahead log, waits for 4096 of them before a
	// transaction. Reads that need bbolt up to date (Read, Lookup, Bounds,
	// Size, and Follow from an old position) end the wait. Zero means
	// 20ms; negative means no wait.
	ApplyDelay time.Duration
	// SegmentSize is the size of a write-ahead log segment, in bytes (see
	// wal.go): the log holds the updates bbolt does not hold yet, in at
	// least one segment, and keeps up to two spare segments for reuse. A
	// frame (one batch of appends) larger than a segment makes its segment
	// larger. Zero means 4 MiB; the minimum is 64 KiB.
	SegmentSize int64
	// LockTimeout is how long Open waits for another process to release
	// the data directory before failing. Zero means one second.
	LockTimeout time.Duration
	// TailSize is how many recent updates are kept in memory for Follow,
	// which reads older ones from disk. Zero means 4096.
	TailSize int
	// TailBytes caps the memory of those recent updates, in bytes: each
	// is counted as its data, ID, type and topics, plus its encoded SSE
	// frame (about the same again: the hub's dispatcher encodes every
	// update once and the frame lives as long as the update) and 256
	// bytes of overhead. Past the cap the oldest are dropped until half
	// of it is used, except those not yet in bbolt, which the log's
	// segment size bounds. Zero means 64 MiB.
	TailBytes int64
	// TopicLimits, when set, limits the history of single topics (see
	// hub.TopicLimits for the semantics), in bytes as MaxBytes counts them.
	// A topic's count and byte limits are enforced in the transaction that
	// appends to it; age limits in every transaction and every
	// RetentionInterval. A rule applies to the updates appended while it
	// is in force: updates appended before a rule named their topic are
	// left to the global limits. MaxUpdates, MaxBytes and MaxAge still
	// apply to the whole log.
	TopicLimits hub.TopicLimits
	// Now returns the current time, for age retention and for stamping
	// updates appended without a Time. Nil means time.Now.
	Now func() time.Time
	// AcceptLostUpdates makes Open go on when the write-ahead log shows
	// that updates it acknowledged may be lost (its end damaged, or
	// segments missing), instead of failing. The store keeps what bbolt
	// and the log still hold and starts a new epoch: positions and IDs of
	// updates from before it are no longer resolved (Lookup returns them
	// in the old epoch, which Read and Follow refuse), so every client
	// resuming from before the loss is told of a gap. Set it for the one
	// start after deciding not to restore a backup.
	AcceptLostUpdates bool

	// after starts the wait of CommitDelay; tests replace it. Nil means
	// time.After.
	after func(time.Duration) <-chan time.Time
	// fillWait is how long a frame waits for the appenders of the previous
	// frame (see Store.wait); zero means 200µs, negative no wait. fillAfter
	// starts that wait; tests replace it. Nil means time.After.
	fillWait  time.Duration
	fillAfter func(time.Duration) <-chan time.Time
	// applyAfter starts the wait of ApplyDelay; tests replace it. Nil
	// means time.After.
	applyAfter func(time.Duration) <-chan time.Time
	// walFault, if set, is called after each log frame is written and
	// fails it with the error it returns; applyFault, if set, is called
	// before each bbolt transaction of the applier and fails it likewise.
	// Tests set them.
	walFault func(*os.File) error
	// bufferedWAL writes the log through the page cache and fdatasync even
	// where O_DIRECT works, for tests of that path.
	bufferedWAL bool
	applyFault  func() error
	// delayAfter is how many appends the previous transaction must have
	// carried for the next to wait CommitDelay for more. Zero means 32.
	delayAfter int
}

// DefaultTailBytes is the default of Config.TailBytes.
const DefaultTailBytes = 64 << 20

// withDefaults returns c with zero fields replaced by their defaults and
// "no limit" turned into the largest value.
func (c Config) withDefaults() Config {
	switch {
	case c.MaxUpdates == 0:
		c.MaxUpdates = 1_000_000
	case c.MaxUpdates < 0:
		c.MaxUpdates = math.MaxInt
	}
	switch {
	case c.MaxBytes == 0:
		c.MaxBytes = 1 << 30
	case c.MaxBytes < 0:
		c.MaxBytes = math.MaxInt64
	}
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = time.Minute
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1024
	}
	if c.after == nil {
		c.after = time.After
	}
	if c.fillWait == 0 {
		c.fillWait = 200 * time.Microsecond
	}
	if c.ApplyDelay == 0 {
		c.ApplyDelay = 20 * time.Millisecond
	}
	if c.applyAfter == nil {
		c.applyAfter = time.After
	}
	if c.fillAfter == nil {
		c.fillAfter = time.After
	}
	switch {
	case c.SegmentSize == 0:
		c.SegmentSize = 4 << 20
	case c.SegmentSize < 64<<10:
		c.SegmentSize = 64 << 10
	}
	if c.delayAfter <= 0 {
		c.delayAfter = 32
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = time.Second
	}
	if c.TailSize <= 0 {
		c.TailSize = 4096
	}
	if c.TailBytes <= 0 {
		c.TailBytes = DefaultTailBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
