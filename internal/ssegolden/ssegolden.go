// Package ssegolden reads the golden files of the event-stream decoder
// (sse/testdata/decode, described in its README.md), for the tests that run
// them: the sse package's own, and the browser's parser in
// internal/browsertest. It uses the standard library only.
//
// A file holds, in order:
//
//   - comment lines starting with '#', and blank lines, anywhere before "----";
//   - options: "option max-event-size N", "option last-event-id <quoted>",
//     "option comments off" (comments are not reported);
//   - the stream, one read per line. A line is one or more Go-quoted
//     strings joined by '+', each optionally repeated with "* N", so NUL,
//     CR, BOM and invalid bytes are unambiguous. A line "reconnect" ends
//     the connection and starts a new one;
//   - a line "----";
//   - the expected output, one line per item.
package ssegolden

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Vector is one golden file.
type Vector struct {
	// Name is the file's name without ".txt".
	Name string
	// Head is the file up to and including the "----" line; Want is the
	// rest, the expected output.
	Head, Want string
	// MaxEventSize is the "max-event-size" option, or 0.
	MaxEventSize int
	// LastEventID is the "last-event-id" option, or nil.
	LastEventID *string
	// NoComments is set by "option comments off".
	NoComments bool
	// Conns are the connections of the stream, each a list of reads.
	Conns [][][]byte
}

// ReadDir reads every *.txt golden file of dir, in name order.
func ReadDir(dir string) ([]*Vector, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no golden files in %s", dir)
	}
	var vs []*Vector
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		v, err := Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		v.Name = strings.TrimSuffix(filepath.Base(file), ".txt")
		vs = append(vs, v)
	}
	return vs, nil
}

// Parse reads one golden file's text.
func Parse(text string) (*Vector, error) {
	head, want, ok := strings.Cut(text, "\n----\n")
	if !ok {
		return nil, errors.New(`missing "----" line`)
	}
	v := &Vector{Head: head + "\n----\n", Want: want, Conns: [][][]byte{nil}}
	for n, line := range strings.Split(head, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "reconnect":
			v.Conns = append(v.Conns, nil)
		case strings.HasPrefix(line, "option "):
			if err := v.option(strings.TrimPrefix(line, "option ")); err != nil {
				return nil, fmt.Errorf("line %d: %v", n+1, err)
			}
		default:
			chunk, err := parseChunk(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", n+1, err)
			}
			last := len(v.Conns) - 1
			v.Conns[last] = append(v.Conns[last], chunk)
		}
	}
	return v, nil
}

func (v *Vector) option(s string) error {
	name, arg, _ := strings.Cut(s, " ")
	switch name {
	case "max-event-size":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		v.MaxEventSize = n
	case "last-event-id":
		id, err := strconv.Unquote(arg)
		if err != nil {
			return err
		}
		v.LastEventID = &id
	case "comments":
		v.NoComments = arg == "off"
	default:
		return fmt.Errorf("unknown option %q", name)
	}
	return nil
}

// parseChunk parses one read: `"a" + "b" * 3`.
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

// Quote writes s as the expected output does: Go-quoted, or its length and
// hash when longer than 256 bytes.
func Quote(s string) string {
	if len(s) <= 256 {
		return strconv.Quote(s)
	}
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("<%d bytes, sha256 %x>", len(s), sum[:8])
}
