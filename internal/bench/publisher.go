package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// publishers publish benchmark events: every event gets the next sequence
// number of its topic and the time it is sent.
type publishers struct {
	hub         string
	token       string
	prefix      string
	topics      int // not counting the shared topic
	sharedPct   int // percent of events to the shared topic (index topics)
	payloadSize int
	ids         bool
	runID       string
	client      *http.Client

	seqs      []atomic.Uint64 // last sequence number, by topic index
	failed    []atomic.Uint64 // publishes that were not acknowledged, by topic
	rr        atomic.Uint64   // round-robin over the non-shared topics
	published atomic.Uint64
	errors    atomic.Uint64
	latency   atomicHistogram
	lastErr   atomic.Pointer[string]
}

func newPublishers(cfg *Config, runID string, conc int) *publishers {
	n := cfg.Topics
	if cfg.SharedPercent > 0 {
		n++
	}
	tr := &http.Transport{
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &publishers{
		hub: cfg.Hub, token: cfg.PublisherToken, prefix: cfg.TopicPrefix,
		topics: cfg.Topics, sharedPct: cfg.SharedPercent, payloadSize: cfg.PayloadSize,
		ids: cfg.IDs, runID: runID,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		seqs:   make([]atomic.Uint64, n),
		failed: make([]atomic.Uint64, n),
	}
}

func (p *publishers) close() { p.client.CloseIdleConnections() }

// expected returns, by topic, how many events were acknowledged.
func (p *publishers) expected() []uint64 {
	e := make([]uint64, len(p.seqs))
	for i := range e {
		e[i] = p.seqs[i].Load() - p.failed[i].Load()
	}
	return e
}

// last returns the last sequence number of every topic.
func (p *publishers) last() []uint64 {
	e := make([]uint64, len(p.seqs))
	for i := range e {
		e[i] = p.seqs[i].Load()
	}
	return e
}

func (p *publishers) lastError() string {
	if s := p.lastErr.Load(); s != nil {
		return *s
	}
	return ""
}

// pick returns the topic of the i-th event of a run.
func (p *publishers) pick(i uint64) uint32 {
	if p.sharedPct > 0 && int(i%100) < p.sharedPct {
		return uint32(p.topics)
	}
	return uint32((p.rr.Add(1) - 1) % uint64(p.topics))
}

// run publishes with conc concurrent publishers until ctx ends or limit
// events (0: no limit) were sent. A positive rate spaces the events
// evenly at that many per second over all publishers (open loop: a
// publisher behind schedule sends at once); zero sends as fast as the
// hub acknowledges.
func (p *publishers) run(ctx context.Context, rate float64, limit uint64, conc int) {
	var next atomic.Uint64
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for {
				i := next.Add(1) - 1
				if limit > 0 && i >= limit {
					return
				}
				if rate > 0 {
					due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
							return
						}
					}
				}
				if ctx.Err() != nil {
					return
				}
				// A publish under way when the run's time is up is
				// finished, not cancelled: cancelled, it could be stored
				// and delivered yet not acknowledged.
				body = p.publishOne(context.WithoutCancel(ctx), body[:0], p.pick(i))
			}
		}()
	}
	wg.Wait()
}

// publishOne sends the next event of topic t, reusing buf for the body.
func (p *publishers) publishOne(ctx context.Context, buf []byte, t uint32) []byte {
	seq := p.seqs[t].Add(1)
	buf = append(buf, "topic="...)
	buf = append(buf, url.QueryEscape(topicName(p.prefix, p.topics, int(t)))...)
	if p.ids {
		buf = append(buf, "&id="...)
		buf = appendEventID(buf, p.runID, t, seq)
	}
	buf = append(buf, "&data="...)
	sent := time.Now()
	buf = AppendPayload(buf, Payload{Topic: t, Seq: seq, Sent: sent.UnixNano()}, p.payloadSize)
	err := p.post(ctx, buf)
	if err != nil {
		p.errors.Add(1)
		s := err.Error()
		p.lastErr.Store(&s)
		p.failed[t].Add(1)
		return buf
	}
	p.latency.record(int64(time.Since(sent)))
	p.published.Add(1)
	return buf
}

func (p *publishers) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.hub, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _, _ = bytes.Cut(bytes.TrimSpace(msg), []byte("\n"))
		return fmt.Errorf("publish: hub answered %s: %s", resp.Status, msg)
	}
	return nil
}
