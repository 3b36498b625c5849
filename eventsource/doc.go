// Package eventsource is a Server-Sent Events client with the semantics of
// a browser's EventSource (WHATWG HTML §9.2), built on package sse and the
// standard library only.
//
// A Client follows one stream: Subscribe blocks, delivering events to a
// function, until its context is done or the stream ends for good, and
// Events offers the same as an iterator:
//
//	var c eventsource.Client
//	req, _ := http.NewRequest("GET", "https://hub.example/.well-known/mercure?topic=/books/1", nil)
//	for ev, err := range c.Events(ctx, req) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(ev.ID, ev.Type, ev.Data)
//	}
//
// # Connections and reconnections
//
// Every request carries Accept: text/event-stream and Cache-Control:
// no-cache, plus Last-Event-ID whenever the last event ID is not empty.
// A 200 response whose Content-Type essence is text/event-stream opens the
// stream. When the stream ends (cleanly or not) or a connection attempt
// fails on the network, the Client waits and reconnects: the wait is the
// server's latest retry value (Backoff.Initial before one arrives), doubled
// for every failure in a row up to Backoff.Max, plus jitter; a connection
// that stays up for Backoff.ResetAfter resets the count. An event cut off
// by a drop is discarded and its id is not adopted. ReadTimeout drops a
// connection on which nothing arrives.
//
// These responses end the subscription instead, as in a browser: 204 No
// Content (Subscribe returns nil: it is how servers tell clients to stop),
// any other status but 200 and followed redirects, and a wrong
// Content-Type (both a *ResponseError). RetryPolicy can opt in to retrying
// statuses; RetryTransient retries 5xx and 429 honouring Retry-After.
// Redirects (301, 302, 303, 307, 308) are followed up to MaxRedirects; too
// many, or one without a Location, is an ErrRedirect.
//
// # Goroutines
//
// Subscribe runs in the caller's goroutine, calls the handler, OnComment and
// OnRetry from it, and leaves nothing running when it returns. Cancelling
// the context aborts the current request or wait; no event is delivered
// after the context is done.
package eventsource
