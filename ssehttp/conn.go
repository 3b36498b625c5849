package ssehttp

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/sse"
)

// An HTTP/1.x stream is served from its hijacked connection, with no
// goroutine while it is idle. A goroutine-per-stream server (net/http's
// model) keeps the connection's serving goroutine, its stack, a background
// reader and two 4 KiB buffers for every idle subscriber: about 30 KiB
// each. Here an idle stream is a connection, a subscription, two timers
// and this struct.
//
// The hub calls the subscription's Notify when there is something to send;
// Notify queues the stream to the handler's pool of flushers (flushers.go)
// unless it is already queued or being flushed; a flusher drains the
// subscription into one buffer and writes it in one non-blocking write
// (coalescing everything queued). A stream that replays history takes
// its turns on the replayers, a bounded pool of the same kind (see
// flushers). A stream whose socket is full, or that is not a plain TCP
// connection (TLS), is flushed by a goroutine of its own instead, with blocking writes under
// Config.WriteTimeout, until nothing is left. Heartbeats, credential expiry, the maximum lifetime, a drain and a
// peer hang-up (seen by one watcher for all connections, see watch_linux.go)
// are all events that go through the same Notify, so exactly one goroutine
// at a time ever touches the subscription and the connection.
type hijacked struct {
	h     *Handler
	conn  net.Conn
	sub   *hub.Subscription
	head  []byte // response head, retry field and start, written by the first flush
	start []byte // the stream cursor of a new stream, set before serve

	// pending counts Notify calls not yet seen by a flusher. The goroutine
	// that moves it from 0 to 1 becomes the flusher; the flusher leaves it
	// at zero only after a pass that saw no newer call. It starts at 1:
	// the handler goroutine is the first flusher.
	pending atomic.Int64
	stop    atomic.Pointer[EndReason] // why the stream must end, once set
	beat    atomic.Bool               // a heartbeat is due
	done    bool                      // flusher-owned: the stream has ended
	// cut is set when the hub ended the subscription because its queue
	// overflowed (overflow): a write that waits fails at once. live is
	// the connection once hijacked, for overflow, which runs on the hub's
	// dispatcher.
	cut  atomic.Bool
	live atomic.Pointer[net.Conn]

	heartbeat *time.Timer
	beatOver  atomic.Bool // set before the heartbeat is stopped: onBeat must not re-arm it
	deadline  *time.Timer // credentials' expiry or maximum lifetime
	watchID   uint32      // hang-up watcher registration, 0 if none

	w       rawWriter // flusher-owned
	stash   stash     // flusher-owned: a write left by a pool flusher
	pooled  bool      // set before the first flush: notify queues to the pool
	so      streamObs // flusher-owned once serve starts; in the struct, not behind a pointer: one cache line fewer per write
	onClose []func()  // run once when the stream ends (limits' release)
}

// bufPool recycles the buffers flushers encode into. Buffers that grew
// past maxPooledBuf (a large replay) are left to the collector.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// batchPool recycles the update slices flushers drain into.
var batchPool = sync.Pool{New: func() any { b := make([]*hub.Update, 0, 64); return &b }}

const maxPooledBuf = 1 << 20

// streamHead is the response head of a hijacked stream. The body is
// delimited by the connection's close: the stream ends when either side
// closes it, and an HTTP/1.1 client reads until then (RFC 9112, 6.3).
func streamHead(hd http.Header, proto string) []byte {
	var b bytes.Buffer
	if proto == "HTTP/1.0" {
		b.WriteString("HTTP/1.0 200 OK\r\n")
	} else {
		b.WriteString("HTTP/1.1 200 OK\r\n")
	}
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	hd.Set("Connection", "close")
	hd.Del("Content-Length")
	hd.Del("Content-Encoding")
	hd.Del("Transfer-Encoding")
	_ = hd.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// hijackable reports whether r's stream can be served from its hijacked
// connection: a GET over HTTP/1.x whose ResponseWriter (or one it wraps)
// can hijack. HTTP/2 streams share their connection and keep a goroutine.
func (h *Handler) hijackable(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.GoroutinePerStream || r.ProtoMajor != 1 || r.Method != http.MethodGet {
		return false
	}
	for {
		if _, ok := w.(http.Hijacker); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// newHijacked prepares a stream; it is started by serveHijacked once the
// subscription exists, since the subscription's Notify is its notify.
func (h *Handler) newHijacked() *hijacked {
	st := &hijacked{h: h}
	st.pending.Store(1)
	return st
}

// serve takes the connection over from net/http, writes the head and
// whatever the subscription already has, and returns with the stream
// running on its own. It reports false, with nothing written and the
// connection still net/http's, if the connection cannot be hijacked after
// all; the caller still owns sub then.
// The stream ends at expires (credentials) or at lifetime (MaxLifetime),
// whichever comes first; the zero time means never.
func (st *hijacked) serve(w http.ResponseWriter, r *http.Request, sub *hub.Subscription, topics []hub.Matcher, expires, lifetime time.Time) (ok bool) {
	h := st.h
	st.sub = sub
	st.head = streamHead(w.Header(), r.Proto)
	if d := h.cfg.Retry; d > 0 {
		st.head = sse.AppendRetry(st.head, jitter(d))
	}
	st.head = append(st.head, st.start...)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	_ = brw // its buffers are dropped: a stream reads nothing more
	st.conn = conn
	_ = conn.SetReadDeadline(time.Time{})
	st.w.init(conn)
	st.w.cut = &st.cut
	st.live.Store(&conn)

	if !h.track(st) {
		// Drained between the check in subscribe and now.
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write(h.rawDrainRefusal(w.Header(), r))
		conn.Close()
		sub.Close()
		for _, f := range st.onClose {
			f()
		}
		return true
	}
	st.watchID = h.watcher.add(st, conn)
	if hb := h.cfg.Heartbeat; hb > 0 {
		// The first beat comes at a random point of the first interval,
		// so that streams opened together do not beat together. The
		// timer is armed only once st.heartbeat is set, which onBeat
		// reads: Reset orders the write before the callback.
		st.heartbeat = time.AfterFunc(math.MaxInt64, st.onBeat)
		st.heartbeat.Reset(hb/2 + rand.N(hb/2+1))
	}
	if end := earliest(expires, lifetime); !end.IsZero() {
		reason := EndExpired
		if end.Equal(lifetime) {
			reason = EndMaxLifetime
		}
		st.deadline = time.AfterFunc(max(end.Sub(h.cfg.Now()), 0), func() { st.end(reason) })
	}
	st.so = *h.openStream(r, topics, sub)
	st.pooled = st.w.raw != nil
	if st.pooled && sub.Replaying() {
		// A resume: the replayers read and write its history (and the
		// response head with its first batch), a bounded number of
		// streams at a time, rather than this goroutine.
		h.hijacks.replayers.enqueue(st) // as the first flusher: pending is 1
		return true
	}
	st.flush() // as the first flusher: pending is 1
	return true
}

func (st *hijacked) onBeat() {
	st.beat.Store(true)
	st.notify()
	if hb := st.h.cfg.Heartbeat; hb > 0 && !st.beatOver.Load() {
		st.heartbeat.Reset(hb)
		// finish may have stopped the timer between the check and the
		// Reset: then this sees its flag, and stops the timer again.
		if st.beatOver.Load() {
			st.heartbeat.Stop()
		}
	}
}

// notify is the subscription's Notify: it makes sure a flusher runs.
func (st *hijacked) notify() {
	if st.pending.Add(1) == 1 {
		if st.pooled {
			st.h.hijacks.flushers.enqueue(st)
		} else {
			go st.flush()
		}
	}
}

// overflow is the subscription's OnOverflow: the hub ended it as a slow
// consumer and dropped its queue. The stream ends at once, with
// EndQueueOverflow: a write blocked on the stalled client fails now
// instead of when Config.WriteTimeout expires, so that the goroutine
// waiting on it and the buffer it holds (up to the queue's bytes, copied
// into one write) are released at once. The write fails through a write
// deadline in the past, not by closing the connection: the flusher
// closes it, after taking it out of the hang-up watcher's set. It runs on
// the hub's dispatcher and does not block.
func (st *hijacked) overflow() {
	st.cut.Store(true)
	st.end(EndQueueOverflow)
	if c := st.live.Load(); c != nil {
		// Ordered after cut: a write that sets its own deadline after
		// this one checks cut after setting it (rawWriter.write).
		_ = (*c).SetWriteDeadline(time.Unix(1, 0))
	}
}

// end makes the stream end, after the write under way, for reason.
func (st *hijacked) end(reason EndReason) {
	if st.stop.CompareAndSwap(nil, &reason) {
		st.notify()
	}
}

// flush writes until nothing is pending, waiting for the socket when it
// is full. Only one flush runs at a time.
func (st *hijacked) flush() {
	for {
		n := st.pending.Load()
		if !st.writeOnce(true) {
			return // ended; pending stays above zero so no flusher starts again
		}
		if st.pending.CompareAndSwap(n, 0) {
			return
		}
	}
}

// flushPooled is one turn of a pooled stream on a flusher of the pool
// (see flushers): one drain and one write that does not wait. A stream
// whose socket is full, that is replaying history (a store read may
// wait) or that must end (closing may wait) continues on a goroutine of
// its own, as flush, so that nothing on a pool goroutine ever waits for
// one subscriber. A stream with more pending goes to the back of the
// queue.
func (st *hijacked) flushPooled() {
	n := st.pending.Load()
	if st.sub.Replaying() {
		st.h.hijacks.replayers.enqueue(st)
		return
	}
	if !st.writeOnce(false) {
		return
	}
	if st.stash.buf != nil {
		go st.flushStash(n)
		return
	}
	if !st.pending.CompareAndSwap(n, 0) {
		st.h.hijacks.flushers.enqueue(st)
	}
}

// replayPooled is one turn of a replaying stream on the replayers (see
// flushers): one drain, which reads a batch of history from the store
// and may wait for it, and one write that does not wait. A stream whose
// socket is full continues on a goroutine of its own, as in flushPooled;
// one with more pending goes to the back of the replayers' queue while
// it replays, and to the flushers once it has caught up.
func (st *hijacked) replayPooled() {
	n := st.pending.Load()
	if !st.writeOnce(false) {
		return
	}
	if st.stash.buf != nil {
		go st.flushStash(n)
		return
	}
	if !st.pending.CompareAndSwap(n, 0) {
		if st.sub.Replaying() {
			st.h.hijacks.replayers.enqueue(st)
		} else {
			st.h.hijacks.flushers.enqueue(st)
		}
	}
}

// flushStash completes the write a pool flusher left in st.stash, waiting
// for the socket, then goes on as flush if more is pending.
func (st *hijacked) flushStash(n int64) {
	sw := st.stash
	st.stash = stash{}
	werr := st.w.write(st.conn, sw.rest, st.h.cfg.WriteTimeout)
	if !st.wrote(true, sw.buf, werr, sw.events, sw.oldest, sw.derr) {
		return
	}
	if !st.pending.CompareAndSwap(n, 0) {
		st.flush()
	}
}

// stash is a write a pool flusher could not complete: the socket took
// only part of it.
type stash struct {
	buf    *[]byte // from bufPool; nil when nothing is stashed
	rest   []byte  // the bytes the socket did not take
	events int
	oldest time.Time
	derr   error // Drain's error, handled after the write
}

// writeOnce drains the subscription and writes what it returned, a
// heartbeat if one is due and nothing else was written, or nothing. It
// reports false once the stream has ended. With wait false it never
// waits: a write the socket did not take whole is left in st.stash (and
// writeOnce reports true), and the stream's end runs on a new goroutine.
func (st *hijacked) writeOnce(wait bool) bool {
	if st.done {
		return false
	}
	if reason := st.stop.Load(); reason != nil {
		st.finishOn(wait, *reason, nil)
		return false
	}
	bp := batchPool.Get().(*[]*hub.Update)
	batch, derr := st.sub.Drain(context.Background(), (*bp)[:0])
	buf := bufPool.Get().(*[]byte)
	b := append((*buf)[:0], st.head...)
	st.head = nil
	for _, u := range batch {
		b = append(b, u.Frame()...)
	}
	n, oldest := len(batch), st.so.oldestLive(batch)
	clear(batch)
	*bp = batch[:0]
	batchPool.Put(bp)
	if st.beat.Swap(false) && len(b) == 0 {
		b = append(b, ':', '\n', '\n')
	}
	*buf = b
	var werr error
	switch {
	case len(b) == 0:
	case wait:
		werr = st.w.write(st.conn, b, st.h.cfg.WriteTimeout)
	default:
		var took int
		if took, werr = st.w.try(b); werr == nil && took < len(b) {
			st.stash = stash{buf: buf, rest: b[took:], events: n, oldest: oldest, derr: derr}
			return true
		}
	}
	return st.wrote(wait, buf, werr, n, oldest, derr)
}

// wrote accounts for a write of events (werr its error) from buf, and
// ends the stream on a write or drain error. It reports whether the
// stream goes on.
func (st *hijacked) wrote(wait bool, buf *[]byte, werr error, events int, oldest time.Time, derr error) bool {
	if cap(*buf) <= maxPooledBuf {
		*buf = (*buf)[:0]
		bufPool.Put(buf)
	}
	if werr != nil {
		if st.cut.Load() {
			// Cut by overflow: the stream ends for that, not for the
			// write it interrupted.
			st.finishOn(wait, EndQueueOverflow, hub.ErrSlowConsumer)
			return false
		}
		st.finishOn(wait, writeEnd(werr), werr)
		return false
	}
	st.so.wrote(events, oldest)
	if derr != nil {
		st.finishOn(wait, drainEnd(derr), derr)
		return false
	}
	return true
}

// finishOn ends the stream: here if the flusher may wait, else on a
// goroutine of its own (closing the subscription and the connection, and
// the release callbacks, may wait).
func (st *hijacked) finishOn(wait bool, reason EndReason, err error) {
	if wait {
		st.finish(reason, err)
		return
	}
	st.done = true
	go st.finish(reason, err)
}

// finish ends the stream: it runs on the flusher, once.
func (st *hijacked) finish(reason EndReason, err error) {
	st.done = true
	if st.heartbeat != nil {
		st.beatOver.Store(true)
		st.heartbeat.Stop()
	}
	if st.deadline != nil {
		st.deadline.Stop()
	}
	st.h.watcher.remove(st.watchID)
	st.sub.Close()
	st.conn.Close()
	for _, f := range st.onClose {
		f()
	}
	st.so.end(reason, err)
	st.h.untrack(st)
}

// jitter spreads d by up to ±25%.
func jitter(d time.Duration) time.Duration { return d - d/4 + rand.N(d/2+1) }

// streams tracks the hijacked streams of a Handler, so that Drain can end
// them and Wait can see them gone.
type streams struct {
	flushers  flushers
	replayers flushers // replay set by New

	mu       sync.Mutex
	set      map[*hijacked]struct{}
	draining bool
	empty    chan struct{} // closed when set becomes empty during a drain
}

// track registers st; it reports false when the handler is draining.
func (h *Handler) track(st *hijacked) bool {
	s := &h.hijacks
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	if s.set == nil {
		s.set = make(map[*hijacked]struct{})
	}
	s.set[st] = struct{}{}
	return true
}

func (h *Handler) untrack(st *hijacked) {
	s := &h.hijacks
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.set, st)
	if s.draining && len(s.set) == 0 && s.empty != nil {
		close(s.empty)
		s.empty = nil
	}
}

// drainHijacked ends every hijacked stream.
func (h *Handler) drainHijacked() {
	s := &h.hijacks
	s.mu.Lock()
	if !s.draining {
		s.draining = true
		if len(s.set) > 0 {
			s.empty = make(chan struct{})
		}
	}
	all := make([]*hijacked, 0, len(s.set))
	for st := range s.set {
		all = append(all, st)
	}
	s.mu.Unlock()
	for _, st := range all {
		st.end(EndDrain)
	}
}

// Wait waits until every stream served from a hijacked connection has
// ended after Drain, and the subscription events of ended streams are
// published (with Config.Presence), or ctx is done; then it closes the
// connections of those still writing, and returns ctx's error. Streams
// served by their own goroutine are waited for by http.Server.Shutdown;
// call Wait after it so that their subscription events are waited for too.
func (h *Handler) Wait(ctx context.Context) error {
	if err := h.waitHijacked(ctx); err != nil {
		return err
	}
	return h.waitPresence(ctx)
}

func (h *Handler) waitHijacked(ctx context.Context) error {
	s := &h.hijacks
	s.mu.Lock()
	empty := s.empty
	s.mu.Unlock()
	if empty == nil {
		return nil
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		// Cut the connections still writing: their flushers fail and end.
		s.mu.Lock()
		for st := range s.set {
			st.conn.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// Streams returns the number of open streams served from hijacked
// connections.
func (h *Handler) Streams() int {
	s := &h.hijacks
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.set)
}
