// Package redisstore is the hub.Store that lets several ssehub nodes act as
// one hub: they share one log kept in a Redis stream. Every node appends to
// the stream and every node follows it with XREAD BLOCK, so every node
// delivers every update, in the same order; there is no protocol between
// nodes. It is the only package that imports github.com/redis/go-redis/v9,
// and needs Redis 7.0 or later (streams, Lua scripts).
//
// # Appending
//
// Append runs one Lua script (EVALSHA, loaded with SCRIPT LOAD) that, as
// one atomic step, increments the sequence counter, XADDs the update with
// the explicit stream ID "<seq>-0" (the XADD is what wakes every node's
// XREAD BLOCK), indexes its ID, and applies retention. No node can see an
// update that is not yet indexed, or a seq that is not yet in the stream.
// Seq is therefore a counter kept in Redis: strictly increasing, contiguous
// when nothing is deleted from the middle of the log (per-topic retention
// leaves holes, which Read and Follow skip).
//
// Append returns once Redis has answered the script; what that promises
// depends on Redis's persistence settings (below). It fails, acknowledging
// nothing, when Redis cannot be reached within Config.Timeout or the
// caller's context. As with any remote database, a connection lost after
// the script was sent cannot tell whether it ran; the update may then
// still be in the log and be delivered. go-redis's own retries are turned
// off so that a script is never sent twice; a publisher that retries uses
// an idempotency key.
//
// # Keys
//
// All keys share one hash tag, "{prefix}" (the URL's prefix parameter,
// default "ssehub"), so they live in one Redis Cluster slot and the scripts
// are valid there:
//
//	{p}:meta      hash: epoch, seq (last assigned), bytes (retained size)
//	{p}:log       stream: one entry per update, ID "<seq>-0" (see codec.go)
//	{p}:ids       hash: update ID -> "first last", the earliest and latest
//	              retained seqs that carry it; Lookup is one HGET
//	{p}:dup       hash: "n<seq>"/"p<seq>" -> the next/previous retained seq
//	              with the same ID, only for reused IDs
//	{p}:ret       hash: seq -> how many of its topic rules still retain it,
//	              for updates that only have topics with rules
//	{p}:t:<topic> list: "seq size ms" of the retained updates of a topic
//	              with a rule, oldest first
//	{p}:tbytes    hash: topic -> size of its list
//	{p}:tlimits   hash: topic -> its rule's limits at its last append
//	{p}:texpiry   sorted set: topic -> when its oldest entry expires
//
// The per-topic list keys are derived inside the scripts from the prefix;
// they share the hash tag, so they are in the same slot, but they are not
// declared in KEYS. Redis must run with maxmemory-policy noeviction (the
// default): an evicted key would lose history without changing the epoch.
//
// # Epoch
//
// The epoch, a random 16-hex-digit value in {p}:meta, names one life of
// the log. Every script first checks it: if it is missing — Redis lost its
// data (FLUSHALL, a restart without persistence, the key evicted) — the
// script creates a new one, the first node to get there wins (as SET NX),
// and the log starts empty at seq 1. Positions of the old epoch then get
// hub.ErrEpochChanged from Read and Follow, and their IDs are not found.
//
// Losing only the newest writes (a restart from an older RDB snapshot, a
// failover to a replica that lagged) keeps the epoch key but rolls the
// counter back, so seqs would be handed out again for other updates. Each
// Store remembers the highest seq it has seen in the current epoch and
// passes it to every script; a counter below it proves a rollback, and the
// script starts a new epoch (with an empty log, and the counter moved past
// the seen seq) instead. Any node that was running through the rollback
// detects it, so the loss surfaces as an epoch change — an explicit gap —
// rather than as reused positions. Nodes that all restarted with Redis
// have no memory of the lost seqs and cannot detect it.
//
// # Follow
//
// Each Follow runs one XREAD BLOCK loop from the last seq it passed to fn
// (the hub calls Follow once, so a node holds one blocked connection).
// When Redis fails or is unreachable, the loop logs once, waits with
// backoff (50ms doubling to Config.MaxBackoff) and resumes from that seq,
// so nothing is skipped or repeated; it returns only when its context ends
// (within Config.BlockTimeout), on Close, or when the epoch changed. It
// checks the epoch on start, after every error, after every idle
// BlockTimeout, and on every entry (each entry records the epoch it was
// appended in), so an epoch change is reported even while the new epoch's
// log grows past the follower's seq. Redis answers a blocked XREAD only
// after the write that woke it is in the AOF (with appendfsync always,
// fsynced), so nothing is delivered that an acknowledged crash could lose.
//
// # Retention
//
// Config.Limits (global) and Config.TopicLimits (per topic) are applied by
// the append script, so every node's appends enforce them; all nodes must
// use the same limits. A topic with a rule keeps a list of its retained
// updates and trims it to its limits on every append to it (keeping its
// newest); an update whose every topic has a rule is deleted (XDEL, and
// its index entries) when the last of those lists drops it, and an update
// with a topic without a rule is kept by that topic. The global limits then
// delete the oldest updates (keeping the newest). Every node also runs a
// sweep every Config.RetentionInterval that applies the age limits while
// no updates arrive (a topic's rule as of the last append to it). Each
// script deletes at most about a thousand updates, so that a lowered limit
// does not stall Redis; the next appends and sweeps catch up.
//
// # Durability
//
// What an acknowledged Append survives is what the Redis configuration
// promises (docs/design/scale-out-redis.md has the details):
//
//   - appendonly yes, appendfsync always: the script's effects are written
//     and fsynced to the AOF before Redis replies (one fsync for all the
//     commands of an event-loop iteration: group commit). An acknowledged
//     update survives a crash of Redis or of the machine.
//   - appendonly yes, appendfsync everysec (Redis's default AOF setting):
//     a crash of the machine loses up to about two seconds of acknowledged
//     updates; a crash of the Redis process usually loses nothing (the
//     write reaches the kernel before the reply, unless a slow disk made
//     Redis postpone it, by up to two seconds).
//   - RDB snapshots only: a restart loses everything since the last
//     snapshot. No persistence: a restart loses everything.
//
// In the lossy cases the epoch mechanism turns the loss into an epoch
// change — subscribers are told of a gap — as long as the loss took the
// epoch key with it or a node that saw the lost updates is running.
// Replication is asynchronous: a failover can lose the last acknowledged
// updates in the same way.
package redisstore
