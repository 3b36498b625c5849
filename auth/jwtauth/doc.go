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
// headers), exp and nbf are enforced (and must be JSON numbers, as must
// iat), aud and iss are checked when configured, and a token whose aud
// names none of Config.HubAudiences is refused.
//
// # Keys
//
// A role's key is an HMAC secret, a PEM public key (RSA, ECDSA, Ed25519) or
// a JWK Set read from a configured https URL or file (Key.JWKS). A JWK Set
// is cached, read again every Config.JWKSRefresh and when a token names an
// unknown kid (at most once per Config.JWKSMinRefresh, so a flood of random
// kids costs one fetch a minute), without a background goroutine: the
// request that finds the set stale refreshes it. Only public RSA, EC and
// Ed25519 keys of a set verify, each only the algorithms of its type and
// its own "alg". Config.Issuers gives each token issuer its own keys and
// its own JWK Set cache, so a kid of one issuer never selects another
// issuer's key (the Centrifugo 2026 advisory); the unverified iss only
// selects among configured issuers and is then verified. Tokens are read from the Authorization header, then the cookie,
// and from the "authorization" query parameter only when explicitly enabled
// (T6). Every failure is an *auth.Error whose description never contains the
// token or key material.
//
// # Verified tokens
//
// A backend publishes with the same token again and again, and verifying
// it (signature, JSON, selectors) costs several microseconds. The
// Authenticator remembers the grants of the last 1024 tokens of at most
// 4 KiB it verified with a secret or a PEM public key, keyed by the exact
// token string, and uses one only while the token is unexpired (exp, without
// leeway) and the clock has not gone back before its verification; past
// that the token is verified again. Tokens verified with a JWK Set, whose
// keys may be withdrawn, and refused tokens are never remembered.
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
//
// The JWK Set fetcher is written here (jwks.go, about 300 lines on the
// standard library) rather than taken from github.com/MicahParks/keyfunc/v3:
// its current release needs a jwkset version the module proxy we build
// with does not serve, its refresh runs in a goroutine per set (which every
// Authenticator would then have to stop), and its unknown-kid refresh waits
// on a rate limiter inside the request (up to a minute by default), where
// ours answers at once. Parsing a JWK is small with the standard library
// (crypto/ecdsa.ParseUncompressedPublicKey checks EC points), and the
// security-relevant rules (no symmetric keys, algorithm bound to key type,
// cache per issuer) are easier to guarantee in our own code.
package jwtauth
