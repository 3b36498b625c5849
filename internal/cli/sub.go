package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ssehub/ssehub/eventsource"
	"github.com/ssehub/ssehub/sse"
)

func sub(ctx context.Context, stdio IO, args []string) error {
	fs := flagSet("sub", "sub [flags] SELECTOR...", stdio)
	var (
		hubURL, tok, lastID string
		asJSON, urlPattern  bool
		readTimeout         time.Duration
	)
	fs.StringVar(&hubURL, "hub", defaultHub, "URL of the hub")
	fs.StringVar(&tok, "token", "", "subscriber JWT, to receive private updates")
	fs.StringVar(&lastID, "last-event-id", "", "resume after this event ID (earliest: all history)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per event")
	fs.BoolVar(&urlPattern, "urlpattern", false, "treat selectors as URL patterns (match_urlpattern)")
	fs.DurationVar(&readTimeout, "read-timeout", time.Minute, "reconnect when nothing, heartbeats included, arrives for this long")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("want at least one topic selector (* for every topic)")
	}
	u, err := url.Parse(hubURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return usagef("--hub must be an http or https URL")
	}
	q := u.Query()
	param := "topic"
	if urlPattern {
		param = "match_urlpattern"
	}
	for _, s := range fs.Args() {
		q.Add(param, s)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	c := &eventsource.Client{
		ReadTimeout: readTimeout,
		RetryPolicy: eventsource.RetryTransient,
		OnRetry: func(err error, delay time.Duration) {
			fmt.Fprintf(stdio.Stderr, "ssehub sub: reconnecting in %s (%v)\n", delay.Round(time.Millisecond), err)
		},
	}
	print := printer(stdio.Stdout, asJSON)
	err = c.Subscribe(ctx, req, func(ev sse.Event) error { return print(ev) })
	switch {
	case errors.Is(err, context.Canceled):
		return nil
	case err == nil:
		return errors.New("the hub asked clients to stop (204 No Content)")
	default:
		var re *eventsource.ResponseError
		if errors.As(err, &re) {
			return fmt.Errorf("hub refused the subscription: %v", err)
		}
		return err
	}
}

// printer returns a function printing events in human or JSON form.
func printer(w io.Writer, asJSON bool) func(sse.Event) error {
	if asJSON {
		enc := json.NewEncoder(w)
		return func(ev sse.Event) error {
			return enc.Encode(struct {
				ID   string `json:"id"`
				Type string `json:"type"`
				Data string `json:"data"`
			}{ev.ID, ev.Type, ev.Data})
		}
	}
	return func(ev sse.Event) error {
		head := ev.ID
		if ev.Type != "message" {
			head += " (" + ev.Type + ")"
		}
		_, err := fmt.Fprintf(w, "%s\n%s\n\n", head, ev.Data)
		return err
	}
}
