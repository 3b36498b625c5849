// Package selector compiles topic selectors into hub.Matcher values.
//
// A selector is the string a subscriber or a token uses to pick topics. Its
// Kind says how the string is read:
//
//   - Exact (the Mercure 1.0 "match" and "match_exact" query parameters, and
//     match_type "exact") compares topics byte for byte, with no
//     normalization and no resolution of relative values.
//   - URLPattern (the 1.0 "match_urlpattern" parameter, match_type
//     "urlpattern") is a WHATWG URL Pattern. Relative patterns and relative
//     topics are resolved against the hub URL; ignoreCase is never enabled;
//     a topic that cannot be parsed as a URL reference never matches.
//   - Template (the v0.24 "topic" parameter and the selectors of the v0.24
//     "mercure" JWT claim) matches a topic equal to the selector, or one that
//     the selector matches as an RFC 6570 URI template.
//
// The value "*" is the wildcard of every kind: it matches every topic.
//
// A Compiler holds the hub URL, the limits, a bounded cache of compiled
// selectors (so that a pattern shared by many subscribers or tokens is
// compiled once) and a bounded cache of match results (so that the hub's hot
// path rarely evaluates a pattern). URL patterns and URI templates both
// compile to Go regular expressions, which run in time linear in the topic
// and in the expression; the limits bound the expression (a selector's
// length, a URL pattern's 16 groups, a template's variables) and the
// memory of the selectors of one request (Matcher.Size, MaxQueryBytes).
// What keeps one subscriber's selectors from delaying the others is the
// hub's: see hub.SubscribeRequest.Topics and hub.Config.MatchBudget. For
// that, every Matcher implements hub.CostlyMatcher: Known answers what
// needs no pattern test (a cached result, say) and MatchCost estimates
// what one does.
//
// Every compiled Matcher implements hub.ExactMatcher: exact selectors, and
// templates without variables, report their one topic so that the hub can
// index them in a map.
//
// # Dependencies
//
// github.com/dunglas/go-urlpattern implements the WHATWG URL Pattern
// standard that Mercure 1.0 mandates for the "urlpattern" matcher type. It is
// the implementation the reference Mercure hub uses, so both hubs agree on
// every edge case of the standard (URL canonicalization, default ports,
// wildcard components), and it compiles patterns to RE2 expressions, which
// the Mercure specification requires to rule out catastrophic backtracking.
// Writing our own would mean re-implementing the URL Pattern and WHATWG URL
// parsers.
//
// github.com/yosida95/uritemplate/v3 parses RFC 6570 URI templates, the
// selector syntax of the v0.24 Mercure dialect that deployed clients still
// send. It is small, has no dependencies, is the library the reference hub
// used for the same purpose, and converts a template into a Go regular
// expression, so template matching is linear-time too.
package selector
