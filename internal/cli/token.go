package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/ssehub/ssehub/auth/jwtauth"
)

func token(_ context.Context, stdio IO, args []string) error {
	fs := flagSet("token", "token [flags]", stdio)
	var (
		publish, subscribe listFlag
		key, subject       string
		ttl                time.Duration
	)
	fs.Var(&publish, "publish", "topic `selector` the token may publish to (repeatable; * for all)")
	fs.Var(&subscribe, "subscribe", "topic `selector` whose private updates the token may read (repeatable)")
	fs.StringVar(&key, "publisher-key", "", "HMAC secret to sign with, at least 32 bytes (the hub's --publisher-key or --subscriber-key)")
	fs.StringVar(&subject, "subject", "ssehub-cli", "the token's subject (sub claim)")
	fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case key == "":
		return usagef("no key: set --publisher-key or SSEHUB_PUBLISHER_KEY")
	case ttl <= 0:
		return usagef("%s must be positive", origin(fs, stdio, "ttl"))
	case len(publish) == 0 && len(subscribe) == 0:
		return usagef("grant something: add --publish or --subscribe selectors")
	}
	if err := checkKey(origin(fs, stdio, "publisher-key"), key); err != nil {
		return err
	}
	tok, err := mintToken(key, subject, publish, subscribe, ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Stdout, tok)
	return nil
}

// mintToken signs an HS256 token carrying the Mercure claim. Callers check
// the key first with checkKey, to name where it came from.
func mintToken(key, subject string, publish, subscribe []string, ttl time.Duration) (string, error) {
	return jwtauth.Mint(jwtauth.Key{Secret: []byte(key)}, jwtauth.Claims{
		Subject:   subject,
		Publish:   publish,
		Subscribe: subscribe,
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
