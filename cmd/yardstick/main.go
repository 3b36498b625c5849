// Command yardstick is a deliberately minimal Server-Sent Events fan-out
// server speaking the core of the Mercure protocol: the yardstick that
// `ssehub bench` measures ssehub against.
//
// It is what a competent engineer writes in an afternoon with net/http: a
// goroutine per stream, a buffered channel per subscriber, a map from
// topic to subscribers under one RWMutex. It has no authentication, no
// history (so no resumption) and no topic selectors beyond exact names.
// A subscriber whose buffer is full is dropped, never waited for.
//
//	GET  /.well-known/mercure?topic=T[&topic=U...]   an event stream
//	POST /.well-known/mercure  topic=T[&topic=U...]&data=D[&id=I][&type=E]
//
// A publish answers 200 with the event's ID. Streams get a heartbeat
// comment every --heartbeat and one flush per event, or per burst of
// queued events with --coalesce.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "localhost:8081", "address to listen on")
	heartbeat := flag.Duration("heartbeat", 25*time.Second, "interval of keep-alive comments")
	buffer := flag.Int("buffer", 256, "events queued per subscriber before it is dropped")
	coalesce := flag.Bool("coalesce", false, "write every queued event before flushing, not one flush per event")
	flag.Parse()
	if *heartbeat <= 0 || *buffer <= 0 {
		fmt.Fprintln(os.Stderr, "yardstick: --heartbeat and --buffer must be positive")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "yardstick:", err)
		os.Exit(1)
	}
	s := newServer(*heartbeat, *buffer, *coalesce)
	mux := http.NewServeMux()
	mux.Handle(path, s)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Printf("yardstick serving on http://%s%s\n", ln.Addr(), path)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// path is where the Mercure protocol puts the hub.
const path = "/.well-known/mercure"

// server fans every published event out to the subscribers of its topics.
type server struct {
	heartbeat time.Duration
	buffer    int
	coalesce  bool
	nextID    atomic.Uint64

	mu     sync.RWMutex
	topics map[string]map[*client]struct{}
}

// client is one stream's queue. gone is closed when the client is dropped
// for being too slow.
type client struct {
	ch   chan []byte
	gone chan struct{}
	once sync.Once
}

func (c *client) drop() { c.once.Do(func() { close(c.gone) }) }

func newServer(heartbeat time.Duration, buffer int, coalesce bool) *server {
	return &server{heartbeat: heartbeat, buffer: buffer, coalesce: coalesce, topics: map[string]map[*client]struct{}{}}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		s.subscribe(w, r)
	case http.MethodPost:
		s.publish(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *server) subscribe(w http.ResponseWriter, r *http.Request) {
	topics := r.URL.Query()["topic"]
	if len(topics) == 0 {
		http.Error(w, "missing topic", http.StatusBadRequest)
		return
	}
	c := &client{ch: make(chan []byte, s.buffer), gone: make(chan struct{})}
	s.mu.Lock()
	for _, t := range topics {
		if s.topics[t] == nil {
			s.topics[t] = map[*client]struct{}{}
		}
		s.topics[t][c] = struct{}{}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for _, t := range topics {
			delete(s.topics[t], c)
			if len(s.topics[t]) == 0 {
				delete(s.topics, t)
			}
		}
		s.mu.Unlock()
	}()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	hb := time.NewTicker(s.heartbeat)
	defer hb.Stop()
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := w.Write(b)
		return err == nil
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case <-hb.C:
			if !write([]byte(":\n\n")) || rc.Flush() != nil {
				return
			}
		case frame := <-c.ch:
			if !write(frame) {
				return
			}
			for s.coalesce && len(c.ch) > 0 {
				if !write(<-c.ch) {
					return
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	topics := r.PostForm["topic"]
	id, typ := r.PostForm.Get("id"), r.PostForm.Get("type")
	switch {
	case len(topics) == 0:
		http.Error(w, "missing topic", http.StatusBadRequest)
		return
	case strings.ContainsAny(id+typ, "\r\n"):
		http.Error(w, "id and type must be one line", http.StatusBadRequest)
		return
	}
	if id == "" {
		id = "urn:yardstick:" + strconv.FormatUint(s.nextID.Add(1), 10)
	}
	var b strings.Builder
	b.WriteString("id: " + id + "\n")
	if typ != "" {
		b.WriteString("event: " + typ + "\n")
	}
	data := strings.ReplaceAll(r.PostForm.Get("data"), "\r\n", "\n")
	for _, line := range strings.Split(strings.ReplaceAll(data, "\r", "\n"), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	s.fanout(topics, []byte(b.String()))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, id)
}

// fanout queues frame for every subscriber of topics, once each, and drops
// the subscribers whose queue is full.
func (s *server) fanout(topics []string, frame []byte) {
	send := func(c *client) {
		select {
		case c.ch <- frame:
		default:
			c.drop()
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(topics) == 1 {
		for c := range s.topics[topics[0]] {
			send(c)
		}
		return
	}
	seen := map[*client]bool{}
	for _, t := range topics {
		for c := range s.topics[t] {
			if !seen[c] {
				seen[c] = true
				send(c)
			}
		}
	}
}
