package selector_test

import (
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

const hubURL = "https://hub.example.com/.well-known/mercure"

func newCompiler(t testing.TB, cfg selector.Config) *selector.Compiler {
	t.Helper()
	if cfg.HubURL == "" {
		cfg.HubURL = hubURL
	}
	c, err := selector.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind     selector.Kind
		selector string
		topic    string
		want     bool
	}{
		// Exact: byte for byte, no normalization, no resolution.
		{selector.Exact, "https://example.com/foo", "https://example.com/foo", true},
		{selector.Exact, "https://example.com/foo", "https://example.com/foo/", false},
		{selector.Exact, "https://example.com/foo", "https://EXAMPLE.com/foo", false},
		{selector.Exact, "https://example.com/b%C3%A9", "https://example.com/bé", false},
		{selector.Exact, "/foo", "https://hub.example.com/foo", false},
		{selector.Exact, "bar", "bar", true},
		{selector.Exact, "https://example.com/{id}", "https://example.com/1", false},
		{selector.Exact, "https://example.com/:id", "https://example.com/1", false},
		{selector.Exact, "*", "anything", true},
		{selector.Exact, "*", "*", true},

		// URLPattern, including the Mercure conformance cases.
		{selector.URLPattern, "https://example.net/foo/:random", "https://example.net/foo/abc", true},
		{selector.URLPattern, "https://example.net/foo/:random", "https://example.net/bar/x", false},
		{selector.URLPattern, "https://example.net/foo/:random", "https://example.net/foo/abc/def", false},
		{selector.URLPattern, "https://example.net/foo/:random", "https://example.net/FOO/abc", false}, // never ignoreCase
		{selector.URLPattern, "https://example.net/foo/:random", "https://EXAMPLE.net/foo/abc", true},  // hosts are canonicalized
		{selector.URLPattern, "https://example.com/books/:id", "https://example.com/books/1", true},
		{selector.URLPattern, "https://example.com/books/:id(\\d+)", "https://example.com/books/abc", false},
		{selector.URLPattern, "https://example.com/users/42/*", "https://example.com/users/42/books/1", true},
		{selector.URLPattern, "https://example.com/users/42/*", "https://example.com/users/43/books/1", false},
		{selector.URLPattern, "https://example.com/books/:id", "not a url", false},
		{selector.URLPattern, "https://example.com/books/:id", "https://exa mple.com/books/1", false},
		{selector.URLPattern, "*", "not a url", true},
		{selector.URLPattern, "https://example.com/:a/:b/:c/:d/:e/:f/:g/*", "https://example.com/1/2/3/4/5/6/7/8/9", true},

		// Template: equal, or matched as an RFC 6570 template.
		{selector.Template, "https://example.com/books/{id}", "https://example.com/books/1", true},
		{selector.Template, "https://example.com/books/{id}", "https://example.com/books/1/chapters", false},
		{selector.Template, "https://example.com/books/{id}", "https://example.com/books/{id}", true},
		{selector.Template, "https://example.com/books/{id}", "https://example.com/authors/1", false},
		{selector.Template, "https://example.com/{+path}", "https://example.com/a/b/c", true},
		{selector.Template, "https://example.com/books{?page}", "https://example.com/books?page=2", true},
		{selector.Template, "https://example.com/books/1", "https://example.com/books/1", true},
		{selector.Template, "https://example.com/books/1", "https://example.com/books/2", false},
		{selector.Template, "my topic", "my topic", true}, // not a valid template literal, but no "{": exact
		{selector.Template, "*", "https://example.com/anything", true},
	}
	c := newCompiler(t, selector.Config{})
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.kind, tt.selector, tt.topic), func(t *testing.T) {
			t.Parallel()
			m, err := c.Compile(tt.kind, tt.selector)
			if err != nil {
				t.Fatalf("Compile(%s, %q): %v", tt.kind, tt.selector, err)
			}
			// Twice: the second answer comes from the cache.
			for range 2 {
				if got := m.Match(tt.topic); got != tt.want {
					t.Fatalf("Match(%q) = %v; want %v", tt.topic, got, tt.want)
				}
			}
		})
	}
}

func TestRelativeURLPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		hubURL, pattern, topic string
		want                   bool
	}{
		// Relative pattern, relative topic.
		{hubURL, "/.well-known/mercure/subscriptions/:t", "/.well-known/mercure/subscriptions/abc", true},
		// Relative pattern, absolute topic on the hub.
		{hubURL, "/.well-known/mercure/subscriptions/:t", "https://hub.example.com/.well-known/mercure/subscriptions/abc", true},
		// Relative pattern, absolute topic on another host.
		{hubURL, "/.well-known/mercure/subscriptions/:t", "https://other.example.com/.well-known/mercure/subscriptions/abc", false},
		// Absolute pattern on the hub, relative topic.
		{hubURL, "https://hub.example.com/books/:id", "/books/1", true},
		{hubURL, "https://other.example.com/books/:id", "/books/1", false},
		// Path-relative pattern and topic resolve against the hub URL's directory.
		{hubURL, "subscriptions/:t", "subscriptions/x", true},
		{hubURL, "subscriptions/:t", "https://hub.example.com/.well-known/subscriptions/x", true},
		// Another hub URL gives another answer.
		{"https://other.example.com/hub", "/books/:id", "https://other.example.com/books/1", true},
		{"https://other.example.com/hub", "/books/:id", "https://hub.example.com/books/1", false},
		// Default hub URL: relative against relative still works.
		{"", "/books/:id", "/books/1", true},
		{"", "/books/:id", "https://hub.example.com/books/1", false},
	}
	for _, tt := range tests {
		t.Run(tt.hubURL+" "+tt.pattern+" "+tt.topic, func(t *testing.T) {
			t.Parallel()
			c, err := selector.New(selector.Config{HubURL: tt.hubURL})
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.Compile(selector.URLPattern, tt.pattern)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.pattern, err)
			}
			if got := m.Match(tt.topic); got != tt.want {
				t.Errorf("Match(%q) = %v; want %v", tt.topic, got, tt.want)
			}
		})
	}
}

func TestExactAndWildcard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind      selector.Kind
		selector  string
		exact     bool
		wildcard  bool
		exactWant string
	}{
		{selector.Exact, "https://example.com/foo", true, false, "https://example.com/foo"},
		{selector.Exact, "https://example.com/{id}", true, false, "https://example.com/{id}"},
		{selector.Template, "https://example.com/foo", true, false, "https://example.com/foo"},
		{selector.Template, "https://example.com/{id}", false, false, ""},
		{selector.URLPattern, "https://example.com/foo", false, false, ""},
		{selector.URLPattern, "https://example.com/:id", false, false, ""},
		{selector.Exact, "*", false, true, ""},
		{selector.URLPattern, "*", false, true, ""},
		{selector.Template, "*", false, true, ""},
	}
	c := newCompiler(t, selector.Config{})
	for _, tt := range tests {
		m, err := c.Compile(tt.kind, tt.selector)
		if err != nil {
			t.Fatalf("Compile(%s, %q): %v", tt.kind, tt.selector, err)
		}
		var _ hub.ExactMatcher = m
		got, ok := m.Exact()
		if ok != tt.exact || got != tt.exactWant {
			t.Errorf("%s %q: Exact() = %q, %v; want %q, %v", tt.kind, tt.selector, got, ok, tt.exactWant, tt.exact)
		}
		if m.Wildcard() != tt.wildcard {
			t.Errorf("%s %q: Wildcard() = %v; want %v", tt.kind, tt.selector, m.Wildcard(), tt.wildcard)
		}
		if m.String() != tt.selector || m.Kind() != tt.kind {
			t.Errorf("String(), Kind() = %q, %s; want %q, %s", m.String(), m.Kind(), tt.selector, tt.kind)
		}
	}
}

func TestCompileInvalid(t *testing.T) {
	t.Parallel()
	manyVars := "{" + strings.TrimSuffix(strings.Repeat("a,", 1002), ",") + "}"
	tests := []struct {
		name     string
		kind     selector.Kind
		selector string
		want     string
	}{
		{"empty", selector.Exact, "", "exact selector is empty"},
		{"too long", selector.Exact, strings.Repeat("a", 2049), "longer than 2048 bytes"},
		{"invalid UTF-8", selector.Exact, "foo\xffbar", "not valid UTF-8 at byte 3"},
		{"NUL", selector.Exact, "foo\x00", "control character U+0000 at byte 3"},
		{"LF", selector.Template, "foo\nbar", "control character U+000A"},
		{"CR", selector.URLPattern, "/foo\r", "control character U+000D"},
		{"DEL", selector.Exact, "foo\x7f", "control character U+007F"},
		{"C1", selector.Exact, "foo\u0085", "control character U+0085"},
		{"C1 end", selector.Exact, "foo\u009f", "control character U+009F"},
		{"soft hyphen", selector.Exact, "foo\u00adbar", "format character U+00AD"},
		{"zero width space", selector.Exact, "foo\u200bbar", "format character U+200B"},
		{"bidi override", selector.URLPattern, "/foo\u202e", "format character U+202E"},
		{"BOM", selector.Exact, "\ufefffoo", "format character U+FEFF"},
		{"bad pattern", selector.URLPattern, "https://example.com/(", "invalid URL pattern"},
		{"bad pattern host", selector.URLPattern, "https://ex ample.com/:id", "invalid URL pattern"},
		{"bad template", selector.Template, "https://example.com/{id", "invalid URI template"},
		{"bad template var", selector.Template, "https://example.com/{i d}", "invalid URI template"},
		{"too many groups", selector.URLPattern, strings.Repeat("*", 17), "more than 16 groups"},
		{"too many named groups", selector.URLPattern, "https://example.com/" + strings.Repeat(":a/", 16), "more than 16 groups"},
		{"huge template", selector.Template, manyVars, "more than 16 variables"},
		{"unknown kind", selector.Kind(0), "foo", "unsupported matcher type"},
	}
	c := newCompiler(t, selector.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := c.Compile(tt.kind, tt.selector)
			if err == nil {
				t.Fatalf("Compile(%s, %q) = %v; want error", tt.kind, tt.selector, m)
			}
			var se *selector.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *selector.Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want it to contain %q", err, tt.want)
			}
			// Library internals (pointer dumps) never reach the message.
			if strings.Contains(err.Error(), "0x") || strings.Contains(err.Error(), "&") {
				t.Errorf("error %q leaks parser internals", err)
			}
		})
	}
}

// TestTemplateVariables: the variables of a URI template are capped, in
// every form they can take (one expression each, repeated names, lists in
// one expression), because each one adds a group to the regular expression
// the template compiles to, and a match costs time in proportion. A
// 400-variable template used to compile, and took about 4 ms per 100-byte
// topic and 150 ms per 2 KB topic.
func TestTemplateVariables(t *testing.T) {
	t.Parallel()
	vars := func(n int, format string) string {
		var b strings.Builder
		b.WriteString("https://example.com/")
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	list := func(n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("v%d", i)
		}
		return "https://example.com/{" + strings.Join(names, ",") + "}"
	}
	tests := []struct {
		name     string
		max      int
		selector string
		want     string // "" when it compiles
	}{
		{"one", 0, "https://example.com/books/{id}", ""},
		{"16 expressions", 0, vars(16, "{v%d}"), ""},
		{"17 expressions", 0, vars(17, "{v%d}"), "more than 16 variables"},
		{"400 expressions", 0, vars(400, "{v%d}"), "more than 16 variables"},
		{"400 repeats of one name", 0, vars(400, "{v}"), "more than 16 variables"},
		{"16 in a list", 0, list(16), ""},
		{"17 in a list", 0, list(17), "more than 16 variables"},
		{"modifiers count once", 0, vars(16, "{+v%d*}"), ""},
		{"comma outside expressions", 0, "https://example.com/a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/{id}", ""},
		{"raised", 400, vars(400, "{v%d}"), ""},
		{"lowered", 2, vars(3, "/{v%d}"), "more than 2 variables"},
		// Past the cap, a template too large for RE2 is still an error.
		{"too complex for RE2", 2000, list(1002), "invalid URI template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCompiler(t, selector.Config{MaxVariables: tt.max, MaxLength: 1 << 16})
			m, err := c.Compile(selector.Template, tt.selector)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Compile(%.60q...) = %v, %v; want error %q", tt.selector, m, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile(%.60q...): %v", tt.selector, err)
			}
		})
	}
}

func TestMaxLength(t *testing.T) {
	t.Parallel()
	c := newCompiler(t, selector.Config{MaxLength: 10})
	if _, err := c.Compile(selector.Exact, "0123456789"); err != nil {
		t.Errorf("10 bytes: %v", err)
	}
	if _, err := c.Compile(selector.Exact, "0123456789a"); err == nil {
		t.Error("11 bytes: got no error")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  selector.Config
		want string
	}{
		{selector.Config{}, ""},
		{selector.Config{HubURL: "https://hub.example.com/.well-known/mercure"}, ""},
		{selector.Config{HubURL: "/.well-known/mercure"}, "not an absolute URL"},
		{selector.Config{HubURL: "https:///nohost"}, "not an absolute URL"},
		{selector.Config{HubURL: "://"}, "not an absolute URL"},
		{selector.Config{MaxLength: -1}, "MaxLength"},
		{selector.Config{MaxSelectors: -1}, "MaxSelectors"},
		{selector.Config{MaxVariables: -1}, "MaxVariables"},
		{selector.Config{MaxQueryBytes: -1}, "MaxQueryBytes"},
		{selector.Config{CompileCacheSize: -1, MatchCacheBytes: -1}, ""},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v; want %q", tt.cfg, err, tt.want)
		}
		if _, err := selector.New(tt.cfg); err == nil {
			t.Errorf("New(%+v) succeeded", tt.cfg)
		}
	}
}

func TestParseKind(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]selector.Kind{"exact": selector.Exact, "urlpattern": selector.URLPattern} {
		if got, err := selector.ParseKind(name); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"", "Exact", "URLPattern", "template", "regexp"} {
		if _, err := selector.ParseKind(name); err == nil {
			t.Errorf("ParseKind(%q): got no error", name)
		}
	}
}

func TestParseQuery(t *testing.T) {
	t.Parallel()
	type sel struct {
		kind selector.Kind
		raw  string
	}
	tests := []struct {
		query   string
		want    []sel
		wantErr string
	}{
		{"", []sel{}, ""},
		{"foo=bar&lastEventID=1", []sel{}, ""},
		{"match=https%3A%2F%2Fexample.com%2Ffoo&match=bar&match_urlpattern=https%3A%2F%2Fexample.com%2Fbar%2F%3Aid",
			[]sel{{selector.Exact, "https://example.com/foo"}, {selector.Exact, "bar"}, {selector.URLPattern, "https://example.com/bar/:id"}}, ""},
		{"match_exact=a&match=b", []sel{{selector.Exact, "b"}, {selector.Exact, "a"}}, ""},
		{"topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D&match=*",
			[]sel{{selector.Exact, "*"}, {selector.Template, "https://example.com/books/{id}"}}, ""},
		{"match_regexp=.*", nil, `unsupported matcher type "match_regexp"`},
		{"Match=foo", nil, `unsupported matcher type "Match"`},
		{"MATCH_EXACT=foo", nil, `unsupported matcher type "MATCH_EXACT"`},
		{"matches=foo", nil, `unsupported matcher type "matches"`},
		{"match_template=foo", nil, "unsupported matcher type"},
		{"Topic=foo", []sel{}, ""}, // not in the reserved namespace: ignored
		{"match=", nil, "selector: match: exact selector is empty"},
		{"match_urlpattern=https%3A%2F%2Fexample.com%2F(", nil, "selector: match_urlpattern: invalid URL pattern"},
		{"topic=%7Bid", nil, "selector: topic: invalid URI template"},
		{"match=a%00b", nil, "control character U+0000"},
		{"match=a%E2%80%8Bb", nil, "format character U+200B"},
		{"match=" + strings.Repeat("a", 2049), nil, "longer than 2048 bytes"},
		{strings.Repeat("match=a&", 1000), nil, ""},
		{strings.Repeat("match=a&", 1000) + "topic=b", nil, "more than 1000 topic selectors"},
	}
	c := newCompiler(t, selector.Config{})
	for _, tt := range tests {
		name := tt.query
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			ms, err := c.ParseQuery(q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseQuery(%q) error = %v; want %q", tt.query, err, tt.wantErr)
				}
				var se *selector.Error
				if !errors.As(err, &se) {
					t.Fatalf("error %T is not a *selector.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tt.query, err)
			}
			if tt.want == nil {
				return
			}
			got := make([]sel, len(ms))
			for i, m := range ms {
				got[i] = sel{m.Kind(), m.String()}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ParseQuery(%q) = %v; want %v", tt.query, got, tt.want)
			}
		})
	}
}

func TestParseQueryMaxSelectors(t *testing.T) {
	t.Parallel()
	c := newCompiler(t, selector.Config{MaxSelectors: 2})
	if _, err := c.ParseQuery(url.Values{"match": {"a"}, "topic": {"b"}}); err != nil {
		t.Errorf("2 selectors: %v", err)
	}
	if _, err := c.ParseQuery(url.Values{"match": {"a", "b"}, "topic": {"c"}}); err == nil {
		t.Error("3 selectors: got no error")
	}
}

// TestParseQueryMaxBytes: the selectors of one request may take at most
// MaxQueryBytes compiled, as estimated by Size; exact selectors take none.
// The default admits a thousand URL patterns, not a thousand 2 KB
// templates.
func TestParseQueryMaxBytes(t *testing.T) {
	t.Parallel()
	many := func(n int, param, format string) url.Values {
		q := url.Values{}
		for i := range n {
			q.Add(param, fmt.Sprintf(format, i))
		}
		return q
	}
	long := "https://example.com/" + strings.Repeat("a", 2000) + "/%d/{id}"
	tests := []struct {
		name string
		max  int
		q    url.Values
		ok   bool
	}{
		{"1000 exact", 0, many(1000, "match", "https://example.com/"+strings.Repeat("a", 2000)+"/%d"), true},
		{"1000 URL patterns", 0, many(1000, "match_urlpattern", "https://example.com/books/%d/:id"), true},
		{"1000 templates", 0, many(1000, "topic", "https://example.com/books/%d/{id}"), true},
		{"1000 long templates", 0, many(1000, "topic", long), false},
		{"lowered", 20000, many(3, "topic", "https://example.com/books/%d/{id}"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCompiler(t, selector.Config{MaxQueryBytes: tt.max})
			ms, err := c.ParseQuery(tt.q)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			max := tt.max
			if max == 0 {
				max = selector.DefaultMaxQueryBytes
			}
			want := fmt.Sprintf("selector: compiled selectors take more than %d bytes", max)
			if err == nil || err.Error() != want {
				t.Fatalf("ParseQuery = %d matchers, %v; want %q", len(ms), err, want)
			}
		})
	}
	c := newCompiler(t, selector.Config{})
	for _, tt := range []struct {
		kind     selector.Kind
		selector string
		zero     bool
	}{
		{selector.Exact, "https://example.com/books/{id}", true},
		{selector.Template, "*", true},
		{selector.Template, "https://example.com/books/1", true},
		{selector.Template, "https://example.com/books/{id}", false},
		{selector.URLPattern, "https://example.com/books/:id", false},
	} {
		m, err := c.Compile(tt.kind, tt.selector)
		if err != nil {
			t.Fatal(err)
		}
		if (m.Size() == 0) != tt.zero {
			t.Errorf("%s %q: Size() = %d", tt.kind, tt.selector, m.Size())
		}
	}
}

func TestValidateTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		topic string
		want  string
	}{
		{"https://example.com/books/1", ""},
		{"bar", ""},
		{"**", ""},
		{"https://example.com/é", ""},
		{"", "topic is empty"},
		{"*", "reserved for the wildcard"},
		{"foo\nbar", "control character U+000A"},
		{"foo\u0080", "control character U+0080"},
		{"foo\u2066", "format character U+2066"},
		{"\xc3", "not valid UTF-8"},
	}
	for _, tt := range tests {
		err := selector.ValidateTopic(tt.topic)
		if tt.want == "" {
			if err != nil {
				t.Errorf("ValidateTopic(%q): %v", tt.topic, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateTopic(%q) = %v; want %q", tt.topic, err, tt.want)
		}
	}
}

func TestCompileShared(t *testing.T) {
	t.Parallel()
	c := newCompiler(t, selector.Config{})
	a, _ := c.Compile(selector.URLPattern, "/books/:id")
	b, _ := c.Compile(selector.URLPattern, "/books/:id")
	if a != b {
		t.Error("compiling the same pattern twice gave two matchers")
	}
	tpl, _ := c.Compile(selector.Template, "/books/:id")
	if tpl == a {
		t.Error("a Template and a URLPattern with the same text share a matcher")
	}
}

// TestCacheBounded matches far more topics than the cache holds and checks
// every answer stays right while entries are evicted.
func TestCacheBounded(t *testing.T) {
	t.Parallel()
	for _, budget := range []int{-1, 1, 64 * 2 * 200, 0} {
		c := newCompiler(t, selector.Config{MatchCacheBytes: budget, CompileCacheSize: 2})
		var ms []*selector.Matcher
		for i := range 5 {
			m, err := c.Compile(selector.URLPattern, fmt.Sprintf("https://example.com/%d/:id", i))
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		for round := range 2 {
			for i := range 300 {
				for j, m := range ms {
					topic := fmt.Sprintf("https://example.com/%d/%d", i%7, i)
					if got, want := m.Match(topic), i%7 == j; got != want {
						t.Fatalf("budget %d round %d: %s.Match(%q) = %v; want %v", budget, round, m, topic, got, want)
					}
				}
			}
		}
	}
}

func TestConcurrentMatch(t *testing.T) {
	t.Parallel()
	c := newCompiler(t, selector.Config{MatchCacheBytes: 64 * 2 * 500})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				m, err := c.Compile(selector.Template, fmt.Sprintf("https://example.com/%d/{id}", i%5))
				if err != nil {
					t.Error(err)
					return
				}
				topic := fmt.Sprintf("https://example.com/%d/%d", (i+g)%5, i)
				if got, want := m.Match(topic), (i+g)%5 == i%5; got != want {
					t.Errorf("%s.Match(%q) = %v; want %v", m, topic, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMatchers(t *testing.T) {
	t.Parallel()
	c := newCompiler(t, selector.Config{})
	ms, err := c.ParseQuery(url.Values{"match": {"a", "*"}})
	if err != nil {
		t.Fatal(err)
	}
	hm := selector.Matchers(ms)
	if len(hm) != 2 || !hm[0].Match("a") || hm[0].Match("b") || !hm[1].Match("b") {
		t.Errorf("Matchers(%v) = %v", ms, hm)
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[selector.Kind]string{selector.Exact: "exact", selector.URLPattern: "urlpattern", selector.Template: "template", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q; want %q", k, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"match=https%3A%2F%2Fexample.com%2Ffoo",
		"match_urlpattern=https%3A%2F%2Fexample.net%2Ffoo%2F%3Arandom",
		"match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F%3At",
		"topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D",
		"topic=%7B%2Bpath%7D%7B%3Fq*%7D",
		"match_urlpattern=(a|b)*:c",
		"match=*",
		"match_foo=bar",
	} {
		f.Add(s, "https://example.com/books/1")
	}
	c, err := selector.New(selector.Config{HubURL: hubURL, MatchCacheBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query, topic string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		ms, err := c.ParseQuery(q)
		if err != nil {
			var se *selector.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *selector.Error", err)
			}
			return
		}
		for _, m := range ms {
			got := m.Match(topic)
			if got != m.Match(topic) {
				t.Fatalf("%s %q: cached answer differs for %q", m.Kind(), m, topic)
			}
			if m.Wildcard() && !got {
				t.Fatalf("wildcard did not match %q", topic)
			}
			if e, ok := m.Exact(); ok && got != (e == topic) {
				t.Fatalf("exact %q: Match(%q) = %v", e, topic, got)
			}
		}
		_ = selector.ValidateTopic(topic)
	})
}

func BenchmarkMatch(b *testing.B) {
	c := newCompiler(b, selector.Config{})
	cases := []struct {
		name, sel, topic string
		kind             selector.Kind
	}{
		{"exact", "https://example.com/books/1", "https://example.com/books/1", selector.Exact},
		{"urlpattern", "https://example.com/books/:id", "https://example.com/books/1", selector.URLPattern},
		{"template", "https://example.com/books/{id}", "https://example.com/books/1", selector.Template},
	}
	for _, bc := range cases[:3] {
		m, err := c.Compile(bc.kind, bc.sel)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			m.Match(bc.topic) // fill the cache
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !m.Match(bc.topic) {
						b.Fatal("no match")
					}
				}
			})
		})
	}
	// The costliest templates: adjacent variables, every one of which may
	// take any part of the topic. 16 is the default cap; 400 was accepted
	// before there was one (issue 17, point 6).
	vars := func(n int) string {
		var s strings.Builder
		s.WriteString("https://example.com/")
		for i := range n {
			fmt.Fprintf(&s, "{v%d}", i)
		}
		return s.String()
	}
	worst := "https://example.com/" + strings.Repeat("a", 80)
	cases = append(cases,
		struct {
			name, sel, topic string
			kind             selector.Kind
		}{"template16", vars(16), worst, selector.Template},
		struct {
			name, sel, topic string
			kind             selector.Kind
		}{"template400", vars(400), worst, selector.Template})
	uncached := newCompiler(b, selector.Config{MatchCacheBytes: -1, MaxVariables: 400, MaxLength: 4096})
	for _, bc := range cases[1:] {
		m, err := uncached.Compile(bc.kind, bc.sel)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name+"/uncached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Match(bc.topic)
			}
		})
	}
}

// TestCacheDoesNotPinTopics matches topics that share memory with large
// strings, as a decoded update's topics share its record, data included,
// and checks the heap after a collection: the result cache keeps copies
// of its topics, so what it holds is what its budget counts. A memory
// bound, not a timing one; not parallel, so that other tests'
// allocations do not count.
func TestCacheDoesNotPinTopics(t *testing.T) {
	const n, size = 40, 1 << 20
	c := newCompiler(t, selector.Config{})
	m, err := c.Compile(selector.URLPattern, "https://example.com/books/:id")
	if err != nil {
		t.Fatal(err)
	}
	base := heapAfterGC()
	for i := range n {
		prefix := fmt.Sprintf("https://example.com/books/%d", i)
		record := prefix + strings.Repeat("x", size)
		topic := record[:len(prefix)]
		if !m.Match(topic) {
			t.Fatalf("%s does not match %q", m, topic)
		}
	}
	heap := heapAfterGC()
	t.Logf("heap grew by %d KiB after matching %d topics of %d MiB records", (int64(heap)-int64(base))>>10, n, size>>20)
	if heap > base+8<<20 {
		t.Fatalf("heap grew from %d to %d MiB: the cached results keep the records their topics share", base>>20, heap>>20)
	}
	runtime.KeepAlive(m)
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestKnownAndMatchCost: Known answers, without testing, what Match would
// (exact selectors, the wildcard, a template's own text, cached results)
// and nothing else; MatchCost grows with a pattern's groups or a
// template's variables, so that the hub can bound its share of matching.
func TestKnownAndMatchCost(t *testing.T) {
	t.Parallel()
	for _, cacheBytes := range []int{0, -1} {
		c := newCompiler(t, selector.Config{MatchCacheBytes: cacheBytes})
		compile := func(k selector.Kind, s string) *selector.Matcher {
			t.Helper()
			m, err := c.Compile(k, s)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		for _, tc := range []struct {
			m     *selector.Matcher
			topic string
			want  bool
		}{
			{compile(selector.Exact, "https://example.com/a"), "https://example.com/a", true},
			{compile(selector.Exact, "https://example.com/a"), "https://example.com/b", false},
			{compile(selector.URLPattern, "*"), "anything", true},
			{compile(selector.Template, "https://example.com/{x}"), "https://example.com/{x}", true},
		} {
			if v, ok := tc.m.Known(tc.topic); !ok || v != tc.want {
				t.Errorf("%s.Known(%q) = %v, %v; want %v, true", tc.m, tc.topic, v, ok, tc.want)
			}
		}
		for _, m := range []*selector.Matcher{compile(selector.Exact, "https://example.com/a"), compile(selector.Template, "*")} {
			if got := m.MatchCost(); got != 0 {
				t.Errorf("%s.MatchCost() = %d; want 0", m, got)
			}
		}
		for _, tc := range []struct {
			m       *selector.Matcher
			yes, no string
		}{
			{compile(selector.Template, "https://example.com/{a}"), "https://example.com/1", "https://example.org/1"},
			{compile(selector.URLPattern, "https://example.com/:a"), "https://example.com/1", "https://example.org/1"},
		} {
			for _, topic := range []string{tc.yes, tc.no} {
				if _, ok := tc.m.Known(topic); ok {
					t.Errorf("%s.Known(%q) knew before any Match", tc.m, topic)
				}
				want := topic == tc.yes
				if got := tc.m.Match(topic); got != want {
					t.Errorf("%s.Match(%q) = %v; want %v", tc.m, topic, got, want)
				}
				v, ok := tc.m.Known(topic)
				if cached := cacheBytes >= 0; ok != cached || ok && v != want {
					t.Errorf("cache %d: %s.Known(%q) after Match = %v, %v; want %v, %v", cacheBytes, tc.m, topic, v, ok, want, cached)
				}
			}
			if tc.m.MatchCost() < 1 {
				t.Errorf("%s.MatchCost() = %d; want at least 1", tc.m, tc.m.MatchCost())
			}
		}
		one := compile(selector.Template, "https://example.com/{a}")
		sixteen := compile(selector.Template, "https://example.com/{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}")
		if one.MatchCost() >= sixteen.MatchCost() {
			t.Errorf("MatchCost of 1 variable %d, of 16 %d; want more for more", one.MatchCost(), sixteen.MatchCost())
		}
		p1 := compile(selector.URLPattern, "https://example.com/:a")
		p3 := compile(selector.URLPattern, "https://example.com/:a/:b/:c")
		if p1.MatchCost() >= p3.MatchCost() {
			t.Errorf("MatchCost of 1 group %d, of 3 %d; want more for more", p1.MatchCost(), p3.MatchCost())
		}
	}
}
