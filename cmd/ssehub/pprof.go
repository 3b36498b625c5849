//go:build pprof

// Profiling builds: `go build -tags pprof ./cmd/ssehub` serves
// net/http/pprof on SSEHUB_PPROF_ADDR (e.g. 127.0.0.1:6060) in every
// command, so that a benchmark run can be profiled with
// `go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10`.
// Release builds have none of it.

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

func init() {
	addr := os.Getenv("SSEHUB_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, "ssehub: pprof:", err)
		}
	}()
}
