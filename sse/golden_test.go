package sse

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ssehub/ssehub/internal/ssegolden"
)

var update = flag.Bool("update", false, "rewrite the expected output of the golden files in testdata/decode")

// vector is one golden file of testdata/decode (see package
// internal/ssegolden for its format).
type vector = ssegolden.Vector

func readVectors(t testing.TB) []*vector {
	t.Helper()
	vs, err := ssegolden.ReadDir(filepath.Join("testdata", "decode"))
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// quote writes s as the golden files do.
func quote(s string) string { return ssegolden.Quote(s) }

// size returns the stream's length in bytes.
func size(v *vector) int {
	n := 0
	for _, conn := range v.Conns {
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
	d.SetMaxEventSize(v.MaxEventSize)
	if v.LastEventID != nil {
		d.SetLastEventID(*v.LastEventID)
	}
	if !v.NoComments {
		d.OnComment = func(s string) { fmt.Fprintf(&out, "comment %s\n", quote(s)) }
	}
	for i, conn := range v.Conns {
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
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			got := runVector(v, chunkings[0].reader)
			if *update {
				if got != v.Want {
					path := filepath.Join("testdata", "decode", v.Name+".txt")
					if err := os.WriteFile(path, []byte(v.Head+got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			} else if got != v.Want {
				t.Errorf("as-written: got\n%s\nwant\n%s", got, v.Want)
			}
			for _, c := range chunkings[1:] {
				if size(v) > 1<<20 && c.name != "whole" && c.name != "one-byte" && c.name != "half" {
					continue // small reads of huge streams are slow under -race
				}
				if other := runVector(v, c.reader); other != got {
					t.Errorf("%s: got\n%s\nwant (as written)\n%s", c.name, other, got)
				}
			}
			// The oracle agrees too, unless the vector tests the size cap.
			if v.MaxEventSize == 0 {
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
	if v.LastEventID != nil {
		id = *v.LastEventID
	}
	var retry *refRetry
	for i, conn := range v.Conns {
		if i > 0 {
			out.WriteString("reconnect\n")
		}
		r := refDecode(bytes.Join(conn, nil), id, !v.NoComments)
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
