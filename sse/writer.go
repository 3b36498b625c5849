package sse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// WriterOptions configures Upgrade. A nil *WriterOptions, like the zero
// value, means the defaults documented on each field.
type WriterOptions struct {
	// WriteTimeout bounds every write, flush included: the headers written
	// by Upgrade and each later WriteEvent, WriteFrames, Comment and Retry.
	// The deadline is set through http.ResponseController.SetWriteDeadline
	// before the write and cleared after it, so the idle time between
	// writes is unlimited and a client that stops reading makes the next
	// write fail instead of blocking forever. Clearing it also lifts any
	// deadline that http.Server.WriteTimeout put on the connection, which
	// would otherwise end long streams; leave Server.WriteTimeout at zero
	// for stream routes either way.
	//
	// Zero, the default, means no deadline: the connection's deadlines
	// are left as the server set them. Negative values are invalid.
	WriteTimeout time.Duration
}

// Writer writes a text/event-stream to an http.ResponseWriter. Every
// method writes its bytes in one Write call and flushes them at once, so
// each event reaches the client without waiting for more output.
//
// Once a write fails the stream is broken (a frame may have been cut in
// half), and every later call returns the same error; the handler should
// return. A write also fails, without writing, once the request's context
// is done. A Writer is not safe for concurrent use: like the
// http.ResponseWriter it wraps, it belongs to the handler goroutine.
type Writer struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context
	timeout time.Duration
	buf     []byte
	err     error
}

// Upgrade starts an event stream on w in response to r. It sets the
// headers
//
//	Content-Type: text/event-stream
//	Cache-Control: no-cache
//	X-Accel-Buffering: no
//
// (the last tells nginx not to buffer the stream), deletes Content-Length,
// Content-Encoding and Transfer-Encoding (a stream is never compressed:
// compression would buffer events), and then flushes, which writes status
// 200 and the headers before any event. The stream is UTF-8 by definition,
// so Content-Type has no charset parameter.
//
// Upgrade fails without writing anything, and leaves the headers as it
// found them, when w cannot flush (http.ResponseController.Flush reports
// http.ErrNotSupported, typically because a middleware wrapper neither
// implements http.Flusher nor has an Unwrap method), or when opts asks
// for a WriteTimeout that w cannot apply. Both errors wrap
// http.ErrNotSupported; the handler can still write an error response,
// or call Upgrade again with a zero WriteTimeout to stream without write
// deadlines. Any other error means the connection failed.
//
// Upgrade works with HTTP/1.x and HTTP/2 alike. A nil opts means the
// defaults of WriterOptions.
func Upgrade(w http.ResponseWriter, r *http.Request, opts *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.WriteTimeout < 0 {
		return nil, errors.New("sse: negative WriteTimeout")
	}
	sw := &Writer{
		w:       w,
		rc:      http.NewResponseController(w),
		ctx:     r.Context(),
		timeout: o.WriteTimeout,
	}
	if sw.timeout > 0 {
		if err := sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)); err != nil {
			return nil, fmt.Errorf("sse: cannot set a write deadline: %w", err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Del("Transfer-Encoding")
	if err := sw.rc.Flush(); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			h.Del("Content-Type")
			h.Del("Cache-Control")
			h.Del("X-Accel-Buffering")
			if sw.timeout > 0 {
				sw.rc.SetWriteDeadline(time.Time{})
			}
			return nil, fmt.Errorf("sse: cannot flush the response: %w", err)
		}
		return nil, fmt.Errorf("sse: writing stream headers: %w", err)
	}
	if sw.timeout > 0 {
		if err := sw.rc.SetWriteDeadline(time.Time{}); err != nil {
			return nil, fmt.Errorf("sse: clearing the write deadline: %w", err)
		}
	}
	return sw, nil
}

// WriteEvent writes e and flushes it. An invalid event (see
// Event.Validate) is rejected with nothing written and does not break the
// stream.
func (sw *Writer) WriteEvent(e Event) error {
	b, err := AppendEvent(sw.buf[:0], e)
	if err != nil {
		return err
	}
	sw.buf = b
	err = sw.write(b)
	sw.buf = shrink(sw.buf)
	return err
}

// WriteFrames writes pre-encoded frames, as produced by AppendEvent,
// AppendComment and AppendRetry, in one Write call, and flushes them. A
// single frame is written as is, without copying, so one encoded event can
// be shared by every subscriber; several are first concatenated into the
// Writer's reusable buffer. The frames are not validated: they must come
// from the encoding functions of this package. Empty calls write nothing.
func (sw *Writer) WriteFrames(frames ...[]byte) error {
	if len(frames) == 1 {
		return sw.write(frames[0])
	}
	b := sw.buf[:0]
	for _, f := range frames {
		b = append(b, f...)
	}
	sw.buf = b
	err := sw.write(b)
	sw.buf = shrink(sw.buf)
	return err
}

// Comment writes text as a comment and flushes it; see AppendComment. An
// empty text writes ":\n", the smallest heartbeat, which keeps proxies and
// clients from timing out an idle stream. Clients ignore comments.
func (sw *Writer) Comment(text string) error {
	sw.buf = AppendComment(sw.buf[:0], text)
	err := sw.write(sw.buf)
	sw.buf = shrink(sw.buf)
	return err
}

// Retry tells the client to wait d, rounded down to whole milliseconds,
// before reconnecting after the stream ends; see AppendRetry. A zero d
// writes nothing and a negative d returns ErrInvalidRetry.
func (sw *Writer) Retry(d time.Duration) error {
	if d < 0 {
		return ErrInvalidRetry
	}
	sw.buf = AppendRetry(sw.buf[:0], d)
	err := sw.write(sw.buf)
	sw.buf = shrink(sw.buf)
	return err
}

// write writes b in one call and flushes it within the write timeout.
func (sw *Writer) write(b []byte) error {
	if sw.err != nil {
		return sw.err
	}
	if len(b) == 0 {
		return nil
	}
	if err := sw.ctx.Err(); err != nil {
		sw.err = fmt.Errorf("sse: request done: %w", err)
		return sw.err
	}
	if sw.timeout > 0 {
		if err := sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)); err != nil {
			sw.err = fmt.Errorf("sse: setting the write deadline: %w", err)
			return sw.err
		}
	}
	_, err := sw.w.Write(b)
	if err == nil {
		err = sw.rc.Flush()
	}
	if err == nil && sw.timeout > 0 {
		err = sw.rc.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		sw.err = fmt.Errorf("sse: writing stream: %w", err)
		return sw.err
	}
	return nil
}
