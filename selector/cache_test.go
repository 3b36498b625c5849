package selector

import (
	"fmt"
	"strings"
	"testing"
)

// TestCompileCacheBytes compiles far more large templates than the compile
// cache's byte budget holds: the entries it keeps never take more than the
// budget, whatever their number, and a selector larger than half the
// budget is compiled but not kept. Before, the cache was bounded by entries
// only, and the ~460 KB templates of closed streams stayed in it.
func TestCompileCacheBytes(t *testing.T) {
	t.Parallel()
	const budget = 1 << 20
	c, err := New(Config{CompileCacheBytes: budget, CompileCacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	held := func() (n, bytes int) {
		c.compiled.mu.Lock()
		defer c.compiled.mu.Unlock()
		for _, gen := range []map[compileKey]*Matcher{c.compiled.cur, c.compiled.prev} {
			for _, m := range gen {
				n++
				bytes += m.Size()
			}
		}
		return n, bytes
	}
	big := "https://example.com/" + strings.Repeat("a", 1500) + "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}"
	for i := range 200 {
		m, err := c.Compile(Template, fmt.Sprint(i)+big)
		if err != nil {
			t.Fatal(err)
		}
		if m.Size() < 64*len(big) {
			t.Fatalf("Size() = %d; want at least %d", m.Size(), 64*len(big))
		}
		if n, bytes := held(); bytes > budget {
			t.Fatalf("after %d compiles the cache holds %d entries of %d bytes; want at most %d bytes", i+1, n, bytes, budget)
		}
	}
	if n, _ := held(); n == 0 || n >= 200 {
		t.Errorf("the cache holds %d entries; want some, not all", n)
	}

	small, err := New(Config{CompileCacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := small.Compile(Template, "1"+big)
	b, _ := small.Compile(Template, "1"+big)
	if a == b {
		t.Error("a selector larger than half the budget was kept")
	}
	a, _ = small.Compile(Template, "/books/{id}")
	b, _ = small.Compile(Template, "/books/{id}")
	if a != b {
		t.Error("a small selector was not kept")
	}
}
