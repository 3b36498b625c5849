package ssehttp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// publisherIdentity is who publishes with grant g, as the hub scopes
// Idempotency-Keys (hub.Update.Publisher): two publishes share keys only
// if they have the same identity.
//
// A token with a subject is its issuer and subject, whatever else it
// grants, so that a publisher keeps its keys across token renewals, and
// one issuer's subjects are not another's. A token without a subject is
// its grant: a SHA-256 of its issuer, its publish and subscribe targets
// (each set sorted, without repeats) and its payloads. Its expiry is not
// part of it, so a renewed token with the same grant is the same
// publisher. Tokens without a subject that grant exactly the same share
// their keys; give publishers subjects to keep them apart.
//
// Publishing without a token is refused, so every publish has an
// identity; the hub's anonymous scope (the empty identity) is not used.
func publisherIdentity(g *auth.Grant) string {
	if g.Subject != "" {
		return "sub " + strconv.Quote(g.Issuer) + " " + strconv.Quote(g.Subject)
	}
	var b strings.Builder
	line := func(parts ...string) {
		for i, p := range parts {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Quote(p))
		}
		b.WriteByte('\n')
	}
	line("issuer", g.Issuer)
	line(append([]string{"publish"}, targets(g.Publish)...)...)
	line(append([]string{"subscribe"}, targets(g.Subscribe)...)...)
	line("payload", string(g.Payload))
	for _, p := range g.Payloads {
		line("payloads", matcherIdentity(p.Match), string(p.Data))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "grant " + hex.EncodeToString(sum[:])
}

// targets returns the canonical form of a grant's selectors: their
// identities, sorted, without repeats.
func targets(ms []hub.Matcher) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = matcherIdentity(m)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// matcherIdentity names what a grant's selector selects: its kind and
// source for the selectors of package selector (what jwtauth grants),
// the topic of an exact matcher, "*" for hub.MatchAll, and the Go type
// and value of any other Matcher.
func matcherIdentity(m hub.Matcher) string {
	switch m := m.(type) {
	case *selector.Matcher:
		return m.Kind().String() + " " + m.String()
	case hub.ExactMatcher:
		if t, ok := m.Exact(); ok {
			return "exact " + t
		}
	}
	if m == hub.MatchAll {
		return "*"
	}
	if s, ok := m.(fmt.Stringer); ok {
		return fmt.Sprintf("%T %s", m, s)
	}
	return fmt.Sprintf("%T %#v", m, m)
}
