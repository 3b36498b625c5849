// Package natsstore is a hub.Store kept in a NATS JetStream stream, for
// several ssehub processes acting as one hub: each appends to the same
// stream and each follows it, so every node delivers every update in the
// same order. It is the only package that imports github.com/nats-io/nats.go.
// It works with nats-server 2.9 and later, and uses no feature of 2.10
// (no multiple filter subjects, no stream metadata, no direct batch gets).
//
// # Layout
//
// One stream (default SSEHUB, "?stream=NAME") is the log: an update's
// position is its stream sequence, and its message body is the whole
// update in a compact binary encoding (see encode), every field included.
// The update's idempotency key is also the message's Nats-Msg-Id, so the
// stream itself drops a repeated publish within its Duplicates window,
// whichever node receives it.
//
// The subject of an update is
//
//	ssehub.<stream>.<epoch>.<first 128 bits of SHA-256(ID), in hex>
//
// and the stream listens on ssehub.<stream>.<epoch>.> only. The ID hash in
// the subject makes Lookup an index lookup: JetStream keeps a per-subject
// index, and the last message on a subject is found from it at once, so an
// unknown, forged or discarded ID (no such subject) costs one probe
// whatever the history's size; a known ID costs one more request, for the
// first message on its subject. (A KV bucket mapping IDs to sequences was
// the alternative: it costs a second write per append that is not atomic
// with the first, and cannot follow the stream's retention.)
//
// # Epoch
//
// The epoch is 16 random hex digits chosen by the node that creates the
// stream and kept in the stream's subjects. Deleting the stream, or a
// server that comes back without its store, ends the epoch: the next
// Append creates the stream again with a new one. Because the epoch is in
// every subject, a node that still believes in the old epoch cannot append
// into the new one (no stream listens on its subjects, so it re-reads the
// stream first), and a reader filtering on an epoch never sees another
// epoch's updates. Stores subscribe to the stream's JetStream advisories
// and re-read the stream after every reconnection, so they notice a new
// epoch at once. Positions of an old epoch get hub.ErrEpochChanged.
//
// # Durability
//
// Append returns only after JetStream's PubAck, that is once the update is
// stored as the stream's settings promise: on a single nats-server it is
// written to the stream's file (not yet fsynced) before the
// acknowledgement, so a killed server loses nothing; with ?replicas=3 in a
// cluster it is on a quorum of servers. While the server is unreachable
// Append fails at once (the client buffers nothing while reconnecting).
// docs/design/scale-out-nats.md says what each setting promises.
//
// # Presence
//
// Store.Presence returns the node's view of the registry of active
// subscriptions (hub.Presence) that every node on the stream shares. It
// lives in two JetStream KV buckets named after the stream,
// SSEHUB_<stream>_PRESENCE (the entries, n.<node> and e.<node>.<hash>)
// and SSEHUB_<stream>_LEASES (l.<node>, each node's lease, and c.<node>,
// a claim; the bucket's MaxAge is the lease). Sweep renews the lease with
// a compare-and-set on its last revision, so a node learns that its lease
// expired, and then writes its entries again and returns them as back. A
// node whose lease is gone is reaped by the one sweeper that creates its
// claim key: it reads the node's entries, checks the lease is still
// missing, and purges each entry up to the revision it read, so that
// entries the node writes again on its return survive. Entries are
// removed by purging their subjects, never with delete markers, so the
// buckets hold only live keys. The buckets' streams have direct gets off,
// so that these checks read from the stream leader. Only KV features of
// nats-server 2.9 are used (no per-key TTL, one filter subject per watch).
//
// # Retention
//
// The stream's own limits enforce Config.Limits: MaxUpdates is MaxMsgs,
// MaxBytes is MaxBytes (JetStream's stored size of the messages), MaxAge
// is MaxAge (from when the server stored the update), discarding the
// oldest.
//
// Per-topic retention (Config.TopicLimits) is enforced by the stores
// themselves: an update has one subject, its ID's, and JetStream can only
// limit messages per subject, with one limit for every subject. Each node
// keeps, for every topic with a rule, the queue of the updates it retains
// (sequence, encoded size, time), and for every update all of whose topics
// have rules, how many of them still retain it; it feeds them with every
// update of the stream in order: its own appends (Append first reads what
// other nodes appended before), a sweep every RetentionInterval, and, at
// Open, one read of the whole retained stream. A topic over its count or
// byte limit lets its oldest go (keeping its newest), and the sweep and
// every append let go those past the topic's age limit (against Now); an
// update whose last retaining topic lets it go is dropped. A dropped update
// is hidden at once from this node's Read, Lookup and Bounds, and deleted
// from the stream (DeleteMsg) EvictionDelay later, when every node's Follow
// and sweep have read it; every node deletes what it dropped, and a
// message already deleted is no error. Follow delivers dropped updates
// like any other. A node that starts, or falls more than EvictionDelay
// behind, reads a stream from which another node deleted updates; missing
// those, its queues are shorter than they should be and it drops no more
// than the rules say, only possibly later, so no node ever deletes an
// update the rules retain.
//
// nats-server 2.9 miscounts a consumer's pending messages, and may lose the
// last message of a subject from its per-subject index, once messages are
// deleted from the middle of a stream: Read therefore ends on the stream's
// last sequence and a next-message lookup rather than on pending counts,
// and with topic rules Lookup scans the ID's subject from its start.
package natsstore
