package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// runOK runs cfg and fails the test on an error.
func runOK(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	cfg.Progress = &progress
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	return res
}

// checkDelivery checks that every subscriber got every event exactly once.
func checkDelivery(t *testing.T, res *Result, events, perEvent uint64) {
	t.Helper()
	if res.Published != events || res.PublishErrors != 0 {
		t.Errorf("published %d (%d errors, last: %s); want %d, 0", res.Published, res.PublishErrors, res.LastError, events)
	}
	if want := events * perEvent; res.Delivered != want {
		t.Errorf("delivered %d; want %d", res.Delivered, want)
	}
	if res.Lost != 0 || res.Duplicated != 0 || res.Incomplete != 0 || res.Extra != 0 {
		t.Errorf("lost %d duplicated %d incomplete %d extra %d; want 0 (last error: %s)", res.Lost, res.Duplicated, res.Incomplete, res.Extra, res.LastError)
	}
	if res.Latency.Count != res.Delivered {
		t.Errorf("latency count %d; want %d", res.Latency.Count, res.Delivered)
	}
}

func TestRunFanoutAgainstHub(t *testing.T) {
	res := runOK(t, Config{
		Hub: startHub(t), PublisherToken: publisherToken(t),
		Subscribers: 50, Events: 200, Publishers: 4, Duration: time.Minute,
	})
	checkDelivery(t, res, 200, 50)
	if res.Connected != 50 || res.Mode != ModeLoad {
		t.Errorf("connected %d mode %s; want 50 load", res.Connected, res.Mode)
	}
	var text bytes.Buffer
	if err := WriteText(&text, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"deliveries/s", "latency p99.9", "lost", "bench CPU s/M deliveries"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
}

func TestRunTopicsWithSharedTopic(t *testing.T) {
	res := runOK(t, Config{
		Hub: startHub(t), PublisherToken: publisherToken(t),
		Subscribers: 30, Topics: 10, SharedPercent: 20, Events: 100, Publishers: 3, Duration: time.Minute,
	})
	// 20 events to the shared topic reach all 30; 80 spread over 10
	// topics of 3 subscribers each.
	if want := uint64(20*30 + 80*3); res.Delivered != want {
		t.Errorf("delivered %d; want %d", res.Delivered, want)
	}
	if res.Lost != 0 || res.Duplicated != 0 {
		t.Errorf("lost %d duplicated %d; want 0", res.Lost, res.Duplicated)
	}
}

func TestRunPublishOnly(t *testing.T) {
	res := runOK(t, Config{
		Hub: startHub(t), PublisherToken: publisherToken(t),
		Publishers: 4, Events: 300, Duration: time.Minute,
	})
	if res.Mode != ModePublish || res.Published != 300 || res.PublishLatency.Count != 300 || res.PublishesPerSecond <= 0 {
		t.Errorf("mode %s published %d latency count %d rate %v; want publish 300 300 >0",
			res.Mode, res.Published, res.PublishLatency.Count, res.PublishesPerSecond)
	}
	if res.Client.CPUPerMillionPublished <= 0 || res.Client.CPUPerMillionDelivered != 0 {
		t.Errorf("tool CPU per million publishes %v, per million deliveries %v; want > 0 and 0",
			res.Client.CPUPerMillionPublished, res.Client.CPUPerMillionDelivered)
	}
}

func TestRunIdle(t *testing.T) {
	res := runOK(t, Config{Hub: startHub(t), Mode: ModeIdle, Subscribers: 40, Duration: 100 * time.Millisecond, PID: 0})
	if res.Connected != 40 || res.Delivered != 0 || res.Published != 0 {
		t.Errorf("connected %d delivered %d published %d; want 40 0 0", res.Connected, res.Delivered, res.Published)
	}
	if res.ConnectPerSecond <= 0 {
		t.Errorf("connect rate %v; want > 0", res.ConnectPerSecond)
	}
}

func TestRunResumeStorm(t *testing.T) {
	res := runOK(t, Config{
		Hub: startHub(t), PublisherToken: publisherToken(t), Mode: ModeStorm,
		Subscribers: 30, Topics: 2, Behind: 20, Rate: 50, Publishers: 2,
	})
	if res.Storm == nil || res.Storm.LiveAgain != 30 {
		t.Fatalf("storm %+v; want 30 subscribers live again", res.Storm)
	}
	if res.Lost != 0 || res.Duplicated != 0 || res.Incomplete != 0 {
		t.Errorf("lost %d duplicated %d incomplete %d; want 0", res.Lost, res.Duplicated, res.Incomplete)
	}
	// Each subscriber received the history and then its last 20 events
	// again.
	if min := uint64(30 * (30 + 20)); res.Delivered < min {
		t.Errorf("delivered %d; want at least %d", res.Delivered, min)
	}
}

// TestRunReadLoops runs a resume storm with the streams read by
// goroutines (the reader where no read loop applies) and by two read
// loops; the other tests use the default, one loop on Linux.
func TestRunReadLoops(t *testing.T) {
	for _, loops := range []int{-1, 2} {
		t.Run(fmt.Sprintf("%d", loops), func(t *testing.T) {
			res := runOK(t, Config{
				Hub: startHub(t), PublisherToken: publisherToken(t), Mode: ModeStorm,
				Subscribers: 20, Topics: 2, Behind: 10, Rate: 50, Publishers: 2, ReadLoops: loops,
			})
			if res.Storm == nil || res.Storm.LiveAgain != 20 {
				t.Fatalf("storm %+v; want 20 subscribers live again", res.Storm)
			}
			if res.Lost != 0 || res.Duplicated != 0 || res.Incomplete != 0 {
				t.Errorf("lost %d duplicated %d incomplete %d; want 0", res.Lost, res.Duplicated, res.Incomplete)
			}
		})
	}
}

func TestRunRamp(t *testing.T) {
	res := runOK(t, Config{
		Hub: startHub(t), PublisherToken: publisherToken(t), Mode: ModeRamp,
		Subscribers: 10, Publishers: 2,
		Ramp: Ramp{Start: 20, Factor: 2, Step: 300 * time.Millisecond, MaxSteps: 2, MaxP99: time.Hour},
	})
	if len(res.Ramp) == 0 || res.Ramp[0].Rate != 20 {
		t.Fatalf("ramp steps %+v; want a first step at 20/s", res.Ramp)
	}
	if res.Lost != 0 || res.Duplicated != 0 {
		t.Errorf("lost %d duplicated %d; want 0", res.Lost, res.Duplicated)
	}
}

func TestRunErrors(t *testing.T) {
	hubURL := startHub(t)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad hub", Config{Hub: "ftp://x"}, "want an http URL"},
		{"idle without subscribers", Config{Hub: hubURL, Mode: ModeIdle}, "needs subscribers"},
		{"too many per worker", Config{Hub: hubURL, Subscribers: MaxPerWorker + 1}, "worker processes"},
		{"storm with shared topic", Config{Hub: hubURL, Mode: ModeStorm, Subscribers: 1, SharedPercent: 5}, "no shared topic"},
		{"publish refused", Config{Hub: hubURL, Subscribers: 0, Events: 2}, "every publish failed (2), the last with: publish: hub answered 401"},
		{"no hub there", Config{Hub: "http://127.0.0.1:1/", Subscribers: 1, ConnectTimeout: 300 * time.Millisecond}, "only 0 of 1 subscribers connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWorkerResultMerge(t *testing.T) {
	t.Parallel()
	a := &WorkerResult{Subscribers: 2, Connected: 2, ConnectSeconds: 1.5, Delivered: 10, Lost: 1, Duplicated: 2,
		LastDelivery: 100, CPUSeconds: 0.5, Processes: 1, Latency: &Histogram{}, Catchup: &Histogram{}}
	a.Latency.Record(10)
	b := &WorkerResult{Subscribers: 3, Connected: 3, ConnectSeconds: 0.5, Delivered: 20, Lost: 2, Extra: 1,
		LastDelivery: 200, CPUSeconds: 0.25, Processes: 1, LastError: "boom", Latency: &Histogram{}}
	b.Latency.Record(30)
	b.Latency.Record(20)
	var m WorkerResult
	m.Merge(a)
	m.Merge(b)
	if m.Subscribers != 5 || m.Connected != 5 || m.ConnectSeconds != 1.5 || m.Delivered != 30 || m.Lost != 3 ||
		m.Duplicated != 2 || m.Extra != 1 || m.LastDelivery != 200 || m.CPUSeconds != 0.75 || m.Processes != 2 ||
		m.LastError != "boom" || m.Latency.Count() != 3 || m.Latency.Max() != 30 || m.Latency.Min() != 10 {
		t.Errorf("merged: %+v", m)
	}
	// The merged result survives JSON, as worker results cross a pipe.
	js, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	var back WorkerResult
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Latency.Quantile(0.5) != 20 || back.Delivered != 30 {
		t.Errorf("decoded: p50 %d delivered %d; want 20 30", back.Latency.Quantile(0.5), back.Delivered)
	}
}

func TestResultJSONAndHTML(t *testing.T) {
	res := runOK(t, Config{
		Hub: startHub(t), PublisherToken: publisherToken(t), Label: `<ssehub & "friends">`,
		Subscribers: 5, Events: 20, Rate: 200, Duration: time.Minute,
	})
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, "bench", res, &back); err != nil {
		t.Fatal(err)
	}
	s := page.String()
	for _, want := range []string{"<svg", "Latency distribution", "&lt;ssehub &amp; &#34;friends&#34;&gt;"} {
		if !strings.Contains(s, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", "href=", "<ssehub &"} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML contains %q: it must be self-contained and escaped", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want float64
		ok   bool
	}{
		{"1234 (ssehub) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0", 3.0, true},
		{"1234 (a b) c)) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0", 0.1, true},
		{"1234 ssehub S 1", 0, false},
		{"1234 (x) S 1 2 3", 0, false},
		{"1234 (x) S 1 1 1 0 -1 0 0 0 0 0 x 3", 0, false},
	}
	for _, tt := range tests {
		got, err := parseStatCPU([]byte(tt.line))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v (ok %v)", tt.line, got, err, tt.want, tt.ok)
		}
	}
	if _, err := rssOf("self"); err != nil {
		t.Errorf("rssOf(self): %v", err)
	}
	if _, err := cpuOf("self"); err != nil {
		t.Errorf("cpuOf(self): %v", err)
	}
}
