package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// DefaultMaxEventSize is the maximum event size, in bytes, that a Decoder
// accepts unless SetMaxEventSize changes it: 16 MiB. It is larger than the
// 5 MiB events of the LaunchDarkly contract suite with room to spare.
const DefaultMaxEventSize = 16 << 20

// ErrEventTooLarge is returned, possibly wrapped, by Decoder.Decode when
// the event being parsed grows beyond the decoder's maximum event size.
// Test for it with errors.Is.
var ErrEventTooLarge = errors.New("sse: event exceeds the maximum event size")

const (
	// readBufSize is the size of the buffer a Decoder reads into.
	readBufSize = 16 << 10
	// keepBufSize is the largest data or line buffer capacity a Decoder
	// keeps between events; larger buffers are released after use so an
	// idle connection does not pin the memory of its largest event.
	keepBufSize = 256 << 10
	// maxEmptyReads is how many (0, nil) reads in a row make Decode give
	// up with io.ErrNoProgress, as bufio does.
	maxEmptyReads = 100
	// bom is the UTF-8 encoding of U+FEFF.
	bom = "\xEF\xBB\xBF"
)

// Line states of a Decoder: whether a line that began in an earlier read
// is pending, and if so whether its bytes are buffered or dropped.
const (
	lineNone      = iota // no partial line pending
	lineUndecided        // too short to know the field; buffered
	lineKeep             // a field we process, or a reported comment; buffered
	lineDiscard          // an unknown field or unreported comment; dropped
	lineData             // a data field; its value goes straight to d.data
)

// Decoder reads events from a text/event-stream. It follows the WHATWG
// "parse an event stream" and "interpret an event stream" algorithms to
// the letter:
//
//   - The stream is decoded as UTF-8, whatever the Content-Type says; each
//     invalid sequence (maximal subpart) becomes U+FFFD.
//   - Exactly one leading byte order mark is stripped, even when it arrives
//     split across reads. A later BOM is content.
//   - Lines end at CRLF, at a lone LF or at a lone CR. A CRLF split across
//     two reads counts as one line ending.
//   - Lines starting with a colon are comments. Otherwise the field name is
//     everything before the first colon, compared exactly, and the value is
//     everything after it, less one leading space. A line without a colon is
//     a field name with an empty value.
//   - "event" sets the type; "data" appends the value and a LF; "id" sets
//     the last event ID buffer unless the value contains NUL (an empty value
//     resets it); "retry" sets the reconnection time when the value is one or
//     more ASCII digits, read in base ten. Other fields are ignored.
//   - A blank line dispatches: the last event ID buffer becomes the last
//     event ID even when no event fires, and an event fires only when the
//     data buffer is not empty.
//   - At the end of the stream the pending block, and any id it set, is
//     discarded.
//
// Memory is bounded by the maximum event size (see SetMaxEventSize): a
// Decoder counts the data buffered for the current event plus the current
// line and fails with ErrEventTooLarge when the sum exceeds the maximum. It
// fails the same way when replacing invalid UTF-8 (one byte can become the
// three of U+FFFD) would make an event's data, type or ID, or a comment,
// longer than the maximum, so no string it returns is ever longer.
// Lines that are ignored anyway (unknown fields, and comments when
// OnComment is nil) are skipped without being buffered, whatever their
// length.
//
// A Decoder reads in chunks into a reusable buffer and may read more bytes
// from its reader than it has parsed. Decode returns as soon as an event is
// dispatched; it never waits for more input once an event is complete. A
// Decoder is not safe for concurrent use.
type Decoder struct {
	// OnComment, if not nil, is called with the text of every comment line,
	// synchronously from Decode and in stream order relative to the events
	// Decode returns. The text is everything after the colon, with no space
	// removed, converted to valid UTF-8. When OnComment is nil, comments are
	// skipped without being buffered. Set it before the first call to
	// Decode.
	OnComment func(text string)

	r       io.Reader
	err     error // sticky error returned by every later Decode
	readErr error // error returned by a read that also returned bytes

	buf            []byte // read buffer; buf[start:end] is not parsed yet
	start, end     int
	nextCR, nextLF int // index in buf of the next CR/LF; -1 none, < start unknown

	bom      int  // BOM bytes matched at stream start; -1 once settled
	skipLF   bool // the last line ended with CR: a following LF belongs to it
	line     []byte
	lineMode int
	// For lineData: whether the value's first byte (a space to drop) is
	// still to come, and the bytes of the line not in d.data ("data:" and
	// the dropped space), which count against the maximum event size.
	valueStart bool
	lineExtra  int

	data     []byte // data buffer, each line followed by LF
	typ      []byte // event type buffer
	lastType string // last type dispatched, reused to save an allocation
	idBuf    string // last event ID buffer
	lastID   string // last event ID, committed at dispatch

	retry    time.Duration
	hasRetry bool
	max      int
}

// NewDecoder returns a Decoder that reads from r, with the default maximum
// event size, an empty last event ID and no reconnection time. The reader
// may be nil if Reset provides one before the first Decode.
func NewDecoder(r io.Reader) *Decoder {
	d := &Decoder{max: DefaultMaxEventSize}
	d.Reset(r)
	return d
}

// Reset makes d read a new stream from r, as a browser's EventSource does
// when it reconnects: it discards unread input, the pending line, the data
// and event type buffers and any id field not yet dispatched, forgets a
// previous error and starts looking for a byte order mark again. It keeps
// the last event ID, the reconnection time, the maximum event size and
// OnComment.
func (d *Decoder) Reset(r io.Reader) {
	d.r = r
	d.err, d.readErr = nil, nil
	d.start, d.end = 0, 0
	d.nextCR, d.nextLF = -2, -2
	d.bom = 0
	d.skipLF = false
	d.resetLine()
	d.data = shrink(d.data)
	d.typ = shrink(d.typ)
	d.idBuf = d.lastID
}

// SetMaxEventSize sets the maximum event size in bytes: the most the
// decoder buffers for one event, counting the data buffer plus the line
// being read (field name included). A value of zero or less restores
// DefaultMaxEventSize. The new limit applies to bytes parsed from then on.
func (d *Decoder) SetMaxEventSize(n int) {
	if n <= 0 {
		n = DefaultMaxEventSize
	}
	d.max = n
}

// SetLastEventID sets the last event ID, and the last event ID buffer, to
// id. A client that resumes a stream sets it to the ID it last saw before
// the first Decode or after Reset, so that events which carry no id field
// report it, as a browser does after reconnecting.
func (d *Decoder) SetLastEventID(id string) {
	d.lastID = id
	d.idBuf = id
}

// LastEventID returns the last event ID: the value of the last id field
// committed by a blank line. It is the value a client sends in the
// Last-Event-ID header when it reconnects, which it omits when the value
// is empty.
func (d *Decoder) LastEventID() string { return d.lastID }

// Retry returns the reconnection time set by the latest valid retry field,
// and whether any was seen since the Decoder was created. Values too large
// for a time.Duration are capped at the largest Duration.
func (d *Decoder) Retry() (time.Duration, bool) { return d.retry, d.hasRetry }

// Decode returns the next event dispatched by the stream. The event's ID is
// the last event ID at dispatch time and its Type is "message" when the
// block named none; Retry is always zero (see Decoder.Retry).
//
// Decode returns io.EOF when the stream ends, discarding an unterminated
// final block and any id it set. It returns an error wrapping
// ErrEventTooLarge when an event exceeds the maximum event size, and any
// other error from the reader as is. Once Decode has returned an error it
// returns the same error until Reset.
func (d *Decoder) Decode() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	for {
		ev, ok, err := d.parse()
		if err != nil {
			d.err = err
			return Event{}, err
		}
		if ok {
			return ev, nil
		}
		if err := d.fill(); err != nil {
			// End of stream: drop the pending block and its id.
			d.resetLine()
			d.data = shrink(d.data)
			d.typ = shrink(d.typ)
			d.idBuf = d.lastID
			d.err = err
			return Event{}, err
		}
	}
}

// fill reads the next chunk into d.buf. It is called only when every
// buffered byte has been parsed.
func (d *Decoder) fill() error {
	if d.readErr != nil {
		return d.readErr
	}
	if d.buf == nil {
		d.buf = make([]byte, readBufSize)
	}
	for range maxEmptyReads {
		n, err := d.r.Read(d.buf)
		if n < 0 || n > len(d.buf) {
			return fmt.Errorf("sse: reader returned invalid count %d", n)
		}
		d.start, d.end = 0, n
		d.nextCR, d.nextLF = -2, -2
		if n > 0 {
			d.readErr = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// parse consumes buffered bytes until an event is dispatched or the buffer
// is empty.
func (d *Decoder) parse() (Event, bool, error) {
	for d.start < d.end {
		if d.bom >= 0 {
			d.skipBOM()
			continue
		}
		if d.skipLF {
			d.skipLF = false
			if d.buf[d.start] == '\n' {
				d.start++
			}
			continue
		}
		i := d.eol()
		if i < 0 {
			err := d.appendPartial(d.buf[d.start:d.end])
			d.start = d.end
			if err != nil {
				return Event{}, false, err
			}
			break
		}
		line := d.buf[d.start:i]
		d.skipLF = d.buf[i] == '\r'
		d.start = i + 1
		mode := d.lineMode
		if mode != lineNone {
			if err := d.appendPartial(line); err != nil {
				return Event{}, false, err
			}
			line, mode = d.line, d.lineMode
		}
		var (
			ev  Event
			ok  bool
			err error
		)
		switch mode {
		case lineDiscard:
		case lineData:
			d.data = append(d.data, '\n')
		default:
			ev, ok, err = d.processLine(line)
		}
		d.resetLine()
		if err != nil || ok {
			return ev, ok, err
		}
	}
	return Event{}, false, nil
}

// skipBOM consumes the leading byte order mark, or the part of it seen so
// far. Bytes that start like a BOM but are not one are content: they begin
// a line that can only be an unknown field.
func (d *Decoder) skipBOM() {
	for d.start < d.end {
		if d.buf[d.start] != bom[d.bom] {
			if d.bom > 0 {
				d.lineMode = lineDiscard
			}
			d.bom = -1
			return
		}
		d.start++
		d.bom++
		if d.bom == len(bom) {
			d.bom = -1
			return
		}
	}
}

// eol returns the index in d.buf of the next CR or LF at or after d.start,
// or -1. It remembers where it found each byte so that a buffer full of
// short lines is scanned once rather than once per line.
func (d *Decoder) eol() int {
	if d.nextLF != -1 && d.nextLF < d.start {
		d.nextLF = index(d.buf[d.start:d.end], '\n', d.start)
	}
	if d.nextCR != -1 && d.nextCR < d.start {
		d.nextCR = index(d.buf[d.start:d.end], '\r', d.start)
	}
	switch {
	case d.nextLF < 0:
		return d.nextCR
	case d.nextCR < 0 || d.nextLF < d.nextCR:
		return d.nextLF
	default:
		return d.nextCR
	}
}

func index(b []byte, c byte, off int) int {
	if i := bytes.IndexByte(b, c); i >= 0 {
		return off + i
	}
	return -1
}

// appendPartial adds part of a line to the pending line, first deciding
// from its opening bytes whether the line needs buffering at all.
func (d *Decoder) appendPartial(p []byte) error {
	if d.lineMode == lineNone {
		d.lineMode = lineUndecided
	}
	if d.lineMode == lineUndecided {
		var head [6]byte
		n := copy(head[:], d.line)
		n += copy(head[n:], p)
		d.lineMode = d.classify(head[:n])
		switch {
		case d.lineMode == lineDiscard:
			d.line = d.line[:0]
		case d.lineMode == lineKeep && string(head[:min(n, 5)]) == "data:":
			// A long data line: rather than buffer it and copy it, stream
			// its value into the data buffer. An undecided line has no
			// colon, so the "data:" prefix ends inside p.
			p = p[len("data:")-len(d.line):]
			d.line = d.line[:0]
			d.lineMode = lineData
			d.valueStart = true
			d.lineExtra = len("data:")
		}
	}
	if d.lineMode == lineData {
		if d.valueStart && len(p) > 0 {
			d.valueStart = false
			if p[0] == ' ' {
				p = p[1:]
				d.lineExtra++
			}
		}
		if len(p) > d.max-len(d.data)-d.lineExtra {
			return d.tooLarge()
		}
		d.data = append(d.data, p...)
		return nil
	}
	if d.lineMode == lineDiscard || len(p) == 0 {
		return nil
	}
	if len(d.line)+len(p) > d.max-len(d.data) {
		return d.tooLarge()
	}
	d.line = append(d.line, p...)
	return nil
}

// classify tells from the first bytes of a line (at most six) whether the
// line is worth buffering.
func (d *Decoder) classify(head []byte) int {
	if len(head) == 0 {
		return lineUndecided
	}
	if head[0] == ':' {
		if d.OnComment != nil {
			return lineKeep
		}
		return lineDiscard
	}
	if i := bytes.IndexByte(head, ':'); i >= 0 {
		if isField(head[:i]) {
			return lineKeep
		}
		return lineDiscard
	}
	if len(head) > len("retry") {
		return lineDiscard // longer than any field name we know
	}
	for _, f := range [...]string{"data", "event", "id", "retry"} {
		if len(head) <= len(f) && string(head) == f[:len(head)] {
			return lineUndecided
		}
	}
	return lineDiscard
}

func isField(name []byte) bool {
	switch string(name) {
	case "data", "event", "id", "retry":
		return true
	}
	return false
}

func (d *Decoder) resetLine() {
	d.line = shrink(d.line)
	d.lineMode = lineNone
}

// text converts b to valid UTF-8, failing when replacement characters
// make it longer than the maximum event size.
func (d *Decoder) text(b []byte) (string, error) {
	s, ok := validStringMax(b, d.max)
	if !ok {
		return "", d.tooLarge()
	}
	return s, nil
}

func (d *Decoder) tooLarge() error {
	return fmt.Errorf("%w (%d bytes)", ErrEventTooLarge, d.max)
}

// processLine interprets one complete line. It reports whether an event
// was dispatched.
func (d *Decoder) processLine(line []byte) (Event, bool, error) {
	if len(line) == 0 {
		return d.dispatch()
	}
	if line[0] == ':' {
		if d.OnComment == nil {
			return Event{}, false, nil
		}
		if len(line) > d.max-len(d.data) {
			return Event{}, false, d.tooLarge()
		}
		text, err := d.text(line[1:])
		if err != nil {
			return Event{}, false, err
		}
		d.OnComment(text)
		return Event{}, false, nil
	}
	name, value := line, line[len(line):]
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	if !isField(name) {
		return Event{}, false, nil
	}
	if len(line) > d.max-len(d.data) {
		return Event{}, false, d.tooLarge()
	}
	switch string(name) {
	case "data":
		d.data = append(d.data, value...)
		d.data = append(d.data, '\n')
	case "event":
		d.typ = append(d.typ[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != d.idBuf {
			id, err := d.text(value)
			if err != nil {
				return Event{}, false, err
			}
			d.idBuf = id
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			d.retry, d.hasRetry = ms, true
		}
	}
	return Event{}, false, nil
}

// parseRetry parses one or more ASCII digits, in base ten, as milliseconds.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const maxMS = math.MaxInt64 / int64(time.Millisecond)
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxMS {
			ms = ms*10 + int64(c-'0')
		}
	}
	if ms > maxMS {
		return math.MaxInt64, true
	}
	return time.Duration(ms) * time.Millisecond, true
}

// dispatch runs the spec's dispatch steps for a blank line.
func (d *Decoder) dispatch() (Event, bool, error) {
	d.lastID = d.idBuf
	if len(d.data) == 0 {
		d.typ = shrink(d.typ)
		return Event{}, false, nil
	}
	data, err := d.text(d.data[:len(d.data)-1])
	if err != nil {
		return Event{}, false, err
	}
	ev := Event{ID: d.lastID, Type: "message", Data: data}
	if len(d.typ) > 0 {
		if string(d.typ) != d.lastType {
			if d.lastType, err = d.text(d.typ); err != nil {
				return Event{}, false, err
			}
		}
		ev.Type = d.lastType
	}
	d.data = shrink(d.data)
	d.typ = shrink(d.typ)
	return ev, true, nil
}

// shrink empties b, releasing its array when it is large.
func shrink(b []byte) []byte {
	if cap(b) > keepBufSize {
		return nil
	}
	return b[:0]
}

// validStringMax returns b as a string, replacing each invalid UTF-8
// sequence with U+FFFD the way the WHATWG UTF-8 decoder does: one
// replacement character per maximal subpart of an ill-formed sequence. It
// gives up, returning false, when the result would be longer than limit
// bytes. Replacement characters take
// three bytes, so invalid input can grow up to threefold.
func validStringMax(b []byte, limit int) (string, bool) {
	if utf8.Valid(b) {
		return string(b), len(b) <= limit
	}
	out := make([]byte, 0, min(len(b)+8, limit))
	for i := 0; i < len(b); {
		if len(out) > limit {
			return "", false
		}
		if b[i] < utf8.RuneSelf {
			out = append(out, b[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, b[i:i+n]...)
			i += n
			continue
		}
		out = append(out, "\uFFFD"...)
		i += invalidLen(b[i:])
	}
	if len(out) > limit {
		return "", false
	}
	return string(out), true
}

// invalidLen returns the length of the maximal subpart of the ill-formed
// UTF-8 sequence that starts b: a valid lead byte followed by as many
// valid continuation bytes as it allows, or else one byte.
func invalidLen(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF)
	need := 0
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c >= 0xE0 && c <= 0xEF:
		need = 2
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 3
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 1
	}
	n := 1
	for n <= need && n < len(b) && b[n] >= lo && b[n] <= hi {
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}
