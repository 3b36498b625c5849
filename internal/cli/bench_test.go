package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/bench"
	"github.com/ssehub/ssehub/internal/cli"
	"github.com/ssehub/ssehub/internal/server"
)

// run runs ssehub with args and the environment env, and returns the exit
// code, stdout and stderr.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := cli.Main(context.Background(), args, cli.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: getenv})
	return code, stdout.String(), stderr.String()
}

func TestBenchUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--subscribers", "x"}, nil, `invalid value "x" for --subscribers: want a whole number`},
		{nil, map[string]string{"SSEHUB_SUBSCRIBERS": "-1"}, "SSEHUB_SUBSCRIBERS must not be negative"},
		{[]string{"--stalled", "-1"}, nil, "--stalled must not be negative"},
		{[]string{"--hub", "ftp://x"}, nil, "--hub must be an http URL"},
		{[]string{"--hub", "https://x/"}, nil, "--hub must be an http URL"},
		{[]string{"--topics", "0"}, nil, "--topics must be positive"},
		{[]string{"--publishers", "0"}, nil, "--publishers must be positive"},
		{[]string{"--duration", "0s"}, nil, "--duration must be positive"},
		{[]string{"--shared-percent", "101"}, nil, "--shared-percent must be 0 to 100"},
		{[]string{"--behind", "5000"}, nil, "--behind must be 1 to 1000"},
		{[]string{"--ramp-factor", "1"}, nil, "--ramp-factor must be at least 2"},
		{[]string{"--idle", "--ramp"}, nil, "exclude each other"},
		{[]string{"--idle", "--subscribers", "0"}, nil, "need subscribers"},
		{[]string{"--resume-storm", "--shared-percent", "5"}, nil, "one topic per subscriber"},
		{[]string{"--token", "a", "--jwt-key", "b"}, nil, "set one"},
		{[]string{"--in-process", "--workers", "2"}, nil, "set one"},
		{[]string{"--in-process", "--subscribers", "20000"}, nil, "worker processes"},
		{[]string{"--source-ip", "nope"}, nil, `source address "nope" is not an IP address`},
		{[]string{"--jwt-key", "short"}, nil, "--jwt-key"},
		{[]string{"--bogus"}, nil, "unknown flag --bogus"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
		{[]string{"report"}, nil, "want at least one RESULT.json"},
	}
	for _, tt := range tests {
		code, stdout, stderr := run(t, tt.env, append([]string{"bench"}, tt.args...)...)
		if tt.args != nil && tt.args[0] == "--jwt-key" {
			// A bad key is a failure, not a usage error.
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("bench %q: exit %d, stderr %q; want 1 and %q", tt.args, code, stderr, tt.want)
			}
			continue
		}
		if code != 2 || stdout != "" || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("bench %q %v: exit %d, stdout %q, stderr %q; want 2 and one line containing %q", tt.args, tt.env, code, stdout, stderr, tt.want)
		}
	}
}

func TestBenchHelp(t *testing.T) {
	code, stdout, _ := run(t, nil, "bench", "--help")
	if code != 0 || !strings.Contains(stdout, "--resume-storm") || !strings.Contains(stdout, "[SSEHUB_SUBSCRIBERS]") {
		t.Errorf("bench --help: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(t, nil, "--help")
	if code != 0 || !strings.Contains(stdout, "bench") {
		t.Errorf("--help does not list bench: exit %d\n%s", code, stdout)
	}
}

// TestBenchRunAndReport runs the command against a real hub (in-process
// subscribers), then reads its JSON back with bench report.
func TestBenchRunAndReport(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const key = "cli-bench-test-key-at-least-32-bytes"
	srv, err := server.Start(server.Config{Addr: "127.0.0.1:0", Engine: "memory", PublisherKey: key, Anonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	dir := t.TempDir()
	jsonFile, htmlFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	env := map[string]string{"SSEHUB_JWT_KEY": key}
	code, stdout, stderr := run(t, env, "bench", "--hub", srv.HubURL(), "--in-process", "--subscribers", "10",
		"--events", "50", "--rate", "0", "--publishers", "2", "--settle", "0s", "--label", "ssehub",
		"--pid", strconv.Itoa(os.Getpid()), "--json", jsonFile, "--html", htmlFile)
	if code != 0 {
		t.Fatalf("bench: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"deliveries/s", "hub RSS/subscriber", "hub CPU s/M deliveries"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("bench output lacks %q:\n%s", want, stdout)
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Label != "ssehub" || res.Delivered != 500 || res.Lost != 0 || res.Duplicated != 0 || res.Server == nil {
		t.Errorf("result: label %q delivered %d lost %d duplicated %d server %v; want ssehub 500 0 0 and server stats",
			res.Label, res.Delivered, res.Lost, res.Duplicated, res.Server)
	}
	if page, err := os.ReadFile(htmlFile); err != nil || !bytes.Contains(page, []byte("<svg")) {
		t.Errorf("--html: %v; want a page with charts", err)
	}

	code, stdout, stderr = run(t, nil, "bench", "report", "--html", htmlFile, jsonFile, jsonFile)
	if code != 0 || strings.Count(stdout, "ssehub") != 2 {
		t.Errorf("bench report: exit %d\n%s%s", code, stdout, stderr)
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"x":1}`), 0o644)
	code, _, stderr = run(t, nil, "bench", "report", filepath.Join(dir, "bad.json"))
	if code != 1 || !strings.Contains(stderr, "not a result of ssehub bench --json") {
		t.Errorf("bench report bad.json: exit %d, %q; want 1 and a one-line error", code, stderr)
	}
}
