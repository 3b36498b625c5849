package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The push parser must make of any bytes what the pull reader makes of
// them: these tests give both the same HTTP responses, the push parser in
// pieces as read(2) might return them, and compare what they counted.

// parsed is what a reader made of a stream.
type parsed struct {
	delivered, foreign, other, latencies uint64
	trk                                  tracker
	lastID                               string
}

func (p parsed) String() string {
	return fmt.Sprintf("delivered %d foreign %d other %d latencies %d distinct %d dups %d hi %d last ID %q",
		p.delivered, p.foreign, p.other, p.latencies, p.trk.distinct, p.trk.dups, p.trk.hi, p.lastID)
}

func parsedOf(s *subscriber) parsed {
	w := s.w
	p := parsed{
		delivered: w.delivered.Load(), foreign: w.foreign.Load(), other: w.other.Load(),
		trk: s.trk[0], lastID: string(s.lastID),
	}
	for i := range w.latency.counts {
		p.latencies += w.latency.counts[i].Load()
	}
	return p
}

const (
	chunkedHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	plainHead   = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
)

// pullParse reads the response raw as a session without a read loop
// does.
func pullParse(raw []byte) (parsed, error) {
	s := newTestSubscriber()
	br := bufio.NewReaderSize(bytes.NewReader(raw), readBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return parsed{}, err
	}
	err = s.read(bufio.NewReaderSize(resp.Body, readBuffer))
	return parsedOf(s), err
}

// pushParse reads the response in pieces as a session with a read loop
// does: the head through a bufio.Reader, then each piece as one read.
// The end of the pieces is the end of the connection.
func pushParse(pieces [][]byte) (parsed, error) {
	s := newTestSubscriber()
	r := &piecesReader{pieces: pieces}
	br := bufio.NewReaderSize(r, readBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return parsed{}, err
	}
	if err := s.startPush(br, resp); err != nil {
		return parsedOf(s), err
	}
	for _, p := range r.pieces {
		s.now = time.Now()
		if err := s.push(p); err != nil {
			return parsedOf(s), err
		}
	}
	return parsedOf(s), errEnded
}

// piecesReader returns its pieces one Read at a time, as a socket
// returns what has arrived.
type piecesReader struct{ pieces [][]byte }

func (r *piecesReader) Read(b []byte) (int, error) {
	if len(r.pieces) == 0 {
		return 0, errors.New("read past the pieces")
	}
	n := copy(b, r.pieces[0])
	if r.pieces[0] = r.pieces[0][n:]; len(r.pieces[0]) == 0 {
		r.pieces = r.pieces[1:]
	}
	return n, nil
}

// whole, bytewise and randomPieces split raw for pushParse.
func whole(raw []byte) [][]byte { return [][]byte{raw} }

func bytewise(raw []byte) [][]byte {
	var pieces [][]byte
	for i := range raw {
		pieces = append(pieces, raw[i:i+1])
	}
	return pieces
}

func randomPieces(raw []byte, rng *rand.Rand) [][]byte {
	var pieces [][]byte
	for len(raw) > 0 {
		n := 1 + rng.IntN(8)
		if rng.IntN(2) == 0 {
			n = 1 + rng.IntN(2*readBuffer)
		}
		n = min(n, len(raw))
		pieces = append(pieces, raw[:n])
		raw = raw[n:]
	}
	return pieces
}

// chunked encodes body in chunks of the sizes size returns, each size
// line written by sizeLine, then the last chunk.
func chunked(body []byte, size func() int, sizeLine func(n int) string) []byte {
	var b bytes.Buffer
	for len(body) > 0 {
		n := min(max(size(), 1), len(body))
		b.WriteString(sizeLine(n))
		b.Write(body[:n])
		b.WriteString("\r\n")
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

func plainSize(n int) string { return fmt.Sprintf("%x\r\n", n) }

// testBody is a stream with every case the parser tells apart.
func testBody() string {
	return string(stream(5)) +
		"event: ssehub.gap\ndata: {}\n\n" + // typed: not a benchmark event
		"event: message\ndata: sb1.0.6.1.\n\n" + // the default type
		"data: hello\n\n" + // foreign
		"data\n\n" + // a field without a colon: empty data, foreign
		"id: last\r\ndata:sb1.0.7.1.\r\n\r\n" + // CRLF, no space after the colon
		"data: sb1.0.8.1.\r\r\n\n" + // a lone CR is no line end
		": a comment\ndata: sb1.0.9.1.\ndata: second line\n\n" +
		"data: sb1.0.10.1." + strings.Repeat("x", 3*readBuffer) + "\n\n" + // longer than the buffer
		"id: only an id\n\n" +
		"data: sb1.0.10.1.\n\n" + // a duplicate
		"data: sb1.0.11.1." // unfinished when the stream ends
}

func TestPushParserMatchesPullReader(t *testing.T) {
	t.Parallel()
	body := []byte(testBody())
	rng := rand.New(rand.NewPCG(1, 2))
	encodings := []struct {
		name string
		raw  []byte
	}{
		{"chunks of 1", []byte(chunkedHead + string(chunked(body, func() int { return 1 }, plainSize)))},
		{"chunks of 3", []byte(chunkedHead + string(chunked(body, func() int { return 3 }, plainSize)))},
		{"chunks of 100", []byte(chunkedHead + string(chunked(body, func() int { return 100 }, plainSize)))},
		{"one chunk", []byte(chunkedHead + string(chunked(body, func() int { return len(body) }, plainSize)))},
		{"random chunks", []byte(chunkedHead + string(chunked(body, func() int { return 1 + rng.IntN(300) }, plainSize)))},
		{"size lines with extensions, padding and spaces", []byte(chunkedHead + string(chunked(body,
			func() int { return 1 + rng.IntN(50) },
			func(n int) string {
				return fmt.Sprintf([...]string{"%x;ext=1\r\n", "%X\r\n", "000%x\r\n", "%x \t\r\n", "%x;a;b=\"c d\" \r\n"}[n%5], n)
			}))),
		},
		{"content length", []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n%s", len(body)-5, body))},
		{"until the connection ends", []byte(plainHead + string(body))},
	}
	for _, enc := range encodings {
		want, werr := pullParse(enc.raw)
		if !errors.Is(werr, errEnded) {
			t.Fatalf("%s: pull reader: %v; want the end of the stream", enc.name, werr)
		}
		if want.delivered != 11 || want.trk.distinct != 10 || want.trk.dups != 1 || want.other != 1 ||
			want.foreign != 2 || want.lastID != "only an id" {
			t.Errorf("%s: pull reader: %v; want 11 delivered, 10 distinct, 1 duplicate, 1 other, 2 foreign, last ID %q",
				enc.name, want, "only an id")
		}
		splits := map[string][][]byte{
			"whole":        whole(enc.raw),
			"byte by byte": bytewise(enc.raw),
		}
		for i := range 20 {
			splits[fmt.Sprintf("random split %d", i)] = randomPieces(enc.raw, rng)
		}
		for name, pieces := range splits {
			got, gerr := pushParse(pieces)
			if got != want || !errors.Is(gerr, errEnded) {
				t.Errorf("%s, %s:\npush parser: %v, %v\npull reader: %v, %v", enc.name, name, got, gerr, want, werr)
			}
		}
	}
}

func TestPushParserMalformedChunks(t *testing.T) {
	t.Parallel()
	first := "4a\r\nid: 1\ndata: sb1.0.1.1." + strings.Repeat("x", 50) + "\n\n\r\n" // one good event
	tests := []struct {
		name, chunks string
	}{
		{"bare LF after the size", "5\ndata:\r\n"},
		{"CR inside the size line", "5\r\r\n"},
		{"not hex", "g\r\n"},
		{"no size", "\r\n"},
		{"only an extension", ";x\r\n"},
		{"space before the size", " 5\r\n"},
		{"space before the extension", "5 ;x\r\n"},
		{"bare LF in the extension", "5;x\n"},
		{"17 digits", "00000000000000005\r\ndata:\r\n"},
		{"no CRLF after the data", "5\r\ndata:XY"},
		{"LF alone after the data", "5\r\ndata:\n0\r\n\r\n"},
		{"size line longer than the buffer", "5;" + strings.Repeat("x", readBuffer-3) + "\r\ndata:\r\n"},
		{"too much framing", strings.Repeat("1;"+strings.Repeat("x", 100)+"\r\n:\r\n", 300)},
	}
	for _, tt := range tests {
		raw := []byte(chunkedHead + first + tt.chunks + "a\r\ndata: x\n\n\r\n0\r\n\r\n")
		want, werr := pullParse(raw)
		if werr == nil || errors.Is(werr, errEnded) || want.delivered != 1 {
			t.Errorf("%s: pull reader: %v, %v; want 1 delivered and a malformed stream", tt.name, want, werr)
		}
		for _, pieces := range [][][]byte{whole(raw), bytewise(raw)} {
			got, gerr := pushParse(pieces)
			if got != want || gerr == nil || errors.Is(gerr, errEnded) {
				t.Errorf("%s:\npush parser: %v, %v\npull reader: %v, %v", tt.name, got, gerr, want, werr)
			}
		}
	}
	// Up to 16 digits, and a line that just fits, are fine.
	for _, chunks := range []string{
		"0000000000000005\r\ndata:\r\n",
		"5;" + strings.Repeat("x", readBuffer-4) + "\r\ndata:\r\n",
	} {
		raw := []byte(chunkedHead + first + chunks + "0\r\n\r\n")
		for _, pieces := range [][][]byte{whole(raw), bytewise(raw)} {
			if got, err := pushParse(pieces); got.delivered != 1 || !errors.Is(err, errEnded) {
				t.Errorf("%.30q: push parser: %v, %v; want 1 delivered and the end of the stream", chunks, got, err)
			}
		}
		if got, err := pullParse(raw); got.delivered != 1 || !errors.Is(err, errEnded) {
			t.Errorf("%.30q: pull reader: %v, %v; want 1 delivered and the end of the stream", chunks, got, err)
		}
	}
}

// FuzzPushParser compares the push parser with the pull reader on
// arbitrary bodies: raw (mostly malformed) chunked coding, arbitrary data
// in valid chunks, or a body that is not chunked, in arbitrary pieces.
func FuzzPushParser(f *testing.F) {
	// Short seeds: the fuzzer shrinks every input it finds interesting,
	// which takes long for long ones.
	body := "id: 1\ndata: sb1.0.1.1.x\n\n: c\r\nevent: x\ndata: y\n\ndata:sb1.0.1.1.\r\n\r\nid\n\ndata\n\ndata: sb1.0.2.1."
	f.Add([]byte(body), uint8(1), uint64(1))
	f.Add([]byte(body), uint8(2), uint64(2))
	f.Add(chunked([]byte(body), func() int { return 7 }, plainSize), uint8(0), uint64(3))
	f.Add([]byte("5;x\r\ndata:\r\n3\r\n\n\n\r\n0\r\n\r\n"), uint8(0), uint64(4))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		var raw []byte
		switch mode % 3 {
		case 0:
			raw = append([]byte(chunkedHead), body...)
		case 1:
			raw = append([]byte(chunkedHead), chunked(body, func() int { return 1 + rng.IntN(2*readBuffer) }, plainSize)...)
		case 2:
			raw = append([]byte(plainHead), body...)
		}
		want, werr := pullParse(raw)
		got, gerr := pushParse(randomPieces(raw, rng))
		if got != want {
			t.Fatalf("push parser: %v, %v\npull reader: %v, %v", got, gerr, want, werr)
		}
		// Raw chunked coding may end in trailers, which only the pull
		// reader reads: it ends differently, with the same events.
		if mode%3 != 0 && errors.Is(gerr, errEnded) != errors.Is(werr, errEnded) {
			t.Fatalf("push parser ends with %v, pull reader with %v", gerr, werr)
		}
	})
}

// BenchmarkPushParser is BenchmarkSubscriberRead for the push parser: the
// same events, each in its own chunk and its own read as the hub sends
// them one at a time, with a clock reading per read as the read loop
// takes.
func BenchmarkPushParser(b *testing.B) {
	const n = 1000
	var pieces [][]byte
	size := 0
	for _, ev := range bytes.SplitAfter(stream(n), []byte("\n\n")) {
		if len(ev) > 0 {
			pieces = append(pieces, []byte(plainSize(len(ev))+string(ev)+"\r\n"))
			size += len(pieces[len(pieces)-1])
		}
	}
	s := newTestSubscriber()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		s.trk[0] = tracker{}
		if err := s.beginBody(true, -1); err != nil {
			b.Fatal(err)
		}
		for _, p := range pieces {
			s.now = time.Now()
			if err := s.push(p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
