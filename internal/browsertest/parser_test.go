package browsertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/ssegolden"
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
	vectors, err := ssegolden.ReadDir(filepath.Join("..", "..", "sse", "testdata", "decode"))
	if err != nil {
		t.Fatalf("golden vectors: %v", err)
	}
	type jsCase struct {
		Name        string     `json:"name"`
		LastEventID string     `json:"lastEventId"`
		Comments    bool       `json:"comments"`
		Conns       [][]string `json:"conns"`
	}
	var cases []jsCase
	want := map[string]string{}
	for _, v := range vectors {
		if v.MaxEventSize != 0 {
			continue
		}
		name := v.Name
		size := 0
		for _, conn := range v.Conns {
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
			c := jsCase{Name: name + "/" + cname, Comments: !v.NoComments}
			if v.LastEventID != nil {
				c.LastEventID = *v.LastEventID
			}
			for _, conn := range v.Conns {
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
			want[c.Name] = v.Want
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

// quote writes s as the golden files do.
func quote(s string) string { return ssegolden.Quote(s) }
