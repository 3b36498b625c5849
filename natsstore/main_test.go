package natsstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/testsvc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var streamSeq atomic.Int64

// newStream returns a stream name no other test uses.
func newStream() string { return fmt.Sprintf("T%d", streamSeq.Add(1)) }

// quiet is a logger for tests whose failures are expected.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// open opens a store on n's server with the given query (stream=... etc.)
// and closes it when the test ends.
func open(t testing.TB, n *testsvc.NATS, query string, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	s, err := Open(context.Background(), n.URL()+"?"+query, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
