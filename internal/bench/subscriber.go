package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// readBuffer is the size of each of a subscriber's two read buffers (the
// connection's and the chunked body's). An event longer than this costs a
// copy, not an error.
const readBuffer = 1024

// subscriber is one SSE stream: a goroutine reading a raw HTTP/1.1
// connection. Its trackers belong to that goroutine; other goroutines see
// its progress through got and caught.
type subscriber struct {
	w       *worker
	index   int
	topics  [2]uint32
	ntopic  int
	stalled bool // never reads after the response head: see stalled.go
	trk     [2]tracker
	got     [2]atomic.Uint64 // trk[i].distinct, published for the worker

	lastID, evID []byte
	long         []byte     // a line longer than the read buffer, or begun in an earlier read
	now          time.Time  // when the data being parsed arrived
	ev           eventState // the event being parsed
	body         bodyState  // the push parser's place in the response body: see push.go
	loopDone     chan error // the read loop's verdict on a stream it owned: see loop_linux.go

	mu      sync.Mutex
	conn    net.Conn
	fd      int  // the descriptor a read loop owns, if inLoop
	inLoop  bool // a read loop owns the stream: interrupt shuts fd down
	stopped bool

	storm       atomic.Pointer[stormSpec] // a storm to start at the next read error
	stormTarget [2]uint64                 // catching up until trk[i].hi reaches this
	replayed    [2]uint64                 // events up to this were received before the storm
	stormStart  time.Time
	catching    bool
}

// slot returns the tracker index of topic, or -1.
func (s *subscriber) slot(topic uint32) int {
	for i := range s.ntopic {
		if s.topics[i] == topic {
			return i
		}
	}
	return -1
}

// setConn installs c as the live connection, or reports false if the
// subscriber was stopped meanwhile.
func (s *subscriber) setConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conn = c
	return true
}

// interrupt closes the live connection; stop also prevents new ones. A
// stream a read loop owns is shut down, not closed: the loop may be
// reading its descriptor, and closes it itself once it sees the end.
func (s *subscriber) interrupt(stop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = s.stopped || stop
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	if s.inLoop {
		shutdownFD(s.fd)
	}
}

func (s *subscriber) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// run connects and reads until stopped, reconnecting (with the last event
// ID seen) when the stream ends or a storm is asked for.
func (s *subscriber) run(ctx context.Context) {
	w := s.w
	first := true
	for attempt := 0; ; attempt++ {
		if first {
			select {
			case w.dialSem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		err := s.session(ctx, func() {
			if first {
				first = false
				<-w.dialSem
				w.connected.Add(1)
				w.liveOne()
			}
			attempt = 0
		})
		if first {
			<-w.dialSem
		}
		if s.isStopped() || ctx.Err() != nil {
			return
		}
		if st := s.storm.Swap(nil); st != nil {
			s.beginStorm(st)
			continue // at once, like every client of a restarted hub
		}
		switch _, refused := errors.AsType[*refusedError](err); {
		case refused:
			w.refused.Add(1)
		case first:
			w.connectErrors.Add(1)
		default:
			w.disconnects.Add(1)
		}
		if err != nil {
			w.setLastError(err)
		}
		// Back off a little, jittered, so that a hub that drops everyone
		// is not hammered in lockstep.
		d := time.Duration(min(attempt+1, 10)) * 100 * time.Millisecond
		d += rand.N(d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
		if !first {
			w.reconnects.Add(1)
		}
	}
}

// beginStorm rewinds the trackers to st's resume point and sets the
// Last-Event-ID to resume from there.
func (s *subscriber) beginStorm(st *stormSpec) {
	s.stormStart = st.started
	s.catching = true
	for i := range s.ntopic {
		t := s.topics[i]
		if int(t) >= len(st.Last) {
			continue
		}
		last := st.Last[t]
		from := last - min(last, st.Behind)
		if !s.trk[i].rewind(from) {
			s.w.setLastError(fmt.Errorf("cannot rewind %d events: more than %d behind", st.Behind, window))
		}
		s.got[i].Store(s.trk[i].distinct)
		s.stormTarget[i], s.replayed[i] = last, last
		if i == 0 {
			s.lastID = appendEventID(s.lastID[:0], st.RunID, t, from)
		}
	}
}

// appendEventID appends the ID the benchmark publishes event seq of topic
// with, when it chooses IDs.
func appendEventID(b []byte, runID string, topic uint32, seq uint64) []byte {
	b = append(b, "sb-"...)
	b = append(b, runID...)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(topic), 10)
	b = append(b, '-')
	return strconv.AppendUint(b, seq, 10)
}

// session runs one connection. It calls live once the hub has answered
// 200 with an event stream.
func (s *subscriber) session(ctx context.Context, live func()) error {
	w := s.w
	d := net.Dialer{Timeout: 10 * time.Second}
	if n := len(w.localAddrs); n > 0 {
		d.LocalAddr = w.localAddrs[s.index%n]
	}
	conn, err := d.DialContext(ctx, "tcp", w.hostPort)
	if err != nil {
		return err
	}
	if !s.setConn(conn) {
		conn.Close()
		return nil
	}
	defer s.interrupt(false)
	req := w.request(s)
	if len(s.lastID) > 0 {
		req = append(req[:len(req)-2], "Last-Event-ID: "...)
		req = append(req, s.lastID...)
		req = append(req, "\r\n\r\n"...)
	}
	if _, err := conn.Write(req); err != nil {
		return err
	}
	br := bufio.NewReaderSize(conn, readBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := checkStreamAnswer(resp, br); err != nil {
		return err
	}
	live()
	if l := w.loopOf(s); l != nil {
		return s.readInLoop(ctx, l, conn, br, resp)
	}
	return s.read(bufio.NewReaderSize(resp.Body, readBuffer))
}

// refusedError is a hub's transient refusal of a stream (draining, a
// stream limit, its store down; or nginx finding no hub): a 429 or 503,
// or the form a hub sends clients that accept text/event-stream, as the
// benchmark's subscribers do: 200, an event stream that holds only a
// ": refused: ..." comment and a retry field, and ends at once
// (docs/protocol.md, "Transient refusals"). The subscriber counts it as
// refused, not as a stream that connected and ended, and tries again.
type refusedError struct {
	reason string
}

func (e *refusedError) Error() string { return "hub refused the stream: " + e.reason }

// checkStreamAnswer checks that resp, read from br, opens an event
// stream, and returns a *refusedError for a refusal of either form.
func checkStreamAnswer(resp *http.Response, br *bufio.Reader) error {
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		msg, _, _ = bytes.Cut(bytes.TrimSpace(msg), []byte("\n"))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			return &refusedError{reason: resp.Status + ": " + string(msg)}
		}
		return fmt.Errorf("hub answered %s: %s", resp.Status, msg)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fmt.Errorf("hub answered Content-Type %q, not text/event-stream", resp.Header.Get("Content-Type"))
	}
	// A live stream has no length: it is chunked, or runs until the
	// connection closes. A refusal is short and has a Content-Length
	// (the hub's and nginx's both), so that its body is in br, or on its
	// way, and peeking at it cannot wait for a live stream's events.
	if n := resp.ContentLength; n >= int64(len(refusedPrefix)) && n <= int64(br.Size()) {
		if b, err := br.Peek(int(n)); err == nil {
			if reason, ok := parseRefusal(b); ok {
				return &refusedError{reason: reason}
			}
		}
	}
	return nil
}

// refusedPrefix begins the body of a refusal in the event-stream form.
const refusedPrefix = ": refused:"

// parseRefusal reports whether b, a whole event-stream body, is a
// refusal: it starts with the ": refused:" comment and dispatches no
// event (it has no data field). reason is the comment's text.
func parseRefusal(b []byte) (reason string, ok bool) {
	if !bytes.HasPrefix(b, []byte(refusedPrefix)) {
		return "", false
	}
	for line := range bytes.Lines(b) {
		line = bytes.TrimRight(line, "\r\n")
		if name, _, _ := bytes.Cut(line, []byte(":")); string(name) == "data" {
			return "", false
		}
		if reason == "" {
			reason = string(bytes.TrimSpace(line[len(refusedPrefix):]))
		}
	}
	return reason, true
}

// eventState is what has been parsed of the event under way.
type eventState struct {
	p                  Payload
	hasData, ok, hasID bool
	typed              bool
}

// read is the pull reader: it parses the event stream from r until it
// ends, one line at a time. It is the reader where no read loop applies
// (see loop_linux.go); the push parser (push.go) hands its lines to the
// same line method.
func (s *subscriber) read(r *bufio.Reader) error {
	s.ev = eventState{}
	for {
		// Events that arrived in one read share its time: reading the
		// clock costs more than parsing an event on some machines.
		fill := r.Buffered() == 0
		line, err := r.ReadSlice('\n')
		if fill {
			s.now = time.Now()
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			s.long = append(s.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				s.long = append(s.long, line...)
			}
			line = s.long
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return errEnded
			}
			return err
		}
		s.line(line[:len(line)-1])
	}
}

// errEnded is how a stream the hub ended (or that broke off mid-chunk)
// ends a session.
var errEnded = errors.New("hub ended the stream")

// line parses one line of the event stream, without its LF: the minimum
// of the SSE algorithm a benchmark needs (fields data, id and event;
// comments; LF or CRLF line ends, not a lone CR).
func (s *subscriber) line(line []byte) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	e := &s.ev
	if len(line) == 0 {
		if e.hasID {
			s.lastID, s.evID = s.evID, s.lastID
		}
		switch {
		case e.typed:
			s.w.other.Add(1)
		case e.hasData && e.ok:
			s.deliver(e.p)
		case e.hasData:
			s.w.foreign.Add(1)
		}
		*e = eventState{}
		return
	}
	if line[0] == ':' {
		return
	}
	name, value, found := bytes.Cut(line, []byte(":"))
	if found && len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "data":
		if !e.hasData {
			e.hasData = true
			var perr error
			e.p, perr = ParsePayload(value)
			e.ok = perr == nil
		}
	case "id":
		e.hasID = true
		s.evID = append(s.evID[:0], value...)
	case "event":
		e.typed = len(value) > 0 && string(value) != "message"
	}
}

// deliver accounts for one benchmark event.
func (s *subscriber) deliver(p Payload) {
	w := s.w
	now := s.now
	w.delivered.Add(1)
	w.lastDelivery.Store(now.UnixNano())
	i := s.slot(p.Topic)
	if i < 0 {
		w.latency.record(now.UnixNano() - p.Sent)
		w.foreign.Add(1)
		return
	}
	// The latency of an event replayed after a storm is its age, not a
	// delivery time: it was measured when the event first arrived.
	if p.Seq > s.replayed[i] {
		w.latency.record(now.UnixNano() - p.Sent)
	}
	s.trk[i].mark(p.Seq)
	s.got[i].Store(s.trk[i].distinct)
	if s.catching {
		for j := range s.ntopic {
			if s.trk[j].hi < s.stormTarget[j] {
				return
			}
		}
		s.catching = false
		w.catchup.record(int64(now.Sub(s.stormStart)))
		if w.caughtUp.Add(1) == uint64(len(w.subs)) {
			w.nudge()
		}
	}
}
