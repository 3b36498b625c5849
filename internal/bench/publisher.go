package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
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

	connsMu sync.Mutex
	conns   map[*pubConn]struct{} // every connection, closed by close
	idle    []*pubConn            // those no publisher holds, for the next run

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
	return &publishers{
		hub: cfg.Hub, token: cfg.PublisherToken, prefix: cfg.TopicPrefix,
		topics: cfg.Topics, sharedPct: cfg.SharedPercent, payloadSize: cfg.PayloadSize,
		ids: cfg.IDs, runID: runID,
		seqs:   make([]atomic.Uint64, n),
		failed: make([]atomic.Uint64, n),
	}
}

// close closes the publishers' connections. Call it once run returned.
func (p *publishers) close() {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	for c := range p.conns {
		c.close()
	}
	p.conns, p.idle = nil, nil
}

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
			pc := p.getConn()
			defer p.putConn(pc)
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
				body = p.publishOne(pc, body[:0], p.pick(i))
			}
		}()
	}
	wg.Wait()
}

// publishOne sends the next event of topic t on pc, reusing buf for the
// body.
func (p *publishers) publishOne(pc *pubConn, buf []byte, t uint32) []byte {
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
	err := pc.post(buf)
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

// publishTimeout bounds one publish request, from dialing to the end of
// the answer.
const publishTimeout = 30 * time.Second

// pubConn is one publisher's keep-alive HTTP/1.1 connection to the hub. It
// writes each request in one write and reads the answer on the same
// goroutine: no transport goroutines, no connection pool, so that the
// load tool spends as little of the machine it shares with the hub as it
// can. It redials after an error or a "Connection: close". A pubConn is
// used by one goroutine at a time.
type pubConn struct {
	p    *publishers
	addr string // host:port to dial
	tls  *tls.Config
	head []byte // request line and headers up to "Content-Length: "
	conn net.Conn
	br   *bufio.Reader
	req  []byte
	msg  []byte // the answer's body (see readAnswer)
}

// getConn returns an idle connection or a new one (dialed on first use).
func (p *publishers) getConn() *pubConn {
	p.connsMu.Lock()
	if n := len(p.idle); n > 0 {
		pc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.connsMu.Unlock()
		return pc
	}
	p.connsMu.Unlock()
	pc := &pubConn{p: p}
	u, err := url.Parse(p.hub) // Config.Validate checked it
	if err != nil {
		return pc
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	pc.addr = net.JoinHostPort(host, port)
	if u.Scheme == "https" {
		pc.tls = &tls.Config{ServerName: host, NextProtos: []string{"http/1.1"}}
	}
	h := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUser-Agent: ssehub-bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	if p.token != "" {
		h += "Authorization: Bearer " + p.token + "\r\n"
	}
	pc.head = append([]byte(h), "Content-Length: "...)
	p.connsMu.Lock()
	if p.conns == nil {
		p.conns = make(map[*pubConn]struct{})
	}
	p.conns[pc] = struct{}{}
	p.connsMu.Unlock()
	return pc
}

// putConn makes pc available to the next run.
func (p *publishers) putConn(pc *pubConn) {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	if p.conns != nil {
		p.idle = append(p.idle, pc)
	}
}

// close closes the connection; a later post dials again unless publishers
// were closed.
func (pc *pubConn) close() {
	if pc.conn != nil {
		_ = pc.conn.Close()
	}
}

// post publishes a form body and reads the answer: nil for 200, else an
// error naming the status and the first line of the answer's body.
func (pc *pubConn) post(body []byte) error {
	if pc.addr == "" {
		return fmt.Errorf("hub %q: want an http URL", pc.p.hub)
	}
	if pc.conn == nil {
		if err := pc.dial(); err != nil {
			return err
		}
	}
	err := pc.roundTrip(body)
	if err != nil {
		pc.drop()
	}
	return err
}

// drop closes the connection so that the next post dials a new one.
func (pc *pubConn) drop() {
	pc.p.connsMu.Lock()
	defer pc.p.connsMu.Unlock()
	pc.close()
	pc.conn = nil
}

func (pc *pubConn) dial() error {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", pc.addr)
	if err != nil {
		return err
	}
	if pc.tls != nil {
		tc := tls.Client(conn, pc.tls)
		_ = tc.SetDeadline(time.Now().Add(publishTimeout))
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return err
		}
		conn = tc
	}
	pc.p.connsMu.Lock()
	defer pc.p.connsMu.Unlock()
	if pc.p.conns == nil { // closed meanwhile
		conn.Close()
		return net.ErrClosed
	}
	pc.conn = conn
	if pc.br == nil {
		pc.br = bufio.NewReaderSize(conn, 4<<10)
	} else {
		pc.br.Reset(conn)
	}
	return nil
}

// roundTrip writes one request and reads its answer. After an error the
// caller closes the connection; an answer that closes it is closed here.
func (pc *pubConn) roundTrip(body []byte) error {
	_ = pc.conn.SetDeadline(time.Now().Add(publishTimeout))
	pc.req = append(pc.req[:0], pc.head...)
	pc.req = strconv.AppendInt(pc.req, int64(len(body)), 10)
	pc.req = append(pc.req, "\r\n\r\n"...)
	pc.req = append(pc.req, body...)
	if _, err := pc.conn.Write(pc.req); err != nil {
		return err
	}
	a, err := readAnswer(pc.br, pc.msg)
	pc.msg = a.body[:0] // keep its array for the next answer
	if err != nil {
		return err
	}
	if a.code != http.StatusOK {
		msg, _, _ := bytes.Cut(bytes.TrimSpace(a.body), []byte("\n"))
		err = fmt.Errorf("publish: hub answered %s: %s", a.status, msg)
	}
	if a.close {
		pc.drop()
	}
	return err
}
