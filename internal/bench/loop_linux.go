//go:build linux

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// A read loop reads the streams of many subscribers on one thread: an
// epoll instance (level-triggered), one read(2) per ready stream per
// wake-up into the loop's buffer, and the push parser (push.go). It
// replaces a goroutine per stream woken by Go's poller, which cost per
// event a wake-up, a read, a second read that found nothing and a park.
// What is left per event is mostly the kernel's TCP receive path, which
// any reader pays (see docs/BENCHMARKS.md).
//
// A subscriber's goroutine still dials and reads the response head. It
// then takes the socket out of Go's poller (a duplicate of the descriptor,
// then the net.Conn closed), hands the duplicate to its loop and waits.
// When the stream ends the loop removes and closes the descriptor and
// sends the error to the goroutine, which reconnects as before. interrupt
// only shuts the socket down: the loop may be reading the descriptor, and
// is the one to close it, so a number reused by a new socket is never
// closed or read by mistake.

// loopEvents bounds the ready streams one epoll_wait returns.
const loopEvents = 512

// loopBuffer is the size of a loop's read buffer, shared by its streams:
// the parser keeps only an unfinished line between reads, so a stream
// needs no buffer of its own.
const loopBuffer = 16 << 10

// errClosed ends a stream that interrupt shut down.
var errClosed = errors.New("connection closed")

type readLoop struct {
	epfd int
	wake [2]int // a pipe: a byte written to wake[1] stops the loop
	buf  []byte
	done chan struct{}

	mu   sync.Mutex
	subs []*subscriber // by descriptor
}

// startReadLoops starts n read loops.
func startReadLoops(n int) ([]*readLoop, error) {
	var loops []*readLoop
	for range n {
		l, err := newReadLoop()
		if err != nil {
			for _, l := range loops {
				l.stop()
			}
			return nil, fmt.Errorf("starting a read loop: %w", err)
		}
		loops = append(loops, l)
		go l.run()
	}
	return loops, nil
}

func newReadLoop() (*readLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &readLoop{epfd: epfd, buf: make([]byte, loopBuffer), done: make(chan struct{})}
	if err := syscall.Pipe2(l.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.wake[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, l.wake[0], &ev); err != nil {
		l.closeFDs()
		return nil, err
	}
	return l, nil
}

func (l *readLoop) closeFDs() {
	syscall.Close(l.wake[0])
	syscall.Close(l.wake[1])
	syscall.Close(l.epfd)
}

// stop ends the loop and waits for it. Every stream it read must have
// ended.
func (l *readLoop) stop() {
	syscall.Write(l.wake[1], []byte{0})
	<-l.done
}

func (l *readLoop) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(l.done)
	defer l.closeFDs()
	events := make([]syscall.EpollEvent, loopEvents)
	subs := make([]*subscriber, loopEvents)
	for {
		n, err := syscall.EpollWait(l.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			panic(fmt.Sprintf("bench: epoll_wait: %v", err)) // a bad descriptor or buffer: a bug
		}
		stop := false
		// One lock per wake-up makes what a subscriber's goroutine
		// wrote before add visible here.
		l.mu.Lock()
		for i, ev := range events[:n] {
			subs[i] = nil
			if int(ev.Fd) == l.wake[0] {
				stop = true
			} else if int(ev.Fd) < len(l.subs) {
				subs[i] = l.subs[ev.Fd]
			}
		}
		l.mu.Unlock()
		for i, ev := range events[:n] {
			if s := subs[i]; s != nil {
				l.readOne(s, int(ev.Fd), ev.Events)
			}
		}
		if stop {
			return
		}
	}
}

// readOne reads once from the ready stream of s.
func (l *readLoop) readOne(s *subscriber, fd int, events uint32) {
	var err error
	if events&(syscall.EPOLLHUP|syscall.EPOLLERR) == syscall.EPOLLHUP {
		// Both directions are shut, without an error: interrupt shut
		// the stream down. What is left unread is dropped, as closing
		// the connection drops it. (A reset stream reads out, then
		// gives its error.)
		err = errClosed
	} else {
		n, rerr := syscall.Read(fd, l.buf)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
			return
		case rerr != nil:
			err = rerr
		case n == 0:
			err = errEnded
		default:
			s.now = time.Now() // shared by the events of this read
			if err = s.push(l.buf[:n]); err == nil {
				return
			}
		}
	}
	l.end(s, fd, err)
}

// add hands the stream on fd to the loop.
func (l *readLoop) add(s *subscriber, fd int) error {
	l.mu.Lock()
	if fd >= len(l.subs) {
		l.subs = append(l.subs, make([]*subscriber, fd+1-len(l.subs))...)
	}
	l.subs[fd] = s
	l.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.mu.Lock()
		l.subs[fd] = nil
		l.mu.Unlock()
		return err
	}
	return nil
}

// end removes and closes the stream on fd and gives its error to the
// goroutine of s.
func (l *readLoop) end(s *subscriber, fd int, err error) {
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	l.mu.Lock()
	l.subs[fd] = nil
	l.mu.Unlock()
	s.releaseFD(fd)
	s.loopDone <- err
}

// releaseFD closes fd, the descriptor a loop owned, once interrupt can no
// longer shut it down.
func (s *subscriber) releaseFD(fd int) {
	s.mu.Lock()
	s.inLoop = false
	s.mu.Unlock()
	syscall.Close(fd)
}

func shutdownFD(fd int) { _ = syscall.Shutdown(fd, syscall.SHUT_RDWR) }

// readInLoop reads the stream whose response head resp was just read
// from conn (through br) in the loop l, and returns how it ended.
func (s *subscriber) readInLoop(ctx context.Context, l *readLoop, conn net.Conn, br *bufio.Reader, resp *http.Response) error {
	if err := s.startPush(br, resp); err != nil {
		return err
	}
	fd, err := dupFD(conn)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.conn != conn { // interrupted meanwhile
		s.mu.Unlock()
		syscall.Close(fd)
		return errClosed
	}
	s.conn, s.fd, s.inLoop = nil, fd, true
	s.mu.Unlock()
	conn.Close() // Go's poller lets go of the socket; the duplicate keeps it open
	if s.loopDone == nil {
		s.loopDone = make(chan error, 1)
	}
	if err := l.add(s, fd); err != nil {
		s.releaseFD(fd)
		return err
	}
	select {
	case err = <-s.loopDone:
	case <-ctx.Done():
		s.interrupt(false)
		err = <-s.loopDone
	}
	return err
}

// dupFD returns a non-blocking, close-on-exec duplicate of the socket
// descriptor of conn.
func dupFD(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no descriptor", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if nfd, derr = syscall.Dup(int(fd)); derr == nil {
			syscall.CloseOnExec(nfd)
		}
	})
	if err == nil {
		err = derr
	}
	if err == nil {
		if err = syscall.SetNonblock(nfd, true); err != nil {
			syscall.Close(nfd)
		}
	}
	if err != nil {
		return -1, err
	}
	return nfd, nil
}
