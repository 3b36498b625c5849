package natsstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// Config configures a Store. The zero value is usable: every zero field
// means the default documented on it.
type Config struct {
	// Limits bound the history the stream retains, enforced by JetStream
	// itself (the stream's MaxMsgs, MaxBytes and MaxAge, discarding the
	// oldest). As in hub.Limits, a zero (or negative) field sets no limit
	// of its kind. MaxBytes counts JetStream's stored size of each message
	// (subject, headers, encoded update and about 50 bytes of framing), and
	// MaxAge runs from when the server stored the update. Every node that
	// opens the stream applies its limits to it; give all nodes the same.
	Limits hub.Limits
	// TopicLimits limits the history of single topics (see hub.TopicLimits
	// for the semantics), on top of Limits. JetStream has no such limits:
	// the store enforces them itself, every node applying them as it
	// appends and sweeps, and deleting what they drop from the stream (see
	// the package documentation, # Retention). Give all nodes the same
	// rules. A topic rule's MaxBytes counts the encoded update (data, ID,
	// type, topics and a few bytes of framing), its MaxAge runs from the
	// update's Time, checked against Now.
	TopicLimits hub.TopicLimits
	// RetentionInterval is how often, with TopicLimits, a node reads what
	// the other nodes appended, applies the topics' age limits while no
	// updates arrive, and deletes the updates the rules dropped. Zero
	// means one second.
	RetentionInterval time.Duration
	// EvictionDelay is how long, with TopicLimits, an update the rules
	// dropped stays in the stream (hidden from this node's Read, Lookup
	// and Bounds, still delivered by Follow) before the node deletes it:
	// long enough for every node's Follow and retention sweep to have read
	// it. Zero means five seconds.
	EvictionDelay time.Duration
	// DuplicateWindow is how long the stream remembers the idempotency key
	// of an append (JetStream's Duplicates window): a second append with the
	// same key within it stores nothing and returns the first update. Zero
	// means 10 minutes, the hub's default idempotency window; it is capped
	// at Limits.MaxAge.
	DuplicateWindow time.Duration
	// ConnectTimeout bounds Open's connection attempt. Zero means 5 seconds.
	ConnectTimeout time.Duration
	// RequestTimeout bounds each request to the server: an Append waiting
	// for its acknowledgement, a Lookup, a batch of Read, Bounds. Contexts
	// with an earlier deadline bound them further. Zero means 5 seconds.
	RequestTimeout time.Duration
	// ReconnectWait is how long the client waits between attempts to
	// reconnect to a server it lost. Zero means 250 milliseconds.
	ReconnectWait time.Duration
	// Heartbeat is how often the server signals an idle Follow that it is
	// still there; two missed heartbeats make Follow reconnect. Zero means
	// 2 seconds.
	Heartbeat time.Duration
	// Logger receives connection losses and recoveries. Nil means
	// slog.Default().
	Logger *slog.Logger
	// Now stamps updates appended without a Time. Nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.Limits.MaxAge > 0 && c.DuplicateWindow > c.Limits.MaxAge {
		c.DuplicateWindow = c.Limits.MaxAge
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = time.Second
	}
	if c.EvictionDelay <= 0 {
		c.EvictionDelay = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = 250 * time.Millisecond
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// DefaultStream is the name of the stream when the URL names none.
const DefaultStream = "SSEHUB"

// MaxReplicas is the largest replica count JetStream allows.
const MaxReplicas = 5

// target is what a store URL says: the servers to connect to, the stream
// and its replica count.
type target struct {
	servers  []string // nats:// or tls:// URLs without query
	stream   string
	replicas int
}

// parseURL parses a store URL: one or more comma-separated nats:// (or
// tls://) server URLs, optionally with user information, and the query
// parameters stream and replicas, given once in any of them. Errors never
// repeat a password.
func parseURL(raw string) (target, error) {
	t := target{stream: DefaultStream, replicas: 1}
	if strings.TrimSpace(raw) == "" {
		return t, errors.New("natsstore: empty URL; want nats://host:port")
	}
	seen := map[string]string{}
	for part := range strings.SplitSeq(raw, ",") {
		part = strings.TrimSpace(part)
		u, err := url.Parse(part)
		if err != nil {
			return t, fmt.Errorf("natsstore: bad URL %q: want nats://host:port", redact(part))
		}
		shown := u.Redacted()
		switch {
		case u.Scheme != "nats" && u.Scheme != "tls":
			return t, fmt.Errorf("natsstore: bad URL %q: scheme must be nats:// or tls://", shown)
		case u.Opaque != "" || u.Host == "":
			return t, fmt.Errorf("natsstore: bad URL %q: no host", shown)
		case u.Hostname() == "":
			return t, fmt.Errorf("natsstore: bad URL %q: no host name", shown)
		case u.Path != "" && u.Path != "/":
			return t, fmt.Errorf("natsstore: bad URL %q: unexpected path %q", shown, u.Path)
		case u.Fragment != "":
			return t, fmt.Errorf("natsstore: bad URL %q: unexpected fragment", shown)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return t, fmt.Errorf("natsstore: bad URL %q: port %q is not 1-65535", shown, p)
			}
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return t, fmt.Errorf("natsstore: bad URL %q: bad query: %v", shown, err)
		}
		for k, vs := range q {
			if k != "stream" && k != "replicas" {
				return t, fmt.Errorf("natsstore: bad URL %q: unknown parameter %q (known: stream, replicas)", shown, k)
			}
			for _, v := range vs {
				if prev, ok := seen[k]; ok && prev != v {
					return t, fmt.Errorf("natsstore: bad URL: parameter %q given twice (%q and %q)", k, prev, v)
				}
				seen[k] = v
			}
		}
		u.RawQuery, u.ForceQuery, u.Path = "", false, ""
		t.servers = append(t.servers, u.String())
	}
	if v, ok := seen["stream"]; ok {
		if err := validStream(v); err != nil {
			return t, err
		}
		t.stream = v
	}
	if v, ok := seen["replicas"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxReplicas {
			return t, fmt.Errorf("natsstore: bad URL: replicas=%q is not a number from 1 to %d", v, MaxReplicas)
		}
		t.replicas = n
	}
	return t, nil
}

// validStream checks a stream name. It becomes a subject token too, so only
// letters, digits, '-' and '_' are allowed.
func validStream(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("natsstore: bad URL: stream=%q must be 1 to 64 characters", name)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("natsstore: bad URL: stream=%q may contain only letters, digits, '-' and '_'", name)
		}
	}
	return nil
}

// redact hides what looks like a password in a URL that did not parse.
func redact(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	start := strings.Index(s, "://") + 3
	if start < 3 || start > at {
		start = 0
	}
	if c := strings.IndexByte(s[start:at], ':'); c >= 0 {
		return s[:start+c+1] + "xxxxx" + s[at:]
	}
	return s
}
