package bench

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestReadAnswer(t *testing.T) {
	long := strings.Repeat("x", maxAnswerBody+10)
	tests := []struct {
		name, in      string
		code          int
		status, body  string
		close         bool
		rest, errLike string // rest: what is left for the next answer
	}{
		{name: "ssehub", in: "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: Sat, 21 Nov 2026 07:49:30 GMT\r\nContent-Length: 45\r\n\r\nurn:uuid:019aa5c4-9c2e-7d3a-8a1b-2c3d4e5f6a7bHTTP/1.1",
			code: 200, body: "urn:uuid:019aa5c4-9c2e-7d3a-8a1b-2c3d4e5f6a7b", rest: "HTTP/1.1"},
		{name: "refusal", in: "HTTP/1.1 403 Forbidden\r\ncontent-length: 12\r\n\r\nnot granted\n",
			code: 403, status: "403 Forbidden", body: "not granted\n"},
		{name: "no reason", in: "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", code: 200, body: "x"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", code: 200, body: "x"},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\nnext",
			code: 200, body: "abcde", rest: "next"},
		{name: "close", in: "HTTP/1.1 503 Service Unavailable\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
			code: 503, status: "503 Service Unavailable", close: true},
		{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\nid", code: 200, body: "id", close: true},
		{name: "HTTP/1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nid", code: 200, body: "id", close: true},
		{name: "HTTP/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nid", code: 200, body: "id"},
		{name: "100 Continue skipped", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nid", code: 200, body: "id"},
		{name: "204 has no body", in: "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nnext", code: 204, status: "204 No Content", rest: "next"},
		{name: "long body kept in part", in: "HTTP/1.1 500 Oops\r\nContent-Length: " + "4106" + "\r\n\r\n" + long + "next",
			code: 500, status: "500 Oops", body: long[:maxAnswerBody], rest: "next"},
		{name: "long chunked body kept in part", in: "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n100A\r\n" + long + "\r\n0\r\n\r\n",
			code: 500, status: "500 Oops", body: long[:maxAnswerBody]},

		{name: "HTTP/2", in: "HTTP/2.0 200 OK\r\n\r\n", errLike: "status line"},
		{name: "bad code", in: "HTTP/1.1 2x0 OK\r\n\r\n", errLike: "status line"},
		{name: "code too long", in: "HTTP/1.1 2000 OK\r\n\r\n", errLike: "status line"},
		{name: "folded", in: "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", errLike: "header line"},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", errLike: "Content-Length"},
		{name: "signed length", in: "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", errLike: "Content-Length"},
		{name: "gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", errLike: "Transfer-Encoding"},
		{name: "trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\r\n", errLike: "trailers"},
		{name: "101", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", errLike: "101"},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nid", errLike: io.ErrUnexpectedEOF.Error()},
		{name: "no head end", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", errLike: io.ErrUnexpectedEOF.Error()},
		{name: "line too long", in: "HTTP/1.1 200 OK\r\nX: " + long + "\r\n\r\n", errLike: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.in), 4<<10)
			a, err := readAnswer(br, nil)
			if tt.errLike != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errLike) {
					t.Fatalf("error %v, want one containing %q", err, tt.errLike)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.code != tt.code || a.status != tt.status || string(a.body) != tt.body || a.close != tt.close {
				t.Errorf("got code %d status %q body %q close %v, want %d %q %q %v",
					a.code, a.status, truncate(a.body), a.close, tt.code, tt.status, truncate([]byte(tt.body)), tt.close)
			}
			if rest, _ := io.ReadAll(br); string(rest) != tt.rest {
				t.Errorf("left %q, want %q", rest, tt.rest)
			}
		})
	}
}

// TestReadAnswerAllocs checks that reading the hub's usual answer does not
// allocate once the body buffer has grown.
func TestReadAnswerAllocs(t *testing.T) {
	in := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: Sat, 21 Nov 2026 07:49:30 GMT\r\nContent-Length: 45\r\n\r\nurn:uuid:019aa5c4-9c2e-7d3a-8a1b-2c3d4e5f6a7b")
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 4<<10)
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(in)
		br.Reset(r)
		a, err := readAnswer(br, buf)
		if err != nil || a.code != 200 {
			t.Fatal(a, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per answer, want 0", allocs)
	}
}

// FuzzReadAnswer checks readAnswer against net/http: whatever answer it
// reads, http.ReadResponse reads with the same status, body (as far as
// kept) and connection reuse, ending at the same byte.
func FuzzReadAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nidHTTP/1.1"))
	f.Add([]byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 3\r\n\r\nno\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nx"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200\nContent-Length:0\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ours := newCountingReader(in)
		a, err := readAnswer(ours.br, nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("error without a message: %#v", err)
			}
			return
		}
		theirs := newCountingReader(in)
		var resp *http.Response
		for {
			resp, err = http.ReadResponse(theirs.br, nil)
			if err != nil {
				t.Fatalf("readAnswer read %d %q, net/http fails: %v", a.code, a.body, err)
			}
			if resp.StatusCode >= 200 {
				break
			}
			resp.Body.Close()
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("readAnswer read body %q, net/http fails: %v", a.body, err)
		}
		if resp.StatusCode != a.code || a.code != 200 && resp.Status != a.status {
			t.Fatalf("status %d %q, net/http %d %q", a.code, a.status, resp.StatusCode, resp.Status)
		}
		if want := body[:min(len(body), maxAnswerBody)]; !bytes.Equal(a.body, want) {
			t.Fatalf("body %q, net/http %q", a.body, want)
		}
		if resp.Close != a.close {
			t.Fatalf("close %v, net/http %v", a.close, resp.Close)
		}
		if o, th := ours.consumed(), theirs.consumed(); o != th {
			t.Fatalf("read %d bytes, net/http %d", o, th)
		}
	})
}

// countingReader is a bufio.Reader over a byte slice that knows how much
// of it its reader consumed.
type countingReader struct {
	r  *bytes.Reader
	br *bufio.Reader
	n  int
}

func newCountingReader(in []byte) *countingReader {
	r := bytes.NewReader(in)
	return &countingReader{r: r, br: bufio.NewReaderSize(r, 4<<10), n: len(in)}
}

func (c *countingReader) consumed() int { return c.n - c.r.Len() - c.br.Buffered() }
