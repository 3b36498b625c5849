package natsstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub/hub"
)

// Presence is the registry of active subscriptions that every hub on one
// NATS stream shares (see Store.Presence). It keeps two JetStream KV
// buckets, named after the store's stream:
//
//	SSEHUB_<stream>_PRESENCE   no expiry
//	  n.<node>                   the node registered (its lease counts)
//	  e.<node>.<hash>            a subscriber's entry, JSON; hash is the first
//	                             128 bits of SHA-256(subscriber), in hex
//	SSEHUB_<stream>_LEASES     every key expires a lease after its last write
//	  l.<node>                   the node's lease, renewed by Sweep
//	  c.<node>                   a claim: the one sweeper reaping that node
//
// A node's entries count only while its lease key lives. Entries and
// markers are removed by purging their subjects from the bucket's stream,
// bounded by the revision read where it matters, so that a removal never
// takes a newer write with it and leaves no delete markers behind.
type Presence struct {
	s       *Store
	node    string
	tok     string // node as a key token
	lease   time.Duration
	entName string // bucket names
	lseName string

	setupMu sync.Mutex
	ent     jetstream.KeyValue // nil until setup succeeds
	lse     jetstream.KeyValue
	entSt   jetstream.Stream
	lseSt   jetstream.Stream

	sweepMu    sync.Mutex
	leaseRev   uint64 // revision of this node's last lease write; 0 before the first Sweep
	registered bool   // n.<node> was written

	mu     sync.Mutex
	local  map[string]hub.PresenceEntry // this node's entries, to restore after a lapse
	closed bool
}

var _ hub.Presence = (*Presence)(nil)

// Presence returns this hub's view of the presence registry that every
// node on the same NATS servers and stream shares. node names this hub
// process and must be unique among them (a random string); lease is how
// long the node's entries outlive its last Sweep, and should be the same
// on every node (the lease bucket is configured with the lease of the
// node that set it up last). The buckets are created, or brought to this
// configuration, on first use. Close the Presence before the Store.
func (s *Store) Presence(node string, lease time.Duration) *Presence {
	return &Presence{
		s: s, node: node, tok: nodeToken(node), lease: lease,
		entName: "SSEHUB_" + s.name + "_PRESENCE",
		lseName: "SSEHUB_" + s.name + "_LEASES",
		local:   make(map[string]hub.PresenceEntry),
	}
}

// nodeToken returns node as one token of a KV key: as it is if it is made
// of letters, digits, '-' and '_', otherwise '=' and the hex of its hash.
func nodeToken(node string) string {
	if node != "" && len(node) <= 64 && validStream(node) == nil {
		return node
	}
	sum := sha256.Sum256([]byte(node))
	return "=" + hex.EncodeToString(sum[:16])
}

// subscriberKey returns the key of subscriber's entry on the node of tok.
func subscriberKey(tok, subscriber string) string {
	sum := sha256.Sum256([]byte(subscriber))
	return "e." + tok + "." + hex.EncodeToString(sum[:16])
}

// bucketConfig is the configuration of the stream of a KV bucket, as
// CreateKeyValue would make it, except that direct gets are off: reads go
// to the stream leader, so that the lease checks of a sweep see every
// acknowledged write.
func (p *Presence) bucketConfig(bucket string, ttl time.Duration) jetstream.StreamConfig {
	dup := 2 * time.Minute
	if ttl > 0 {
		dup = min(dup, ttl)
	}
	return jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       "ssehub presence registry of stream " + p.s.name,
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		MaxAge:            ttl,
		Storage:           jetstream.FileStorage,
		Replicas:          p.s.replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dup,
		Discard:           jetstream.DiscardNew,
		AllowDirect:       false,
	}
}

// setup creates or updates the two buckets, once.
func (p *Presence) setup(ctx context.Context) error {
	p.setupMu.Lock()
	defer p.setupMu.Unlock()
	if p.ent != nil {
		return nil
	}
	rctx, cancel := p.s.request(ctx)
	defer cancel()
	var kvs [2]jetstream.KeyValue
	var sts [2]jetstream.Stream
	for i, b := range []struct {
		name string
		ttl  time.Duration
	}{{p.entName, 0}, {p.lseName, p.lease}} {
		st, err := p.s.js.CreateOrUpdateStream(rctx, p.bucketConfig(b.name, b.ttl))
		if err != nil {
			return p.fail("creating bucket "+b.name, err)
		}
		kv, err := p.s.js.KeyValue(rctx, b.name)
		if err != nil {
			return p.fail("opening bucket "+b.name, err)
		}
		kvs[i], sts[i] = kv, st
	}
	p.ent, p.lse, p.entSt, p.lseSt = kvs[0], kvs[1], sts[0], sts[1]
	return nil
}

func (p *Presence) check() error {
	if p.closed || p.s.isClosed() {
		return hub.ErrClosed
	}
	return nil
}

// begin checks that p is open and its buckets exist.
func (p *Presence) begin(ctx context.Context) error {
	p.mu.Lock()
	err := p.check()
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.setup(ctx)
}

func (p *Presence) fail(what string, err error) error {
	if p.s.isClosed() {
		return hub.ErrClosed
	}
	return fmt.Errorf("natsstore: presence: %s of stream %s: %w", what, p.s.name, err)
}

// purge removes every message of the key (a subject filter within the
// bucket) from st, or only those up to revision upTo if it is not zero.
func (p *Presence) purge(ctx context.Context, st jetstream.Stream, bucket, key string, upTo uint64) error {
	rctx, cancel := p.s.request(ctx)
	defer cancel()
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject("$KV." + bucket + "." + key)}
	if upTo > 0 {
		opts = append(opts, jetstream.WithPurgeSequence(upTo+1))
	}
	return st.Purge(rctx, opts...)
}

// scan returns the current entries of the keys of kv matching filter, as a
// watcher delivers them before its end-of-initial-values marker.
func (p *Presence) scan(ctx context.Context, kv jetstream.KeyValue, filter string, metaOnly bool) ([]jetstream.KeyValueEntry, error) {
	rctx, cancel := p.s.request(ctx)
	defer cancel()
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if metaOnly {
		opts = append(opts, jetstream.MetaOnly())
	}
	w, err := kv.Watch(rctx, filter, opts...)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = w.Stop()
		// Drain, so that the watcher's delivery cannot block on a full
		// channel while it is being closed.
		t := time.NewTimer(p.s.cfg.RequestTimeout)
		defer t.Stop()
		for {
			select {
			case _, ok := <-w.Updates():
				if !ok {
					return
				}
			case <-t.C:
				return
			}
		}
	}()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watcher closed")
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-rctx.Done():
			return nil, rctx.Err()
		}
	}
}

// Join records e under this node.
func (p *Presence) Join(ctx context.Context, e hub.PresenceEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("natsstore: presence: encoding an entry: %w", err)
	}
	p.mu.Lock()
	if err := p.check(); err != nil {
		p.mu.Unlock()
		return err
	}
	p.local[e.Subscriber] = e
	p.mu.Unlock()
	if err := p.begin(ctx); err != nil {
		return err
	}
	rctx, cancel := p.s.request(ctx)
	defer cancel()
	if _, err := p.ent.Put(rctx, subscriberKey(p.tok, e.Subscriber), b); err != nil {
		return p.fail("join", err)
	}
	return nil
}

// Leave removes subscriber's entry from this node.
func (p *Presence) Leave(ctx context.Context, subscriber string) error {
	p.mu.Lock()
	if err := p.check(); err != nil {
		p.mu.Unlock()
		return err
	}
	delete(p.local, subscriber)
	p.mu.Unlock()
	if err := p.begin(ctx); err != nil {
		return err
	}
	if err := p.purge(ctx, p.entSt, p.entName, subscriberKey(p.tok, subscriber), 0); err != nil {
		return p.fail("leave", err)
	}
	return nil
}

// liveNodes returns the tokens of the nodes whose lease lives.
func (p *Presence) liveNodes(ctx context.Context) (map[string]bool, error) {
	ls, err := p.scan(ctx, p.lse, "l.*", true)
	if err != nil {
		return nil, err
	}
	live := make(map[string]bool, len(ls))
	for _, l := range ls {
		live[strings.TrimPrefix(l.Key(), "l.")] = true
	}
	return live, nil
}

// List returns the entries of every node whose lease lives.
func (p *Presence) List(ctx context.Context) ([]hub.PresenceEntry, error) {
	if err := p.begin(ctx); err != nil {
		return nil, err
	}
	live, err := p.liveNodes(ctx)
	if err != nil {
		return nil, p.fail("list", err)
	}
	es, err := p.scan(ctx, p.ent, "e.>", false)
	if err != nil {
		return nil, p.fail("list", err)
	}
	out := make([]hub.PresenceEntry, 0, len(es))
	for _, kve := range es {
		tok, _, _ := strings.Cut(strings.TrimPrefix(kve.Key(), "e."), ".")
		if !live[tok] {
			continue
		}
		e, err := decodeEntry(kve.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Sweep renews this node's lease, registers its entries again if the lease
// had lapsed, and reaps the nodes whose lease lapsed.
//
// The lease is renewed with a compare-and-set on the revision of its last
// renewal, which fails if the key expired meanwhile: the node then writes
// its lease, its entries and its registration again, in that order, and
// returns its entries as back. A lapsed node is reaped by the sweeper that
// creates its claim key; it reads the node's entries, checks that the
// node's lease is still missing (a node that came back writes its lease
// before its entries, so either the check sees the lease, or the entries
// read are older than the ones the node writes again), then purges each
// entry up to the revision it read, and the registration likewise. A
// sweeper that fails midway leaves the claim to expire after a lease, and
// another sweeper takes over. Failures to reap are logged, not returned:
// gone then holds what was reaped.
func (p *Presence) Sweep(ctx context.Context) (gone, back []hub.PresenceEntry, err error) {
	p.sweepMu.Lock()
	defer p.sweepMu.Unlock()
	if err := p.begin(ctx); err != nil {
		return nil, nil, err
	}
	if back, err = p.renew(ctx); err != nil {
		return nil, nil, err
	}
	gone, err = p.reapLapsed(ctx)
	if err != nil {
		p.s.cfg.Logger.Warn("natsstore: presence: reaping lapsed nodes failed", "stream", p.s.name, "err", err)
	}
	return gone, back, nil
}

// renew renews the lease (see Sweep). The caller holds sweepMu.
func (p *Presence) renew(ctx context.Context) (back []hub.PresenceEntry, err error) {
	rctx, cancel := p.s.request(ctx)
	defer cancel()
	lkey := "l." + p.tok
	rev, err := p.lse.Update(rctx, lkey, []byte(p.node), p.leaseRev)
	if err == nil && p.registered {
		p.leaseRev = rev
		return nil, nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, p.fail("renewing the lease", err)
	}
	if err != nil {
		// The lease expired (or, on the first Sweep, one of a previous
		// process of the same name is still there): take it again.
		if rev, err = p.lse.Put(rctx, lkey, []byte(p.node)); err != nil {
			return nil, p.fail("renewing the lease", err)
		}
	}
	p.leaseRev = rev
	// Write the entries before the registration: a reaper checks the
	// lease after reading the entries, and purges only what it read.
	p.mu.Lock()
	for _, e := range p.local {
		back = append(back, e)
	}
	p.mu.Unlock()
	for _, e := range back {
		b, _ := json.Marshal(e) // encoded once already by Join
		if _, err := p.ent.Put(rctx, subscriberKey(p.tok, e.Subscriber), b); err != nil {
			p.leaseRev = 0 // try again at the next Sweep
			return nil, p.fail("restoring this node's entries", err)
		}
	}
	if _, err := p.ent.Put(rctx, "n."+p.tok, []byte(p.node)); err != nil {
		p.leaseRev = 0
		return nil, p.fail("registering this node", err)
	}
	p.registered = true
	return back, nil
}

// reapLapsed reaps every registered node whose lease is missing.
func (p *Presence) reapLapsed(ctx context.Context) ([]hub.PresenceEntry, error) {
	regs, err := p.scan(ctx, p.ent, "n.*", true)
	if err != nil {
		return nil, err
	}
	if len(regs) <= 1 {
		return nil, nil // only this node
	}
	live, err := p.liveNodes(ctx)
	if err != nil {
		return nil, err
	}
	var gone []hub.PresenceEntry
	var errs []error
	for _, r := range regs {
		tok := strings.TrimPrefix(r.Key(), "n.")
		if tok == p.tok || live[tok] {
			continue
		}
		g, err := p.reap(ctx, tok, r.Revision())
		gone = append(gone, g...)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", tok, err))
		}
	}
	return gone, errors.Join(errs...)
}

// reap claims the node of tok, registered at revision nrev, and removes
// its entries if its lease is still missing (see Sweep).
func (p *Presence) reap(ctx context.Context, tok string, nrev uint64) ([]hub.PresenceEntry, error) {
	rctx, cancel := p.s.request(ctx)
	_, err := p.lse.Create(rctx, "c."+tok, []byte(p.node))
	cancel()
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, nil // another sweeper has it
	}
	if err != nil {
		return nil, err
	}
	es, err := p.scan(ctx, p.ent, "e."+tok+".*", false)
	if err != nil {
		return nil, err
	}
	rctx, cancel = p.s.request(ctx)
	_, err = p.lse.Get(rctx, "l."+tok)
	cancel()
	switch {
	case err == nil:
		return nil, nil // it came back
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, err
	}
	var gone []hub.PresenceEntry
	for _, kve := range es {
		e, derr := decodeEntry(kve.Value())
		if err := p.purge(ctx, p.entSt, p.entName, kve.Key(), kve.Revision()); err != nil {
			return gone, err
		}
		if derr == nil {
			gone = append(gone, e)
		}
	}
	return gone, p.purge(ctx, p.entSt, p.entName, "n."+tok, nrev)
}

// Close removes this node's entries, registration and lease. It is
// idempotent.
func (p *Presence) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed, p.local = true, nil
	p.mu.Unlock()
	p.setupMu.Lock()
	ready := p.ent != nil
	p.setupMu.Unlock()
	if !ready || p.s.isClosed() {
		return nil
	}
	ctx := context.Background()
	for _, k := range []struct {
		st     jetstream.Stream
		bucket string
		key    string
	}{{p.entSt, p.entName, "e." + p.tok + ".>"}, {p.entSt, p.entName, "n." + p.tok}, {p.lseSt, p.lseName, "l." + p.tok}} {
		if err := p.purge(ctx, k.st, k.bucket, k.key, 0); err != nil {
			return p.fail("close", err)
		}
	}
	return nil
}

func decodeEntry(b []byte) (hub.PresenceEntry, error) {
	var e hub.PresenceEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("natsstore: presence: a registry entry is not valid: %w", err)
	}
	return e, nil
}
