package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ssehub/ssehub/internal/cli"
)

// testKey is the publisher key the scripts share: 32 bytes, the HS256
// minimum.
const testKey = "testscript-publisher-key-32bytes"

// TestMain makes the test binary double as the ssehub command: testscript
// runs "ssehub" in scripts by re-executing this binary, which then runs
// cli.Main as main does, signals included, so "kill -INT" stops a
// background "ssehub serve".
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ssehub": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := cli.Main(ctx, os.Args[1:], cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
			stop()
			os.Exit(code)
		},
	})
}

// TestScript runs testdata/script/*.txtar. Each script gets a free
// loopback port:
//
//	HUB_ADDR  127.0.0.1:PORT, for ssehub serve --addr
//	HUB_URL   http://127.0.0.1:PORT
//	HUB       http://127.0.0.1:PORT/.well-known/mercure
//	KEY       a 32-byte publisher key
//	CR, LF    a carriage return and a line feed, to put in arguments
//
// and these commands besides testscript's own:
//
//	status N PROG [ARGS...]  run PROG, expect exit code N; keeps stdout and stderr
//	waitfor URL              wait (at most 10 s) until GET URL answers 200
//	envstdout NAME           set $NAME to the last command's stdout, trimmed
//	jwtclaims                print the claims of the JWT in the last stdout as
//	                         JSON, exp replaced by "ttl", the time left rounded
//	                         to the minute
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			port, err := freePort()
			if err != nil {
				return err
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			env.Setenv("HUB_ADDR", addr)
			env.Setenv("HUB_URL", "http://"+addr)
			env.Setenv("HUB", "http://"+addr+"/.well-known/mercure")
			env.Setenv("KEY", testKey)
			env.Setenv("CR", "\r")
			env.Setenv("LF", "\n")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status":    cmdStatus,
			"waitfor":   cmdWaitFor,
			"envstdout": cmdEnvStdout,
			"jwtclaims": cmdJWTClaims,
		},
	})
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cmdStatus runs a program and checks its exit code.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: exit code %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("status: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d; want %d", args[1], got, want)
	}
}

// cmdWaitFor polls a URL until it answers 200 OK, for at most 10 seconds.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfor URL")
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("waitfor %s: not ready after 10s: %v", args[0], last)
}

// cmdEnvStdout sets an environment variable to the last stdout.
func cmdEnvStdout(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: envstdout NAME")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
}

// cmdJWTClaims decodes, without verifying, the claims of the token in the
// last stdout.
func cmdJWTClaims(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: jwtclaims")
	}
	parts := strings.Split(strings.TrimSpace(ts.ReadFile("stdout")), ".")
	if len(parts) != 3 {
		ts.Fatalf("jwtclaims: stdout is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	ts.Check(err)
	var claims map[string]any
	ts.Check(json.Unmarshal(payload, &claims))
	if exp, ok := claims["exp"].(float64); ok {
		delete(claims, "exp")
		left := time.Until(time.Unix(int64(exp), 0))
		claims["ttl"] = left.Round(time.Minute).String()
	}
	out, err := json.Marshal(claims) // sorted keys
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%s\n", out)
}
