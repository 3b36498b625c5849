package selector

import (
	"hash/maphash"
	"strings"
	"sync"
)

// The caches below are two-generation maps: entries go into the current
// generation; when it is full it becomes the previous one and the one before
// is dropped, and a hit in the previous generation is copied forward. That
// approximates LRU with plain maps and bounds memory to two generations.

// compileKey identifies a compiled selector.
type compileKey struct {
	kind Kind
	raw  string
}

// compileCache shares compiled patterns and templates between callers. It
// is bounded by entries and by their estimated bytes (Matcher.Size), so
// that what closed streams compiled, and nobody uses any more, takes at
// most the budget until newer entries push it out.
type compileCache struct {
	mu        sync.Mutex
	half      int // entries per generation; 0 disables the cache
	halfBytes int // estimated bytes per generation
	cur, prev map[compileKey]*Matcher
	curBytes  int
}

func newCompileCache(size, bytes int) *compileCache {
	if size < 0 || bytes < 0 {
		return &compileCache{}
	}
	return &compileCache{half: max(size/2, 1), halfBytes: max(bytes/2, 1)}
}

func (c *compileCache) get(k compileKey) *Matcher {
	if c.half == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.cur[k]; ok {
		return m
	}
	m, ok := c.prev[k]
	if ok {
		c.putLocked(k, m)
	}
	return m
}

func (c *compileCache) put(k compileKey, m *Matcher) {
	if c.half == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, m)
}

func (c *compileCache) putLocked(k compileKey, m *Matcher) {
	if m.size > c.halfBytes {
		return // would take a generation alone
	}
	if c.cur == nil {
		c.cur = make(map[compileKey]*Matcher)
	}
	if len(c.cur) >= c.half || c.curBytes+m.size > c.halfBytes {
		c.prev, c.cur, c.curBytes = c.cur, make(map[compileKey]*Matcher), 0
	}
	c.cur[k] = m
	c.curBytes += m.size
}

// resultShards is the number of independently locked parts of the result
// cache, so that concurrent Match calls rarely contend.
const resultShards = 64

// resultEntryOverhead estimates the bytes a cached result costs beyond its
// topic: the key's id and string header, the value and the map's slot.
const resultEntryOverhead = 48

// resultKey identifies a match result: a compiled selector and a topic.
type resultKey struct {
	id    uint64
	topic string
}

// resultCache holds match results of patterns and templates.
type resultCache struct {
	seed   maphash.Seed
	half   int // bytes per generation per shard; 0 disables the cache
	shards [resultShards]resultShard
}

type resultShard struct {
	mu        sync.RWMutex
	cur, prev map[resultKey]bool
	bytes     int
	_         [40]byte // keep shards on separate cache lines
}

func newResultCache(budget int) *resultCache {
	c := &resultCache{seed: maphash.MakeSeed()}
	if budget > 0 {
		c.half = max(budget/(2*resultShards), 1)
	}
	return c
}

func (c *resultCache) shard(id uint64, topic string) *resultShard {
	h := maphash.String(c.seed, topic) ^ (id * 0x9e3779b97f4a7c15)
	return &c.shards[h%resultShards]
}

func (c *resultCache) get(id uint64, topic string) (v, ok bool) {
	if c.half == 0 {
		return false, false
	}
	k := resultKey{id, topic}
	s := c.shard(id, topic)
	s.mu.RLock()
	v, ok = s.cur[k]
	promote := false
	if !ok {
		v, ok = s.prev[k]
		promote = ok
	}
	s.mu.RUnlock()
	if promote {
		c.put(id, topic, v)
	}
	return v, ok
}

func (c *resultCache) put(id uint64, topic string, v bool) {
	cost := len(topic) + resultEntryOverhead
	if c.half == 0 || cost > c.half {
		return
	}
	k := resultKey{id, topic}
	s := c.shard(id, topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cur[k]; ok {
		return
	}
	if s.cur == nil || s.bytes+cost > c.half {
		s.prev, s.cur, s.bytes = s.cur, make(map[resultKey]bool), 0
	}
	// A copy: the topic may share memory with much more (a decoded
	// update's strings slice its whole record, data included), which
	// the budget does not count.
	k.topic = strings.Clone(topic)
	s.cur[k] = v
	s.bytes += cost
}
