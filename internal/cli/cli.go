// Package cli implements the ssehub command line: serve, pub, sub, token and
// version. Main is the whole program, minus signal handling, so tests run
// it in-process. It is the one place that maps errors to exit codes: 0 for
// success, 1 for a failure, 2 for a usage error.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Version is the ssehub version, set at build time with
// -ldflags "-X github.com/ssehub/ssehub/internal/cli.Version=v1.2.3".
var Version = "dev"

// Env looks up an environment variable; tests replace it.
type Env func(key string) (string, bool)

// IO is where a command reads and writes.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         Env
}

type command struct {
	name, summary string
	run           func(ctx context.Context, io IO, args []string) error
}

var commands = []command{
	{"serve", "run the hub", serve},
	{"pub", "publish events", pub},
	{"sub", "print the events of topics as they arrive", sub},
	{"token", "mint a JWT for publishers or subscribers", token},
	{"version", "print the version", version},
}

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Main runs ssehub with args (without the program name) and returns the
// exit code. It prints every error as one line on stderr.
func Main(ctx context.Context, args []string, stdio IO) int {
	if stdio.Getenv == nil {
		stdio.Getenv = os.LookupEnv
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdio.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, stdio, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stdio.Stderr, "ssehub %s: %v (see ssehub %s --help)\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stdio.Stderr, "ssehub %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stdio.Stderr, "ssehub: unknown command %q (see ssehub --help)\n", args[0])
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "ssehub: a Server-Sent Events hub speaking the Mercure protocol")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: ssehub <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'ssehub <command> --help' for its flags. Every flag can also be set with")
	fmt.Fprintln(w, "an SSEHUB_* environment variable: --publisher-key is SSEHUB_PUBLISHER_KEY.")
}

// flagSet returns a FlagSet for a command whose usage goes to stdout.
func flagSet(name, usage string, stdio IO) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := stdio.Stdout
		fmt.Fprintf(w, "Usage: ssehub %s\n\nFlags (each also read from the environment variable shown):\n", usage)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s\t%s%s [%s]\n", f.Name, f.Usage, def, envName(f.Name))
		})
	}
	return fs
}

// envName is the environment variable of a flag: --publisher-key is
// SSEHUB_PUBLISHER_KEY.
func envName(flagName string) string {
	return "SSEHUB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies SSEHUB_* variables, then the command line, so flags win.
// Repeatable flags take a comma-separated list from the environment.
func parse(fs *flag.FlagSet, args []string, stdio IO) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := stdio.Getenv(envName(f.Name))
		if !ok || envErr != nil {
			return
		}
		vals := []string{v}
		if _, repeat := f.Value.(*listFlag); repeat {
			vals = strings.Split(v, ",")
		}
		for _, v := range vals {
			if err := f.Value.Set(v); err != nil {
				envErr = usagef("invalid value %q in %s: %v", v, envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func version(_ context.Context, stdio IO, args []string) error {
	fs := flagSet("version", "version", stdio)
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	fmt.Fprintln(stdio.Stdout, "ssehub", Version)
	return nil
}
