package server

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// TopicRule limits the history of the topics a selector matches. Each
// matching topic keeps its own history within Limits (see hub.TopicLimits);
// the first rule that matches a topic is the one that applies.
type TopicRule struct {
	// Selector picks the topics, read as Kind.
	Selector string
	// Kind is how Selector is read. Zero means selector.Template: an exact
	// topic, or an RFC 6570 URI template such as
	// "https://example.com/books/{id}"; "*" matches every topic.
	Kind selector.Kind
	// Limits bound each matching topic's history. A zero field sets no
	// limit of its kind; at least one is set.
	Limits hub.Limits
}

// String returns r in the syntax ParseTopicRule reads.
func (r TopicRule) String() string {
	var b strings.Builder
	b.WriteString(r.Selector)
	sep := "="
	add := func(k, v string) {
		b.WriteString(sep + k + "=" + v)
		sep = ","
	}
	if r.Limits.MaxUpdates > 0 {
		add("max-updates", strconv.Itoa(r.Limits.MaxUpdates))
	}
	if r.Limits.MaxBytes > 0 {
		add("max-bytes", strconv.FormatInt(r.Limits.MaxBytes, 10))
	}
	if r.Limits.MaxAge > 0 {
		add("max-age", r.Limits.MaxAge.String())
	}
	if r.Kind != 0 && r.Kind != selector.Template {
		add("match-type", r.Kind.String())
	}
	return b.String()
}

// TopicRuleSyntax describes what ParseTopicRule reads, for usage messages.
const TopicRuleSyntax = "PATTERN=max-updates=N,max-bytes=SIZE,max-age=DURATION (any of the three; PATTERN is a topic or URI template, or a URL pattern with match-type=urlpattern)"

// ParseTopicRule reads a rule written PATTERN=LIMIT,LIMIT..., where each
// LIMIT is max-updates=N, max-bytes=SIZE (a number of bytes, optionally
// followed by B, KB, MB, GB, KiB, MiB or GiB) or max-age=DURATION (Go
// syntax: 90s, 30m, 24h), at least one of them, and optionally
// match-type=exact, template or urlpattern (default template). PATTERN
// ends at the first "=" followed by one of those names; it is checked as a
// selector of its kind. Errors are one line and say what is wrong.
func ParseTopicRule(s string) (TopicRule, error) {
	var r TopicRule
	i := -1
	for j := 0; j < len(s); j++ {
		if s[j] == '=' && startsWithKey(s[j+1:]) {
			i = j
			break
		}
	}
	if i < 0 {
		return r, fmt.Errorf("no limit: want %s", TopicRuleSyntax)
	}
	r.Selector = s[:i]
	if r.Selector == "" {
		return r, errors.New("the pattern is empty")
	}
	seen := make(map[string]bool)
	for _, item := range strings.Split(s[i+1:], ",") {
		key, val, _ := strings.Cut(item, "=")
		if seen[key] {
			return r, fmt.Errorf("%s is given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "max-updates":
			var n int64
			if n, err = strconv.ParseInt(val, 10, 0); err == nil && n <= 0 {
				err = errors.New("not positive")
			}
			r.Limits.MaxUpdates = int(n)
			if err != nil {
				return r, fmt.Errorf("max-updates=%s: want a positive whole number", val)
			}
		case "max-bytes":
			if r.Limits.MaxBytes, err = parseSize(val); err != nil {
				return r, fmt.Errorf("max-bytes=%s: %v", val, err)
			}
		case "max-age":
			if r.Limits.MaxAge, err = time.ParseDuration(val); err != nil || r.Limits.MaxAge <= 0 {
				return r, fmt.Errorf("max-age=%s: want a positive duration such as 90s, 30m or 24h", val)
			}
		case "match-type":
			switch val {
			case "exact":
				r.Kind = selector.Exact
			case "template":
				r.Kind = selector.Template
			case "urlpattern":
				r.Kind = selector.URLPattern
			default:
				return r, fmt.Errorf("match-type=%s: want exact, template or urlpattern", val)
			}
		default:
			return r, fmt.Errorf("unknown limit %q: want max-updates, max-bytes, max-age or match-type", key)
		}
	}
	if r.Limits == (hub.Limits{}) {
		return r, errors.New("no limit: give max-updates, max-bytes or max-age")
	}
	if _, err := checkCompiler().Compile(r.kind(), r.Selector); err != nil {
		return r, fmt.Errorf("pattern %q: %v", r.Selector, strings.TrimPrefix(err.Error(), "selector: "))
	}
	return r, nil
}

// checkCompiler compiles rules to check them before the hub URL is known.
var checkCompiler = sync.OnceValue(func() *selector.Compiler {
	c, _ := selector.New(selector.Config{}) // the zero Config is valid
	return c
})

// kind returns r.Kind with its default.
func (r TopicRule) kind() selector.Kind {
	if r.Kind == 0 {
		return selector.Template
	}
	return r.Kind
}

// startsWithKey reports whether s begins with a limit name and "=".
func startsWithKey(s string) bool {
	for _, k := range []string{"max-updates=", "max-bytes=", "max-age=", "match-type="} {
		if strings.HasPrefix(s, k) {
			return true
		}
	}
	return false
}

// parseSize reads a positive byte size: digits and an optional unit.
func parseSize(s string) (int64, error) {
	const want = "want a positive number of bytes, optionally followed by B, KB, MB, GB, KiB, MiB or GiB"
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New(want)
	}
	mult := map[string]int64{
		"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	}[strings.ToLower(s[end:])]
	if mult == 0 {
		return 0, errors.New(want)
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// topicRules is the hub.TopicLimits of Retention.Topics. The store is
// opened before the hub URL is known, so the rules are compiled later, by
// compile, before the hub serves anything.
type topicRules struct {
	rules    []TopicRule
	matchers atomic.Pointer[[]*selector.Matcher]
}

// newTopicRules returns the rules, or nil when there are none.
func newTopicRules(rules []TopicRule) *topicRules {
	if len(rules) == 0 {
		return nil
	}
	return &topicRules{rules: rules}
}

// topicLimits returns the store's TopicLimits: nil without rules.
func (t *topicRules) topicLimits() hub.TopicLimits {
	if t == nil {
		return nil
	}
	return t.limits
}

// compile compiles the rules' selectors with the hub's compiler.
func (t *topicRules) compile(comp *selector.Compiler) error {
	if t == nil {
		return nil
	}
	ms := make([]*selector.Matcher, len(t.rules))
	for i, r := range t.rules {
		m, err := comp.Compile(r.kind(), r.Selector)
		if err != nil {
			return fmt.Errorf("topic retention rule %q: %w", r.String(), err)
		}
		ms[i] = m
	}
	t.matchers.Store(&ms)
	return nil
}

// limits returns the limits of the first rule matching topic.
func (t *topicRules) limits(topic string) (hub.Limits, bool) {
	ms := t.matchers.Load()
	if ms == nil {
		return hub.Limits{}, false
	}
	for i, m := range *ms {
		if m.Match(topic) {
			return t.rules[i].Limits, true
		}
	}
	return hub.Limits{}, false
}
