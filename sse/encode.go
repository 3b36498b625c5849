package sse

import (
	"io"
	"strconv"
	"strings"
	"time"
)

// AppendEvent appends the wire form of e, terminated by a blank line, to dst
// and returns the extended buffer. It returns dst unchanged and the error
// from e.Validate if e is invalid; this check is the single gate every
// writer in this module goes through.
//
// Data is split on CRLF, CR and LF, and each line is written as its own
// "data: " field, so a payload can never start a new field or event.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	if e.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	}
	if e.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	if e.Retry > 0 {
		dst = appendRetry(dst, e.Retry)
	}
	dst = appendLines(dst, "data: ", e.Data)
	return append(dst, '\n'), nil
}

// AppendComment appends text as a comment to dst. Multi-line text becomes
// one comment line per line, so a comment can never start a field. An empty
// text writes a single ":" line, the smallest heartbeat.
func AppendComment(dst []byte, text string) []byte {
	return appendLines(dst, ":", text)
}

// AppendRetry appends a lone retry field, followed by a blank line, to dst.
// A client applies it at once; the blank line dispatches nothing because no
// data was given. It rounds d down to whole milliseconds and returns dst
// unchanged when d is not positive.
func AppendRetry(dst []byte, d time.Duration) []byte {
	if d <= 0 {
		return dst
	}
	return append(appendRetry(dst, d), '\n')
}

// AppendID appends a lone id field, followed by a blank line, to dst. A
// client sets its last event ID to id (the value it sends as Last-Event-ID
// when it reconnects) and dispatches no event, since no data was given:
// the WHATWG algorithm sets the last event ID at a blank line whether or
// not an event follows. It returns dst unchanged and ErrInvalidID if id
// contains CR, LF or NUL.
func AppendID(dst []byte, id string) ([]byte, error) {
	if err := (Event{ID: id}).Validate(); err != nil {
		return dst, err
	}
	dst = append(dst, "id: "...)
	dst = append(dst, id...)
	return append(dst, '\n', '\n'), nil
}

func appendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, '\n')
}

// appendLines writes prefix+line+"\n" for every line of s, where lines are
// separated by CRLF, CR or LF. An empty s writes one empty line.
func appendLines(dst []byte, prefix, s string) []byte {
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			dst = append(dst, prefix...)
			dst = append(dst, s...)
			return append(dst, '\n')
		}
		dst = append(dst, prefix...)
		dst = append(dst, s[:i]...)
		dst = append(dst, '\n')
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
}

// Encoder writes events and comments to an io.Writer. It keeps one buffer
// that it reuses across calls. An Encoder is not safe for concurrent use.
type Encoder struct {
	w   io.Writer
	buf []byte
}

// NewEncoder returns an Encoder that writes to w. It does not flush w; see
// Writer for an http.ResponseWriter that does.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes e in one Write call. Invalid events are rejected before
// anything is written.
func (enc *Encoder) Encode(e Event) error {
	b, err := AppendEvent(enc.buf[:0], e)
	if err != nil {
		return err
	}
	enc.buf = b
	_, err = enc.w.Write(b)
	return err
}

// Comment writes text as a comment in one Write call.
func (enc *Encoder) Comment(text string) error {
	enc.buf = AppendComment(enc.buf[:0], text)
	_, err := enc.w.Write(enc.buf)
	return err
}
