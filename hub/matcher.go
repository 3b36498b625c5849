package hub

// Matcher decides whether a topic is selected, by a subscription's routing
// selectors or by a grant's authorization selectors. Implementations must be
// safe for concurrent use and should be cheap: the hub calls Match for every
// update whose topics are not indexed.
type Matcher interface {
	Match(topic string) bool
}

// CostlyMatcher is implemented by matchers whose Match may be costly but
// that know some answers at no cost, such as the selector package's URL
// patterns and URI templates, which remember their results. The dispatcher
// spends at most Config.MatchBudget per update on the Match calls of such
// matchers that Known cannot answer; the Match calls of other Matchers are
// taken to be cheap and not counted.
type CostlyMatcher interface {
	Matcher
	// Known reports, with ok true, whether topic is selected when that is
	// known without the costly test: remembered from an earlier Match,
	// say. With ok false only Match can tell.
	Known(topic string) (match, ok bool)
	// MatchCost estimates what one Match that Known cannot answer costs,
	// in units of about a microsecond of a current server core.
	MatchCost() int
}

// ExactMatcher is implemented by matchers that may select exactly one topic.
// The hub indexes those in a map, so a publish touches only the subscribers
// of its topics instead of testing every subscriber.
type ExactMatcher interface {
	Matcher
	// Exact returns the one topic the matcher selects and true, or false
	// when the matcher selects by pattern.
	Exact() (topic string, ok bool)
}

// MatchAll is a Matcher that selects every topic: the "*" wildcard.
var MatchAll Matcher = matchAll{}

type matchAll struct{}

func (matchAll) Match(string) bool { return true }

// Exact returns an ExactMatcher selecting exactly topic.
func Exact(topic string) ExactMatcher { return exact(topic) }

type exact string

func (e exact) Match(topic string) bool { return string(e) == topic }
func (e exact) Exact() (string, bool)   { return string(e), true }

// costlyOf returns, for each of ms, the CostlyMatcher it is, or nil; it
// returns nil when none of ms is one.
func costlyOf(ms []Matcher) []CostlyMatcher {
	var cs []CostlyMatcher
	for i, m := range ms {
		if c, ok := m.(CostlyMatcher); ok {
			if cs == nil {
				cs = make([]CostlyMatcher, len(ms))
			}
			cs[i] = c
		}
	}
	return cs
}

// matchCostly is anyMatch for the dispatcher and a subscription with
// CostlyMatchers among its patterns: it tests the patterns against topics,
// spending from *left the MatchCost of every CostlyMatcher's Match that
// Known cannot answer. It returns ok false, and tests no further, when
// such a Match would cost more than *left.
func (s *Subscription) matchCostly(topics []string, left *int) (match, ok bool) {
	for i, m := range s.patterns {
		c := s.costly[i]
		for _, t := range topics {
			if c == nil {
				if m.Match(t) {
					return true, true
				}
				continue
			}
			v, known := c.Known(t)
			if !known {
				cost := c.MatchCost()
				if cost > *left {
					return false, false
				}
				*left -= cost
				v = c.Match(t)
			}
			if v {
				return true, true
			}
		}
	}
	return false, true
}

// anyMatch reports whether any matcher selects any of topics.
func anyMatch(ms []Matcher, topics []string) bool {
	for _, m := range ms {
		for _, t := range topics {
			if m.Match(t) {
				return true
			}
		}
	}
	return false
}
