package selector

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	urlpattern "github.com/dunglas/go-urlpattern"
	"github.com/yosida95/uritemplate/v3"

	"github.com/ssehub/ssehub/hub"
)

// Kind says how a selector string is read.
type Kind uint8

const (
	// Exact selects the one topic equal to the selector, byte for byte. It
	// is the Mercure 1.0 "exact" matcher type ("match", "match_exact").
	Exact Kind = iota + 1
	// URLPattern selects the topics matched by a WHATWG URL Pattern. It is
	// the Mercure 1.0 "urlpattern" matcher type ("match_urlpattern").
	URLPattern
	// Template selects the topic equal to the selector and the topics
	// matched by it as an RFC 6570 URI template. It is the v0.24 "topic"
	// selector, also used by the v0.24 "mercure" JWT claim.
	Template
)

// String returns the kind's name: "exact", "urlpattern" or "template".
func (k Kind) String() string {
	switch k {
	case Exact:
		return "exact"
	case URLPattern:
		return "urlpattern"
	case Template:
		return "template"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind returns the kind named by a Mercure 1.0 matcher type, as found in
// the match_type member of an authorization detail: "exact" or "urlpattern".
// The comparison is case-sensitive. "template" is not a 1.0 matcher type and
// is refused like any other unsupported name.
func ParseKind(name string) (Kind, error) {
	switch name {
	case "exact":
		return Exact, nil
	case "urlpattern":
		return URLPattern, nil
	}
	return 0, newError(fmt.Sprintf("unsupported matcher type %s", quoteName(name)), nil)
}

// Matcher is a compiled selector. It implements hub.ExactMatcher and
// hub.CostlyMatcher, and is safe for concurrent use. A Compiler may return
// the same *Matcher to several callers; it is immutable.
type Matcher struct {
	kind     Kind
	raw      string
	id       uint64 // keys the compiler's result cache
	size     int    // estimated bytes: see Size
	cost     int    // estimated cost of an uncached Match: see MatchCost
	wildcard bool
	exact    bool
	pattern  *urlpattern.URLPattern // URLPattern kind
	re       *regexp.Regexp         // Template kind with variables
	c        *Compiler
}

var (
	_ hub.ExactMatcher  = (*Matcher)(nil)
	_ hub.CostlyMatcher = (*Matcher)(nil)
)

// Kind returns the kind m was compiled as.
func (m *Matcher) Kind() Kind { return m.kind }

// String returns the selector m was compiled from, unchanged.
func (m *Matcher) String() string { return m.raw }

// Wildcard reports whether m is the "*" wildcard, which matches every topic.
func (m *Matcher) Wildcard() bool { return m.wildcard }

// Size estimates the memory m takes, in bytes: 64 per byte of the selector
// and 1024 per group or variable, plus 4096, an upper bound of what the
// compiled expressions of URL patterns and templates measure. It is 0 for
// exact selectors and the wildcard, which compile to nothing.
func (m *Matcher) Size() int { return m.size }

// compiledSize is Size of a pattern or template of n groups or variables.
func compiledSize(selector string, n int) int {
	return 64*len(selector) + 1024*n + 4096
}

// Exact returns the one topic m selects and true when m is an Exact
// selector, or a Template without variables. It returns false for the
// wildcard, URL patterns and templates with variables.
func (m *Matcher) Exact() (string, bool) {
	if m.exact {
		return m.raw, true
	}
	return "", false
}

// Match reports whether m selects topic. Results of URL patterns and URI
// templates are cached by the Compiler that compiled m.
func (m *Matcher) Match(topic string) bool {
	if v, ok := m.Known(topic); ok {
		return v
	}
	var v bool
	if m.pattern != nil {
		v = m.pattern.Test(topic, m.c.base)
	} else {
		v = m.re.MatchString(topic)
	}
	m.c.results.put(m.id, topic, v)
	return v
}

// Known reports, with ok true, whether m selects topic when that takes no
// pattern test: m is exact or the wildcard, topic is the template itself,
// or the result is cached. With ok false, only Match can tell, at about
// MatchCost. It lets the hub bound its own share of matching (see
// hub.CostlyMatcher).
func (m *Matcher) Known(topic string) (match, ok bool) {
	switch {
	case m.wildcard:
		return true, true
	case m.exact:
		return topic == m.raw, true
	case m.kind == Template && topic == m.raw:
		return true, true
	}
	return m.c.results.get(m.id, topic)
}

// MatchCost estimates what a Match that Known cannot answer costs, in
// units of about a microsecond: one per variable of a template and one
// more, and 40 plus one per group for a URL pattern (uncached, a
// one-variable template takes about 1 us, a 16-variable one 17 us, a
// one-group URL pattern 25-43 us). It is 0 for exact selectors and the
// wildcard.
func (m *Matcher) MatchCost() int { return m.cost }

// The estimated costs of an uncached Match: see MatchCost.
const (
	templateCost   = 1
	urlPatternCost = 40
)

// Compile returns the Matcher for selector read as kind. It fails with an
// *Error when the selector is empty, longer than the configured maximum,
// not valid UTF-8, contains a control or format character, is a URL
// pattern with more than 16 groups or a URI template with more than the
// configured maximum of variables, or is not a valid URL pattern or URI
// template for its kind. "*" compiles to the
// wildcard for every kind. A Template without "{" is an exact selector.
//
// Compile is safe for concurrent use. Compiled patterns are shared through
// a bounded cache, so compiling the same selector again is cheap.
func (c *Compiler) Compile(kind Kind, selector string) (*Matcher, error) {
	if kind != Exact && kind != URLPattern && kind != Template {
		return nil, newError(fmt.Sprintf("unsupported matcher type %s", kind), nil)
	}
	if len(selector) > c.maxLength {
		return nil, newError(fmt.Sprintf("%s selector is longer than %d bytes", kind, c.maxLength), nil)
	}
	if selector == "" {
		return nil, newError(fmt.Sprintf("%s selector is empty", kind), nil)
	}
	if err := checkChars(kind.String()+" selector", selector); err != nil {
		return nil, err
	}
	if selector == "*" {
		return &Matcher{kind: kind, raw: selector, wildcard: true, c: c}, nil
	}
	if kind == Exact || (kind == Template && !strings.Contains(selector, "{")) {
		return &Matcher{kind: kind, raw: selector, exact: true, c: c}, nil
	}
	k := compileKey{kind, selector}
	if m := c.compiled.get(k); m != nil {
		return m, nil
	}
	m := &Matcher{kind: kind, raw: selector, id: c.nextID.Add(1), c: c}
	switch kind {
	case URLPattern:
		n := strings.Count(selector, "*") + strings.Count(selector, "(") +
			strings.Count(selector, ":") + strings.Count(selector, "{")
		if n > maxPatternGroups {
			return nil, newError(fmt.Sprintf("URL pattern has more than %d groups", maxPatternGroups), nil)
		}
		m.size = compiledSize(selector, n)
		m.cost = urlPatternCost + n
		// A nil Options leaves ignoreCase off, as Mercure requires.
		p, err := urlpattern.New(selector, c.base, nil)
		if err != nil {
			// The library's message may dump internal structures,
			// pointers included; keep it for logs only.
			return nil, newError("invalid URL pattern", err)
		}
		m.pattern = p
	case Template:
		n := templateVariables(selector)
		if n > c.maxVariables {
			return nil, newError(fmt.Sprintf("template selector has more than %d variables", c.maxVariables), nil)
		}
		m.size = compiledSize(selector, n)
		m.cost = templateCost + n
		re, err := templateRegexp(selector)
		if err != nil {
			return nil, newError("invalid URI template", err)
		}
		m.re = re
	}
	c.compiled.put(k, m)
	return m, nil
}

// maxPatternGroups bounds the groups of a URL pattern, counted as an upper
// bound from its ":", "*", "(" and "{" characters. Go's regexp runs in time
// linear in the topic's length, but capture groups multiply that time:
// 2000 "*" wildcards take seconds against a 2 KB topic. 16 is far above
// what a real pattern uses and keeps the worst case to a few milliseconds.
const maxPatternGroups = 16

// templateVariables counts the variables of a URI template as written: one
// per name inside each {expression}, a name repeated counting again, since
// each adds a group to the template's regular expression. It is counted
// before parsing, so an unclosed expression counts to the end of s.
func templateVariables(s string) int {
	n, in := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{':
			in = true
			n++
		case c == '}':
			in = false
		case c == ',' && in:
			n++
		}
	}
	return n
}

// templateRegexp compiles an RFC 6570 template into an anchored regular
// expression. uritemplate panics (regexp.MustCompile) when the expression it
// builds is too large for RE2, for instance an expression with over a
// thousand variables; that is reported as an error.
func templateRegexp(s string) (re *regexp.Regexp, err error) {
	t, err := uritemplate.New(s)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			re, err = nil, fmt.Errorf("template too complex: %v", r)
		}
	}()
	return t.Regexp(), nil
}

// Matchers returns ms as a slice of hub.Matcher, the type hub subscriptions
// and auth grants hold.
func Matchers(ms []*Matcher) []hub.Matcher {
	out := make([]hub.Matcher, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// ParseQuery compiles the topic selectors of a subscribe request's query
// (or form body) parameters, in order of parameter name and then of
// appearance:
//
//   - "match" and "match_exact" are Exact selectors;
//   - "match_urlpattern" is a URLPattern selector;
//   - "topic", the v0.24 parameter, is a Template selector.
//
// Parameter names are case-sensitive. Any other name that starts with
// "match", compared case-insensitively, is an unsupported matcher type and
// an error, as Mercure 1.0 reserves that prefix. Other parameters are
// ignored. More than the configured maximum number of selectors is an
// error, and so are selectors whose compiled forms take more than the
// configured maximum of memory (the sum of their Size). When q holds no
// selector, ParseQuery returns an empty slice and no error; whether that is
// acceptable is the caller's decision. Every error is an *Error, to be
// answered with 400 Bad Request.
func (c *Compiler) ParseQuery(q url.Values) ([]*Matcher, error) {
	n := 0
	for name, values := range q {
		if _, ok := paramKind(name); ok {
			n += len(values)
		} else if len(name) >= len("match") && strings.EqualFold(name[:len("match")], "match") {
			return nil, newError(fmt.Sprintf("unsupported matcher type %s", quoteName(name)), nil)
		}
	}
	if n > c.maxSelectors {
		return nil, newError(fmt.Sprintf("more than %d topic selectors", c.maxSelectors), nil)
	}
	out := make([]*Matcher, 0, n)
	size := 0
	for _, name := range []string{"match", "match_exact", "match_urlpattern", "topic"} {
		kind, _ := paramKind(name)
		for _, v := range q[name] {
			m, err := c.Compile(kind, v)
			if err != nil {
				err.(*Error).param = name
				return nil, err
			}
			if size += m.size; size > c.maxQuery {
				return nil, newError(fmt.Sprintf("compiled selectors take more than %d bytes", c.maxQuery), nil)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// paramKind returns the kind of selector carried by a query parameter.
func paramKind(name string) (Kind, bool) {
	switch name {
	case "match", "match_exact":
		return Exact, true
	case "match_urlpattern":
		return URLPattern, true
	case "topic":
		return Template, true
	}
	return 0, false
}

// quoteName quotes an untrusted name for an error message, truncated so that
// the message stays short.
func quoteName(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// resolveBase checks a hub URL and returns it as a base for URL patterns.
func resolveBase(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", fmt.Errorf("selector: hub URL %q is not an absolute URL", s)
	}
	return s, nil
}
