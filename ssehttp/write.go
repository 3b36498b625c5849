package ssehttp

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// A flusher writes to a hijacked TCP connection in two steps. First one
// non-blocking write(2) on the socket, through its syscall.RawConn: on a
// subscriber that keeps up, the socket's send buffer has room and this is
// the whole write, with no deadline set. Setting a write deadline on
// every write cost a clock reading and a runtime timer update per
// delivery; the deadline only matters for a write that has to wait.
// Second, only when the send buffer was full (EAGAIN, or part of the
// bytes taken), the rest goes through net.Conn.Write under
// Config.WriteTimeout, as before: a subscriber that does not read in time
// is cut off. TLS connections and other net.Conns take the second path
// only.
type rawWriter struct {
	raw  syscall.RawConn // nil: net.Conn.Write only
	fn   func(fd uintptr) bool
	buf  []byte // the bytes of the write under way
	n    int    // how many of buf the socket took
	err  error  // the write's error other than EAGAIN
	dead bool   // a write deadline is set on the connection
	// cut, when set and true, makes a write that would wait fail at once
	// with errCut (the stream's queue overflowed; see hijacked.overflow).
	cut *atomic.Bool
}

// errCut fails a write that would wait for a stream that must end now.
var errCut = errors.New("ssehttp: stream cut off: its queue overflowed")

// init prepares w for conn.
func (w *rawWriter) init(conn net.Conn) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	if _, isTCP := conn.(*net.TCPConn); !isTCP {
		if _, isUnix := conn.(*net.UnixConn); !isUnix {
			return
		}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	w.raw = raw
	w.fn = w.attempt // bound once: no allocation per write
}

// attempt is the RawConn.Write callback: write what the socket takes now,
// never wait.
func (w *rawWriter) attempt(fd uintptr) bool {
	for w.n < len(w.buf) {
		n, err := syscall.Write(int(fd), w.buf[w.n:])
		if n > 0 {
			w.n += n
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			w.err = os.NewSyscallError("write", err)
			return true
		case n == 0:
			w.err = syscall.EPIPE
			return true
		}
	}
	return true
}

// write writes b to conn, waiting at most timeout (0: no limit) if the
// socket's buffer is full.
func (w *rawWriter) write(conn net.Conn, b []byte, timeout time.Duration) error {
	n, err := w.try(b)
	if err != nil || n == len(b) {
		return err
	}
	b = b[n:]
	if timeout > 0 {
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
		w.dead = true
	}
	// After the deadline is set: an overflow that sets cut later also
	// sets a deadline in the past, which then wins over this one.
	if w.cut != nil && w.cut.Load() {
		return errCut
	}
	_, err = conn.Write(b)
	if err == nil && w.dead && w.raw != nil {
		// Back to the fast path, which must not meet an old deadline.
		if conn.SetWriteDeadline(time.Time{}) == nil {
			w.dead = false
		}
	}
	return err
}

// try writes what the socket takes of b now, without waiting, and
// returns how much that was. Without a raw connection it takes nothing.
func (w *rawWriter) try(b []byte) (int, error) {
	if w.raw == nil || w.dead {
		return 0, nil
	}
	w.buf, w.n, w.err = b, 0, nil
	err := w.raw.Write(w.fn)
	n, werr := w.n, w.err
	w.buf = nil
	if err == nil {
		err = werr
	}
	return n, err
}
