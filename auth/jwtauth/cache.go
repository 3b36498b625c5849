package jwtauth

import (
	"sync"
	"time"

	"github.com/ssehub/ssehub/auth"
)

// Sizes of the cache of verified tokens.
const (
	// verifiedCacheSize caps the entries of the cache: a publisher that
	// reuses its token (the common case: one token per backend) skips
	// signature verification and JSON decoding after its first request.
	verifiedCacheSize = 1024
	// verifiedCacheMaxToken is the longest token cached, so that the cache
	// holds at most about 4 MiB of tokens.
	verifiedCacheMaxToken = 4 << 10
)

// verifiedCache remembers the grants of tokens verified with a static key
// (a secret or a public key, never a JWK Set, whose keys may be withdrawn),
// keyed by the role and the exact token string. An entry is used only
// while its token is unexpired and the clock has not gone back before its
// verification; refusals are never cached, so a refused token is verified
// again every time. It is safe for concurrent use.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
}

type cacheKey struct {
	ro    *role
	token string
}

type cacheEntry struct {
	g        *auth.Grant // never handed out: callers get a copy
	verified time.Time   // when the token was verified
	until    time.Time   // its exp; zero when it has none
}

// get returns a copy of the grant cached for token, or nil.
func (c *verifiedCache) get(ro *role, token string, now time.Time) *auth.Grant {
	c.mu.Lock()
	e, ok := c.entries[cacheKey{ro, token}]
	c.mu.Unlock()
	if !ok || now.Before(e.verified) || !e.until.IsZero() && !now.Before(e.until) {
		return nil
	}
	g := *e.g
	return &g
}

// put caches g, the grant of token verified at now, if it can be: a
// token that expires is cached only until its exp, and an entry is
// evicted at random when the cache is full.
func (c *verifiedCache) put(ro *role, token string, g *auth.Grant, now time.Time) {
	if ro.v.set != nil || len(token) > verifiedCacheMaxToken || !g.Expires.IsZero() && !now.Before(g.Expires) {
		return
	}
	cp := *g
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[cacheKey]cacheEntry)
	}
	if len(c.entries) >= verifiedCacheSize {
		for k := range c.entries { // map order is random: a random victim
			delete(c.entries, k)
			break
		}
	}
	c.entries[cacheKey{ro, token}] = cacheEntry{g: &cp, verified: now, until: g.Expires}
}
