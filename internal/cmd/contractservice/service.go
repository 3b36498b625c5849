package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssehub/ssehub/eventsource"
	"github.com/ssehub/ssehub/sse"
)

// capabilities lists the optional features of the suite that the client
// really supports.
var capabilities = []string{
	"bom",                              // the sse.Decoder strips one leading BOM
	"comments",                         // Client.OnComment
	"event-type-listeners",             // this service reports only listened types
	"headers",                          // Client.Header
	"last-event-id",                    // a Last-Event-ID header on the request
	"post",                             // request bodies, resent on reconnect
	"read-timeout",                     // Client.ReadTimeout
	"report",                           // any method works
	"restart",                          // a new Subscribe with the last event ID
	"server-directed-shutdown-request", // 204 ends Subscribe
}

// createParams is the body of POST /.
type createParams struct {
	StreamURL      string            `json:"streamUrl"`
	CallbackURL    string            `json:"callbackUrl"`
	Tag            string            `json:"tag"`
	InitialDelayMS *int64            `json:"initialDelayMs"`
	ReadTimeoutMS  *int64            `json:"readTimeoutMs"`
	LastEventID    string            `json:"lastEventId"`
	Headers        map[string]string `json:"headers"`
	Method         string            `json:"method"`
	Body           string            `json:"body"`
}

// commandParams is the body of POST /streams/{id}.
type commandParams struct {
	Command string `json:"command"`
	Listen  *struct {
		Type string `json:"type"`
	} `json:"listen"`
}

// message is a callback to the harness.
type message struct {
	Kind    string     `json:"kind"`
	Event   *eventJSON `json:"event,omitempty"`
	Comment *string    `json:"comment,omitempty"`
	Error   string     `json:"error,omitempty"`
}

type eventJSON struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// service implements the test service protocol. It owns one goroutine per
// stream; Close stops them all and waits for them.
type service struct {
	mux       *http.ServeMux
	quit      func()
	log       *log.Logger
	transport *http.Transport // for streams and callbacks

	mu      sync.Mutex
	streams map[string]*stream
	next    int
	closed  bool
	wg      sync.WaitGroup
}

// newService returns a service that calls quit on DELETE /.
func newService(quit func(), logger *log.Logger) *service {
	s := &service{
		mux:       http.NewServeMux(),
		quit:      quit,
		log:       logger,
		transport: http.DefaultTransport.(*http.Transport).Clone(),
		streams:   make(map[string]*stream),
	}
	s.mux.HandleFunc("GET /{$}", s.status)
	s.mux.HandleFunc("DELETE /{$}", s.stop)
	s.mux.HandleFunc("POST /{$}", s.create)
	s.mux.HandleFunc("POST /streams/{id}", s.command)
	s.mux.HandleFunc("DELETE /streams/{id}", s.remove)
	return s
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close stops every stream and waits for their goroutines.
func (s *service) Close() {
	s.mu.Lock()
	s.closed = true
	for id, st := range s.streams {
		st.cancel()
		delete(s.streams, id)
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.transport.CloseIdleConnections()
}

func (s *service) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"capabilities": capabilities})
}

func (s *service) stop(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
	s.quit()
}

func (s *service) create(w http.ResponseWriter, r *http.Request) {
	var p createParams
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	st, err := newStream(s, p)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.next++
	id := strconv.Itoa(s.next)
	s.streams[id] = st
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		st.run()
	}()
	s.log.Printf("stream %s created (%s)", id, p.Tag)
	w.Header().Set("Location", "/streams/"+id)
	w.WriteHeader(http.StatusCreated)
}

func (s *service) lookup(r *http.Request) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[r.PathValue("id")]
}

func (s *service) command(w http.ResponseWriter, r *http.Request) {
	st := s.lookup(r)
	if st == nil {
		http.NotFound(w, r)
		return
	}
	var p commandParams
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case p.Command == "restart":
		st.restart()
	case p.Command == "listen" && p.Listen != nil:
		st.listen(p.Listen.Type)
	default:
		http.Error(w, "unknown command", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *service) remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	st := s.streams[id]
	delete(s.streams, id)
	s.mu.Unlock()
	if st == nil {
		http.NotFound(w, r)
		return
	}
	st.cancel()
	<-st.done // no callback after the answer
	w.WriteHeader(http.StatusNoContent)
}

// stream is one client under test. Its run goroutine makes every callback,
// so callbacks are numbered and sent in order.
type stream struct {
	params   createParams
	client   *eventsource.Client
	callback *http.Client
	log      *log.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	n        int // callbacks sent; run goroutine only

	mu        sync.Mutex
	stopConn  context.CancelFunc // ends the current Subscribe
	restarted bool
	types     map[string]bool
}

func newStream(s *service, p createParams) (*stream, error) {
	if p.StreamURL == "" || p.CallbackURL == "" {
		return nil, fmt.Errorf("streamUrl and callbackUrl are required")
	}
	st := &stream{
		params:   p,
		callback: &http.Client{Transport: s.transport, Timeout: 10 * time.Second},
		log:      s.log,
		done:     make(chan struct{}),
		types:    map[string]bool{"message": true},
	}
	c := &eventsource.Client{HTTPClient: &http.Client{Transport: s.transport}}
	if p.InitialDelayMS != nil {
		c.Backoff.Initial = time.Duration(*p.InitialDelayMS) * time.Millisecond
		if c.Backoff.Initial <= 0 {
			c.Backoff.Initial = -1 // reconnect at once
		}
	}
	if p.ReadTimeoutMS != nil && *p.ReadTimeoutMS > 0 {
		c.ReadTimeout = time.Duration(*p.ReadTimeoutMS) * time.Millisecond
	}
	c.OnComment = func(text string) { st.report(message{Kind: "comment", Comment: &text}) }
	c.OnRetry = func(err error, _ time.Duration) { st.report(message{Kind: "error", Error: err.Error()}) }
	st.client = c
	if _, err := st.request(p.LastEventID); err != nil {
		return nil, err
	}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	return st, nil
}

// request builds the stream request, resuming from lastID.
func (st *stream) request(lastID string) (*http.Request, error) {
	method := st.params.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, st.params.StreamURL, strings.NewReader(st.params.Body))
	if err != nil {
		return nil, err
	}
	if st.params.Body == "" {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	} else {
		req.Header.Set("Content-Type", "text/plain")
	}
	for k, v := range st.params.Headers {
		req.Header.Set(k, v)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	return req, nil
}

// run follows the stream until the stream is deleted, restarting it on
// command.
func (st *stream) run() {
	defer close(st.done)
	lastID := st.params.LastEventID
	for {
		ctx, stop := context.WithCancel(st.ctx)
		st.mu.Lock()
		st.stopConn = stop
		st.mu.Unlock()
		req, err := st.request(lastID)
		if err == nil {
			err = st.client.Subscribe(ctx, req, st.event)
		}
		stop()
		if st.ctx.Err() != nil {
			return
		}
		st.mu.Lock()
		restarted := st.restarted
		st.restarted = false
		st.mu.Unlock()
		if restarted {
			lastID = st.client.LastEventID()
			continue
		}
		if err != nil {
			st.report(message{Kind: "error", Error: err.Error()})
		}
		<-st.ctx.Done() // stopped for good; wait for DELETE
		return
	}
}

func (st *stream) event(ev sse.Event) error {
	st.mu.Lock()
	ok := st.types[ev.Type]
	st.mu.Unlock()
	if ok {
		st.report(message{Kind: "event", Event: &eventJSON{Type: ev.Type, Data: ev.Data, ID: ev.ID}})
	}
	return nil
}

func (st *stream) restart() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.restarted = true
	if st.stopConn != nil {
		st.stopConn()
	}
}

func (st *stream) listen(typ string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.types[typ] = true
}

// report posts m to the next callback URL. It is called from the run
// goroutine only.
func (st *stream) report(m message) {
	st.n++
	body, err := json.Marshal(m)
	if err != nil {
		st.log.Printf("callback %d: %v", st.n, err)
		return
	}
	url := strings.TrimSuffix(st.params.CallbackURL, "/") + "/" + strconv.Itoa(st.n)
	req, err := http.NewRequestWithContext(st.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		st.log.Printf("callback %d: %v", st.n, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := st.callback.Do(req)
	if err != nil {
		if st.ctx.Err() == nil { // a deleted stream's callbacks are moot
			st.log.Printf("callback %d: %v", st.n, err)
		}
		return
	}
	resp.Body.Close()
}
