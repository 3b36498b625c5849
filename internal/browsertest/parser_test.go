package browsertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestParserGolden runs the web UI's JavaScript event-stream parser over
// the decoder's golden vectors (sse/testdata/decode, the WHATWG,
// web-platform-tests and sse-contract-tests cases) in Node, fed as written,
// whole and one byte per read, and compares what it reports with the
// expected output of each vector. Vectors about the Go decoder's size cap,
// which a browser does not have, are left out.
func TestParserGolden(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "sse", "testdata", "decode", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden vectors: %v", err)
	}
	type jsCase struct {
		Name        string     `json:"name"`
		LastEventID string     `json:"lastEventId"`
		Comments    bool       `json:"comments"`
		Conns       [][]string `json:"conns"`
	}
	var cases []jsCase
	want := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseVector(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if v.maxSize {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		size := 0
		for _, conn := range v.conns {
			for _, c := range conn {
				size += len(c)
			}
		}
		chunkings := map[string]func([]byte) [][]byte{
			"as-written": nil,
			"whole":      func(b []byte) [][]byte { return [][]byte{b} },
		}
		if size <= 64<<10 {
			chunkings["one-byte"] = func(b []byte) [][]byte {
				out := make([][]byte, len(b))
				for i := range b {
					out[i] = b[i : i+1]
				}
				return out
			}
		}
		for cname, split := range chunkings {
			c := jsCase{Name: name + "/" + cname, LastEventID: v.lastID, Comments: v.comments}
			for _, conn := range v.conns {
				reads := conn
				if split != nil {
					reads = split(bytes.Join(conn, nil))
				}
				enc := make([]string, len(reads))
				for i, r := range reads {
					enc[i] = base64.StdEncoding.EncodeToString(r)
				}
				c.Conns = append(c.Conns, enc)
			}
			cases = append(cases, c)
			want[c.Name] = v.want
		}
	}
	if len(cases) < 100 {
		t.Fatalf("only %d cases; the vectors were not read", len(cases))
	}

	// The parser module, copied so that Node loads it as an ES module.
	src, err := os.ReadFile(filepath.Join("..", "webui", "static", "js", "sse.js"))
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(t.TempDir(), "sse.mjs")
	if err := os.WriteFile(mod, src, 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "parser.mjs")
	cmd.Env = append(os.Environ(), "SSEHUB_PARSER=file://"+mod)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node parser.mjs: %v\n%s", err, stderr.String())
	}
	var results []struct {
		Name  string `json:"name"`
		Retry *int64 `json:"retry"`
		Items []struct {
			Kind, Type, ID, Data, Text string
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatal(err)
	}
	if len(results) != len(cases) {
		t.Fatalf("%d results for %d cases", len(results), len(cases))
	}
	for _, r := range results {
		var got strings.Builder
		for _, it := range r.Items {
			switch it.Kind {
			case "event":
				fmt.Fprintf(&got, "event type=%s id=%s data=%s\n", quote(it.Type), quote(it.ID), quote(it.Data))
			case "comment":
				fmt.Fprintf(&got, "comment %s\n", quote(it.Text))
			case "last-event-id":
				fmt.Fprintf(&got, "last-event-id %s\n", quote(it.ID))
			default:
				got.WriteString(it.Kind + "\n")
			}
		}
		if r.Retry != nil {
			fmt.Fprintf(&got, "retry %v\n", time.Duration(*r.Retry)*time.Millisecond)
		} else {
			got.WriteString("retry none\n")
		}
		if got.String() != want[r.Name] {
			t.Errorf("%s: the JavaScript parser reported\n%s\nwant\n%s", r.Name, got.String(), want[r.Name])
		}
	}
}

// vector is one golden file of sse/testdata/decode; see its README.md.
type vector struct {
	want     string
	maxSize  bool
	lastID   string
	comments bool
	conns    [][][]byte
}

func parseVector(text string) (*vector, error) {
	head, want, ok := strings.Cut(text, "\n----\n")
	if !ok {
		return nil, fmt.Errorf(`missing "----" line`)
	}
	v := &vector{want: want, comments: true, conns: [][][]byte{nil}}
	for n, line := range strings.Split(head, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "reconnect":
			v.conns = append(v.conns, nil)
		case strings.HasPrefix(line, "option "):
			name, arg, _ := strings.Cut(strings.TrimPrefix(line, "option "), " ")
			switch name {
			case "max-event-size":
				v.maxSize = true
			case "last-event-id":
				id, err := strconv.Unquote(arg)
				if err != nil {
					return nil, fmt.Errorf("line %d: %v", n+1, err)
				}
				v.lastID = id
			case "comments":
				v.comments = arg != "off"
			default:
				return nil, fmt.Errorf("line %d: unknown option %q", n+1, name)
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

// quote writes s as the golden files do: Go-quoted, or its length and hash
// when longer than 256 bytes.
func quote(s string) string {
	if len(s) <= 256 {
		return strconv.Quote(s)
	}
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("<%d bytes, sha256 %x>", len(s), sum[:8])
}
