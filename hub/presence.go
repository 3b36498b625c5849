package hub

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
)

// PresenceEntry is one subscriber's active subscriptions: what a presence
// registry keeps for the Mercure active-subscriptions API. A subscriber is
// one connection, named by a hub-generated identifier.
type PresenceEntry struct {
	// Subscriber is the hub-generated identifier of the connection, such
	// as "urn:uuid:…"; unique across every hub sharing the registry.
	Subscriber string `json:"subscriber"`
	// Subscriptions are the connection's selectors, in request order.
	Subscriptions []PresenceSubscription `json:"subscriptions"`
}

// PresenceSubscription is one selector of a subscriber.
type PresenceSubscription struct {
	// MatchType is the selector's kind: "exact" or "urlpattern" (the
	// Mercure 1.0 matcher types), or "template" for a v0.24 topic
	// selector.
	MatchType string `json:"match_type"`
	// Match is the selector as the subscriber gave it.
	Match string `json:"match"`
	// Payload is the subscriber's token payload for this selector, a JSON
	// value, or nil.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Presence is a registry of the active subscriptions of every hub that
// shares it: the embedded one (NewLocalPresence) knows one process, and the
// Redis and NATS engines keep one registry for a whole cluster, with a
// lease per node so that the subscriptions of a hub that died without
// saying so are reaped by the others.
//
// Implementations must be safe for concurrent use.
type Presence interface {
	// Join records e as active on this node, replacing any entry of the
	// same subscriber.
	Join(ctx context.Context, e PresenceEntry) error
	// Leave removes the entry of subscriber from this node.
	Leave(ctx context.Context, subscriber string) error
	// List returns the entries of every live node, in no particular order.
	List(ctx context.Context) ([]PresenceEntry, error)
	// Sweep is called periodically, well within the lease (a third of it
	// is a good period), and once before the first Join. It renews this
	// node's lease; when the lease had lapsed (the node was paused or cut
	// off long enough for the others to reap it), it registers this node's
	// entries again and returns them as back. It also claims the entries of
	// nodes whose lease lapsed and returns them as gone: each such entry is
	// returned by exactly one Sweep of one node, so that its end is
	// announced once.
	Sweep(ctx context.Context) (gone, back []PresenceEntry, err error)
	// Close stops this node's participation: its entries are removed from
	// the registry, and its lease is given up.
	Close() error
}

// LocalPresence is the Presence of a single hub process: a map. Its Sweep
// never reaps anything, since there is no other node to die.
type LocalPresence struct {
	mu      sync.Mutex
	entries map[string]PresenceEntry
	closed  bool
}

// NewLocalPresence returns an empty LocalPresence.
func NewLocalPresence() *LocalPresence {
	return &LocalPresence{entries: make(map[string]PresenceEntry)}
}

// Join records e.
func (p *LocalPresence) Join(_ context.Context, e PresenceEntry) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.entries[e.Subscriber] = e
	return nil
}

// Leave forgets subscriber.
func (p *LocalPresence) Leave(_ context.Context, subscriber string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	delete(p.entries, subscriber)
	return nil
}

// List returns every entry, sorted by subscriber.
func (p *LocalPresence) List(context.Context) ([]PresenceEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	out := make([]PresenceEntry, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, e)
	}
	SortPresence(out)
	return out, nil
}

// Sweep does nothing: one process has no lease to renew and no peer to
// reap.
func (p *LocalPresence) Sweep(context.Context) (gone, back []PresenceEntry, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, ErrClosed
	}
	return nil, nil, nil
}

// Close forgets every entry.
func (p *LocalPresence) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed, p.entries = true, nil
	return nil
}

// SortPresence sorts entries by subscriber, so that listings are stable.
func SortPresence(entries []PresenceEntry) {
	slices.SortFunc(entries, func(a, b PresenceEntry) int { return strings.Compare(a.Subscriber, b.Subscriber) })
}
