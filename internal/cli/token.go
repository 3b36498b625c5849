package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/internal/server"
)

func token(_ context.Context, stdio IO, args []string) error {
	if len(args) > 0 && args[0] == "inspect" {
		return inspect(stdio, args[1:])
	}
	fs := flagSet("token", "token [flags]", stdio)
	var (
		publish, subscribe, audience listFlag
		key, subject, dataDir        string
		ttl                          time.Duration
	)
	fs.Var(&publish, "publish", "topic `selector` the token may publish to (repeatable; * for all)")
	fs.Var(&audience, "audience", "`aud` claim naming the hub the token is for, e.g. https://hub.example.com/.well-known/mercure (repeatable; default: none)")
	fs.Var(&subscribe, "subscribe", "topic `selector` whose private updates the token may read (repeatable)")
	fs.StringVar(&key, "publisher-key", "", "HMAC secret to sign with, at least 32 bytes (the hub's --publisher-key or --subscriber-key; default: the key ssehub serve generated in --data)")
	fs.StringVar(&dataDir, "data", server.DefaultDataDir, "`directory` of the hub (as for serve) whose generated publisher key signs when --publisher-key is not set")
	fs.StringVar(&subject, "subject", "ssehub-cli", "the token's subject (sub claim)")
	fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	keyFrom := origin(fs, stdio, "publisher-key")
	if key == "" && fs.NArg() == 0 {
		var err error
		if key, keyFrom, err = generatedKey(dataDir, "no key: set --publisher-key or SSEHUB_PUBLISHER_KEY"); err != nil {
			return err
		}
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case ttl <= 0:
		return usagef("%s must be positive", origin(fs, stdio, "ttl"))
	case len(publish) == 0 && len(subscribe) == 0:
		return usagef("grant something: add --publish or --subscribe selectors")
	}
	if err := checkKey(keyFrom, key); err != nil {
		return err
	}
	for _, a := range audience {
		if a == "" {
			return usagef("%s must not be empty", origin(fs, stdio, "audience"))
		}
	}
	tok, err := mintToken(key, subject, publish, subscribe, ttl, audience...)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Stdout, tok)
	return nil
}

// generatedKey returns the publisher key that ssehub serve generated and
// keeps in the data directory dataDir (server.KeyFileName), and that file,
// for a command given no key: token, token inspect and pub share it, so
// that they look in the same place, by the same rules, with the same
// messages. No key file there is a usage error: need, saying what to set
// instead, then where it looked. A key file others may read, or that holds
// no usable key, is a failure naming the file (server.ReadKeyFile) and
// never the key.
func generatedKey(dataDir, need string) (key, file string, err error) {
	file = filepath.Join(dataDir, server.KeyFileName)
	key, err = server.ReadKeyFile(dataDir)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return "", "", usagef("%s (or point --data at the directory where ssehub serve keeps its generated key; %s has none)", need, file)
	case err != nil:
		return "", "", err
	}
	return key, file, nil
}

// mintToken signs an HS256 token carrying the Mercure claim and, when
// given, the audiences it is for. Callers check the key first with
// checkKey, to name where it came from.
func mintToken(key, subject string, publish, subscribe []string, ttl time.Duration, audience ...string) (string, error) {
	return jwtauth.Mint(jwtauth.Key{Secret: []byte(key)}, jwtauth.Claims{
		Subject:   subject,
		Publish:   publish,
		Subscribe: subscribe,
		Audience:  audience,
		Expires:   time.Now().Add(ttl),
	})
}

// checkKey validates the HMAC secret given with flag, so that a short key
// is reported against the flag that set it. The message never contains
// the key.
func checkKey(flag, key string) error {
	if err := (jwtauth.Key{Secret: []byte(key)}).Validate(); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}

// authFlags are the token-verification flags that serve and token inspect
// share, besides the HMAC --publisher-key and --subscriber-key.
type authFlags struct {
	pubPEM, subPEM   string
	pubJWKS, subJWKS string
	algs             listFlag
	audience, issuer string
	requireExp       bool
	leeway           time.Duration
	cookie           string
	queryToken       bool
	maxSelectors     int
}

// addAuthFlags registers the flags of authFlags on fs.
func addAuthFlags(fs *flag.FlagSet) *authFlags {
	a := &authFlags{}
	fs.StringVar(&a.pubPEM, "publisher-public-key", "", "PEM public key or certificate `file` verifying publisher tokens (RSA, ECDSA or Ed25519)")
	fs.StringVar(&a.subPEM, "subscriber-public-key", "", "PEM public key or certificate `file` verifying subscriber tokens")
	fs.StringVar(&a.pubJWKS, "publisher-jwks", "", "JWK Set verifying publisher tokens: an https `URL` (refreshed hourly and on unknown key IDs) or a file")
	fs.StringVar(&a.subJWKS, "subscriber-jwks", "", "JWK Set verifying subscriber tokens: an https `URL` or a file")
	fs.Var(&a.algs, "jwt-alg", "accepted JWT `algorithm` (repeatable; default: HS256 for a secret, RS256 for RSA keys and JWK Sets, the curve's for ECDSA, EdDSA for Ed25519)")
	fs.StringVar(&a.audience, "jwt-audience", "", "require this aud claim instead of the default rule (a token's aud, when present, must name the hub's --public-url or its /.well-known/mercure URL)")
	fs.StringVar(&a.issuer, "jwt-issuer", "", "require this iss claim")
	fs.BoolVar(&a.requireExp, "jwt-require-exp", false, "refuse tokens without an exp claim")
	fs.DurationVar(&a.leeway, "jwt-leeway", 0, "clock skew tolerated on exp, nbf and iat")
	fs.StringVar(&a.cookie, "cookie-name", jwtauth.DefaultCookieName, "cookie holding a browser's token ("+jwtauth.SecureCookieName+" is read too)")
	fs.BoolVar(&a.queryToken, "allow-query-token", false, "also accept a token in the authorization query parameter (it leaks into logs and history; redacted from ours)")
	fs.IntVar(&a.maxSelectors, "max-token-selectors", jwtauth.DefaultMaxMatchers, "topic selectors one token may carry")
	return a
}

// config builds the jwtauth.Config of the flags. pubSecret and subSecret
// say whether --publisher-key and --subscriber-key are set: each role takes
// one kind of key.
func (a *authFlags) config(fs *flag.FlagSet, stdio IO, pubSecret, subSecret bool) (jwtauth.Config, error) {
	from := func(name string) string { return origin(fs, stdio, name) }
	var cfg jwtauth.Config
	for _, role := range []struct {
		name              string
		secret            bool
		pem, jwks         string
		key               *jwtauth.Key
		secretF, pemF, jF string
	}{
		{"publisher", pubSecret, a.pubPEM, a.pubJWKS, &cfg.Publisher, "publisher-key", "publisher-public-key", "publisher-jwks"},
		{"subscriber", subSecret, a.subPEM, a.subJWKS, &cfg.Subscriber, "subscriber-key", "subscriber-public-key", "subscriber-jwks"},
	} {
		n := 0
		for _, set := range []bool{role.secret, role.pem != "", role.jwks != ""} {
			if set {
				n++
			}
		}
		if n > 1 {
			return cfg, usagef("set one of %s, %s and %s", from(role.secretF), from(role.pemF), from(role.jF))
		}
		role.key.PublicKeyFile, role.key.JWKS = role.pem, role.jwks
		role.key.Algorithms = a.algs
	}
	if !pubSecret && cfg.Publisher.PublicKeyFile == "" && cfg.Publisher.JWKS == "" && (cfg.Subscriber.PublicKeyFile != "" || cfg.Subscriber.JWKS != "") {
		return cfg, usagef("a subscriber key needs a publisher key: set --publisher-key, --publisher-public-key or --publisher-jwks")
	}
	switch {
	case a.leeway < 0:
		return cfg, usagef("%s must not be negative", from("jwt-leeway"))
	case a.maxSelectors <= 0:
		return cfg, usagef("%s must be positive", from("max-token-selectors"))
	case a.cookie == "" || strings.ContainsAny(a.cookie, " \t\r\n;,="):
		return cfg, usagef("%s is not a valid cookie name", from("cookie-name"))
	}
	cfg.Audience, cfg.Issuer, cfg.RequireExp, cfg.Leeway = a.audience, a.issuer, a.requireExp, a.leeway
	cfg.CookieName, cfg.AllowQueryToken, cfg.MaxMatchers = a.cookie, a.queryToken, a.maxSelectors
	return cfg, nil
}

// inspect explains whether the hub, configured with the same key flags as
// serve, accepts a token, and why not. It prints the token's header and
// claims, never a key or the signature.
func inspect(stdio IO, args []string) error {
	fs := flagSet("token inspect", "token inspect [flags] TOKEN|-", stdio)
	var pubKey, subKey, role, publicURL, dataDir string
	fs.StringVar(&pubKey, "publisher-key", "", "HMAC secret of publisher tokens (as for serve; default: the key ssehub serve generated in --data)")
	fs.StringVar(&dataDir, "data", server.DefaultDataDir, "`directory` of the hub (as for serve) whose generated publisher key verifies when no publisher key is set")
	fs.StringVar(&publicURL, "public-url", "", "the hub's public URL (as for serve): a token's aud, when present, must name it (default: aud is not checked)")
	fs.StringVar(&subKey, "subscriber-key", "", "HMAC secret of subscriber tokens (as for serve; default: the publisher key)")
	fs.StringVar(&role, "role", "both", "check the token as a publisher, subscriber or both")
	af := addAuthFlags(fs)
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one argument, the token (or - to read it from stdin); got %d", fs.NArg())
	}
	tok := fs.Arg(0)
	if tok == "-" {
		b, err := io.ReadAll(io.LimitReader(stdio.Stdin, jwtauth.DefaultMaxTokenBytes+1))
		if err != nil {
			return fmt.Errorf("reading the token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	tok = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(tok), "Bearer "))
	var roles []auth.Role
	switch role {
	case "publisher":
		roles = []auth.Role{auth.Publisher}
	case "subscriber":
		roles = []auth.Role{auth.Subscriber}
	case "both":
		roles = []auth.Role{auth.Publisher, auth.Subscriber}
	default:
		return usagef("invalid value %q for %s: want publisher, subscriber or both", role, origin(fs, stdio, "role"))
	}
	cfg, err := af.config(fs, stdio, pubKey != "", subKey != "")
	if err != nil {
		return err
	}
	for _, k := range []struct {
		flag, secret string
		key          *jwtauth.Key
	}{{"publisher-key", pubKey, &cfg.Publisher}, {"subscriber-key", subKey, &cfg.Subscriber}} {
		if k.secret == "" {
			continue
		}
		if err := checkKey(origin(fs, stdio, k.flag), k.secret); err != nil {
			return err
		}
		k.key.Secret = []byte(k.secret)
	}
	if cfg.Publisher.IsZero() {
		// As serve does without a publisher key: the key it generated
		// and kept in its data directory.
		key, _, err := generatedKey(dataDir, "no key: set --publisher-key, --publisher-public-key or --publisher-jwks as the hub has them")
		if err != nil {
			return err
		}
		cfg.Publisher.Secret = []byte(key)
	}
	if publicURL != "" && cfg.Audience == "" {
		cfg.HubAudiences = server.HubAudiences(publicURL)
	}
	a, err := jwtauth.New(cfg)
	if err != nil {
		return err
	}

	w := stdio.Stdout
	d, err := jwtauth.Decode(tok)
	if err != nil {
		fmt.Fprintf(w, "token:   %v\n", err)
	} else {
		printDecoded(w, d, time.Now())
	}
	accepted := false
	for _, r := range roles {
		g, aerr := a.Verify(tok, r)
		if aerr != nil {
			fmt.Fprintf(w, "%-11s refused: %s\n", r.String()+":", aerr.Description)
			continue
		}
		accepted = true
		exp := "never expires"
		if !g.Expires.IsZero() {
			exp = "expires in " + time.Until(g.Expires).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%-11s accepted (%d publish and %d subscribe selectors; %s)\n", r.String()+":", len(g.Publish), len(g.Subscribe), exp)
	}
	if !accepted {
		return errors.New("the hub would refuse this token")
	}
	return nil
}

// printDecoded prints a token's header and claims for inspect. Values are
// quoted: they come from the token, unverified.
func printDecoded(w io.Writer, d *jwtauth.Decoded, now time.Time) {
	var hdr []string
	for _, k := range []string{"alg", "typ", "kid"} {
		if v, ok := d.Header[k]; ok {
			hdr = append(hdr, fmt.Sprintf("%s=%q", k, fmt.Sprint(v)))
		}
	}
	fmt.Fprintf(w, "header:  %s\n", strings.Join(hdr, " "))
	for _, k := range []string{"jku", "x5u", "jwk", "x5c"} {
		if _, ok := d.Header[k]; ok {
			fmt.Fprintf(w, "         %s header present: ignored, keys come only from the hub's configuration\n", k)
		}
	}
	for _, k := range []string{"sub", "iss", "aud", "jti"} {
		if v, ok := d.Claims[k]; ok {
			fmt.Fprintf(w, "%-8s %s\n", k+":", compactJSON(v))
		}
	}
	for _, k := range []string{"exp", "nbf", "iat"} {
		v, ok := d.Claims[k]
		if !ok {
			continue
		}
		f, isNum := v.(float64)
		if !isNum {
			fmt.Fprintf(w, "%-8s %s (not a number)\n", k+":", compactJSON(v))
			continue
		}
		at := time.Unix(int64(f), 0)
		rel := "in " + at.Sub(now).Round(time.Second).String()
		if at.Before(now) {
			rel = now.Sub(at).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(w, "%-8s %s (%s)\n", k+":", at.UTC().Format(time.RFC3339), rel)
	}
	for _, k := range []string{"mercure", "authorization_details"} {
		if v, ok := d.Claims[k]; ok {
			fmt.Fprintf(w, "%-8s %s\n", "claim:", k+" "+compactJSON(v))
		}
	}
}

// compactJSON renders a claim value on one line, shortened when long.
func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", fmt.Sprint(v))
	}
	s := string(b)
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
