package sse

import (
	"errors"
	"strings"
	"time"
)

// Event is one Server-Sent Event.
//
// When encoding, an empty ID writes no id field (the client keeps its last
// event ID), an empty Type writes no event field (the client dispatches a
// "message" event) and a zero Retry writes no retry field. Data is always
// written, as one data field per line.
//
// When decoding, ID holds the stream's last event ID at dispatch time (it
// persists across events that carry no id field, as in a browser), Type is
// "message" when the event named none, and Retry is zero.
type Event struct {
	// ID is the event ID. It must not contain CR, LF or NUL.
	ID string
	// Type is the event type. It must not contain CR, LF or NUL.
	Type string
	// Data is the payload. CRLF, lone CR and LF all separate lines; a
	// receiver joins the lines with LF.
	Data string
	// Retry is the reconnection time to advertise, with millisecond
	// precision. Zero means none; negative values are invalid.
	Retry time.Duration
}

// Errors returned by Event.Validate and by every encoding function.
var (
	// ErrInvalidID reports an ID that contains CR, LF or NUL.
	ErrInvalidID = errors.New("sse: event id contains CR, LF or NUL")
	// ErrInvalidType reports an event type that contains CR, LF or NUL.
	ErrInvalidType = errors.New("sse: event type contains CR, LF or NUL")
	// ErrInvalidRetry reports a negative retry duration.
	ErrInvalidRetry = errors.New("sse: negative retry")
)

// Validate reports whether e can be written without changing its meaning:
// its ID and Type contain no CR, LF or NUL and its Retry is not negative.
func (e Event) Validate() error {
	if strings.ContainsAny(e.ID, "\r\n\x00") {
		return ErrInvalidID
	}
	if strings.ContainsAny(e.Type, "\r\n\x00") {
		return ErrInvalidType
	}
	if e.Retry < 0 {
		return ErrInvalidRetry
	}
	return nil
}
