// Package jwtauth implements auth.Authenticator with JSON Web Tokens, in both
// dialects of the Mercure protocol:
//
//   - the v0.24 "mercure" claim, {"publish": [...], "subscribe": [...],
//     "payload": ...}, whose selectors are selector.Template values ("*",
//     exact topics and RFC 6570 URI templates);
//   - the Mercure 1.0 "authorization_details" claim (RFC 9396), whose
//     entries of type "https://mercure.rocks/authorization-detail" grant
//     "publish" and "subscribe" on exact and URL pattern topic matchers.
//
// A token may carry both; the grant is their union.
//
// The verification rules follow RFC 8725 and the threats we track (T5):
// algorithms are pinned by configuration and bound to the key type, "none"
// never verifies, an HMAC secret that looks like a PEM key is refused, keys
// come only from configuration (never from the token's jwk, jku or x5u
// headers), exp and nbf are enforced, and aud and iss are checked when
// configured. Tokens are read from the Authorization header, then the cookie,
// and from the "authorization" query parameter only when explicitly enabled
// (T6). Every failure is an *auth.Error whose description never contains the
// token or key material.
//
// # Dependency
//
// github.com/golang-jwt/jwt/v5 parses and verifies JWS compact tokens. It is
// the most widely used and reviewed JWT library for Go, it is the one the
// reference Mercure hub uses, it depends only on the standard library, and
// its v5 API makes the safe choices explicit: WithValidMethods pins the
// algorithms, WithAudience, WithIssuer and WithExpirationRequired enforce
// the claims, and WithTimeFunc lets tests control the clock. Signature
// verification is the part of JWT handling most dangerous to write by hand.
// This package is the only one in the module that imports a JWT library.
package jwtauth
