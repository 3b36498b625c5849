// Package hub is the domain core of ssehub: topics, subscriptions, fan-out,
// history and the hand-off from replay to live delivery. It knows nothing
// about HTTP and uses the standard library only.
//
// # How an update flows
//
// Publish validates an update, gives it an ID and appends it to the Store,
// returning once the store has made it durable. One dispatcher goroutine
// per hub follows the store's log (so updates appended by other hubs
// sharing the store arrive the same way) and offers each update to the
// subscriptions that match it: exact topics through a map, patterns by
// testing each. A subscription with more patterns than
// Config.InlinePatterns is not tested by the dispatcher: it is offered
// every update and tests them in its own Drain, a bounded number at a time,
// so that many or costly patterns delay no one else. The patterns the
// dispatcher does test are bounded too: per update it spends at most
// Config.MatchBudget on the tests a CostlyMatcher cannot answer from what
// it knows (a cached result), and a subscription it has no budget left
// for, or whose tests keep costing, tests that update or the next, and
// every later one, in its own Drain. Offering never
// blocks: each subscription has a bounded queue (count and bytes), and a
// subscription that overflows it is ended with ErrSlowConsumer; its client
// resumes from history.
//
// # Resuming without gaps or duplicates
//
// Subscribe registers the subscription for live updates and notes, in the
// same critical section, the position P of the last update dispatched.
// Updates after P arrive live; updates up to P are read from the store.
// Drain serves the replay first, lazily and in batches, then the live queue,
// so every retained update after the client's Last-Event-ID is delivered
// exactly once and in log order.
//
// # Ownership
//
// The hub owns its dispatcher goroutine; Close stops it and ends every
// subscription. A Subscription is consumed by one goroutine (typically an
// HTTP handler) that waits on Ready and calls Drain.
package hub
