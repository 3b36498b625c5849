package hub

// Matcher decides whether a topic is selected, by a subscription's routing
// selectors or by a grant's authorization selectors. Implementations must be
// safe for concurrent use and should be cheap: the hub calls Match for every
// update whose topics are not indexed.
type Matcher interface {
	Match(topic string) bool
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
