// Package sse implements the text/event-stream format of Server-Sent Events
// as specified by the WHATWG HTML Living Standard, section 9.2
// (https://html.spec.whatwg.org/multipage/server-sent-events.html).
//
// It has three parts, all built on the standard library only:
//
//   - Event, AppendEvent and Encoder write events. Every write goes through
//     AppendEvent, which rejects an ID or type containing CR, LF or NUL and
//     splits data on CRLF, CR and LF into one "data:" field per line, so no
//     payload can inject a field into a stream (CWE-93).
//   - Decoder reads a stream exactly as a browser's EventSource parses it:
//     one leading BOM stripped, the three line endings (including a CRLF
//     split across reads), one leading space removed from values, exact
//     field names, id containing NUL ignored, retry digits only, the last
//     event ID committed at dispatch and an unterminated final block
//     discarded. It enforces a maximum event size.
//   - Upgrade turns an http.ResponseWriter into a Writer that sets the
//     stream headers, flushes, writes heartbeats and applies per-write
//     deadlines through http.ResponseController.
package sse
