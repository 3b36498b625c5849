package sse

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite the expected output of the golden files in testdata/decode")

// A vector is one golden file of testdata/decode. The file holds, in order:
//
//   - comment lines starting with '#', and blank lines, anywhere before "----";
//   - options: "option max-event-size N", "option last-event-id <quoted>",
//     "option comments off" (OnComment stays nil);
//   - the stream, one read per line. A line is one or more Go-quoted
//     strings joined by '+', each optionally repeated with "* N", so NUL,
//     CR, BOM and invalid bytes are unambiguous. A line "reconnect" ends
//     the connection (the decoder sees EOF) and starts a new one with
//     Decoder.Reset;
//   - a line "----";
//   - the expected output, one line per item, as written by runVector.
type vector struct {
	name       string
	head       string // the file up to and including the "----" line
	want       string // the file after the "----" line
	maxSize    int
	lastID     *string
	noComments bool
	conns      [][][]byte // connections, each a list of reads
}

func readVectors(t testing.TB) []*vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "decode", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata/decode")
	}
	var vs []*vector
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseVector(string(b))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		v.name = strings.TrimSuffix(filepath.Base(file), ".txt")
		vs = append(vs, v)
	}
	return vs
}

func parseVector(text string) (*vector, error) {
	head, want, ok := strings.Cut(text, "\n----\n")
	if !ok {
		return nil, errors.New(`missing "----" line`)
	}
	v := &vector{head: head + "\n----\n", want: want, conns: [][][]byte{nil}}
	for n, line := range strings.Split(head, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "reconnect":
			v.conns = append(v.conns, nil)
		case strings.HasPrefix(line, "option "):
			if err := v.option(strings.TrimPrefix(line, "option ")); err != nil {
				return nil, fmt.Errorf("line %d: %v", n+1, err)
			}
		default:
			chunk, err := parseChunk(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", n+1, err)
			}
			last := len(v.conns) - 1
			v.conns[last] = append(v.conns[last], chunk)
		}
	}
	return v, nil
}

func (v *vector) option(s string) error {
	name, arg, _ := strings.Cut(s, " ")
	switch name {
	case "max-event-size":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		v.maxSize = n
	case "last-event-id":
		id, err := strconv.Unquote(arg)
		if err != nil {
			return err
		}
		v.lastID = &id
	case "comments":
		v.noComments = arg == "off"
	default:
		return fmt.Errorf("unknown option %q", name)
	}
	return nil
}

// parseChunk parses `"a" + "b" * 3`.
func parseChunk(line string) ([]byte, error) {
	var out []byte
	for {
		q, err := strconv.QuotedPrefix(line)
		if err != nil {
			return nil, fmt.Errorf("want a quoted string in %q", line)
		}
		s, _ := strconv.Unquote(q)
		line = strings.TrimSpace(line[len(q):])
		n := 1
		if rest, ok := strings.CutPrefix(line, "*"); ok {
			rest = strings.TrimSpace(rest)
			i := 0
			for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
				i++
			}
			if n, err = strconv.Atoi(rest[:i]); err != nil {
				return nil, fmt.Errorf("bad repeat count in %q", line)
			}
			line = strings.TrimSpace(rest[i:])
		}
		out = append(out, strings.Repeat(s, n)...)
		if line == "" {
			return out, nil
		}
		rest, ok := strings.CutPrefix(line, "+")
		if !ok {
			return nil, fmt.Errorf("want + or end of line at %q", line)
		}
		line = strings.TrimSpace(rest)
	}
}

// quote writes s as a Go string, or as its length and hash when it is too
// long to read.
func quote(s string) string {
	if len(s) <= 256 {
		return strconv.Quote(s)
	}
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("<%d bytes, sha256 %x>", len(s), sum[:8])
}

// size returns the total length of v's streams.
func (v *vector) size() int {
	n := 0
	for _, conn := range v.conns {
		for _, c := range conn {
			n += len(c)
		}
	}
	return n
}

// runVector decodes v's connections, each read through split, and returns
// what the decoder reported.
func runVector(v *vector, split func([][]byte) io.Reader) string {
	var out strings.Builder
	d := NewDecoder(nil)
	d.SetMaxEventSize(v.maxSize)
	if v.lastID != nil {
		d.SetLastEventID(*v.lastID)
	}
	if !v.noComments {
		d.OnComment = func(s string) { fmt.Fprintf(&out, "comment %s\n", quote(s)) }
	}
	for i, conn := range v.conns {
		if i > 0 {
			out.WriteString("reconnect\n")
		}
		d.Reset(split(conn))
		for {
			ev, err := d.Decode()
			if err == io.EOF {
				out.WriteString("eof\n")
				break
			}
			if err != nil {
				fmt.Fprintf(&out, "error %q\n", err.Error())
				break
			}
			fmt.Fprintf(&out, "event type=%s id=%s data=%s\n", quote(ev.Type), quote(ev.ID), quote(ev.Data))
		}
		fmt.Fprintf(&out, "last-event-id %s\n", quote(d.LastEventID()))
	}
	if r, ok := d.Retry(); ok {
		fmt.Fprintf(&out, "retry %v\n", r)
	} else {
		out.WriteString("retry none\n")
	}
	return out.String()
}

// chunkReader returns one chunk per Read.
type chunkReader struct{ chunks [][]byte }

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.chunks) > 0 && len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	return n, nil
}

// fixedReader returns at most n bytes per Read.
type fixedReader struct {
	b []byte
	n int
}

func (r *fixedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// chunkings are the ways every golden stream is fed to the decoder; all
// must give the same output.
var chunkings = []struct {
	name   string
	reader func([][]byte) io.Reader
}{
	{"as-written", func(c [][]byte) io.Reader {
		return &chunkReader{chunks: append([][]byte(nil), c...)}
	}},
	{"whole", func(c [][]byte) io.Reader { return bytes.NewReader(bytes.Join(c, nil)) }},
	{"one-byte", func(c [][]byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(bytes.Join(c, nil))) }},
	{"half", func(c [][]byte) io.Reader { return iotest.HalfReader(bytes.NewReader(bytes.Join(c, nil))) }},
	{"data-err", func(c [][]byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(bytes.Join(c, nil))) }},
	{"fixed-2", func(c [][]byte) io.Reader { return &fixedReader{bytes.Join(c, nil), 2} }},
	{"fixed-3", func(c [][]byte) io.Reader { return &fixedReader{bytes.Join(c, nil), 3} }},
	{"fixed-7", func(c [][]byte) io.Reader { return &fixedReader{bytes.Join(c, nil), 7} }},
}

// TestDecodeGolden feeds every stream in testdata/decode to a Decoder in
// every chunking and compares the output with the file. With -update it
// rewrites the expected output instead.
func TestDecodeGolden(t *testing.T) {
	for _, v := range readVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			got := runVector(v, chunkings[0].reader)
			if *update {
				if got != v.want {
					path := filepath.Join("testdata", "decode", v.name+".txt")
					if err := os.WriteFile(path, []byte(v.head+got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			} else if got != v.want {
				t.Errorf("as-written: got\n%s\nwant\n%s", got, v.want)
			}
			for _, c := range chunkings[1:] {
				if v.size() > 1<<20 && c.name != "whole" && c.name != "one-byte" && c.name != "half" {
					continue // small reads of huge streams are slow under -race
				}
				if other := runVector(v, c.reader); other != got {
					t.Errorf("%s: got\n%s\nwant (as written)\n%s", c.name, other, got)
				}
			}
			// The oracle agrees too, unless the vector tests the size cap.
			if v.maxSize == 0 {
				if ref := refVector(v); ref != got {
					t.Errorf("reference parser: got\n%s\nwant\n%s", ref, got)
				}
			}
		})
	}
}

// refVector is runVector for the reference parser.
func refVector(v *vector) string {
	var out strings.Builder
	id := ""
	if v.lastID != nil {
		id = *v.lastID
	}
	var retry *refRetry
	for i, conn := range v.conns {
		if i > 0 {
			out.WriteString("reconnect\n")
		}
		r := refDecode(bytes.Join(conn, nil), id, !v.noComments)
		for _, item := range r.items {
			out.WriteString(item)
		}
		out.WriteString("eof\n")
		id = r.lastID
		fmt.Fprintf(&out, "last-event-id %s\n", quote(id))
		if r.retry != nil {
			retry = r.retry
		}
	}
	if retry != nil {
		fmt.Fprintf(&out, "retry %v\n", retry.d)
	} else {
		out.WriteString("retry none\n")
	}
	return out.String()
}
