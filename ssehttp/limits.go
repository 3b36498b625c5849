package ssehttp

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ssehub/ssehub/auth"
)

// Limits bounds what one client, and all clients together, may hold or
// do, so that no client can degrade the hub for the others. A refused
// publish is a 429 with a Retry-After header; a refused stream is a 200
// event stream holding a retry field of 5 to 10 s, ending at once, for
// clients that accept text/event-stream (an EventSource never reconnects
// after a 429), and a 429 with Retry-After for others. Zero fields mean no
// limit.
type Limits struct {
	// MaxStreams caps the concurrent streams of the whole hub.
	MaxStreams int
	// MaxStreamsPerIP caps the concurrent streams of one client IP
	// address (of the connection: behind a reverse proxy every client has
	// the proxy's address, so leave it zero there and limit in the proxy).
	MaxStreamsPerIP int
	// MaxStreamsPerSubject caps the concurrent streams of one token
	// subject (the JWT "sub"). Anonymous subscribers and tokens without a
	// subject are limited by MaxStreamsPerIP only.
	MaxStreamsPerSubject int
	// MaxSelectorBytesPerClient caps the memory, as estimated by
	// selector.Matcher.Size, of the compiled URL patterns and templates of
	// the concurrent streams of one client IP address, and of one token
	// subject. Exact selectors take none. The selectors of one stream are
	// capped by selector.Config.MaxQueryBytes (16 MiB by default).
	MaxSelectorBytesPerClient int
	// PublishRate is the sustained number of publishes per second allowed
	// to one publisher: a token bucket per token subject, or per client IP
	// for tokens without a subject.
	PublishRate float64
	// PublishBurst is the size of each publisher's bucket: how many
	// publishes may come at once after a quiet period. Zero means
	// PublishRate rounded up (at least 1).
	PublishBurst int
}

// Validate reports the first invalid field of l, or nil.
func (l Limits) Validate() error {
	switch {
	case l.MaxStreams < 0:
		return errors.New("ssehttp: Limits.MaxStreams must not be negative")
	case l.MaxStreamsPerIP < 0:
		return errors.New("ssehttp: Limits.MaxStreamsPerIP must not be negative")
	case l.MaxStreamsPerSubject < 0:
		return errors.New("ssehttp: Limits.MaxStreamsPerSubject must not be negative")
	case l.MaxSelectorBytesPerClient < 0:
		return errors.New("ssehttp: Limits.MaxSelectorBytesPerClient must not be negative")
	case l.PublishRate < 0 || math.IsNaN(l.PublishRate) || math.IsInf(l.PublishRate, 0):
		return errors.New("ssehttp: Limits.PublishRate must be a positive number of publishes per second, or zero")
	case l.PublishBurst < 0:
		return errors.New("ssehttp: Limits.PublishBurst must not be negative")
	}
	return nil
}

// streamRetryAfter is the base Retry-After of a stream refused by a limit;
// each refusal adds up to as much again, so refused clients do not all
// come back at once.
const streamRetryAfter = 5 * time.Second

// limiter counts streams and meters publishes. It is safe for concurrent
// use; its critical sections are a few map operations.
type limiter struct {
	lim   Limits
	burst float64
	now   func() time.Time

	mu         sync.Mutex
	total      int
	perIP      map[string]int
	perSubject map[string]int
	ipBytes    map[string]int // selector bytes, when limited
	subBytes   map[string]int
	buckets    map[string]*bucket
	swept      time.Time
}

// bucket is a token bucket: tokens at time last.
type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(lim Limits, now func() time.Time) *limiter {
	l := &limiter{lim: lim, now: now, perIP: map[string]int{}, perSubject: map[string]int{}, buckets: map[string]*bucket{},
		ipBytes: map[string]int{}, subBytes: map[string]int{}}
	l.burst = float64(lim.PublishBurst)
	if l.burst == 0 {
		l.burst = max(1, math.Ceil(lim.PublishRate))
	}
	return l
}

// acquire admits one more stream from ip for subject ("" for none), whose
// selectors take selBytes (selector.Matcher.Size). When a limit is reached
// it returns ok false, the reason and how long the client should wait.
// Otherwise the caller must call release exactly once when the stream
// ends, however it ends; further calls do nothing.
func (l *limiter) acquire(ip, subject string, selBytes int) (release func(), retryAfter time.Duration, reason string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	maxBytes := l.lim.MaxSelectorBytesPerClient
	if maxBytes <= 0 {
		selBytes = 0 // not counted
	}
	switch {
	case l.lim.MaxStreams > 0 && l.total >= l.lim.MaxStreams:
		reason = fmt.Sprintf("the hub serves its maximum of %d streams", l.lim.MaxStreams)
	case l.lim.MaxStreamsPerIP > 0 && l.perIP[ip] >= l.lim.MaxStreamsPerIP:
		reason = fmt.Sprintf("too many streams from this address (at most %d)", l.lim.MaxStreamsPerIP)
	case l.lim.MaxStreamsPerSubject > 0 && subject != "" && l.perSubject[subject] >= l.lim.MaxStreamsPerSubject:
		reason = fmt.Sprintf("too many streams for this token subject (at most %d)", l.lim.MaxStreamsPerSubject)
	case selBytes > 0 && l.ipBytes[ip]+selBytes > maxBytes:
		reason = fmt.Sprintf("the selectors of the streams from this address would take more than %d bytes", maxBytes)
	case selBytes > 0 && subject != "" && l.subBytes[subject]+selBytes > maxBytes:
		reason = fmt.Sprintf("the selectors of the streams of this token subject would take more than %d bytes", maxBytes)
	}
	if reason != "" {
		return nil, streamRetryAfter + rand.N(streamRetryAfter), reason, false
	}
	l.total++
	l.perIP[ip]++
	if subject != "" {
		l.perSubject[subject]++
	}
	if selBytes > 0 {
		l.ipBytes[ip] += selBytes
		if subject != "" {
			l.subBytes[subject] += selBytes
		}
	}
	var once sync.Once
	return func() { once.Do(func() { l.release(ip, subject, selBytes) }) }, 0, "", true
}

func (l *limiter) release(ip, subject string, selBytes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
	if subject != "" {
		if l.perSubject[subject]--; l.perSubject[subject] <= 0 {
			delete(l.perSubject, subject)
		}
	}
	if selBytes > 0 {
		if l.ipBytes[ip] -= selBytes; l.ipBytes[ip] <= 0 {
			delete(l.ipBytes, ip)
		}
		if subject != "" {
			if l.subBytes[subject] -= selBytes; l.subBytes[subject] <= 0 {
				delete(l.subBytes, subject)
			}
		}
	}
}

// streams returns the number of streams held in total, from ip and for
// subject.
func (l *limiter) streams(ip, subject string) (total, fromIP, forSubject int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[ip], l.perSubject[subject]
}

// allowPublish takes one token from the bucket of publisher key. When it
// is empty, it returns ok false and the time until a token is available.
func (l *limiter) allowPublish(key string) (retryAfter time.Duration, ok bool) {
	if l.lim.PublishRate <= 0 {
		return 0, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, found := l.buckets[key]
	if !found {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := time.Duration((1 - b.tokens) / l.lim.PublishRate * float64(time.Second))
	return max(wait, time.Millisecond), false
}

// refill adds the tokens earned since b.last.
func (l *limiter) refill(b *bucket, now time.Time) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt.Seconds()*l.lim.PublishRate)
		b.last = now
	}
}

// sweep forgets the buckets that have refilled completely (they are
// equivalent to new ones), at most once per refill period, so that memory
// follows the publishers active recently, not all publishers ever seen.
func (l *limiter) sweep(now time.Time) {
	period := time.Duration(l.burst / l.lim.PublishRate * float64(time.Second))
	if now.Sub(l.swept) < max(period, time.Second) {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// publishers returns the number of buckets held.
func (l *limiter) publishers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// clientIP is the IP address of r's connection.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tooMany answers 429 with a Retry-After of d, rounded up to whole
// seconds.
func (h *Handler) tooMany(w http.ResponseWriter, r *http.Request, d time.Duration, reason string) {
	setRetryAfter(w.Header(), d)
	h.fail(w, r, http.StatusTooManyRequests, reason)
}

// setRetryAfter sets hd's Retry-After to d in whole seconds, rounded up,
// at least 1.
func setRetryAfter(hd http.Header, d time.Duration) {
	hd.Set("Retry-After", strconv.FormatInt(max(int64(math.Ceil(d.Seconds())), 1), 10))
}

// Refusal labels of the limits, for Observer.Refused.
const (
	// RefusedStreamLimit is a stream refused by a Limits stream cap.
	RefusedStreamLimit = "stream_limit"
	// RefusedPublishRate is a publish refused by Limits.PublishRate.
	RefusedPublishRate = "publish_rate"
)

// EndMaxLifetime is a stream ended by Config.MaxLifetime.
const EndMaxLifetime EndReason = "max-lifetime"

// publisherKey names the rate-limit bucket of a publisher: its token
// subject, else its IP address.
func publisherKey(r *http.Request, g *auth.Grant) string {
	if g != nil && g.Subject != "" {
		return "sub:" + g.Subject
	}
	return "ip:" + clientIP(r)
}

// lifetimeEnd returns when a stream opened now must end because of
// Config.MaxLifetime, less up to 10% at random, or the zero time.
func (h *Handler) lifetimeEnd() time.Time {
	d := h.cfg.MaxLifetime
	if d <= 0 {
		return time.Time{}
	}
	return h.cfg.Now().Add(d - rand.N(d/10+1))
}

// earliest returns the earlier of two deadlines, the zero time meaning
// none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
