package eventsource

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of Backoff's zero-valued fields.
const (
	// DefaultInitialDelay is the reconnection time used until the server
	// sends a retry field, as the "few seconds" browsers wait.
	DefaultInitialDelay = 3 * time.Second
	// DefaultMaxDelay caps the exponential backoff.
	DefaultMaxDelay = 30 * time.Second
	// DefaultJitter is the fraction of the delay added at random.
	DefaultJitter = 0.25
	// DefaultResetAfter is how long a connection must last for the next
	// reconnection to start again from the base delay.
	DefaultResetAfter = time.Minute
)

// minStep is the smallest delay a second failure in a row waits, so that a
// base delay of zero (a server's "retry: 0", or Initial < 0) cannot turn a
// persistent failure into a busy loop.
const minStep = 100 * time.Millisecond

// Backoff is the reconnection policy of a Client. Its zero value is the
// documented defaults; a Backoff is a value and is safe to share.
//
// The client waits a base delay before reconnecting: the latest retry field
// the server sent, or Initial until it sends one. Each reconnection that
// follows a connection which lasted less than ResetAfter (or never opened)
// doubles the delay, starting at 100 ms when the base is zero, up to the
// larger of Max and the base; a server's retry value is never shortened.
// Jitter then adds a random part. A connection that lasted ResetAfter or
// longer resets the count, so the next wait is the base delay again.
type Backoff struct {
	// Initial is the reconnection time until the server sends a retry
	// field. Zero means DefaultInitialDelay (3 s); a negative value means
	// reconnect at once.
	Initial time.Duration
	// Max caps the exponential growth. Zero means DefaultMaxDelay (30 s).
	// It does not shorten a larger retry value sent by the server.
	Max time.Duration
	// Jitter is the fraction of the computed delay added at random: a
	// delay d becomes a uniform value in [d, d+Jitter*d). Zero means
	// DefaultJitter (0.25); a negative value disables jitter. Values above
	// 1 are treated as 1.
	Jitter float64
	// ResetAfter is how long a connection must stay open for the failure
	// count to reset. Zero means DefaultResetAfter (1 min).
	ResetAfter time.Duration
}

func (b Backoff) initial() time.Duration {
	switch {
	case b.Initial < 0:
		return 0
	case b.Initial == 0:
		return DefaultInitialDelay
	}
	return b.Initial
}

func (b Backoff) resetAfter() time.Duration {
	if b.ResetAfter <= 0 {
		return DefaultResetAfter
	}
	return b.ResetAfter
}

// delay returns the wait before a reconnection given the base delay (the
// server's retry value or Initial) and the number of failed connections in
// a row before this one (0 after a stable connection). rnd returns a value
// in [0, 1); nil means math/rand/v2.Float64.
func (b Backoff) delay(base time.Duration, failures int, rnd func() float64) time.Duration {
	limit := b.Max
	if limit <= 0 {
		limit = DefaultMaxDelay
	}
	limit = max(limit, base)
	d := max(base, 0)
	for i := 0; i < failures && d < limit; i++ {
		if d > limit/2 {
			d = limit
			break
		}
		d = max(2*d, minStep)
	}
	d = min(d, limit)
	j := b.Jitter
	switch {
	case j == 0:
		j = DefaultJitter
	case j < 0:
		j = 0
	case j > 1:
		j = 1
	}
	if j > 0 && d > 0 {
		if rnd == nil {
			rnd = rand.Float64
		}
		extra := time.Duration(j * rnd() * float64(d))
		if d+extra > d { // no overflow
			d += extra
		}
	}
	return d
}

// RetryPolicy decides whether a response whose status is neither 200, 204
// nor a followed redirect is retried instead of ending the subscription.
// It returns retry true to reconnect, waiting at least after (in addition
// to the usual backoff, which still grows). The response body is closed
// after the call; a policy must not keep it.
type RetryPolicy func(resp *http.Response) (after time.Duration, retry bool)

// RetryTransient is a RetryPolicy that retries 429 Too Many Requests and
// every 5xx status, waiting at least what a Retry-After header asks for
// (delay-seconds or an HTTP date, capped at one hour).
func RetryTransient(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests && (resp.StatusCode < 500 || resp.StatusCode > 599) {
		return 0, false
	}
	return retryAfter(resp.Header.Get("Retry-After"), time.Now()), true
}

// retryAfter parses a Retry-After value at time now.
func retryAfter(v string, now time.Time) time.Duration {
	const maxAfter = time.Hour
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n > uint64(maxAfter/time.Second) {
			return maxAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxAfter)
	}
	return 0
}
