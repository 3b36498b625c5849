// Package cli implements the ssehub command line: serve, pub, sub, token,
// bench and version. Main is the whole program, minus signal handling, so tests run
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
	"text/tabwriter"
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
	{"bench", "measure a Mercure hub: connections, deliveries/s, latency", benchCmd},
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
	if len(args) == 0 {
		// A mistake, like any other usage error: the usage goes to
		// stderr, so stdout stays empty.
		printUsage(stdio.Stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdio.Stdout)
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
		fmt.Fprintf(w, "Usage: ssehub %s\n", usage)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			return
		}
		fmt.Fprintf(w, "\nFlags (each also read from the environment variable shown):\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fs.VisitAll(func(f *flag.Flag) {
			kind, text := flag.UnquoteUsage(f)
			if kind != "" {
				kind = " " + kind
			}
			if def := defaultText(f); def != "" {
				text += " (default " + def + ")"
			}
			env := envName(f.Name)
			if env == "" {
				env = "command line only"
			}
			fmt.Fprintf(tw, "  --%s%s\t%s [%s]\n", f.Name, kind, text, env)
		})
		tw.Flush()
	}
	return fs
}

// defaultText is the default of f as the usage shows it, or "" when the
// zero value is the default.
func defaultText(f *flag.Flag) string {
	switch f.DefValue {
	case "", "false", "0", "0s":
		return ""
	}
	return f.DefValue
}

// envName is the environment variable of a flag: --publisher-key is
// SSEHUB_PUBLISHER_KEY. Flags that choose what one run prints or writes
// where have none (""): one variable would serve commands that give the
// flag different meanings (sub --json is a switch, bench --json a file).
func envName(flagName string) string {
	switch flagName {
	case "json", "html", "accept-lost-updates":
		// accept-lost-updates is a decision for one start: a variable or
		// a configuration file would make it for every start.
		return ""
	}
	return "SSEHUB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads the command line, then SSEHUB_* variables for the flags it
// left unset, then, for a command with a --config flag, the configuration
// file (see readConfigFile) for the flags neither set: the command line
// wins over the environment, which wins over the file. An empty variable
// counts as unset. Repeatable flags take a comma-separated list from the
// environment (spaces around items and empty items are ignored) and a list
// of strings from the file; the place that sets one sets its whole list.
// It prints the usage for --help and returns flag.ErrHelp; every other
// mistake is a one-line usage error naming the flag, variable or file.
func parse(fs *flag.FlagSet, args []string, stdio IO) error {
	if err := parseCommandLine(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if name == "" || set[f.Name] || envErr != nil {
			return
		}
		v, _ := stdio.Getenv(name)
		if v == "" {
			return // empty is unset
		}
		set[f.Name] = true
		vals := []string{v}
		if _, repeat := f.Value.(*listFlag); repeat {
			vals = strings.Split(v, ",")
		}
		for _, v := range vals {
			if len(vals) > 1 {
				if v = strings.TrimSpace(v); v == "" {
					continue
				}
			}
			if err := f.Value.Set(v); err != nil {
				envErr = usagef("invalid value %q in %s: %s", v, name, want(f, err))
				return
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	cf := fs.Lookup(configFlag)
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	path := cf.Value.String()
	values, order, err := readConfigFile(path, fs)
	if err != nil {
		return err
	}
	for _, name := range order {
		if set[name] {
			continue
		}
		f := fs.Lookup(name)
		for _, v := range values[name] {
			if err := f.Value.Set(v); err != nil {
				return usagef("invalid value %q for %q in configuration file %s: %s", v, name, path, want(f, err))
			}
		}
	}
	return nil
}

// parseCommandLine parses args into fs.
func parseCommandLine(fs *flag.FlagSet, args []string) error {
	// The flag package calls Usage on every error; print it for --help
	// only, and keep the first bad value to name it precisely.
	usage := fs.Usage
	fs.Usage = func() {}
	var setErr error
	fs.VisitAll(func(f *flag.Flag) {
		orig := *f
		f.Value = checkedValue{f.Value, func(v string, err error) {
			if setErr == nil {
				setErr = usagef("invalid value %q for --%s: %s", v, f.Name, want(&orig, err))
			}
		}}
	})
	err := fs.Parse(args)
	fs.VisitAll(func(f *flag.Flag) { f.Value = f.Value.(checkedValue).Value })
	fs.Usage = usage
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case setErr != nil:
		return setErr
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return usagef("unknown flag --%s", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return usagef("--%s needs a value", name)
	}
	return usageError{msg}
}

// want explains what a flag accepts, after its Set failed with err.
func want(f *flag.Flag, err error) string {
	if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
		return "want true or false"
	}
	switch kind, _ := flag.UnquoteUsage(f); kind {
	case "duration":
		return "want a duration such as 30s, 5m or 1h"
	case "int", "uint":
		return "want a whole number"
	}
	return err.Error()
}

// origin names where the value of the flag called name came from, for
// messages about it: "--name" when it was set on the command line, else its
// environment variable when that is set, else the configuration file when
// one is read and the flag is not at its default, else "--name".
func origin(fs *flag.FlagSet, stdio IO, name string) string {
	onCommandLine := false
	fs.Visit(func(f *flag.Flag) { onCommandLine = onCommandLine || f.Name == name })
	if env := envName(name); env == "" {
		return "--" + name
	}
	if onCommandLine {
		return "--" + name
	}
	if v, _ := stdio.Getenv(envName(name)); v != "" {
		return envName(name)
	}
	if cf := fs.Lookup(configFlag); cf != nil && cf.Value.String() != "" {
		if f := fs.Lookup(name); f != nil && f.Value.String() != f.DefValue {
			return fmt.Sprintf("%q in configuration file %s", name, cf.Value.String())
		}
	}
	return "--" + name
}

// checkedValue reports the errors of a flag.Value's Set.
type checkedValue struct {
	flag.Value
	failed func(v string, err error)
}

func (c checkedValue) Set(v string) error {
	err := c.Value.Set(v)
	if err != nil {
		c.failed(v, err)
	}
	return err
}

func (c checkedValue) IsBoolFlag() bool {
	bf, ok := c.Value.(interface{ IsBoolFlag() bool })
	return ok && bf.IsBoolFlag()
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// repeatable marks a flag that may be given many times: a configuration
// file gives it a list.
func (l *listFlag) repeatable() {}

func version(_ context.Context, stdio IO, args []string) error {
	fs := flagSet("version", "version", stdio)
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	fmt.Fprintln(stdio.Stdout, "ssehub", Version)
	return nil
}
