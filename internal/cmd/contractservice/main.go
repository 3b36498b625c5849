// Command contractservice exposes the eventsource client through the test
// service protocol of the LaunchDarkly sse-contract-tests suite
// (https://github.com/launchdarkly/sse-contract-tests, docs/service_spec.md),
// so the suite can check it against the same contract as other languages'
// SSE clients.
//
// Usage:
//
//	contractservice [-addr localhost:8000]
//
// then run the harness with --url http://localhost:8000. The service stops
// on SIGINT, SIGTERM or DELETE /.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "localhost:8000", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "contractservice:", err)
		os.Exit(1)
	}
}

// run serves the test service on addr until ctx is done or DELETE / asks
// it to quit.
func run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, quit := context.WithCancel(ctx)
	defer quit()
	svc := newService(quit, log.Default())
	defer svc.Close()
	srv := &http.Server{Handler: svc, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("contractservice: listening on %s", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
