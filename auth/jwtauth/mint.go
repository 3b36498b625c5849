package jwtauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is what Mint puts in a token.
type Claims struct {
	// Subject is the sub claim; empty omits it.
	Subject string
	// Publish and Subscribe are v0.24 selectors ("*", exact topics, URI
	// templates), emitted in the "mercure" claim, which every deployed
	// Mercure client and hub understands.
	Publish, Subscribe []string
	// Payload is the "payload" member of the "mercure" claim; nil omits it.
	// It must marshal to JSON.
	Payload any
	// Details are emitted as the Mercure 1.0 authorization_details claim;
	// nil omits it.
	Details []Detail
	// Expires is the exp claim; zero omits it.
	Expires time.Time
	// IssuedAt is the iat claim; zero omits it.
	IssuedAt time.Time
	// Audience is the aud claim; empty omits it.
	Audience []string
	// Issuer is the iss claim; empty omits it.
	Issuer string
	// ID is the jti claim; empty omits it.
	ID string
}

// Detail is one Mercure 1.0 authorization detail.
type Detail struct {
	// Actions lists what the detail grants: "publish", "subscribe" or both.
	Actions []string `json:"actions"`
	// Topics lists the topics the actions apply to.
	Topics []TopicMatcher `json:"topics"`
	// Payload is attached to the subscriptions the detail's topics match;
	// nil omits it. It must marshal to a JSON object.
	Payload any `json:"payload,omitempty"`
}

// TopicMatcher is one entry of a Detail's topics.
type TopicMatcher struct {
	// Match is the selector, or "*" for every topic.
	Match string `json:"match"`
	// MatchType is "exact" or "urlpattern"; empty means exact.
	MatchType string `json:"match_type,omitempty"`
}

// mintClaims is the JSON shape Mint signs.
type mintClaims struct {
	jwt.RegisteredClaims
	Mercure *mercureClaim `json:"mercure,omitempty"`
	Details []mintDetail  `json:"authorization_details,omitempty"`
}

type mercureClaim struct {
	Publish   []string `json:"publish,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
	Payload   any      `json:"payload,omitempty"`
}

type mintDetail struct {
	Type string `json:"type"`
	Detail
}

// Mint signs a token carrying c with key, which must be an HMAC Secret; the
// token uses key's first algorithm (HS256 by default) and the header typ
// "at+jwt". It is meant for the "ssehub token" command and for tests: in
// production, tokens come from the application or an authorization server.
// Errors never contain key material.
func Mint(key Key, c Claims) (string, error) {
	if len(key.Secret) == 0 {
		return "", errors.New("jwtauth: Mint needs an HMAC secret")
	}
	v, err := key.verifier(jwksOptions{})
	if err != nil {
		return "", fmt.Errorf("jwtauth: %w", err)
	}
	mc := mintClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:  c.Subject,
		Issuer:   c.Issuer,
		Audience: c.Audience,
		ID:       c.ID,
	}}
	if !c.Expires.IsZero() {
		mc.ExpiresAt = jwt.NewNumericDate(c.Expires)
	}
	if !c.IssuedAt.IsZero() {
		mc.IssuedAt = jwt.NewNumericDate(c.IssuedAt)
	}
	if c.Publish != nil || c.Subscribe != nil || c.Payload != nil {
		mc.Mercure = &mercureClaim{Publish: c.Publish, Subscribe: c.Subscribe, Payload: c.Payload}
	}
	for _, d := range c.Details {
		mc.Details = append(mc.Details, mintDetail{Type: DetailType, Detail: d})
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(v.algs[0]), mc)
	t.Header["typ"] = "at+jwt"
	s, err := t.SignedString(v.key)
	if err != nil {
		return "", fmt.Errorf("jwtauth: signing: %w", err)
	}
	return s, nil
}
