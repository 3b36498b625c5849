package jwtauth

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/selector"
)

// Authenticator derives auth.Grants from JWTs. It is safe for concurrent
// use. Create it with New.
type Authenticator struct {
	publisher, subscriber *role // nil when only Issuers are configured
	issuers               map[string]*issuerRoles
	cookies               []string
	allowQuery            bool
	maxDetails            int
	maxMatchers           int
	maxTokenBytes         int
	requireExp            bool     // whether exp, aud and iss are required,
	audience, issuer      bool     // for error messages
	hubAudiences          []string // see Config.HubAudiences; nil with Audience
	selectors             *selector.Compiler
	now                   func() time.Time
	cache                 verifiedCache
}

var _ auth.Authenticator = (*Authenticator)(nil)

// role verifies the tokens of one role.
type role struct {
	v      *verifier
	parser *jwt.Parser
}

// issuerRoles are the roles of one configured issuer.
type issuerRoles struct {
	publisher, subscriber *role
}

// New returns an Authenticator configured by cfg, or the error of
// cfg.Validate, or the reason a key (such as a JWK Set) cannot be read.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sel := cfg.Selectors
	if sel == nil {
		var err error
		if sel, err = selector.New(selector.Config{}); err != nil {
			return nil, err
		}
	}
	a := &Authenticator{
		cookies:       []string{orDefault(cfg.CookieName, DefaultCookieName), SecureCookieName},
		allowQuery:    cfg.AllowQueryToken,
		maxDetails:    orDefault(cfg.MaxDetails, DefaultMaxDetails),
		maxMatchers:   orDefault(cfg.MaxMatchers, DefaultMaxMatchers),
		maxTokenBytes: orDefault(cfg.MaxTokenBytes, DefaultMaxTokenBytes),
		selectors:     sel,
		requireExp:    cfg.RequireExp,
		audience:      cfg.Audience != "",
		issuer:        cfg.Issuer != "" || len(cfg.Issuers) > 0,
		now:           cfg.Now,
	}
	if cfg.Audience == "" {
		a.hubAudiences = slices.Clone(cfg.HubAudiences)
	}
	if a.now == nil {
		a.now = time.Now
	}
	opts := jwksOptions{
		refresh:    orDefault(cfg.JWKSRefresh, DefaultJWKSRefresh),
		minRefresh: orDefault(cfg.JWKSMinRefresh, DefaultJWKSMinRefresh),
		client:     cfg.HTTPClient,
		now:        cfg.Now,
	}
	if opts.client == nil {
		opts.client = defaultJWKSClient
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	newRole := func(name string, k Key, issuer string) (*role, error) {
		v, err := k.verifier(opts)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: %s: %w", name, err)
		}
		popts := []jwt.ParserOption{jwt.WithValidMethods(v.algs), jwt.WithIssuedAt()}
		if cfg.Audience != "" {
			popts = append(popts, jwt.WithAudience(cfg.Audience))
		}
		if issuer != "" {
			popts = append(popts, jwt.WithIssuer(issuer))
		}
		if cfg.RequireExp {
			popts = append(popts, jwt.WithExpirationRequired())
		}
		if cfg.Leeway > 0 {
			popts = append(popts, jwt.WithLeeway(cfg.Leeway))
		}
		if cfg.Now != nil {
			popts = append(popts, jwt.WithTimeFunc(cfg.Now))
		}
		return &role{v: v, parser: jwt.NewParser(popts...)}, nil
	}
	// pair builds the publisher and subscriber roles of one key pair.
	pair := func(prefix string, pub, sub Key, issuer string) (*role, *role, error) {
		p, err := newRole(prefix+"Publisher", pub, issuer)
		if err != nil {
			return nil, nil, err
		}
		if sub.IsZero() {
			return p, p, nil
		}
		s, err := newRole(prefix+"Subscriber", sub, issuer)
		return p, s, err
	}
	var err error
	if !cfg.Publisher.IsZero() {
		if a.publisher, a.subscriber, err = pair("", cfg.Publisher, cfg.Subscriber, cfg.Issuer); err != nil {
			return nil, err
		}
	}
	if len(cfg.Issuers) > 0 {
		a.issuers = make(map[string]*issuerRoles, len(cfg.Issuers))
		for i, is := range cfg.Issuers {
			r := &issuerRoles{}
			if r.publisher, r.subscriber, err = pair(fmt.Sprintf("Issuers[%d] (%s).", i, is.Name), is.Publisher, is.Subscriber, is.Name); err != nil {
				return nil, err
			}
			a.issuers[is.Name] = r
		}
	}
	return a, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Authenticate returns the grant of the token r carries, verified with the
// key of role. It looks for the token in the Authorization header, then in
// the cookies (Config.CookieName, then SecureCookieName), then, only when
// Config.AllowQueryToken is set, in the "authorization" query parameter; the
// first place holding one wins and is recorded in Grant.Source. It returns
// (nil, nil) when r carries no token, an *auth.Error with status 400 and code
// "invalid_request" when the Authorization header is not "Bearer <token>",
// and an *auth.Error with status 401 and code "invalid_token" when the token
// fails verification or its claims are malformed.
func (a *Authenticator) Authenticate(r *http.Request, rl auth.Role) (*auth.Grant, error) {
	token, src, err := a.extract(r)
	if err != nil || token == "" {
		return nil, err
	}
	g, aerr := a.Verify(token, rl)
	if aerr != nil {
		return nil, aerr
	}
	g.Source = src
	return g, nil
}

// Verify returns the grant of token, verified with the key of role, or an
// *auth.Error with status 401 and code "invalid_token" saying precisely
// why it is refused. The grant's Source is zero.
func (a *Authenticator) Verify(token string, rl auth.Role) (*auth.Grant, *auth.Error) {
	if len(token) > a.maxTokenBytes {
		return nil, auth.InvalidToken("token is longer than %d bytes", a.maxTokenBytes)
	}
	pub, sub := a.publisher, a.subscriber
	if a.issuers != nil {
		// The unverified iss only picks among configured keys; the
		// chosen parser verifies it along with the signature.
		var rc jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(token, &rc); err == nil {
			if is, ok := a.issuers[rc.Issuer]; ok {
				pub, sub = is.publisher, is.subscriber
			}
		}
	}
	ro := sub
	if rl == auth.Publisher {
		ro = pub
	}
	if ro == nil {
		return nil, auth.InvalidToken("unknown issuer")
	}
	return a.verify(ro, token)
}

// isB64token reports whether s has the RFC 6750 token syntax,
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// extract finds the token of r and where it came from.
func (a *Authenticator) extract(r *http.Request) (string, auth.Source, error) {
	if hs := r.Header.Values("Authorization"); len(hs) > 0 {
		if len(hs) > 1 {
			return "", 0, auth.InvalidRequest("more than one Authorization header")
		}
		scheme, token, _ := strings.Cut(strings.TrimSpace(hs[0]), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", 0, auth.InvalidRequest("the Authorization header must use the Bearer scheme")
		}
		token = strings.TrimLeft(token, " ")
		if token == "" {
			return "", 0, auth.InvalidRequest("the bearer token is empty")
		}
		if !isB64token(token) {
			return "", 0, auth.InvalidRequest("the bearer token contains invalid characters")
		}
		return token, auth.SourceHeader, nil
	}
	for _, name := range a.cookies {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value, auth.SourceCookie, nil
		}
	}
	if a.allowQuery {
		if t := r.URL.Query().Get("authorization"); t != "" {
			return t, auth.SourceQuery, nil
		}
	}
	return "", 0, nil
}

// verify checks token against ro and builds its grant. A token already
// verified with a static key is found in the cache instead, until its exp.
func (a *Authenticator) verify(ro *role, token string) (*auth.Grant, *auth.Error) {
	now := a.now()
	if g := a.cache.get(ro, token, now); g != nil {
		return g, nil
	}
	var claims tokenClaims
	t, err := ro.parser.ParseWithClaims(token, &claims, ro.v.keyFor)
	if err != nil {
		return nil, a.describe(err, t, &claims, ro.v.algs)
	}
	if typ, ok := t.Header["typ"]; ok {
		s, _ := typ.(string)
		if !acceptedType(s) {
			return nil, auth.InvalidToken("token type %s is not accepted", safeName(s))
		}
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, auth.InvalidToken("critical header parameters are not supported")
	}
	if !a.forThisHub(claims.Audience) {
		return nil, auth.InvalidToken("wrong audience")
	}
	g, cerr := a.grant(&claims)
	if cerr != nil {
		return nil, auth.InvalidToken("malformed claims: %s", cerr)
	}
	a.cache.put(ro, token, g, now)
	return g, nil
}

// forThisHub reports whether a token with the audience aud may be used
// here under Config.HubAudiences: aud is absent, or names one of them.
// (Config.Audience is checked by the parser.)
func (a *Authenticator) forThisHub(aud jwt.ClaimStrings) bool {
	if len(a.hubAudiences) == 0 || len(aud) == 0 {
		return true
	}
	for _, v := range aud {
		if slices.Contains(a.hubAudiences, v) {
			return true
		}
	}
	return false
}

// acceptedType reports whether typ names a JWT or a JWT access token
// (RFC 9068), compared case-insensitively with an optional "application/"
// prefix. Anything else, such as a JWE or a logout or DPoP proof token, is
// not an access token for us.
func acceptedType(typ string) bool {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	return t == "jwt" || t == "at+jwt"
}

// algName matches the algorithm names worth echoing in an error message.
var algName = regexp.MustCompile(`^[A-Za-z0-9+\-]{1,16}$`)

// safeName quotes an attacker-chosen header value for an error message, or
// elides it when it is not short and plain.
func safeName(s string) string {
	if algName.MatchString(s) {
		return s
	}
	return "(unprintable)"
}

// describe turns a jwt error into an *auth.Error with a precise, safe
// description.
func (a *Authenticator) describe(err error, t *jwt.Token, c *tokenClaims, allowed []string) *auth.Error {
	alg := ""
	if t != nil {
		alg, _ = t.Header["alg"].(string)
	}
	var cte *claimTypeError
	switch {
	case errors.As(err, &cte):
		return auth.InvalidToken("malformed claims: %s", cte)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return auth.InvalidToken("token is malformed")
	case t != nil && !slices.Contains(allowed, alg):
		return auth.InvalidToken("signing method %s is not allowed", safeName(alg))
	case errors.As(err, new(*auth.Error)):
		var ae *auth.Error
		errors.As(err, &ae)
		return ae
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return auth.InvalidToken("signature is invalid")
	case errors.Is(err, jwt.ErrTokenExpired):
		return auth.InvalidToken("token is expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return auth.InvalidToken("token is not valid yet")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return auth.InvalidToken("token is issued in the future")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return auth.InvalidToken("wrong audience")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return auth.InvalidToken("wrong issuer")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case a.requireExp && c.ExpiresAt == nil:
			return auth.InvalidToken("token has no exp claim")
		case a.audience && len(c.Audience) == 0:
			return auth.InvalidToken("token has no aud claim")
		case a.issuer && c.Issuer == "":
			return auth.InvalidToken("token has no iss claim")
		}
		return auth.InvalidToken("token is missing a required claim")
	case errors.Is(err, jwt.ErrInvalidType):
		return auth.InvalidToken("malformed claims: a registered claim has the wrong type")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return auth.InvalidToken("token is unverifiable")
	}
	return auth.InvalidToken("token is invalid")
}

// expires converts a NumericDate to a time, zero when absent.
func expires(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}
