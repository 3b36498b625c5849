package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// ReplayConfig configures a replay run (`ssehub bench replay`): every
// subscriber resumes from "earliest" on one topic at the same moment and
// reads the whole history, which a previous publishing run filled with
// Events benchmark payloads (sequence numbers 1 to Events on topic 0).
type ReplayConfig struct {
	// Hub is the hub URL.
	Hub string
	// Topic is the topic the history was published to.
	Topic string
	// Subscribers is how many subscribers replay at once.
	Subscribers int
	// Events is how many events each must receive: every sequence number
	// from 1 to Events, once each.
	Events uint64
	// HubPID, when not zero, is the hub's process (on this machine): its
	// resident memory is sampled during the replay, and its peak reset at
	// the start (/proc/PID/clear_refs) and read at the end.
	HubPID int
	// Timeout bounds the whole replay.
	Timeout time.Duration
	// Progress receives a line every few seconds. Nil discards.
	Progress io.Writer
}

// ReplayResult is what a replay run measured.
type ReplayResult struct {
	Subscribers int     `json:"subscribers"`
	Events      uint64  `json:"events"`
	Seconds     float64 `json:"seconds"`
	// Delivered counts events received over all subscribers; Complete
	// the subscribers that received every sequence number exactly once.
	Delivered  uint64 `json:"delivered"`
	Complete   int    `json:"complete"`
	Duplicated uint64 `json:"duplicated"`
	Missing    uint64 `json:"missing"`
	Gaps       uint64 `json:"gaps"` // ssehub.gap events received
	// The hub's resident memory, in bytes, when HubPID is set: before
	// the replay, the peak (VmHWM, reset at the start), and the peaks of
	// its anonymous (heap, stacks) and file-backed (mapped store) parts
	// sampled every 100 ms.
	RSSBefore   int64    `json:"rss_before,omitempty"`
	RSSPeak     int64    `json:"rss_peak,omitempty"`
	RSSAnonPeak int64    `json:"rss_anon_peak,omitempty"`
	RSSFilePeak int64    `json:"rss_file_peak,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

// replayer is one subscriber of a replay run.
type replayer struct {
	seen     []uint64 // bitmap of sequence numbers received
	received atomic.Uint64
	dups     uint64
	gaps     uint64
	err      error
}

// RunReplay runs a replay and checks exactly-once delivery.
func RunReplay(ctx context.Context, cfg ReplayConfig) (*ReplayResult, error) {
	if cfg.Subscribers < 1 || cfg.Events < 1 {
		return nil, errors.New("replay needs at least one subscriber and one event")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Minute
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	u, err := url.Parse(cfg.Hub)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("topic", cfg.Topic)
	u.RawQuery = q.Encode()

	res := &ReplayResult{Subscribers: cfg.Subscribers, Events: cfg.Events}
	var mem memSampler
	if cfg.HubPID != 0 {
		mem.pid = cfg.HubPID
		anon, file := mem.rss()
		res.RSSBefore = anon + file
		// Reset the peak so that VmHWM is the replay's.
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", cfg.HubPID), []byte("5"), 0)
	}
	tr := &http.Transport{MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	rs := make([]*replayer, cfg.Subscribers)
	words := (cfg.Events + 64) / 64
	start := time.Now()
	var wg sync.WaitGroup
	for i := range rs {
		r := &replayer{seen: make([]uint64, words)}
		rs[i] = r
		wg.Go(func() { r.err = r.run(ctx, client, u.String(), cfg.Events) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			if mem.pid != 0 {
				mem.sample()
			}
			if time.Since(last) >= 5*time.Second {
				last = time.Now()
				var n uint64
				for _, r := range rs {
					n += r.received.Load()
				}
				fmt.Fprintf(progress, "replay: %.0f s, %d of %d events delivered, hub anon RSS peak %d MiB\n",
					time.Since(start).Seconds(), n, cfg.Events*uint64(cfg.Subscribers), mem.anonPeak>>20)
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if mem.pid != 0 {
		mem.sample()
		res.RSSPeak = mem.hwm()
		res.RSSAnonPeak, res.RSSFilePeak = mem.anonPeak, mem.filePeak
	}
	for _, r := range rs {
		n := r.received.Load()
		res.Delivered += n
		res.Duplicated += r.dups
		res.Gaps += r.gaps
		set := uint64(0)
		for _, w := range r.seen {
			set += uint64(bits.OnesCount64(w))
		}
		res.Missing += cfg.Events - min(set, cfg.Events)
		if r.err == nil && r.dups == 0 && set == cfg.Events && r.gaps == 0 {
			res.Complete++
		}
		if r.err != nil && len(res.Errors) < 5 {
			res.Errors = append(res.Errors, r.err.Error())
		}
	}
	return res, nil
}

// run replays from earliest until every sequence number has arrived.
func (r *replayer) run(ctx context.Context, client *http.Client, rawURL string, events uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Last-Event-ID", "earliest")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("subscribe: %s", resp.Status)
	}
	dec := sse.NewDecoder(bufio.NewReaderSize(resp.Body, 64<<10))
	distinct := uint64(0)
	for distinct < events {
		ev, err := dec.Decode()
		if err != nil {
			return fmt.Errorf("after %d events: %w", r.received.Load(), err)
		}
		if ev.Type != "message" {
			if ev.Type == "ssehub.gap" {
				r.gaps++
			}
			continue
		}
		p, err := ParsePayload([]byte(ev.Data))
		if err != nil || p.Seq == 0 || p.Seq > events {
			return fmt.Errorf("event %q: not a payload of this history", ev.ID)
		}
		r.received.Add(1)
		w, bit := p.Seq/64, uint64(1)<<(p.Seq%64)
		if r.seen[w]&bit != 0 {
			r.dups++
			continue
		}
		r.seen[w] |= bit
		distinct++
	}
	return nil
}

// memSampler samples a process's resident memory from /proc.
type memSampler struct {
	pid                int
	anonPeak, filePeak int64
}

// rss returns the process's anonymous and file-backed resident bytes.
func (m *memSampler) rss() (anon, file int64) {
	fields := m.status()
	return fields["RssAnon"], fields["RssFile"] + fields["RssShmem"]
}

// hwm returns the process's peak resident bytes (VmHWM).
func (m *memSampler) hwm() int64 { return m.status()["VmHWM"] }

func (m *memSampler) sample() {
	anon, file := m.rss()
	m.anonPeak, m.filePeak = max(m.anonPeak, anon), max(m.filePeak, file)
}

// status reads the kB fields of /proc/PID/status, in bytes.
func (m *memSampler) status() map[string]int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.pid))
	out := map[string]int64{}
	if err != nil {
		return out
	}
	for line := range bytes.Lines(b) {
		name, rest, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		v, ok := strings.CutSuffix(strings.TrimSpace(rest), " kB")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[name] = n << 10
		}
	}
	return out
}
