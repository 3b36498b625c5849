// Package boltstore is ssehub's embedded durable history: a hub.Store kept
// in one bbolt file in a data directory. It is the default store of
// "ssehub serve", and the only package that imports go.etcd.io/bbolt.
//
// # Guarantees
//
// Append returns only after the update is on disk: in a frame of the
// write-ahead log (see wal.go) that has been written and fdatasynced.
// Concurrent appends share one frame and one fdatasync (group commit): a
// single writer goroutine takes every pending append, waits briefly for
// the appenders of its previous frame to come back (so that frames do not
// settle at half the appenders; the Append that queues the last of them
// wakes it), logs them, and only then assigns their
// positions, wakes followers and releases the callers. With
// Config.CommitDelay set, a frame that follows one of at least 32 appends
// first waits that long for more. Sequence numbers are therefore assigned
// in log order, are strictly increasing and contiguous, and nothing is
// delivered live that could be lost. A failed write or sync fails every
// append of its frame, advances nothing and notifies nobody, and the next
// frame overwrites it; later appends succeed once the cause is gone.
//
// An applier goroutine copies logged updates into bbolt behind the log, in
// transactions of up to 8192 (it waits up to Config.ApplyDelay for 4096),
// each committed with bbolt's own fsyncs, and enforces retention there. A
// log segment is reused once bbolt holds its updates. Read, Lookup, Bounds
// and Size first wait for bbolt to hold every update logged before the
// call (hurrying the applier), so they see retention as of that moment.
// If bbolt cannot be written (a full disk), appends fail with that error
// until the applier succeeds again (each append makes it try), and reads
// serve the updates bbolt lacks from memory. Open applies what the log
// holds beyond bbolt's newest update, so a crash between the two loses
// nothing acknowledged.
//
// # Damage
//
// Acknowledged means readable, or Open says otherwise. A torn final frame
// (never acknowledged) ends the log silently. Damage that may have taken
// acknowledged updates with it fails Open with one line naming the file
// and what to do: a hole in the log, a segment shorter than its header
// says, a damaged segment header, a segment that data.db or the trailer
// of the segment before it records and that is missing, and a missing
// wal directory, unless the store was closed with every update applied
// (then the log holds nothing bbolt lacks). Config.AcceptLostUpdates
// opens such a store anyway, under a new epoch.
//
// A damaged data.db is refused, never served and never a crash. Open
// walks its pages before bbolt maps it (see checkFile), every record of
// the log bucket carries a CRC-32C of its seq and bytes checked on every
// read, and a panic of bbolt, or a fault in its memory map, is an error.
//
// The epoch is generated when the directory is first used and kept in the
// file, so positions and event IDs handed out before a restart stay valid
// after it: clients resume across hub restarts. Only an accepted loss
// (Config.AcceptLostUpdates) starts a new one.
//
// # Layout
//
// The directory holds the bbolt file data.db and the log's directory wal.
// data.db holds six buckets. "log" maps an 8-byte big-endian
// sequence number to the update's compact binary record (see encode),
// sealed with a checksum (see seal).
// "ids" maps a 16-byte prefix of the ID followed by the sequence number to
// nothing (see ids.go: a version 7 UUID's own bytes, so the hub's IDs are
// added at the end of the index, or else the first 16 bytes of the ID's
// SHA-256): Lookup seeks to the prefix and checks candidates in sequence
// order, so finding an ID costs one index seek and one record read
// whatever the size of the history, and a forged or ancient ID costs the
// same as a known one. "meta" holds the epoch, the next sequence
// number, and the retained byte count and update count, updated in the
// same transaction as the log (the next sequence number follows the
// newest update bbolt holds; the write-ahead log may hold newer ones),
// the newest log segment bbolt knows of and whether the store was closed
// cleanly, the first sealed seq, and after an accepted loss the first
// seq of the epoch and the one before it.
// "topics", "topicstate" and "ages" hold per-topic retention (see topics.go): for each topic with limits, the
// updates it retains in sequence order, their count and size, and the
// deadlines of its age limit in time order. They are written in the same
// transactions as the log, so a crash leaves them consistent with it.
//
// A data directory written before per-topic retention existed (without the
// three topic buckets and with no update count) opens unchanged: the
// buckets are created and the count is the span of the log. A directory
// without a wal directory gets one. Older versions of ssehub cannot open a
// directory once this version has written to it (the ones without the
// write-ahead log would open it, but miss the updates only the log holds;
// those before segment headers recorded their size and records their
// checksum would skip the log's segments and fail on sealed records).
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
