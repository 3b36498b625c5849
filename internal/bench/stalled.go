package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// A stalled subscriber connects like any other, reads the response head,
// and then never reads again, so that the kernel's buffers between it and
// the hub fill up and the hub's writes to it block or fail: the slow
// reader a hub must not let delay everyone else. Stalled subscribers are
// extra (Config.Stalled): they count in no latency, delivery, loss or
// duplication figure. At the end of the run each one reads what is left,
// with a short deadline, to learn whether the hub has ended its stream
// (cut it off as a slow consumer).

// A stalled subscriber asks for a small receive buffer (stalledRcvBuf; the
// kernel doubles it) and announces the segment size of an Ethernet path
// (stalledMSS) before connecting, as a client across the Internet would.
// Without that, a loopback connection (64 KiB segments) lets the hub's
// kernel absorb about 2.8 MB for the stalled reader before a write blocks,
// minutes of events at benchmark rates; with it, about 150 KB.
const (
	stalledRcvBuf = 4096
	stalledMSS    = 1460
)

// stalledCheck bounds the final read of a stalled stream: a stream still
// open gives nothing more within it (publishing has stopped), one that
// the hub ended gives its remaining bytes and then end-of-file.
const stalledCheck = time.Second

// runStalled connects s (retrying until the hub answers 200) and then
// holds the connection without reading until ctx ends or s is stopped.
func (s *subscriber) runStalled(ctx context.Context) {
	w := s.w
	select {
	case w.dialSem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	for attempt := 0; ; attempt++ {
		err := s.stalledSession(ctx)
		if err == nil {
			<-w.dialSem
			w.stalledLive.Add(1)
			w.liveOne()
			<-ctx.Done()
			return
		}
		if s.isStopped() || ctx.Err() != nil {
			<-w.dialSem
			return
		}
		if _, ok := errors.AsType[*refusedError](err); ok {
			w.refused.Add(1)
		} else {
			w.connectErrors.Add(1)
		}
		w.setLastError(fmt.Errorf("stalled subscriber: %w", err))
		d := time.Duration(min(attempt+1, 10)) * 100 * time.Millisecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
			<-w.dialSem
			return
		}
	}
}

// stalledSession opens the stream and reads its response head; on
// success the connection stays in s.conn, never read again until
// checkStalled.
func (s *subscriber) stalledSession(ctx context.Context) error {
	w := s.w
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, stalledRcvBuf)
			if serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, stalledMSS)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	if n := len(w.localAddrs); n > 0 {
		d.LocalAddr = w.localAddrs[s.index%n]
	}
	conn, err := d.DialContext(ctx, "tcp", w.hostPort)
	if err != nil {
		return err
	}
	if !s.setConn(conn) {
		conn.Close()
		return errors.New("stopped")
	}
	// The header tells a hub's logs (and the tests' fake hub) which
	// streams are the stalled ones.
	req := w.request(s)
	req = append(req[:len(req)-2], "X-Bench-Stalled: 1\r\n\r\n"...)
	ok := false
	defer func() {
		if !ok {
			s.interrupt(false)
		}
	}()
	if _, err := conn.Write(req); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(conn, readBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if err := checkStreamAnswer(resp, br); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Time{})
	ok = true
	return nil
}

// checkStalled reads what is left on every stalled stream, all at once,
// and counts those the hub has ended.
func (w *worker) checkStalled() {
	var wg sync.WaitGroup
	for _, s := range w.stalled {
		s.mu.Lock()
		conn := s.conn
		s.mu.Unlock()
		if conn == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if drainStalled(conn, stalledCheck) {
				w.stalledCut.Add(1)
			}
		}()
	}
	wg.Wait()
}

// drainStalled reads conn until it ends or nothing arrives for quiet, and
// reports whether it ended: end of file or a reset (a hub closing a
// stream with data unsent may reset it), not a deadline.
func drainStalled(conn net.Conn, quiet time.Duration) bool {
	buf := make([]byte, 32<<10)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(quiet))
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}
