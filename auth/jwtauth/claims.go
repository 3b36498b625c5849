package jwtauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// DetailType is the type of a Mercure authorization detail (RFC 9396).
// Entries of authorization_details with another type are ignored.
const DetailType = "https://mercure.rocks/authorization-detail"

// tokenClaims is what a token's payload is decoded into. The Mercure claims
// stay raw so that they are checked here, strictly, with precise messages.
type tokenClaims struct {
	jwt.RegisteredClaims
	Mercure              json.RawMessage `json:"mercure,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
}

// dateClaims are the registered claims that hold a NumericDate.
var dateClaims = []string{"exp", "nbf", "iat"}

// claimTypeError reports a registered date claim that is not a JSON
// number.
type claimTypeError struct{ claim string }

func (e *claimTypeError) Error() string { return e.claim + " is not a number" }

// UnmarshalJSON decodes a token's payload, refusing exp, nbf and iat
// values that are not JSON numbers. RFC 7519 section 2 defines a
// NumericDate as a JSON number; the JWT library also takes a string
// holding one ("exp":"1700000000"), which issuers that emit it would
// find accepted here and refused elsewhere.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, name := range dateClaims {
		v, ok := raw[name]
		if !ok || isNull(v) {
			continue
		}
		if c := bytes.TrimSpace(v)[0]; c != '-' && (c < '0' || c > '9') {
			return &claimTypeError{name}
		}
	}
	type plain tokenClaims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// grant builds the grant of verified claims. Any malformed part rejects the
// whole token: acting on the rest would silently change what it grants.
func (a *Authenticator) grant(c *tokenClaims) (*auth.Grant, error) {
	g := &auth.Grant{Subject: c.Subject, Issuer: c.Issuer, Expires: expires(c.ExpiresAt)}
	budget := a.maxMatchers
	if err := a.mercureClaim(g, c.Mercure, &budget); err != nil {
		return nil, err
	}
	if err := a.detailsClaim(g, c.AuthorizationDetails, &budget); err != nil {
		return nil, err
	}
	return g, nil
}

// isNull reports whether a raw claim is absent or null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// isObject reports whether a raw JSON value is an object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// mercureClaim adds the v0.24 "mercure" claim to g.
func (a *Authenticator) mercureClaim(g *auth.Grant, raw json.RawMessage, budget *int) error {
	if isNull(raw) {
		return nil
	}
	if !isObject(raw) {
		return errors.New("mercure claim is not an object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return errors.New("mercure claim is not valid JSON")
	}
	for _, action := range []string{"publish", "subscribe"} {
		v, ok := m[action]
		if !ok || isNull(v) {
			continue
		}
		var sels []string
		if err := json.Unmarshal(v, &sels); err != nil {
			return fmt.Errorf("mercure.%s is not an array of strings", action)
		}
		if *budget -= len(sels); *budget < 0 {
			return fmt.Errorf("more than %d topic selectors", a.maxMatchers)
		}
		for i, s := range sels {
			ma, err := a.selectors.Compile(selector.Template, s)
			if err != nil {
				return fmt.Errorf("mercure.%s[%d]: %w", action, i, err)
			}
			if action == "publish" {
				g.Publish = append(g.Publish, ma)
			} else {
				g.Subscribe = append(g.Subscribe, ma)
			}
		}
	}
	if p, ok := m["payload"]; ok && !isNull(p) {
		g.Payload = json.RawMessage(bytes.Clone(bytes.TrimSpace(p)))
	}
	return nil
}

// detailsClaim adds the Mercure 1.0 authorization_details claim to g.
func (a *Authenticator) detailsClaim(g *auth.Grant, raw json.RawMessage, budget *int) error {
	if isNull(raw) {
		return nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return errors.New("authorization_details is not an array")
	}
	if len(entries) > a.maxDetails {
		return fmt.Errorf("more than %d authorization details", a.maxDetails)
	}
	for i, e := range entries {
		if err := a.detail(g, e, budget); err != nil {
			return fmt.Errorf("authorization_details[%d]: %w", i, err)
		}
	}
	return nil
}

// detail adds one authorization detail to g.
func (a *Authenticator) detail(g *auth.Grant, raw json.RawMessage, budget *int) error {
	if !isObject(raw) {
		return errors.New("not an object")
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(raw, &d); err != nil {
		return errors.New("not valid JSON")
	}
	var typ string
	if err := json.Unmarshal(d["type"], &typ); err != nil || isNull(d["type"]) {
		return errors.New("type is not a string")
	}
	if typ != DetailType {
		return nil // another API's detail: not ours to judge
	}

	var actions []string
	if err := json.Unmarshal(d["actions"], &actions); err != nil || isNull(d["actions"]) {
		return errors.New("actions is not an array of strings")
	}
	if len(actions) == 0 {
		return errors.New("actions is empty")
	}

	var topics []json.RawMessage
	if err := json.Unmarshal(d["topics"], &topics); err != nil || isNull(d["topics"]) {
		return errors.New("topics is not an array")
	}
	if len(topics) == 0 {
		return errors.New("topics is empty")
	}
	if *budget -= len(topics); *budget < 0 {
		return fmt.Errorf("more than %d topic selectors", a.maxMatchers)
	}
	matchers := make([]hub.Matcher, len(topics))
	for j, t := range topics {
		m, err := a.topicMatcher(t)
		if err != nil {
			return fmt.Errorf("topics[%d]: %w", j, err)
		}
		matchers[j] = m
	}

	var payload json.RawMessage
	if p, ok := d["payload"]; ok && !isNull(p) {
		if !isObject(p) {
			return errors.New("payload is not an object")
		}
		payload = json.RawMessage(bytes.Clone(bytes.TrimSpace(p)))
	}

	for _, action := range actions {
		switch action {
		case "publish":
			g.Publish = append(g.Publish, matchers...)
		case "subscribe":
			g.Subscribe = append(g.Subscribe, matchers...)
			if payload != nil {
				for _, m := range matchers {
					g.Payloads = append(g.Payloads, auth.Payload{Match: m, Data: payload})
				}
			}
		}
		// Unknown actions grant nothing and are ignored (Mercure 1.0).
	}
	return nil
}

// topicMatcher compiles one entry of a detail's topics.
func (a *Authenticator) topicMatcher(raw json.RawMessage) (*selector.Matcher, error) {
	if !isObject(raw) {
		return nil, errors.New("not an object")
	}
	var t map[string]json.RawMessage
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, errors.New("not valid JSON")
	}
	var match string
	if err := json.Unmarshal(t["match"], &match); err != nil || isNull(t["match"]) {
		return nil, errors.New("match is not a string")
	}
	kind := selector.Exact
	if mt, ok := t["match_type"]; ok {
		var name string
		if err := json.Unmarshal(mt, &name); err != nil || isNull(mt) {
			return nil, errors.New("match_type is not a string")
		}
		k, err := selector.ParseKind(name)
		if err != nil {
			return nil, err
		}
		kind = k
	}
	return a.selectors.Compile(kind, match)
}
