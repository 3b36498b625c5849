package ssehttp

import (
	"crypto/tls"
	"net"
	"sync"
	"syscall"
)

// watcher notices peers that hang up on idle hijacked streams at once,
// instead of at the next heartbeat write: one goroutine waits in
// epoll_wait on a private epoll set holding every watched socket, for
// EPOLLRDHUP (the client closed or shut down its side), EPOLLHUP and
// EPOLLERR. A socket may be in several epoll sets, so this set is
// independent of the Go runtime's own poller. The goroutine runs only
// while something is watched; the epoll set and its wake-up pipe are
// created with it and closed when it exits.
type watcher struct {
	mu      sync.Mutex
	running bool
	epfd    int
	wake    [2]int // pipe: a write wakes the goroutine
	next    uint32
	byID    map[uint32]watched
}

type watched struct {
	st *hijacked
	fd int
}

// add watches conn for st and returns the registration ID, or 0 if conn
// cannot be watched (the stream then notices a hang-up when it writes).
func (w *watcher) add(st *hijacked, conn net.Conn) uint32 {
	fd, ok := socketFD(conn)
	if !ok {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running && !w.start() {
		return 0
	}
	w.next++
	if w.next == 0 {
		w.next = 1
	}
	id := w.next
	ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR | -syscall.EPOLLET, Fd: int32(id)}
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.stopIfIdle()
		return 0
	}
	w.byID[id] = watched{st, fd}
	return id
}

// remove stops watching registration id; it must run before the
// connection is closed, so that the descriptor is not reused while still
// in the set.
func (w *watcher) remove(id uint32) {
	if id == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.byID[id]; ok {
		delete(w.byID, id)
		_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, e.fd, nil)
		w.stopIfIdle()
	}
}

// start creates the epoll set and starts the goroutine. w.mu is held.
func (w *watcher) start() bool {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return false
	}
	// The pipe's read end is watched with data 0, which no stream uses.
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &syscall.EpollEvent{Events: syscall.EPOLLIN}); err != nil {
		syscall.Close(epfd)
		syscall.Close(p[0])
		syscall.Close(p[1])
		return false
	}
	w.epfd, w.wake, w.running = epfd, p, true
	if w.byID == nil {
		w.byID = make(map[uint32]watched)
	}
	go w.run(epfd, p)
	return true
}

// stopIfIdle wakes the goroutine so that it exits, when nothing is
// watched. w.mu is held.
func (w *watcher) stopIfIdle() {
	if w.running && len(w.byID) == 0 {
		w.running = false
		_, _ = syscall.Write(w.wake[1], []byte{0})
	}
}

func (w *watcher) run(epfd int, wake [2]int) {
	defer func() {
		syscall.Close(epfd)
		syscall.Close(wake[0])
		syscall.Close(wake[1])
	}()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		var hung []*hijacked
		woken := false
		w.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == 0 {
				woken = true
				continue
			}
			if e, ok := w.byID[uint32(ev.Fd)]; ok {
				hung = append(hung, e.st)
			}
		}
		// Exit when told to and nothing was added since, or when a newer
		// set has replaced this one (then this one is empty).
		exit := woken && (epfd != w.epfd || !w.running)
		if exit && epfd == w.epfd {
			w.epfd = -1
		}
		w.mu.Unlock()
		for _, st := range hung {
			st.end(EndClientGone)
		}
		if exit {
			return
		}
	}
}

// socketFD returns the descriptor of conn's TCP (or Unix) socket.
func socketFD(conn net.Conn) (int, bool) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}
