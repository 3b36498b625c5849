package eventsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// DefaultMaxRedirects is the number of redirects a Client follows per
// connection attempt when MaxRedirects is zero.
const DefaultMaxRedirects = 10

var (
	// ErrRedirect is returned, wrapped, by Subscribe when a connection
	// attempt is redirected more than MaxRedirects times or receives a
	// redirect status (301, 302, 303, 307, 308) with an empty or missing
	// Location header. It is terminal.
	ErrRedirect = errors.New("eventsource: bad redirect")
	// ErrReadTimeout is passed to OnRetry when a connection is dropped
	// because no byte arrived within ReadTimeout. It is not terminal.
	ErrReadTimeout = errors.New("eventsource: read timeout")
)

// errStop ends a subscription on behalf of Events when the loop body
// breaks; it never reaches a caller.
var errStop = errors.New("eventsource: stopped")

// ResponseError is the error Subscribe returns when the server answers with
// a status other than 200, 204 or a followed redirect, or with a 200 whose
// Content-Type is not text/event-stream. Such errors are terminal, as in a
// browser, unless Client.RetryPolicy asks for a retry; retried ones are
// passed to OnRetry instead.
type ResponseError struct {
	// StatusCode is the response status code.
	StatusCode int
	// ContentType is the response's Content-Type header.
	ContentType string
	// Header holds the response headers.
	Header http.Header
}

// Error describes the unexpected status or content type.
func (e *ResponseError) Error() string {
	if e.StatusCode == http.StatusOK {
		return fmt.Sprintf("eventsource: unexpected content type %q", e.ContentType)
	}
	return fmt.Sprintf("eventsource: unexpected status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// Client follows a Server-Sent Events stream with the semantics of a
// browser's EventSource: it reconnects when the stream ends or the network
// fails, waits the server's retry time (with backoff and jitter), resumes
// with the Last-Event-ID header and stops for good on 204 No Content,
// on other unexpected statuses and on a wrong Content-Type.
//
// The zero value is ready to use. Set the configuration fields before the
// first call to Subscribe and do not change them while it runs. A Client
// follows one stream at a time: Subscribe fails if another Subscribe on the
// same Client is running. LastEventID and RetryDelay are safe to call from
// any goroutine.
type Client struct {
	// HTTPClient sends the requests. Nil means http.DefaultClient. The
	// Client uses a shallow copy whose CheckRedirect enforces MaxRedirects
	// before calling the original CheckRedirect, if any. Its Timeout, if
	// set, bounds each whole connection, so it should normally be zero;
	// use ReadTimeout to detect dead connections.
	HTTPClient *http.Client

	// Header holds extra headers for every request. A key set here
	// replaces the request's values for that key. Accept,
	// Cache-Control and Last-Event-ID are always set by the Client.
	Header http.Header

	// Backoff is the reconnection policy; its zero value is the documented
	// defaults (3 s until the server sends retry, doubling up to 30 s on
	// repeated failures, 25% jitter, reset after one minute).
	Backoff Backoff

	// RetryPolicy, if not nil, is consulted for responses whose status is
	// not 200, 204 or a followed redirect. Nil means such responses end
	// the subscription with a *ResponseError, as in a browser.
	// RetryTransient retries 5xx and 429 honouring Retry-After.
	RetryPolicy RetryPolicy

	// MaxRedirects is the number of redirects followed per connection
	// attempt. Zero means DefaultMaxRedirects (10); a negative value
	// follows none. Exceeding it ends the subscription with ErrRedirect.
	MaxRedirects int

	// MaxEventSize is the largest event, in bytes, the Client buffers
	// (data plus the line being read). Zero or less means
	// sse.DefaultMaxEventSize (16 MiB). A larger event fails the
	// connection without buffering more: the Client drops it and
	// reconnects with backoff, reporting an error wrapping
	// sse.ErrEventTooLarge to OnRetry.
	MaxEventSize int

	// ReadTimeout, if positive, drops a connection (and reconnects) when no
	// byte arrives for that long, from the request until the response
	// headers and between reads of the body. Heartbeat comments count;
	// time spent in the event handler counts too, so keep handlers quick.
	// Zero means no timeout.
	ReadTimeout time.Duration

	// OnComment, if not nil, is called with the text of each comment line
	// (without the colon), in stream order with the events, from the
	// goroutine running Subscribe. Comments are not reported after ctx is
	// done.
	OnComment func(text string)

	// OnRetry, if not nil, is called from the goroutine running Subscribe
	// each time the Client is about to wait delay and reconnect. err tells
	// why: io.EOF when the server closed the stream cleanly, ErrReadTimeout,
	// a *ResponseError retried by RetryPolicy, or the network error.
	OnRetry func(err error, delay time.Duration)

	// Now returns the current time; it measures how long a connection
	// lasted (see Backoff.ResetAfter). Nil means time.Now.
	Now func() time.Time

	// Wait, if not nil, replaces the timer between connection attempts: it
	// must return nil after d has passed, or ctx.Err() as soon as ctx is
	// done. Tests use it to observe delays without waiting. Nil means a
	// real timer.
	Wait func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	running bool
	lastID  string
	retry   time.Duration
	hasRet  bool
}

// LastEventID returns the last event ID of the current or latest
// subscription: the one the Client sends as Last-Event-ID when it
// reconnects. It is safe for concurrent use.
func (c *Client) LastEventID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// RetryDelay returns the current base reconnection delay: the latest retry
// value sent by the server, or Backoff.Initial (default 3 s) until one
// arrives. The actual wait adds backoff and jitter. It is safe for
// concurrent use.
func (c *Client) RetryDelay() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base()
}

// base returns the base delay; c.mu must be held.
func (c *Client) base() time.Duration {
	if c.hasRet {
		return c.retry
	}
	return c.Backoff.initial()
}

// update records the decoder's state; it is called after every Decode.
func (c *Client) update(dec *sse.Decoder) {
	r, ok := dec.Retry()
	c.mu.Lock()
	c.lastID = dec.LastEventID()
	c.retry, c.hasRet = r, ok
	c.mu.Unlock()
}

// Subscribe connects to the stream req describes and calls fn with each
// event, from the calling goroutine and in order, until ctx is done or the
// subscription ends for good. It reconnects, as a browser does, when the
// stream ends cleanly or the network fails, resending the request (with its
// body, see below) and the Last-Event-ID header.
//
// req supplies the method, URL, headers and body. A Last-Event-ID header
// on req sets the initial last event ID; the Client then manages the
// header itself, sending it whenever the last event ID is not empty. A
// body is resent on every connection: Subscribe uses req.GetBody when set
// (http.NewRequest sets it for in-memory bodies) and otherwise reads the
// body into memory once. Only req's context is ignored: ctx governs.
//
// Subscribe returns:
//   - nil when the server answers 204 No Content, its way to tell
//     clients to stop;
//   - ctx.Err() when ctx is done; no event or comment is delivered after
//     that;
//   - the error fn returns, if not nil, which ends the subscription;
//   - an error at once if req's URL is not an absolute http or https URL;
//   - a *ResponseError for an unexpected status or Content-Type (unless
//     RetryPolicy retries it), or an error wrapping ErrRedirect.
//
// An event larger than MaxEventSize fails that connection, and the Client
// reconnects.
//
// Events that carry no id field report the last event ID, as in a browser.
// An event cut off by a dropped connection is discarded and its id is not
// adopted.
func (c *Client) Subscribe(ctx context.Context, req *http.Request, fn func(sse.Event) error) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("eventsource: Client is already subscribed")
	}
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()

	if req.URL == nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		// A browser's EventSource throws for a URL it cannot fetch; retrying
		// would never succeed.
		return errors.New("eventsource: request URL must be an absolute http or https URL")
	}
	id := req.Header.Get("Last-Event-ID")
	if strings.ContainsAny(id, "\r\n\x00") {
		return errors.New("eventsource: Last-Event-ID contains CR, LF or NUL")
	}
	body, err := newBody(req)
	if err != nil {
		return err
	}
	dec := sse.NewDecoder(http.NoBody)
	dec.SetMaxEventSize(c.MaxEventSize)
	dec.SetLastEventID(id)
	c.update(dec)
	if c.OnComment != nil {
		dec.OnComment = func(text string) {
			if ctx.Err() == nil {
				c.OnComment(text)
			}
		}
	}
	hc := c.httpClient()
	now := c.Now
	if now == nil {
		now = time.Now
	}

	failures := 0
	for {
		res := c.connect(ctx, hc, req, body, dec, fn, now)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.terminal {
			return res.err
		}
		if !res.opened.IsZero() && now().Sub(res.opened) >= c.Backoff.resetAfter() {
			failures = 0
		}
		c.mu.Lock()
		base := c.base()
		c.mu.Unlock()
		d := max(c.Backoff.delay(base, failures, nil), res.after)
		failures++
		if c.OnRetry != nil {
			c.OnRetry(res.err, d)
		}
		if err := c.wait(ctx, d); err != nil {
			return err
		}
	}
}

// Events returns an iterator over the events of the stream req describes,
// with the semantics of Subscribe. Each pair holds an event and a nil
// error, except the last one, which carries the error that ended the
// stream (ctx.Err() included) with a zero Event; the sequence ends without
// an error pair after a 204 No Content or when the loop breaks.
func (c *Client) Events(ctx context.Context, req *http.Request) iter.Seq2[sse.Event, error] {
	return func(yield func(sse.Event, error) bool) {
		err := c.Subscribe(ctx, req, func(ev sse.Event) error {
			if !yield(ev, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			yield(sse.Event{}, err)
		}
	}
}

// result is the outcome of one connection attempt.
type result struct {
	err      error         // why the attempt ended
	terminal bool          // err (possibly nil) ends the subscription
	after    time.Duration // least wait requested by the server
	opened   time.Time     // when the stream opened; zero if it did not
}

// connect makes one connection attempt and reads the stream until it ends.
func (c *Client) connect(ctx context.Context, hc *http.Client, req *http.Request, body *body,
	dec *sse.Decoder, fn func(sse.Event) error, now func() time.Time) result {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	var timer *time.Timer
	if c.ReadTimeout > 0 {
		timer = time.AfterFunc(c.ReadTimeout, func() {
			timedOut.Store(true)
			cancel()
		})
		defer timer.Stop()
	}
	// fail classifies an error that ends the attempt.
	fail := func(err error) result {
		switch {
		case ctx.Err() != nil:
			return result{err: ctx.Err(), terminal: true}
		case timedOut.Load():
			return result{err: ErrReadTimeout}
		}
		return result{err: err}
	}

	r := req.Clone(cctx)
	if body != nil {
		rc, err := body.open()
		if err != nil {
			return result{err: fmt.Errorf("eventsource: request body: %w", err), terminal: true}
		}
		r.Body, r.GetBody, r.ContentLength = rc, body.open, body.length
	}
	for k, v := range c.Header {
		r.Header[k] = append([]string(nil), v...)
	}
	r.Header.Set("Accept", "text/event-stream")
	r.Header.Set("Cache-Control", "no-cache")
	if id := dec.LastEventID(); id != "" {
		r.Header.Set("Last-Event-ID", id)
	} else {
		r.Header.Del("Last-Event-ID")
	}

	resp, err := hc.Do(r)
	if err != nil {
		if errors.Is(err, ErrRedirect) {
			return result{err: err, terminal: true}
		}
		return fail(err)
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
		ct := resp.Header.Get("Content-Type")
		if !isEventStream(ct) {
			return result{err: &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Header: resp.Header}, terminal: true}
		}
	case http.StatusNoContent:
		return result{terminal: true}
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// net/http returns a redirect response only when it has no
		// Location to follow.
		return result{err: fmt.Errorf("%w: %d without a Location header", ErrRedirect, resp.StatusCode), terminal: true}
	default:
		rerr := &ResponseError{StatusCode: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header}
		if c.RetryPolicy != nil {
			if after, ok := c.RetryPolicy(resp); ok {
				return result{err: rerr, after: after}
			}
		}
		return result{err: rerr, terminal: true}
	}

	res := result{opened: now()}
	var rd io.Reader = resp.Body
	if timer != nil {
		rd = &timeoutReader{r: resp.Body, t: timer, d: c.ReadTimeout}
		timer.Reset(c.ReadTimeout)
	}
	dec.Reset(rd)
	for {
		ev, err := dec.Decode()
		c.update(dec)
		if err != nil {
			if errors.Is(err, sse.ErrEventTooLarge) {
				// Drop the connection, memory bounded, and reconnect with
				// backoff, like any other broken stream.
				res.err = err
				return res
			}
			f := fail(err)
			res.err, res.terminal = f.err, f.terminal
			return res
		}
		if ctx.Err() != nil {
			return result{err: ctx.Err(), terminal: true}
		}
		if err := fn(ev); err != nil {
			res.err, res.terminal = err, true
			return res
		}
	}
}

// httpClient returns the http.Client used for a subscription.
func (c *Client) httpClient() *http.Client {
	hc := new(http.Client)
	if c.HTTPClient != nil {
		*hc = *c.HTTPClient
	}
	limit := c.MaxRedirects
	switch {
	case limit == 0:
		limit = DefaultMaxRedirects
	case limit < 0:
		limit = 0
	}
	check := hc.CheckRedirect
	hc.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) > limit {
			return fmt.Errorf("%w: stopped after %d redirects", ErrRedirect, limit)
		}
		if check != nil {
			return check(r, via)
		}
		return nil
	}
	return hc
}

// wait waits d or until ctx is done.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if c.Wait != nil {
		return c.Wait(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// isEventStream reports whether the MIME type essence of a Content-Type
// value is text/event-stream.
func isEventStream(ct string) bool {
	essence, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(essence), "text/event-stream")
}

// body makes a fresh copy of a request body for each connection.
type body struct {
	open   func() (io.ReadCloser, error)
	length int64
}

// newBody returns how to resend req's body, or nil if it has none.
func newBody(req *http.Request) (*body, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		return &body{open: req.GetBody, length: req.ContentLength}, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("eventsource: reading request body: %w", err)
	}
	return &body{
		open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		length: int64(len(b)),
	}, nil
}

// timeoutReader re-arms the read timeout whenever bytes arrive.
type timeoutReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (t *timeoutReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.t.Reset(t.d)
	}
	return n, err
}
