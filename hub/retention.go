package hub

import "time"

// Limits bound the history a store retains. A zero field sets no limit of
// its kind.
type Limits struct {
	// MaxUpdates is how many updates are kept.
	MaxUpdates int
	// MaxBytes is the payload size kept (data, ID, type and topics).
	MaxBytes int64
	// MaxAge is how long an update is kept after it was appended.
	MaxAge time.Duration
}

// TopicLimits is per-topic retention: it returns the limits that apply to
// each topic on its own (every topic a rule matches keeps its own newest
// MaxUpdates), and false when no rule names the topic.
//
// An update is retained while at least one of its topics retains it: a
// topic without a rule retains every update, and a topic with a rule
// retains the updates within its limits. A store's global limits apply on
// top, to the whole log. The function must be fast and safe for concurrent
// use; stores call it on every append.
type TopicLimits func(topic string) (Limits, bool)
