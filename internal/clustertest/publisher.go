package clustertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// ID numbers the publisher; its event IDs are "p<ID>-<seq>".
	ID int
	// Nodes are the base URLs of every node; First is where it starts.
	Nodes []string
	First int
	// Topics are published in turn, one per event.
	Topics []string
	// Token is the publisher's JWT.
	Token string
	// Interval is the pause between two publishes; zero publishes as fast
	// as they are acknowledged.
	Interval time.Duration
	// Timeout bounds one publish. Zero means 5 seconds.
	Timeout time.Duration
	// Recorder receives every attempt and its outcome.
	Recorder *Recorder
}

// Publisher publishes events one at a time, each with a new ID, and moves
// to the next node whenever a publish is not acknowledged. It never
// retries an ID: an attempt without a 200 may or may not be stored, and
// the recorder treats it as optional.
type Publisher struct {
	cfg    PublisherConfig
	client *http.Client
	tr     *http.Transport
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartPublisher starts publishing in the background until Stop.
func StartPublisher(cfg PublisherConfig) *Publisher {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	p := &Publisher{cfg: cfg, tr: tr, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Go(func() { p.run(ctx) })
	return p
}

func (p *Publisher) run(ctx context.Context) {
	node := p.cfg.First
	for seq := 0; ctx.Err() == nil; seq++ {
		topic := p.cfg.Topics[seq%len(p.cfg.Topics)]
		id := fmt.Sprintf("p%d-%06d", p.cfg.ID, seq)
		rec := &Publish{ID: id, Topic: topic, Publisher: p.cfg.ID, Seq: seq, Node: node, Start: time.Now()}
		p.cfg.Recorder.Attempt(rec)
		status, body, err := PublishOnce(ctx, p.client, p.cfg.Nodes[node], p.cfg.Token, id, topic)
		acked := err == nil && status == http.StatusOK && body == id
		msg := ""
		switch {
		case err != nil:
			msg = err.Error()
		case !acked:
			msg = fmt.Sprintf("answered %q", body)
		}
		p.cfg.Recorder.Done(id, acked, status, msg, time.Now())
		if !acked {
			node = (node + 1) % len(p.cfg.Nodes)
			p.tr.CloseIdleConnections()
		}
		if p.cfg.Interval > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(p.cfg.Interval):
			}
		}
	}
}

// Stop stops publishing and waits for the attempt under way.
func (p *Publisher) Stop() {
	p.cancel()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
}

// PublishOnce publishes one event with the given ID on topic to the node
// at base, and returns the status and the trimmed body.
func PublishOnce(ctx context.Context, c *http.Client, base, token, id, topic string) (int, string, error) {
	form := url.Values{"topic": {topic}, "id": {id}, "data": {payload(id, topic)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}
