package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub/hub"
)

// Presence is the registry of active subscriptions that every hub on one
// Redis shares (see Store.Presence). It keeps, in the store's key
// namespace:
//
//	{prefix}:pnodes        the set of nodes that registered entries
//	{prefix}:pn:<node>     the node's lease: a key that expires (PX) unless renewed
//	{prefix}:ps:<node>     the node's entries: a hash, subscriber → JSON entry
//
// A node's entries count only while its lease key lives. The sweep script
// renews the caller's lease and, in the same atomic step, claims the
// entries of every node whose lease key is gone (it deletes them), so that
// exactly one surviving node announces their end.
type Presence struct {
	s      *Store
	node   string
	lease  time.Duration
	nodes  string // {prefix}:pnodes
	alive  string // {prefix}:pn:<node>
	hash   string // {prefix}:ps:<node>
	prefix string // "{prefix}:"

	mu     sync.Mutex
	local  map[string]hub.PresenceEntry // this node's entries, to restore after a lapse
	closed bool
}

var _ hub.Presence = (*Presence)(nil)

// Presence returns this hub's view of the presence registry that every
// node on the same Redis and prefix shares. node names this hub process
// and must be unique among them (a random string); lease is how long the
// node's entries outlive its last Sweep. Close the Presence before the
// Store.
func (s *Store) Presence(node string, lease time.Duration) *Presence {
	tag := s.logKey[:len(s.logKey)-len("log")]
	return &Presence{
		s: s, node: node, lease: lease, prefix: tag,
		nodes: tag + "pnodes", alive: tag + "pn:" + node, hash: tag + "ps:" + node,
		local: make(map[string]hub.PresenceEntry),
	}
}

// presenceSweepScript renews a lease and claims the entries of the nodes
// whose lease lapsed.
//
//	KEYS[1]  {prefix}:pnodes
//	ARGV[1]  "{prefix}:"
//	ARGV[2]  this node
//	ARGV[3]  the lease, in milliseconds
//
// It returns {reaped, gone...}: reaped is 1 when this node was no longer
// in the set of nodes (reaped by another, or never registered), and gone
// are the JSON entries claimed from lapsed nodes.
var presenceSweepScript = redis.NewScript(`
local tag, self, lease = ARGV[1], ARGV[2], ARGV[3]
local reaped = 1 - redis.call('SISMEMBER', KEYS[1], self)
redis.call('SET', tag .. 'pn:' .. self, '1', 'PX', lease)
redis.call('SADD', KEYS[1], self)
local out = {reaped}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if n ~= self and redis.call('EXISTS', tag .. 'pn:' .. n) == 0 then
    for _, v in ipairs(redis.call('HVALS', tag .. 'ps:' .. n)) do
      out[#out + 1] = v
    end
    redis.call('DEL', tag .. 'ps:' .. n)
    redis.call('SREM', KEYS[1], n)
  end
end
return out
`)

func (p *Presence) check() error {
	if p.closed || p.s.closed.Load() {
		return hub.ErrClosed
	}
	return nil
}

func (p *Presence) fail(what string, err error) error {
	return fmt.Errorf("redisstore: presence: %s on redis at %s: %w", what, p.s.addr, err)
}

// Join records e in this node's hash.
func (p *Presence) Join(ctx context.Context, e hub.PresenceEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("redisstore: presence: encoding an entry: %w", err)
	}
	p.mu.Lock()
	if err := p.check(); err != nil {
		p.mu.Unlock()
		return err
	}
	p.local[e.Subscriber] = e
	p.mu.Unlock()
	if err := p.s.rdb.HSet(ctx, p.hash, e.Subscriber, b).Err(); err != nil {
		return p.fail("join", err)
	}
	return nil
}

// Leave removes subscriber from this node's hash.
func (p *Presence) Leave(ctx context.Context, subscriber string) error {
	p.mu.Lock()
	if err := p.check(); err != nil {
		p.mu.Unlock()
		return err
	}
	delete(p.local, subscriber)
	p.mu.Unlock()
	if err := p.s.rdb.HDel(ctx, p.hash, subscriber).Err(); err != nil {
		return p.fail("leave", err)
	}
	return nil
}

// List returns the entries of every node whose lease lives.
func (p *Presence) List(ctx context.Context) ([]hub.PresenceEntry, error) {
	p.mu.Lock()
	err := p.check()
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	nodes, err := p.s.rdb.SMembers(ctx, p.nodes).Result()
	if err != nil {
		return nil, p.fail("list", err)
	}
	pipe := p.s.rdb.Pipeline()
	alive := make([]*redis.IntCmd, len(nodes))
	vals := make([]*redis.StringSliceCmd, len(nodes))
	for i, n := range nodes {
		alive[i] = pipe.Exists(ctx, p.prefix+"pn:"+n)
		vals[i] = pipe.HVals(ctx, p.prefix+"ps:"+n)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, p.fail("list", err)
	}
	var out []hub.PresenceEntry
	for i := range nodes {
		if alive[i].Val() == 0 {
			continue
		}
		es, err := decodeEntries(vals[i].Val())
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// Sweep renews this node's lease, restores its entries if another node
// had reaped them, and claims the entries of nodes whose lease lapsed.
func (p *Presence) Sweep(ctx context.Context) (gone, back []hub.PresenceEntry, err error) {
	p.mu.Lock()
	err = p.check()
	p.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	res, err := presenceSweepScript.Run(ctx, p.s.rdb, []string{p.nodes}, p.prefix, p.node, max(p.lease.Milliseconds(), 1)).Slice()
	if err != nil {
		return nil, nil, p.fail("sweep", err)
	}
	if len(res) == 0 {
		return nil, nil, p.fail("sweep", errors.New("empty answer"))
	}
	raw := make([]string, 0, len(res)-1)
	for _, v := range res[1:] {
		if s, ok := v.(string); ok {
			raw = append(raw, s)
		}
	}
	if gone, err = decodeEntries(raw); err != nil {
		return nil, nil, err
	}
	if reaped, _ := res[0].(int64); reaped == 1 {
		p.mu.Lock()
		for _, e := range p.local {
			back = append(back, e)
		}
		p.mu.Unlock()
		if len(back) > 0 {
			fields := make([]any, 0, 2*len(back))
			for _, e := range back {
				b, _ := json.Marshal(e) // encoded once already by Join
				fields = append(fields, e.Subscriber, b)
			}
			if err := p.s.rdb.HSet(ctx, p.hash, fields...).Err(); err != nil {
				return gone, nil, p.fail("restoring this node's entries", err)
			}
		}
	}
	return gone, back, nil
}

// Close removes this node's entries and lease from Redis. It is
// idempotent.
func (p *Presence) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed, p.local = true, nil
	p.mu.Unlock()
	if p.s.closed.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.s.cfg.Timeout)
	defer cancel()
	_, err := p.s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.SRem(ctx, p.nodes, p.node)
		pipe.Del(ctx, p.hash, p.alive)
		return nil
	})
	if err != nil {
		return p.fail("close", err)
	}
	return nil
}

func decodeEntries(raw []string) ([]hub.PresenceEntry, error) {
	out := make([]hub.PresenceEntry, 0, len(raw))
	for _, v := range raw {
		var e hub.PresenceEntry
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return nil, fmt.Errorf("redisstore: presence: a registry entry is not valid: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}
