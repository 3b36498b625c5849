package cli

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testFlags is a command with one flag of each kind and a --config flag.
type testFlags struct {
	fs       *flag.FlagSet
	addr     *string
	beat     *time.Duration
	anon     *bool
	limit    *int
	rate     *float64
	origins  *listFlag
	jsonFile *string
}

func newTestFlags() *testFlags {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	t := &testFlags{fs: fs, origins: new(listFlag)}
	fs.String(configFlag, "", "")
	t.addr = fs.String("addr", ":3000", "")
	t.beat = fs.Duration("heartbeat", 25*time.Second, "")
	t.anon = fs.Bool("anonymous", true, "")
	t.limit = fs.Int("replay-limit", 10000, "")
	t.rate = fs.Float64("publish-rate", 0, "")
	fs.Var(t.origins, "cors-origin", "")
	t.jsonFile = fs.String("json", "", "")
	return t
}

func (t *testFlags) values() []any {
	return []any{*t.addr, *t.beat, *t.anon, *t.limit, *t.rate, []string(*t.origins)}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := write("full.toml", `# every kind of value
addr = "127.0.0.1:8080"
heartbeat = "10s"
anonymous = false
replay-limit = 500
publish-rate = 2.5
cors-origin = ["https://a.example", "https://b.example"]
`)
	defaults := []any{":3000", 25 * time.Second, true, 10000, 0.0, []string(nil)}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []any
		err  string
	}{
		{name: "no file", want: defaults},
		{name: "file", args: []string{"--config", full},
			want: []any{"127.0.0.1:8080", 10 * time.Second, false, 500, 2.5, []string{"https://a.example", "https://b.example"}}},
		{name: "file from the environment", env: map[string]string{"SSEHUB_CONFIG": full},
			want: []any{"127.0.0.1:8080", 10 * time.Second, false, 500, 2.5, []string{"https://a.example", "https://b.example"}}},
		{name: "environment over file, command line over both",
			args: []string{"--config", full, "--addr", ":9", "--cors-origin", "https://c.example"},
			env:  map[string]string{"SSEHUB_ADDR": ":7", "SSEHUB_HEARTBEAT": "5s", "SSEHUB_CORS_ORIGIN": "https://d.example"},
			want: []any{":9", 5 * time.Second, false, 500, 2.5, []string{"https://c.example"}}},
		{name: "environment list replaces the file's", args: []string{"--config", full},
			env:  map[string]string{"SSEHUB_CORS_ORIGIN": "https://d.example, https://e.example"},
			want: []any{"127.0.0.1:8080", 10 * time.Second, false, 500, 2.5, []string{"https://d.example", "https://e.example"}}},
		{name: "empty file", args: []string{"--config", write("empty.toml", "# nothing\n")}, want: defaults},

		{name: "missing file", args: []string{"--config", filepath.Join(dir, "none.toml")},
			err: "configuration file " + filepath.Join(dir, "none.toml") + " does not exist"},
		{name: "syntax", args: []string{"--config", write("syntax.toml", "addr = \":1\"\nheartbeat = 10s\n")},
			err: "syntax.toml, line 2: "},
		{name: "unknown key", args: []string{"--config", write("unknown.toml", "adr = \":1\"\n")},
			err: `"adr": not a setting of this command (the keys are its flag names, without dashes)`},
		{name: "nested config", args: []string{"--config", write("nested.toml", "config = \"other.toml\"\n")},
			err: `"config": a configuration file cannot name another`},
		{name: "command-line-only flag", args: []string{"--config", write("json.toml", "json = \"out.json\"\n")},
			err: `"json": set on the command line only`},
		{name: "list for one value", args: []string{"--config", write("list.toml", "addr = [\":1\", \":2\"]\n")},
			err: `"addr": takes one value, not a list`},
		{name: "list of numbers", args: []string{"--config", write("numbers.toml", "cors-origin = [1, 2]\n")},
			err: `"cors-origin": want a list of strings`},
		{name: "table", args: []string{"--config", write("table.toml", "[addr]\nhost = \"x\"\n")},
			err: `"addr": want a string, a number or true/false, not a table`},
		{name: "date", args: []string{"--config", write("date.toml", "addr = 2026-11-21\n")},
			err: `"addr": want a string, a number or true/false, not a date or time`},
		{name: "bad value", args: []string{"--config", write("bad.toml", "heartbeat = \"soon\"\n")},
			err: `invalid value "soon" for "heartbeat" in configuration file ` + filepath.Join(dir, "bad.toml") + `: want a duration such as 30s, 5m or 1h`},
		{name: "bad value not read when set elsewhere", args: []string{"--config", write("bad2.toml", "heartbeat = \"soon\"\n"), "--heartbeat", "1s"},
			want: []any{":3000", time.Second, true, 10000, 0.0, []string(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFlags()
			getenv := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			err := parse(f.fs, tt.args, IO{Stdout: io.Discard, Stderr: io.Discard, Getenv: getenv})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				var ue usageError
				if !errors.As(err, &ue) {
					t.Errorf("error %T is not a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.values(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("values %v, want %v", got, tt.want)
			}
		})
	}
}

// TestConfigFileOrigin: a bad value found after parsing (by a command's
// own checks) is named where it came from.
func TestConfigFileOrigin(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hub.toml")
	if err := os.WriteFile(p, []byte("replay-limit = -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newTestFlags()
	noEnv := func(string) (string, bool) { return "", false }
	stdio := IO{Stdout: io.Discard, Stderr: io.Discard, Getenv: noEnv}
	if err := parse(f.fs, []string{"--config", p}, stdio); err != nil {
		t.Fatal(err)
	}
	if got, want := origin(f.fs, stdio, "replay-limit"), `"replay-limit" in configuration file `+p; got != want {
		t.Errorf("origin %q, want %q", got, want)
	}
	if got := origin(f.fs, stdio, "addr"); got != "--addr" {
		t.Errorf("origin of a default %q, want --addr", got)
	}
}

// FuzzConfigFile: any file is read or refused with a one-line usage error,
// never a panic.
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("addr = \":1\"\nheartbeat = \"10s\"\ncors-origin = [\"https://a.example\"]\n"))
	f.Add([]byte("[addr]\nx = 1\n"))
	f.Add([]byte("anonymous = false\nreplay-limit = 5\npublish-rate = 1e3\n"))
	f.Add([]byte("addr = 1979-05-27T07:32:00Z\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fl := newTestFlags()
		noEnv := func(string) (string, bool) { return "", false }
		err := parse(fl.fs, []string{"--config", p}, IO{Stdout: io.Discard, Stderr: io.Discard, Getenv: noEnv})
		if err == nil {
			return
		}
		var ue usageError
		if !errors.As(err, &ue) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("error %q is not a one-line usage error", err)
		}
	})
}
