package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/internal/cli"
)

// TestOutputFlagsIgnoreTheEnvironment: sub --json is a switch and bench
// --json a file name, so no SSEHUB_JSON may feed either; the help says so.
func TestOutputFlagsIgnoreTheEnvironment(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) {
		switch k {
		case "SSEHUB_JSON":
			return "results.json", true
		case "SSEHUB_HTML":
			return "results.html", true
		}
		return "", false
	}
	for _, cmd := range []string{"sub", "bench"} {
		var out, errb bytes.Buffer
		code := cli.Main(context.Background(), []string{cmd, "--help"}, cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: env})
		if code != 0 {
			t.Errorf("ssehub %s --help with SSEHUB_JSON set: exit %d (%s)", cmd, code, errb.String())
		}
		if !strings.Contains(out.String(), "[command line only]") || strings.Contains(out.String(), "SSEHUB_JSON") {
			t.Errorf("ssehub %s --help does not say --json is read from the command line only:\n%s", cmd, out.String())
		}
	}
}
