package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http/httputil"
	"slices"
)

// readAnswer reads the hub's HTTP/1.x answer to one publish: what
// http.ReadResponse followed by reading the body does, for the answers a
// hub gives, without allocating. The load tool shares the machine with
// the hub, and net/http's header map and body readers were about a sixth
// of its CPU per publish.
//
// It is stricter than net/http: whatever it accepts, http.ReadResponse
// reads the same way (same status, same body, same end, same connection
// reuse; FuzzReadAnswer checks it), and what it refuses (a protocol other
// than HTTP/1.0 or 1.1, folded or malformed header lines, more than one
// Content-Length, a transfer coding other than chunked, trailers) makes the
// publisher report the error and drop the connection. Informational (1xx)
// answers are skipped, as net/http's client does.

// maxAnswerBody is how much of an answer's body is kept (for an error
// message); the rest is read and dropped.
const maxAnswerBody = 4 << 10

// answer is what a publisher keeps of the hub's answer.
type answer struct {
	code   int
	status string // "503 Service Unavailable": set only when code is not 200
	close  bool   // the hub closes the connection after this answer
	body   []byte // the first maxAnswerBody bytes of the body, in the caller's buffer
}

var errAnswer = errors.New("malformed HTTP answer")

// How a body is delimited, when not by a Content-Length.
const (
	untilClose = -1 // by the end of the connection
	chunkedLen = -2 // by the chunked transfer coding
)

// readAnswer reads one answer from br, keeping the first bytes of its body
// in buf's array (reused: the body is valid until buf is used again).
func readAnswer(br *bufio.Reader, buf []byte) (answer, error) {
	for {
		a, length, err := readAnswerHead(br)
		if err != nil {
			return a, err
		}
		if a.code == 101 {
			return a, fmt.Errorf("%w: unexpected 101 Switching Protocols", errAnswer)
		}
		if a.code >= 200 {
			a.body, err = readAnswerBody(br, length, buf[:0])
			return a, err
		}
	}
}

// readAnswerHead reads the status line and header of an answer. It
// returns the answer without its body and how that body is delimited: a
// length, untilClose or chunkedLen.
func readAnswerHead(br *bufio.Reader) (a answer, length int64, err error) {
	line, err := readAnswerLine(br)
	if err != nil {
		return a, 0, err
	}
	// "HTTP/1.1 200 OK", the reason optional.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[7] != '0' && line[7] != '1' ||
		line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return a, 0, fmt.Errorf("%w: status line %q", errAnswer, truncate(line))
	}
	http10 := line[7] == '0'
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return a, 0, fmt.Errorf("%w: status line %q", errAnswer, truncate(line))
		}
		a.code = a.code*10 + int(c-'0')
	}
	if a.code < 100 {
		return a, 0, fmt.Errorf("%w: status line %q", errAnswer, truncate(line))
	}
	if a.code != 200 {
		a.status = string(line[9:])
	}
	length = untilClose
	var haveLength, chunked, closeConn, keepAlive bool
	for {
		line, err := readAnswerLine(br)
		if err != nil {
			return a, 0, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := headerField(line)
		if !ok {
			return a, 0, fmt.Errorf("%w: header line %q", errAnswer, truncate(line))
		}
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, ok := parseLength(value)
			if !ok || haveLength {
				return a, 0, fmt.Errorf("%w: Content-Length %q", errAnswer, truncate(value))
			}
			length, haveLength = n, true
		case asciiEqualFold(name, "Transfer-Encoding"):
			if chunked || http10 || !asciiEqualFold(value, "chunked") {
				return a, 0, fmt.Errorf("%w: Transfer-Encoding %q", errAnswer, truncate(value))
			}
			chunked = true
		case asciiEqualFold(name, "Connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				closeConn = closeConn || asciiEqualFold(tok, "close")
				keepAlive = keepAlive || asciiEqualFold(tok, "keep-alive")
			}
		}
	}
	switch {
	case a.code < 200 || a.code == 204 || a.code == 304:
		length = 0
	case chunked:
		length = chunkedLen
	}
	a.close = closeConn || http10 && !keepAlive || length == untilClose
	return a, length, nil
}

// readAnswerBody reads a body delimited as length says, appending its first
// maxAnswerBody bytes to buf.
func readAnswerBody(br *bufio.Reader, length int64, buf []byte) ([]byte, error) {
	switch length {
	case untilClose:
		return keepPrefix(br, buf)
	case chunkedLen:
		buf, err := keepPrefix(httputil.NewChunkedReader(br), buf)
		if err != nil {
			return buf, err
		}
		// No trailers: the empty line that ends the (empty) trailer section.
		if b, _ := br.Peek(2); string(b) != "\r\n" {
			return buf, fmt.Errorf("%w: trailers after a chunked body", errAnswer)
		}
		_, err = br.Discard(2)
		return buf, err
	}
	keep := int(min(length, maxAnswerBody))
	buf = slices.Grow(buf, keep)[:keep]
	if _, err := io.ReadFull(br, buf); err != nil {
		return buf[:0], unexpectedEOF(err)
	}
	if _, err := br.Discard(int(length) - keep); err != nil {
		return buf, unexpectedEOF(err)
	}
	return buf, nil
}

// keepPrefix reads r to its end, appending its first maxAnswerBody bytes
// to buf.
func keepPrefix(r io.Reader, buf []byte) ([]byte, error) {
	for len(buf) < maxAnswerBody {
		buf = slices.Grow(buf, maxAnswerBody-len(buf))
		n, err := r.Read(buf[len(buf):maxAnswerBody])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	_, err := io.Copy(io.Discard, r)
	return buf, err
}

// readAnswerLine reads a line of the head, without its CRLF (or LF). A
// line longer than br's buffer is refused.
func readAnswerLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: header line longer than %d bytes", errAnswer, br.Size())
	}
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// headerField splits "Name: value" into its name and its value without
// surrounding spaces and tabs; ok is false for a line that is not a header
// field net/http would read as such.
func headerField(line []byte) (name, value []byte, ok bool) {
	name, value, ok = bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 {
		return nil, nil, false
	}
	for _, c := range name {
		if !isTokenChar(c) {
			return nil, nil, false
		}
	}
	value = bytes.Trim(value, " \t")
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// isTokenChar reports whether c may appear in a header field name (RFC
// 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c < 0x80 && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// parseLength parses a Content-Length value: decimal digits, at most 15
// of them.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// asciiEqualFold reports whether b is s, ignoring ASCII case only (as
// net/http does: no Unicode folding).
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// truncate bounds a quoted piece of an answer in an error message.
func truncate(b []byte) []byte { return b[:min(len(b), 80)] }

// unexpectedEOF turns the end of the connection in the middle of an
// answer into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
