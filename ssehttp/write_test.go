package ssehttp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestRawWriterFullBuffer writes more than the socket buffers hold to a
// reader that reads only later: the non-blocking attempt takes part, the
// rest waits under the deadline, every byte arrives in order, and the
// next write takes the fast path again.
func TestRawWriterFullBuffer(t *testing.T) {
	t.Parallel()
	server, client := tcpPair(t)
	var w rawWriter
	w.init(server)
	if w.raw == nil {
		t.Fatal("no raw connection for a TCP connection")
	}
	big := make([]byte, 8<<20)
	_, _ = rand.Read(big)
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the buffers fill first
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(big)+5)))
		got <- b
	}()
	if err := w.write(server, big, time.Minute); err != nil {
		t.Fatalf("write: %v", err)
	}
	if w.dead {
		t.Error("the deadline is still set after the waiting write succeeded")
	}
	if err := w.write(server, []byte("tail\n"), time.Minute); err != nil {
		t.Fatalf("second write: %v", err)
	}
	if b := <-got; !bytes.Equal(b, append(big, "tail\n"...)) {
		t.Fatalf("read %d bytes, not what was written (%d)", len(b), len(big)+5)
	}
}

// TestRawWriterTimeout checks that a reader that never reads makes the
// write fail with the deadline error the stream's end reason relies on.
func TestRawWriterTimeout(t *testing.T) {
	t.Parallel()
	server, _ := tcpPair(t)
	var w rawWriter
	w.init(server)
	err := w.write(server, make([]byte, 64<<20), 100*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) || writeEnd(err) != EndWriteTimeout {
		t.Fatalf("write: %v; want a deadline error (write-timeout)", err)
	}
}

// TestRawWriterClosed checks that writing to a closed connection fails
// at once, on the fast path as on the slow one.
func TestRawWriterClosed(t *testing.T) {
	t.Parallel()
	server, client := tcpPair(t)
	var w rawWriter
	w.init(server)
	client.Close()
	var err error
	for range 100 { // the peer's reset arrives after the first write
		if err = w.write(server, []byte("data: x\n\n"), time.Second); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err == nil || writeEnd(err) != EndWriteFailed {
		t.Fatalf("write to a closed peer: %v; want a failure", err)
	}
	server.Close()
	if err := w.write(server, []byte("x"), time.Second); err == nil {
		t.Fatal("write to a closed connection succeeded")
	}
}
