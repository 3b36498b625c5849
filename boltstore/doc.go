// Package boltstore is ssehub's embedded durable history: a hub.Store kept
// in one bbolt file in a data directory. It is the default store of
// "ssehub serve", and the only package that imports go.etcd.io/bbolt.
//
// # Guarantees
//
// Append returns only after the update is on disk (the bbolt transaction
// that holds it has been committed and fsynced). Concurrent appends share
// one transaction and one fsync (group commit): a single writer goroutine
// takes every pending append, writes them in one transaction, commits, and
// only then assigns their positions, wakes followers and releases the
// callers. With Config.CommitDelay set, a transaction that follows one of
// at least 32 appends first waits that long for more (fewer, larger
// commits cost less CPU per append under many concurrent publishers).
// Sequence numbers are therefore assigned in commit order, are
// strictly increasing and contiguous, and nothing is delivered live that
// could be lost. A failed commit (a full disk, say) fails every append of
// its batch, advances nothing and notifies nobody; later appends succeed
// once the cause is gone.
//
// The epoch is generated when the directory is first used and kept in the
// file, so positions and event IDs handed out before a restart stay valid
// after it: clients resume across hub restarts.
//
// # Layout
//
// The file data.db holds six buckets. "log" maps an 8-byte big-endian
// sequence number to the update's compact binary record (see encode).
// "ids" maps a 16-byte prefix of the ID followed by the sequence number to
// nothing (see ids.go: a version 7 UUID's own bytes, so the hub's IDs are
// added at the end of the index, or else the first 16 bytes of the ID's
// SHA-256): Lookup seeks to the prefix and checks candidates in sequence
// order, so finding an ID costs one index seek and one record read
// whatever the size of the history, and a forged or ancient ID costs the
// same as a known one. "meta" holds the epoch, the next sequence
// number, and the retained byte count and update count, updated in the
// same transaction as the log. "topics", "topicstate" and "ages" hold
// per-topic retention (see topics.go): for each topic with limits, the
// updates it retains in sequence order, their count and size, and the
// deadlines of its age limit in time order. They are written in the same
// transactions as the log, so a crash leaves them consistent with it.
//
// A data directory written before per-topic retention existed (without the
// three topic buckets and with no update count) opens unchanged: the
// buckets are created and the count is the span of the log. Older versions
// of ssehub cannot open a directory once this version has written to it.
//
// # Retention
//
// The writer enforces Config's count, byte and age limits in the same
// transactions that append, deleting the oldest updates and their index
// entries, a bounded number per transaction so that a lowered limit is
// caught up with gradually. While no updates arrive it checks the age
// limits every RetentionInterval.
//
// Config.TopicLimits adds limits per topic. Appending an update to a
// limited topic enters it in that topic's queue and deletes the topic's
// oldest entries beyond its count and byte limits; an update whose last
// entry goes, and that has no topic without limits, is deleted with its
// index entry. Deleting from the middle leaves holes in the sequence:
// Read skips them, Lookup does not find their IDs, and Bounds reports the
// oldest and newest updates still retained. Freed pages are reused by
// later appends; the file does not shrink.
package boltstore
