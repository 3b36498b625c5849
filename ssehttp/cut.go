package ssehttp

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// cutWriter wraps the http.ResponseWriter of a stream served by its
// request's goroutine (HTTP/2, Config.GoroutinePerStream) so that the
// hub's OnOverflow can cut a write of that stream blocked on a stalled
// client at once, as hijacked.overflow does for hijacked streams: the
// stream then ends with EndQueueOverflow and what it was writing is
// released, instead of when Config.WriteTimeout expires.
//
// The cut is a write deadline in the past, set through
// http.ResponseController: over HTTP/1.x it fails the connection's
// blocked write (and the connection is not reused: its last write fails
// too), over HTTP/2 it resets the stream, which ends its blocked write.
// Neither may run once the handler has returned (net/http then reuses the
// connection, or drops the HTTP/2 stream's state), so the cut and finish
// are ordered by mu. A deadline the stream's own writer sets later
// (sse.Writer sets one before every write) goes through SetWriteDeadline
// here, which refuses it once the stream is cut, so the past one stays.
type cutWriter struct {
	http.ResponseWriter
	rc *http.ResponseController // of the wrapped writer

	cut atomic.Bool // set (under mu) by overflow before the deadline
	mu  sync.Mutex
	end bool // under mu: the handler is returning; the writer is not ours
}

func newCutWriter(w http.ResponseWriter) *cutWriter {
	return &cutWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
}

// Unwrap lets http.ResponseController reach the wrapped writer's Flush
// and SetReadDeadline.
func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// SetWriteDeadline is the wrapped writer's, refused with errCut once the
// stream is cut, so that no later deadline replaces the cut's.
func (c *cutWriter) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut.Load() {
		return errCut
	}
	return c.rc.SetWriteDeadline(t)
}

// Write fails at once once the stream is cut.
func (c *cutWriter) Write(b []byte) (int, error) {
	if c.cut.Load() {
		return 0, errCut
	}
	return c.ResponseWriter.Write(b)
}

// overflow is the subscription's OnOverflow. It runs on the hub's
// dispatcher and must not block: an HTTP/2 reset waits for the
// connection's serve loop and a SetWriteDeadline of the handler may hold
// mu, so the cut runs on a goroutine of its own, which returns at once.
func (c *cutWriter) overflow() {
	go c.cutNow()
}

func (c *cutWriter) cutNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.end || c.cut.Load() {
		return
	}
	c.cut.Store(true)
	_ = c.rc.SetWriteDeadline(time.Unix(1, 0))
}

// finish is called by the handler as it returns: a later overflow does
// nothing. It waits for a cut under way, and drops the wrapped writer, so
// that the subscription, which keeps overflow, keeps nothing of the
// stream's.
func (c *cutWriter) finish() {
	c.mu.Lock()
	c.end = true
	c.ResponseWriter, c.rc = nil, nil
	c.mu.Unlock()
}

// cutOff reports whether the stream was cut by its queue's overflow.
func (c *cutWriter) cutOff() bool { return c.cut.Load() }
