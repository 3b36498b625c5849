// Command follow is an example Go service that follows topics of an ssehub
// (or any Mercure hub) with package eventsource and prints each update as a
// JSON line.
//
// It survives hub restarts: when the connection drops, the client
// reconnects after the hub's retry delay (with backoff) and sends the last
// event ID it saw in the Last-Event-ID header, so the hub replays the
// updates it missed. With -state, the ID is also saved to a file after each
// update, so that the follower itself can restart where it stopped.
//
// Usage:
//
//	follow -hub http://localhost:3000 -topic /books/1 [-topic ...] [-token JWT] [-state file]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ssehub/ssehub/eventsource"
	"github.com/ssehub/ssehub/sse"
)

// topics collects repeated -topic flags.
type topics []string

func (t *topics) String() string     { return strings.Join(*t, ",") }
func (t *topics) Set(v string) error { *t = append(*t, v); return nil }

func main() {
	var (
		hub   = flag.String("hub", "http://localhost:3000", "hub base URL")
		token = flag.String("token", "", "subscriber JWT, sent as a Bearer token")
		state = flag.String("state", "", "file keeping the last event ID across runs")
		ts    topics
	)
	flag.Var(&ts, "topic", "topic or URI template to follow (repeatable)")
	flag.Parse()
	if len(ts) == 0 {
		fmt.Fprintln(os.Stderr, "follow: at least one -topic is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := follow(ctx, *hub, ts, *token, *state, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatalf("follow: %v", err)
	}
}

// follow prints the updates of topics on hub to w until ctx is done or the
// hub tells it to stop.
func follow(ctx context.Context, hub string, topics []string, token, state string, w io.Writer) error {
	u, err := url.Parse(strings.TrimSuffix(hub, "/") + "/.well-known/mercure")
	if err != nil {
		return err
	}
	q := u.Query()
	for _, t := range topics {
		q.Add("topic", t)
	}
	u.RawQuery = q.Encode()

	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if state != "" {
		if b, err := os.ReadFile(state); err == nil && len(b) > 0 {
			req.Header.Set("Last-Event-ID", strings.TrimSpace(string(b)))
		}
	}

	c := &eventsource.Client{
		// A restarting hub behind a proxy answers 502/503 for a while:
		// retry those instead of giving up as a browser would.
		RetryPolicy: eventsource.RetryTransient,
		// Hubs send a heartbeat comment every 15 s or so; a minute of
		// silence means the connection is dead.
		ReadTimeout: time.Minute,
		OnRetry: func(err error, delay time.Duration) {
			log.Printf("follow: connection lost (%v); reconnecting in %v", err, delay.Round(time.Millisecond))
		},
	}
	enc := json.NewEncoder(w)
	err = c.Subscribe(ctx, req, func(ev sse.Event) error {
		if err := enc.Encode(ev); err != nil {
			return err
		}
		if state != "" && ev.ID != "" {
			return os.WriteFile(state, []byte(ev.ID+"\n"), 0o600)
		}
		return nil
	})
	if err == nil {
		log.Print("follow: the hub asked us to stop (204)")
	}
	return err
}
