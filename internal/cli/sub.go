package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
		count               int
	)
	fs.StringVar(&hubURL, "hub", defaultHub, "URL of the hub: its endpoint, or its base URL (then /.well-known/mercure)")
	fs.StringVar(&tok, "token", "", "subscriber JWT, to receive private updates")
	fs.StringVar(&lastID, "last-event-id", "", "resume after this event ID (earliest: all history)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per event")
	fs.BoolVar(&urlPattern, "urlpattern", false, "treat selectors as URL patterns (match_urlpattern)")
	fs.IntVar(&count, "count", 0, "exit after printing this many events (0: never)")
	fs.DurationVar(&readTimeout, "read-timeout", time.Minute, "reconnect when nothing, heartbeats included, arrives for this long")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("want at least one topic selector (* for every topic)")
	}
	if count < 0 {
		return usagef("%s must not be negative", origin(fs, stdio, "count"))
	}
	endpoint, ok := hubEndpoint(hubURL)
	if !ok {
		return usagef("%s must be an http or https URL", origin(fs, stdio, "hub"))
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return usagef("%s must be an http or https URL", origin(fs, stdio, "hub"))
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
	printed := 0
	err = c.Subscribe(ctx, req, func(ev sse.Event) error {
		if err := print(ev); err != nil {
			return err
		}
		if printed++; printed == count {
			return errEnough
		}
		return nil
	})
	var re *eventsource.ResponseError
	switch {
	case errors.Is(err, errEnough), errors.Is(err, context.Canceled):
		return nil
	case err == nil:
		return errors.New("the hub asked clients to stop (204 No Content)")
	case errors.As(err, &re):
		return refusal(re)
	default:
		return err
	}
}

// errEnough ends a subscription after --count events.
var errEnough = errors.New("enough events")

// refusal describes a subscription the hub refused, with the reason of its
// Bearer challenge when there is one.
func refusal(re *eventsource.ResponseError) error {
	if re.StatusCode == http.StatusOK {
		return fmt.Errorf("hub answered with Content-Type %q, not an event stream", re.ContentType)
	}
	msg := fmt.Sprintf("hub refused the subscription: %d %s", re.StatusCode, http.StatusText(re.StatusCode))
	if d := challengeDescription(re.Header.Get("WWW-Authenticate")); d != "" {
		msg += ": " + d
	}
	return errors.New(msg)
}

// challengeDescription returns the error_description of a Bearer
// challenge, or "".
func challengeDescription(challenge string) string {
	_, rest, ok := strings.Cut(challenge, "error_description=")
	if !ok {
		return ""
	}
	if d, err := strconv.QuotedPrefix(rest); err == nil {
		if d, err = strconv.Unquote(d); err == nil {
			return firstLine(d)
		}
	}
	return ""
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
