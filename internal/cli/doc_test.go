package cli_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the flag tables of docs/configuration.md")

// usageLine is one flag in a command's --help output.
var usageLine = regexp.MustCompile(`^  --(\S+)(?: (\S+))? {2,}(.*?)(?: \(default (.+)\))? \[(SSEHUB_\w+|command line only)\]$`)

// TestConfigurationDoc checks that the flag tables of
// docs/configuration.md are the ones the commands' --help describes, so
// that the document stays true. Run with -update to regenerate them.
func TestConfigurationDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(doc)
	for _, cmd := range []string{"serve", "pub", "sub", "token", "bench"} {
		begin := "<!-- flags " + cmd + " (generated: go test ./internal/cli -run TestConfigurationDoc -update) -->\n"
		end := "<!-- end flags " + cmd + " -->"
		i, j := strings.Index(got, begin), strings.Index(got, end)
		if i < 0 || j < i {
			t.Fatalf("%s: no %q ... %q section", path, begin, end)
		}
		got = got[:i+len(begin)] + flagTable(t, cmd) + got[j:]
	}
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != string(doc) {
		t.Errorf("%s: the flag tables differ from the commands' flags; run go test ./internal/cli -run TestConfigurationDoc -update", path)
	}
}

// flagTable renders the flags of cmd as a Markdown table.
func flagTable(t *testing.T, cmd string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	noEnv := func(string) (string, bool) { return "", false }
	if code := cli.Main(context.Background(), []string{cmd, "--help"}, cli.IO{Stdout: &stdout, Stderr: &stderr, Getenv: noEnv}); code != 0 {
		t.Fatalf("ssehub %s --help: exit %d; want 0 (%s)", cmd, code, stderr.String())
	}
	var b strings.Builder
	b.WriteString("| Flag | Environment variable | Default | Meaning |\n|---|---|---|---|\n")
	n := 0
	for _, line := range strings.Split(stdout.String(), "\n") {
		if !strings.HasPrefix(line, "  --") {
			continue
		}
		m := usageLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("ssehub %s --help: cannot read %q", cmd, line)
		}
		name, kind, text, def, env := m[1], m[2], m[3], m[4], m[5]
		flagCol := "`--" + name + "`"
		if kind != "" {
			flagCol = "`--" + name + " " + kind + "`"
		}
		if def != "" {
			def = "`" + def + "`"
		}
		if env != "command line only" {
			env = "`" + env + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", flagCol, env, def, escape(text))
		n++
	}
	if n == 0 {
		t.Fatalf("ssehub %s --help lists no flags", cmd)
	}
	return b.String()
}

// escape keeps usage text literal in a Markdown table cell.
func escape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "<", "&lt;").Replace(s)
}
