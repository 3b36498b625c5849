package proctest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gateProxy is a TCP proxy in front of a hub. While it is held, it accepts
// connections but forwards them only once released, so that a test decides
// when a reconnecting client reaches the hub. It reports when the hub has
// sent a given string to a client.
type gateProxy struct {
	ln     net.Listener
	target string
	sniff  []byte
	seen   chan struct{} // closed when sniff went by
	accept chan struct{} // one value per connection accepted

	mu       sync.Mutex
	gate     chan struct{} // closed: forward at once
	conns    []net.Conn
	seenOnce sync.Once
	wg       sync.WaitGroup
}

func newGateProxy(t *testing.T, target, sniff string) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gateProxy{ln: ln, target: target, sniff: []byte(sniff), seen: make(chan struct{}), accept: make(chan struct{}, 64), gate: make(chan struct{})}
	close(p.gate)
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.release()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *gateProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		gate := p.gate
		p.mu.Unlock()
		select {
		case p.accept <- struct{}{}:
		default:
		}
		p.wg.Go(func() { p.forward(c, gate) })
	}
}

func (p *gateProxy) forward(c net.Conn, gate chan struct{}) {
	defer c.Close()
	<-gate
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, s)
	p.mu.Unlock()
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(s, c)
		s.(*net.TCPConn).CloseWrite()
	}()
	var seenBuf []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if seenBuf = append(seenBuf, buf[:n]...); bytes.Contains(seenBuf, p.sniff) {
				p.seenOnce.Do(func() { close(p.seen) })
			}
			seenBuf = seenBuf[max(0, len(seenBuf)-len(p.sniff)):]
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
	<-done
}

// hold makes new connections wait for release.
func (p *gateProxy) hold() {
	p.mu.Lock()
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

func (p *gateProxy) release() {
	p.mu.Lock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
	p.mu.Unlock()
}

// TestSubResumesFromConnectingAcrossRestart runs `ssehub sub` against a
// bolt-backed hub through a proxy. The sub connects and receives its
// stream cursor, nothing else; the hub is restarted on the same data
// directory; an update is published while the sub's connection is down
// (its reconnection is held at the proxy until then); the sub, resuming
// from the cursor, prints it. Before stream cursors it went live again on
// reconnect and the update was never printed.
func TestSubResumesFromConnectingAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	tok := token(t)
	p := startHub(t, addr, "--data", dir)
	proxy := newGateProxy(t, addr, "\nid: #")

	sub := exec.Command(binary, "sub", "--hub", "http://"+proxy.ln.Addr().String()+"/.well-known/mercure", "--token", tok, "resume-topic")
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var subErr strings.Builder
	subLog := &lockedWriter{w: &subErr}
	sub.Stderr = subLog
	subStderr := func() string {
		subLog.mu.Lock()
		defer subLog.mu.Unlock()
		return subErr.String()
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		sub.Process.Kill()
		sub.Wait()
		for range lines {
		}
	}()
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second): // a hang detector
			t.Fatalf("no %s within 30 s\nsub: %s", what, subStderr())
		}
	}
	wait("connection", proxy.accept)
	wait("stream cursor", proxy.seen)

	// The hub restarts; the sub's reconnection waits at the proxy.
	proxy.hold()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait("exit after SIGTERM", chanOf(p.exited))
	wait("reconnection attempt", proxy.accept)
	p = startHub(t, addr, "--data", dir)
	ctx := context.Background()
	status, id, err := publish(ctx, http.DefaultClient, p.url, tok, url.Values{"topic": {"resume-topic"}, "data": {"published while the sub was away"}})
	if err != nil || status != http.StatusOK {
		t.Fatalf("publish: %d %s %v", status, id, err)
	}
	proxy.release()

	got := make(chan []string, 1)
	go func() {
		var ls []string
		for l := range lines {
			if ls = append(ls, l); len(ls) == 2 {
				break
			}
		}
		got <- ls
	}()
	select {
	case ls := <-got:
		if len(ls) != 2 || ls[0] != id || ls[1] != "published while the sub was away" {
			t.Errorf("sub printed %q; want the update %s", ls, id)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the sub printed nothing within 30 s\nsub: %s", subStderr())
	}
}

// chanOf returns a channel closed once ch delivers.
func chanOf(ch <-chan error) <-chan struct{} {
	done := make(chan struct{})
	go func() { <-ch; close(done) }()
	return done
}
