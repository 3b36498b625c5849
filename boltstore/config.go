package boltstore

import (
	"math"
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
	// LockTimeout is how long Open waits for another process to release
	// the data directory before failing. Zero means one second.
	LockTimeout time.Duration
	// TailSize is how many recent updates are kept in memory for Follow,
	// which reads older ones from disk. Zero means 4096.
	TailSize int
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

	// after starts the wait of CommitDelay; tests replace it. Nil means
	// time.After.
	after func(time.Duration) <-chan time.Time
	// delayAfter is how many appends the previous transaction must have
	// carried for the next to wait CommitDelay for more. Zero means 32.
	delayAfter int
}

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
	if c.delayAfter <= 0 {
		c.delayAfter = 32
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = time.Second
	}
	if c.TailSize <= 0 {
		c.TailSize = 4096
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
