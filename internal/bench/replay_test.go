package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestReplay fills a hub's history with a publishing run, then has
// subscribers replay it from earliest at once: each receives every
// sequence number exactly once, and the hub's memory is measured.
func TestReplay(t *testing.T) {
	hubURL := startHub(t)
	const events = 2000
	runOK(t, Config{Hub: hubURL, PublisherToken: publisherToken(t), Subscribers: 0, Rate: 0, Events: events, Publishers: 4, Duration: time.Minute})
	for _, tc := range []struct {
		name     string
		events   uint64
		complete int
	}{
		{"whole history", events, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := RunReplay(context.Background(), ReplayConfig{
				Hub: hubURL, Topic: "https://bench.example/t/0", Subscribers: 5, Events: tc.events,
				HubPID: os.Getpid(), Timeout: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Complete != tc.complete || res.Duplicated != 0 || res.Gaps != 0 {
				t.Errorf("%+v; want %d complete, no duplicate or gap", res, tc.complete)
			}
			if tc.complete == 5 && (res.Delivered != 5*events || res.Missing != 0 || len(res.Errors) != 0) {
				t.Errorf("%+v; want %d delivered, none missing", res, 5*events)
			}
			if res.RSSPeak <= 0 || res.RSSAnonPeak <= 0 {
				t.Errorf("RSS not measured: %+v", res)
			}
		})
	}
}
