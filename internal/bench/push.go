package bench

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"time"
)

// The push parser takes a response body in whatever pieces read(2) gives
// it: it undoes the chunked transfer coding (or counts a body of known
// length), splits the data into lines, LF or CRLF, a line possibly spread
// over many reads, and hands each line to line, as the pull reader does.
// Its state lives in the subscriber between reads; the read loop
// (loop_linux.go) calls it.
//
// It accepts the chunked coding the pull reader's net/http chunk reader
// accepts, so that the two deliver the same events from the same bytes:
// a chunk-size line is hex digits (at most 16), optional spaces or tabs
// or an extension after ';', and CRLF, all within the read buffer, as the
// pull reader reads it there; the data ends with CRLF; the size-0 chunk
// ends the stream (trailers are not read); and chunks whose framing
// outweighs their data by more than 16 KiB are refused.

// bodyState is the push parser's place in a response body.
type bodyState struct {
	state     uint8
	chunked   bool
	unbounded bool   // a body that lasts until the connection ends
	left      uint64 // data bytes left in the chunk, or in a body of known length
	size      uint64 // the chunk size being read
	digits    int    // hex digits in it
	lineLen   int    // bytes of the chunk-size line so far
	excess    int64  // framing beyond what the data pays for, as net/http counts it
}

// The states of a body: in data, or in the framing around chunks.
const (
	bodyData    = iota // in chunk data, or a body that is not chunked
	chunkSize          // in the hex digits of a chunk-size line
	chunkOWS           // in spaces or tabs after them
	chunkExt           // in a chunk extension
	chunkLF            // after the chunk-size line's CR
	chunkDataCR        // after a chunk's data
	chunkDataLF        // after its CR
)

// maxChunkExcess is net/http's bound on chunk framing beyond 16 bytes and
// twice the data per chunk.
const maxChunkExcess = 16 << 10

var (
	errChunked      = errors.New("malformed chunked encoding")
	errChunkLine    = errors.New("chunk-size line too long")
	errChunkExcess  = errors.New("chunked encoding contains too much non-data")
	errChunkTooLong = errors.New("http chunk length too large")
)

// beginBody readies the push parser for a new response body: chunked, or
// of length bytes, or (length < 0) until the connection ends. It returns
// errEnded for a body known to be empty.
func (s *subscriber) beginBody(chunked bool, length int64) error {
	s.ev = eventState{}
	s.long = s.long[:0]
	s.body = bodyState{}
	switch {
	case chunked:
		s.body.state, s.body.chunked = chunkSize, true
	case length < 0:
		s.body.unbounded = true
	case length == 0:
		return errEnded
	default:
		s.body.left = uint64(length)
	}
	return nil
}

// startPush readies the push parser for the body of resp, whose head was
// read through br, and parses what br holds of the body already.
func (s *subscriber) startPush(br *bufio.Reader, resp *http.Response) error {
	if err := s.beginBody(len(resp.TransferEncoding) > 0, resp.ContentLength); err != nil {
		return err
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		s.now = time.Now()
		return s.push(b)
	}
	return nil
}

// push parses b, the next bytes of the body. It returns errEnded when the
// body is complete, or an error when its chunked coding is malformed; the
// bytes after that are not looked at.
func (s *subscriber) push(b []byte) error {
	c := &s.body
	for len(b) > 0 {
		if c.state != bodyData {
			err := c.frame(b[0])
			b = b[1:]
			if err != nil {
				return err
			}
			continue
		}
		if c.unbounded {
			s.lines(b)
			return nil
		}
		n := len(b)
		if uint64(n) > c.left {
			n = int(c.left)
		}
		s.lines(b[:n])
		b = b[n:]
		c.left -= uint64(n)
		if c.left == 0 {
			if !c.chunked {
				return errEnded
			}
			c.state = chunkDataCR
		}
	}
	return nil
}

// frame reads one byte of the framing around chunks.
func (c *bodyState) frame(ch byte) error {
	switch c.state {
	case chunkSize, chunkOWS, chunkExt:
		// The line, with its LF, must fit in the read buffer.
		if c.lineLen++; c.lineLen >= readBuffer {
			return errChunkLine
		}
		switch {
		case ch == '\r':
			c.state = chunkLF
		case c.state == chunkExt:
			if ch == '\n' {
				return errChunked
			}
		case ch == ' ' || ch == '\t':
			c.state = chunkOWS
		case ch == ';' && c.state == chunkSize:
			c.state = chunkExt
		case c.state == chunkSize:
			d, ok := unhex(ch)
			if !ok {
				return errChunked
			}
			if c.digits++; c.digits > 16 {
				return errChunkTooLong
			}
			c.size = c.size<<4 | uint64(d)
		default:
			return errChunked
		}
	case chunkLF:
		if ch != '\n' || c.digits == 0 {
			return errChunked
		}
		c.excess += int64(c.lineLen) + 1
		if c.size == 0 {
			return errEnded
		}
		c.excess = max(c.excess-(16+2*int64(c.size)), 0)
		if c.excess > maxChunkExcess {
			return errChunkExcess
		}
		c.state, c.left = bodyData, c.size
	case chunkDataCR:
		if ch != '\r' {
			return errChunked
		}
		c.state = chunkDataLF
	case chunkDataLF:
		if ch != '\n' {
			return errChunked
		}
		*c = bodyState{state: chunkSize, chunked: true, excess: c.excess}
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// lines splits data into lines for line, keeping an unfinished one in
// s.long for the next call.
func (s *subscriber) lines(data []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.long = append(s.long, data...)
			return
		}
		if len(s.long) > 0 {
			s.long = append(s.long, data[:i]...)
			s.line(s.long)
			s.long = s.long[:0]
		} else {
			s.line(data[:i])
		}
		data = data[i+1:]
	}
}
