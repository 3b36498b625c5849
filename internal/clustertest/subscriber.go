package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/eventsource"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/sse"
)

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// Name identifies the subscriber in reports.
	Name string
	// Nodes are the base URLs of every node (http://host:port).
	Nodes []string
	// First is the index of the node it connects to first.
	First int
	// Topics are the topics it subscribes to.
	Topics []string
	// ReadTimeout drops a connection on which nothing arrives for that
	// long (heartbeats count), and moves to the next node. Zero means 10
	// seconds.
	ReadTimeout time.Duration
	// Recorder receives what it gets.
	Recorder *Recorder
}

// Subscriber follows one stream across a cluster: when the stream ends, a
// read times out or a connection attempt fails (or answers 5xx), it moves
// to the next node in Nodes and resumes with its Last-Event-ID, as a client
// that knows every node's URL would. It starts from "earliest", so it is
// owed every event of its topics. Each connection's body is watched, so
// that a stream cut inside an event is noticed even though the client
// discards that event.
type Subscriber struct {
	cfg    SubscriberConfig
	rec    *subRecorder
	client eventsource.Client
	tr     *http.Transport
	cancel context.CancelFunc
	done   chan struct{}
	err    error

	node  atomic.Int32 // node of the current (or latest) connection
	conns atomic.Int32 // connections attempted

	mu   sync.Mutex
	body *tapBody // the open stream, if any
}

// StartSubscriber starts a subscriber in the background; Stop ends it.
func StartSubscriber(cfg SubscriberConfig) *Subscriber {
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	s := &Subscriber{
		cfg:  cfg,
		rec:  cfg.Recorder.sub(cfg.Name, cfg.Topics),
		tr:   &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: cfg.ReadTimeout},
		done: make(chan struct{}),
	}
	s.node.Store(int32(cfg.First))
	s.client = eventsource.Client{
		HTTPClient:  &http.Client{Transport: s},
		ReadTimeout: cfg.ReadTimeout,
		RetryPolicy: eventsource.RetryTransient,
		// Failing over to another node needs no back-off: the next
		// attempt goes elsewhere. A short pause keeps a cluster that is
		// entirely down from being hammered.
		Wait: func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(min(d, 100*time.Millisecond))
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		},
	}
	q := url.Values{}
	for _, t := range cfg.Topics {
		q.Add("topic", t)
	}
	// The host is replaced by RoundTrip with the node's.
	req, _ := http.NewRequest(http.MethodGet, cfg.Nodes[0]+"/.well-known/mercure?"+q.Encode(), nil)
	req.Header.Set("Last-Event-ID", hub.Earliest)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.err = s.client.Subscribe(ctx, req, s.handle)
	}()
	return s
}

// handle records one event.
func (s *Subscriber) handle(ev sse.Event) error {
	d := Delivery{ID: ev.ID, Data: ev.Data, Node: int(s.node.Load()), Conn: int(s.conns.Load()), At: time.Now()}
	s.mu.Lock()
	if s.body != nil {
		s.body.events++
	}
	s.mu.Unlock()
	if ev.Type == hub.GapEventType {
		d.Gap = true
		s.rec.deliver(d)
		return nil
	}
	s.rec.deliver(d)
	if id, _, ok := parsePayload(ev.Data); !ok || id != ev.ID {
		s.rec.badEvent(fmt.Sprintf("event %q (connection %d from node %d) carries data %.80q, not its own", ev.ID, d.Conn, d.Node, ev.Data))
	}
	return nil
}

// RoundTrip sends each connection attempt to a node: the first to
// cfg.First, every later one to the node after the previous one.
func (s *Subscriber) RoundTrip(req *http.Request) (*http.Response, error) {
	n := s.conns.Add(1)
	node := int(s.node.Load())
	if n > 1 {
		node = (node + 1) % len(s.cfg.Nodes)
		s.node.Store(int32(node))
	}
	u, err := url.Parse(s.cfg.Nodes[node])
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.URL.Host, req.Host = u.Host, ""
	resp, err := s.tr.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	b := &tapBody{rc: resp.Body, s: s, node: node, conn: int(n)}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
	resp.Body = b
	return resp, nil
}

// Hop closes the current stream, wherever it is in an event, so that the
// subscriber resumes on the next node.
func (s *Subscriber) Hop() {
	s.mu.Lock()
	b := s.body
	s.mu.Unlock()
	if b != nil {
		b.closeByClient()
	}
}

// Node returns the node of the current (or latest) connection.
func (s *Subscriber) Node() int { return int(s.node.Load()) }

// Connections returns how many connection attempts it made.
func (s *Subscriber) Connections() int { return int(s.conns.Load()) }

// Stop ends the subscriber and waits for it. It returns the error that
// ended the subscription if it ended before Stop (it should not).
func (s *Subscriber) Stop() error {
	select {
	case <-s.done:
		s.tr.CloseIdleConnections()
		if s.err == nil {
			return errors.New("the subscription ended on its own (204)")
		}
		return s.err
	default:
	}
	s.cancel()
	<-s.done
	s.tr.CloseIdleConnections()
	return nil
}

// tapBody watches a stream's bytes to tell how it ended.
type tapBody struct {
	rc   io.ReadCloser
	s    *Subscriber
	node int
	conn int

	mu       sync.Mutex
	byClient bool
	ended    bool
	events   int  // guarded by s.mu
	partial  bool // part of a line has arrived
	fields   bool // a non-comment line has arrived since the last blank line
	lineLen  int  // bytes of the current line so far
	comment  bool // the current line is a comment
	prevCR   bool
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.scan(p[:n])
	if err != nil && !b.ended {
		b.ended = true
		b.mu.Unlock()
		b.record(err)
		return n, err
	}
	b.mu.Unlock()
	return n, err
}

// scan follows line boundaries (CR, LF, CRLF) and event boundaries.
func (b *tapBody) scan(p []byte) {
	for _, c := range p {
		switch {
		case c == '\n' && b.prevCR:
			b.prevCR = false
		case c == '\n' || c == '\r':
			if b.lineLen == 0 {
				b.fields = false // blank line: the event is complete
			} else if !b.comment {
				b.fields = true
			}
			b.lineLen, b.comment, b.prevCR = 0, false, c == '\r'
		default:
			if b.lineLen == 0 {
				b.comment = c == ':'
			}
			b.lineLen++
			b.prevCR = false
		}
	}
	b.partial = b.lineLen > 0
}

func (b *tapBody) record(err error) {
	b.mu.Lock()
	// A read timeout cancels the request: the client ended it too.
	byClient := b.byClient || errors.Is(err, context.Canceled)
	e := StreamEnd{Node: b.node, Conn: b.conn, ByClient: byClient, Clean: errors.Is(err, io.EOF),
		MidEvent: b.partial || b.fields}
	b.mu.Unlock()
	if !e.Clean && err != nil {
		e.Err = err.Error()
	}
	b.s.mu.Lock()
	e.Events = b.events
	if b.s.body == b {
		b.s.body = nil
	}
	b.s.mu.Unlock()
	b.s.rec.end(e)
}

func (b *tapBody) closeByClient() {
	b.mu.Lock()
	b.byClient = true
	b.mu.Unlock()
	b.rc.Close()
}

func (b *tapBody) Close() error {
	b.mu.Lock()
	b.byClient = true
	ended := b.ended
	b.ended = true
	b.mu.Unlock()
	if !ended {
		b.record(errors.New("closed by the client"))
	}
	return b.rc.Close()
}

// payload is the data of event id on topic: the ID, the topic and some
// filler, so that a subscriber can tell an event carries its own data.
func payload(id, topic string) string {
	return id + "|" + topic + "|" + strings.Repeat("x", 64)
}

// parsePayload splits data made by payload.
func parsePayload(data string) (id, topic string, ok bool) {
	parts := strings.Split(data, "|")
	if len(parts) != 3 || parts[2] != strings.Repeat("x", 64) {
		return "", "", false
	}
	return parts[0], parts[1], true
}
