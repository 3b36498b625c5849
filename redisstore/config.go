package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub/hub"
)

// Config configures a Store. The zero value is usable: every zero field
// means the default documented on it.
type Config struct {
	// Limits bound the whole log, as hub.Limits documents: a zero field
	// sets no limit of its kind. Every node sharing the log must use the
	// same limits (each applies its own on every append). See
	// DefaultLimits for the limits of the embedded store.
	Limits hub.Limits
	// TopicLimits, if not nil, gives per-topic retention: an update is
	// retained while at least one of its topics retains it (a topic without
	// a rule, or with a rule of all-zero limits, retains every update).
	// Every node must use the same rules. A rule's age limit is enforced on
	// appends to the topic and, while the topic is idle, every
	// RetentionInterval with the limits of the last append to it.
	TopicLimits hub.TopicLimits
	// Timeout bounds each Redis operation of Append, Lookup, Read (per
	// batch), Bounds and Open, on top of the caller's context, so that an
	// unreachable Redis fails them promptly. Zero means five seconds.
	Timeout time.Duration
	// BlockTimeout is how long one XREAD BLOCK of Follow waits for new
	// entries. It bounds how long Follow takes to return after its
	// context ends and how long an idle Follow takes to notice that the
	// epoch changed. Zero means one second.
	BlockTimeout time.Duration
	// MaxBackoff caps the wait between attempts of a Follow that lost
	// Redis; it starts at 50ms and doubles. Zero means two seconds.
	MaxBackoff time.Duration
	// RetentionInterval is how often the store enforces age limits (global
	// MaxAge and the topic rules' MaxAge) while no updates arrive. Zero
	// means one minute; a negative value turns the sweep off.
	RetentionInterval time.Duration
	// Logger receives reconnections and failed sweeps. Nil discards them.
	Logger *slog.Logger
	// Now returns the current time, for age retention and for stamping
	// updates appended without a Time. Nil means time.Now. Nodes' clocks
	// should agree: each applies age limits with its own.
	Now func() time.Time
}

// DefaultLimits are the embedded store's default limits (boltstore): a
// caller that wants the same retention from Redis passes them as
// Config.Limits.
var DefaultLimits = hub.Limits{MaxUpdates: 1_000_000, MaxBytes: 1 << 30, MaxAge: 24 * time.Hour}

// DefaultPrefix is the key namespace used when the URL has no prefix
// parameter: the keys are "{ssehub}:log" and so on.
const DefaultPrefix = "ssehub"

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.BlockTimeout <= 0 {
		c.BlockTimeout = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 2 * time.Second
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// parseURL parses a redis:// or rediss:// URL into client options and the
// key prefix (the "prefix" query parameter, removed before go-redis sees
// the rest). Errors name the URL with its password redacted.
func parseURL(rawURL string) (*redis.Options, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, "", fmt.Errorf("redisstore: invalid URL: %v", err)
	}
	// Show the URL in errors without its password; a URL with an "@"
	// that did not parse as user information is not shown at all.
	shown := rawURL
	if strings.Contains(rawURL, "@") {
		shown = "(not shown)"
		if u.User != nil {
			shown = u.Redacted()
		}
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, "", fmt.Errorf("redisstore: invalid URL %q: the scheme must be redis or rediss", shown)
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("redisstore: invalid URL %q: no host", shown)
	}
	q := u.Query()
	prefix := DefaultPrefix
	if vs, ok := q["prefix"]; ok {
		if len(vs) != 1 {
			return nil, "", fmt.Errorf("redisstore: invalid URL %q: prefix given %d times", shown, len(vs))
		}
		prefix = vs[0]
		if err := checkPrefix(prefix); err != nil {
			return nil, "", fmt.Errorf("redisstore: invalid URL %q: %v", shown, err)
		}
		q.Del("prefix")
		u.RawQuery = q.Encode()
	}
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		msg := strings.TrimPrefix(redactErr(err, rawURL).Error(), "redis: ")
		return nil, "", fmt.Errorf("redisstore: invalid URL %q: %s", shown, msg)
	}
	return opts, prefix, nil
}

// checkPrefix accepts a non-empty key namespace that cannot break out of
// the hash tag it is put in.
func checkPrefix(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("prefix is empty")
	case len(p) > 100:
		return fmt.Errorf("prefix is longer than 100 bytes")
	case strings.ContainsAny(p, "{}"):
		return fmt.Errorf("prefix %q contains a brace", p)
	}
	for _, r := range p {
		if r < 0x21 || r == 0x7f {
			return fmt.Errorf("prefix %q contains a space or control character", p)
		}
	}
	return nil
}

// redactErr returns err with any password in rawURL replaced by "xxxxx".
func redactErr(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}
