// Package sse implements the text/event-stream format of Server-Sent Events
// as specified by the WHATWG HTML Living Standard, section 9.2
// (https://html.spec.whatwg.org/multipage/server-sent-events.html).
//
// It has three parts, all built on the standard library only:
//
//   - Event, AppendEvent and Encoder write events. Every write goes through
//     AppendEvent, which rejects an ID or type containing CR, LF or NUL and
//     splits data on CRLF, CR and LF into one "data:" field per line, so no
//     payload can inject a field into a stream (CWE-93). AppendComment and
//     AppendRetry write heartbeats and reconnection times.
//   - Decoder reads a stream exactly as a browser's EventSource parses it:
//     UTF-8 with U+FFFD for invalid bytes, one leading BOM stripped, the
//     three line endings (including a CRLF split across reads), one leading
//     space removed from values, exact field names, id containing NUL
//     ignored, retry digits only, the last event ID committed at dispatch
//     and an unterminated final block discarded. It reports comments
//     through OnComment, keeps the last event ID across Reset (a
//     reconnection) and enforces a maximum event size, failing with
//     ErrEventTooLarge instead of growing memory.
//   - Upgrade turns an http.ResponseWriter into a Writer that sets the
//     stream headers, flushes them, and writes each event, batch of
//     pre-encoded frames, heartbeat or retry in one write followed by a
//     flush, under an optional per-write deadline applied through
//     http.ResponseController. It works over HTTP/1.1 and HTTP/2.
//
// The format cannot carry a CR inside data: an event whose data holds
// "a\r\nb" arrives as "a\nb". Use a payload encoding such as JSON when
// the exact bytes matter.
package sse
