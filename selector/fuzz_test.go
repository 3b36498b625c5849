package selector_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/selector"
)

// FuzzCompile compiles arbitrary selectors of every kind: Compile never
// panics, refuses with a one-line *selector.Error, is deterministic (the
// cache returns what a fresh compiler builds), never accepts a selector
// longer than the limit nor a template with more variables than the limit,
// and the matcher it returns answers consistently.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"*", "https://example.com/books/1", "https://example.com/books/:id", "/relative/:x*",
		"https://example.com/{id}", "{+path}{?q*}", "(a|b)*:c", "https://example.com/(.*)+",
		"{", "}", "%zz", "a\u200bb", "a\x00b", strings.Repeat("{a}", 40), strings.Repeat(":a", 20),
	} {
		for kind := range 4 {
			f.Add(uint8(kind), s, "https://example.com/books/1")
		}
	}
	cfg := selector.Config{HubURL: hubURL, MaxLength: 256, MaxVariables: 8, MatchCacheBytes: 1 << 16}
	cached, err := selector.New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind uint8, sel, topic string) {
		k := selector.Kind(kind)
		fresh, err := selector.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m1, err1 := cached.Compile(k, sel)
		m2, err2 := fresh.Compile(k, sel)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("Compile(%v, %q): cached error %v, fresh error %v", k, sel, err1, err2)
		}
		if err1 != nil {
			var se *selector.Error
			if !errors.As(err1, &se) {
				t.Fatalf("error %T is not a *selector.Error", err1)
			}
			if strings.ContainsAny(err1.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err1)
			}
			return
		}
		if len(sel) > 256 {
			t.Fatalf("accepted a %d-byte selector over the 256-byte limit", len(sel))
		}
		if k == selector.Template && strings.Count(sel, "{") > 8 {
			t.Fatalf("accepted a template with %d expressions over the 8-variable limit", strings.Count(sel, "{"))
		}
		if m1.String() != sel || m1.Kind() != k {
			t.Fatalf("matcher %v %q; want %v %q", m1.Kind(), m1.String(), k, sel)
		}
		got := m1.Match(topic)
		if got != m1.Match(topic) || got != m2.Match(topic) {
			t.Fatalf("%v %q: Match(%q) is not consistent", k, sel, topic)
		}
		if m1.Wildcard() && !got {
			t.Fatalf("wildcard did not match %q", topic)
		}
		if e, ok := m1.Exact(); ok && got != (e == topic) {
			t.Fatalf("exact %q: Match(%q) = %v", e, topic, got)
		}
	})
}

// FuzzParseQuery parses arbitrary subscribe queries with a low selector
// limit: more selectors than the limit is always refused, unknown "match"
// parameters are refused, and the result has one matcher per selector.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"match=a&match=b&match=c&match=d",
		"topic=a&topic=b&match_exact=c",
		"match_urlpattern=%2Fa%2F%3Ab&other=1",
		"MATCH=x", "match_regex=.*", "topic=%7Bid%7D&topic=*",
	} {
		f.Add(s)
	}
	c, err := selector.New(selector.Config{HubURL: hubURL, MaxSelectors: 3})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		n := 0
		unknown := false
		for name, vs := range q {
			switch name {
			case "match", "match_exact", "match_urlpattern", "topic":
				n += len(vs)
			default:
				unknown = unknown || (len(name) >= 5 && strings.EqualFold(name[:5], "match"))
			}
		}
		ms, err := c.ParseQuery(q)
		switch {
		case err != nil:
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		case n > 3:
			t.Fatalf("accepted %d selectors over a limit of 3", n)
		case unknown:
			t.Fatalf("accepted an unknown matcher parameter in %q", query)
		case len(ms) != n:
			t.Fatalf("%d matchers for %d selectors", len(ms), n)
		}
		_ = fmt.Sprint(ms)
	})
}
