// Package auth defines what the hub's HTTP face needs to know about a
// client: a Grant (which topics it may publish to and read privately) and
// an Authenticator that derives one from a request. It uses the standard
// library only; package jwtauth implements Authenticator with JWTs.
package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// Role says which side of the hub a request is on. Publishers and
// subscribers may use different keys.
type Role int

const (
	// Subscriber is a request that opens an event stream or reads history.
	Subscriber Role = iota
	// Publisher is a request that publishes an update.
	Publisher
)

// String returns "subscriber" or "publisher".
func (r Role) String() string {
	if r == Publisher {
		return "publisher"
	}
	return "subscriber"
}

// Source says where a request carried its credentials. Publishing with a
// cookie needs a CSRF check that a bearer header does not.
type Source int

const (
	// SourceHeader is an "Authorization: Bearer" header.
	SourceHeader Source = iota + 1
	// SourceCookie is the authorization cookie.
	SourceCookie
	// SourceQuery is the "authorization" query parameter (off by default).
	SourceQuery
)

// Grant is what an authenticated client may do.
type Grant struct {
	// Subject identifies the client (the JWT "sub"), for limits and logs.
	Subject string
	// Issuer is who issued the credentials (the JWT "iss"); empty when
	// they do not say. Subjects are unique per issuer only, so the hub
	// identifies a publisher by both.
	Issuer string
	// Publish selects the topics the client may publish to. A publish is
	// allowed only if every topic of the update is selected.
	Publish []hub.Matcher
	// Subscribe selects the topics whose private updates the client may
	// read. A private update is readable if any of its topics is selected.
	Subscribe []hub.Matcher
	// Payload is opaque data attached to every subscription of the client
	// (the "payload" of the v0.24 "mercure" claim); nil when absent.
	// PayloadFor also consults Payloads.
	Payload json.RawMessage
	// Payloads are the payloads of the client's subscribe grants (the
	// Mercure 1.0 authorization details), in token order; see PayloadFor.
	Payloads []Payload
	// Expires is when the credentials expire; zero means never. A stream
	// opened with the grant ends by then.
	Expires time.Time
	// Source is where the credentials came from.
	Source Source
}

// CanPublish reports whether g may publish an update to every one of topics.
// A nil Grant may publish nothing.
func (g *Grant) CanPublish(topics []string) bool {
	if g == nil || len(topics) == 0 {
		return false
	}
	for _, t := range topics {
		if !matchesAny(g.Publish, t) {
			return false
		}
	}
	return true
}

// CanRead reports whether g may read a private update with the given topics:
// true if any topic is selected by g.Subscribe. A nil Grant reads no private
// update.
func (g *Grant) CanRead(topics []string) bool {
	if g == nil {
		return false
	}
	for _, t := range topics {
		if matchesAny(g.Subscribe, t) {
			return true
		}
	}
	return false
}

// Payload is data attached to the subscriptions that its matcher selects.
type Payload struct {
	// Match selects subscriptions by their own selector string, read as a
	// topic.
	Match hub.Matcher
	// Data is a JSON value.
	Data json.RawMessage
}

// PayloadFor returns the payload of a subscription whose selector is the
// string selector: the Data of the first of g.Payloads whose Match selects
// selector (Mercure 1.0 "first matching detail wins"), else g.Payload. It
// returns nil when there is none or g is nil.
func (g *Grant) PayloadFor(selector string) json.RawMessage {
	if g == nil {
		return nil
	}
	for _, p := range g.Payloads {
		if p.Match.Match(selector) {
			return p.Data
		}
	}
	return g.Payload
}

func matchesAny(ms []hub.Matcher, topic string) bool {
	for _, m := range ms {
		if m.Match(topic) {
			return true
		}
	}
	return false
}

// Authenticator derives a Grant from the credentials a request carries.
// Implementations must be safe for concurrent use.
type Authenticator interface {
	// Authenticate returns the grant for r acting as role. It returns
	// (nil, nil) when r carries no credentials at all, and an *Error when
	// the credentials are present but unacceptable.
	Authenticate(r *http.Request, role Role) (*Grant, error)
}

// Error is a refused credential, shaped for an RFC 6750 Bearer challenge.
// Its message never contains key material or the token itself.
type Error struct {
	// Status is the HTTP status to answer: 401 for a bad token, 400 for a
	// malformed presentation.
	Status int
	// Code is the RFC 6750 error code: "invalid_token" or
	// "invalid_request".
	Code string
	// Description says precisely why, in one line that starts in lower
	// case, e.g. "token is expired" or "signing method HS256 is not
	// allowed". Names keep their case.
	Description string
}

// Error returns the description prefixed with the code.
func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Challenge returns the value of the WWW-Authenticate header for e.
func (e *Error) Challenge() string {
	return fmt.Sprintf("Bearer error=%s, error_description=%s", strconv.Quote(e.Code), strconv.Quote(e.Description))
}

// InvalidToken returns an *Error for a token that failed validation: status
// 401 and code "invalid_token". The description is used as formatted, so
// names such as HS256 keep their case.
func InvalidToken(format string, args ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: fmt.Sprintf(format, args...)}
}

// InvalidRequest returns an *Error for credentials presented in a malformed
// way, such as an Authorization header that is not "Bearer <token>": status
// 400 and code "invalid_request".
func InvalidRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: fmt.Sprintf(format, args...)}
}
