package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// WorkerSpec is what a worker is told to do: which subscribers to open
// against which hub.
type WorkerSpec struct {
	// Hub is the hub's URL, http only.
	Hub string `json:"hub"`
	// TopicPrefix and Topics name the topics: TopicPrefix + "0" to
	// TopicPrefix + (Topics-1); with Shared, also TopicPrefix + "shared",
	// whose index is Topics.
	TopicPrefix string `json:"topic_prefix"`
	Topics      int    `json:"topics"`
	Shared      bool   `json:"shared"`
	// First is the index of the worker's first subscriber among all, and
	// Count how many it opens. Subscriber i reads topic i mod Topics (and
	// the shared topic).
	First int `json:"first"`
	Count int `json:"count"`
	// Stalled is how many stalled subscribers the worker opens besides
	// (see stalled.go); stalled subscriber StalledFirst+j reads topic
	// (StalledFirst+j) mod Topics (and the shared topic).
	Stalled      int `json:"stalled,omitempty"`
	StalledFirst int `json:"stalled_first,omitempty"`
	// SourceIPs are the local addresses subscribers connect from, in
	// turn; empty means the system's choice.
	SourceIPs []string `json:"source_ips,omitempty"`
	// Token is the subscribers' bearer token; empty means anonymous.
	Token string `json:"token,omitempty"`
	// ConnectConcurrency bounds the connections being opened at once.
	ConnectConcurrency int `json:"connect_concurrency"`
	// Tick is the interval of progress reports.
	Tick time.Duration `json:"tick"`
	// RunID is the run's identifier, part of the event IDs the
	// benchmark chooses.
	RunID string `json:"run_id"`
	// InProcess tells the worker it shares the coordinator's process, so
	// its CPU time is the coordinator's.
	InProcess bool `json:"in_process"`
	// ReadLoops is how many read loops read the subscribers' streams (on
	// Linux): zero means DefaultReadLoops, negative none.
	ReadLoops int `json:"read_loops,omitempty"`
}

// DefaultReadLoops is how many read loops a worker runs unless told
// otherwise. One loop reads 10,000 streams an event at a time on under a
// core. On 2 cores a second one cost the tool about 10% more CPU and saved
// the hub about 8% with one worker process, and with two it gave back most
// of the tool's saving (see docs/BENCHMARKS.md).
const DefaultReadLoops = 1

// stormSpec asks every subscriber to disconnect and resume Behind events
// before the last event of its topic (Last, by topic index).
type stormSpec struct {
	Behind  uint64   `json:"behind"`
	Last    []uint64 `json:"last"`
	RunID   string   `json:"-"`
	started time.Time
}

// command is a message from the coordinator to a worker.
type command struct {
	// Op is start (with Spec), mark (start measuring CPU), storm (with
	// Storm), sync (with Expected: answer synced once every subscriber
	// has every expected event, or after Timeout) or drain (sync, then
	// answer result and end).
	Op       string        `json:"op"`
	Spec     *WorkerSpec   `json:"spec,omitempty"`
	Storm    *stormSpec    `json:"storm,omitempty"`
	Expected []uint64      `json:"expected,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
}

// report is a message from a worker to the coordinator.
type report struct {
	// Op is tick, connected (every subscriber is live), synced, result
	// or error.
	Op         string        `json:"op"`
	Tick       *tick         `json:"tick,omitempty"`
	Result     *WorkerResult `json:"result,omitempty"`
	Incomplete int           `json:"incomplete,omitempty"`
	Error      string        `json:"error,omitempty"`
}

// tick is a worker's progress: cumulative counters and the latencies
// recorded since its previous tick.
type tick struct {
	Connected     uint64     `json:"connected"`
	Delivered     uint64     `json:"delivered"`
	Disconnects   uint64     `json:"disconnects"`
	ConnectErrors uint64     `json:"connect_errors"`
	Refused       uint64     `json:"refused"`
	CaughtUp      uint64     `json:"caught_up"`
	LastError     string     `json:"last_error,omitempty"`
	Latency       *Histogram `json:"latency"`
}

// WorkerResult is what one worker measured; Merge adds up those of every
// worker.
type WorkerResult struct {
	Subscribers        int        `json:"subscribers"`
	Connected          uint64     `json:"connected"`
	ConnectSeconds     float64    `json:"connect_seconds"` // until the last subscriber was live
	Delivered          uint64     `json:"delivered"`
	DeliveredSinceMark uint64     `json:"delivered_since_mark"`
	LastDelivery       int64      `json:"last_delivery"` // Unix ns
	Lost               uint64     `json:"lost"`
	Duplicated         uint64     `json:"duplicated"`
	Late               uint64     `json:"late"`  // too far out of order to check for duplication
	Extra              uint64     `json:"extra"` // more distinct events than acknowledged publishes
	Foreign            uint64     `json:"foreign"`
	Other              uint64     `json:"other"` // events with a type, e.g. ssehub.gap
	Incomplete         int        `json:"incomplete"`
	Disconnects        uint64     `json:"disconnects"`
	Reconnects         uint64     `json:"reconnects"`
	ConnectErrors      uint64     `json:"connect_errors"`
	Refused            uint64     `json:"refused"` // streams the hub refused for a while: see refusedError
	CaughtUp           uint64     `json:"caught_up"`
	Stalled            int        `json:"stalled,omitempty"`
	StalledConnected   uint64     `json:"stalled_connected,omitempty"`
	StalledCutOff      uint64     `json:"stalled_cut_off,omitempty"`
	CPUSeconds         float64    `json:"cpu_seconds"` // since mark; 0 in-process
	RSSBytes           int64      `json:"rss_bytes"`   // at mark; 0 in-process
	Processes          int        `json:"processes"`
	LastError          string     `json:"last_error,omitempty"`
	Latency            *Histogram `json:"latency"`
	Catchup            *Histogram `json:"catchup"`
}

// Merge adds o to r: counts add up, the connect time is the longest.
func (r *WorkerResult) Merge(o *WorkerResult) {
	r.Subscribers += o.Subscribers
	r.Connected += o.Connected
	r.ConnectSeconds = max(r.ConnectSeconds, o.ConnectSeconds)
	r.Delivered += o.Delivered
	r.DeliveredSinceMark += o.DeliveredSinceMark
	r.LastDelivery = max(r.LastDelivery, o.LastDelivery)
	r.Lost += o.Lost
	r.Duplicated += o.Duplicated
	r.Late += o.Late
	r.Extra += o.Extra
	r.Foreign += o.Foreign
	r.Other += o.Other
	r.Incomplete += o.Incomplete
	r.Disconnects += o.Disconnects
	r.Reconnects += o.Reconnects
	r.ConnectErrors += o.ConnectErrors
	r.Refused += o.Refused
	r.CaughtUp += o.CaughtUp
	r.Stalled += o.Stalled
	r.StalledConnected += o.StalledConnected
	r.StalledCutOff += o.StalledCutOff
	r.CPUSeconds += o.CPUSeconds
	r.RSSBytes += o.RSSBytes
	r.Processes += o.Processes
	if r.LastError == "" {
		r.LastError = o.LastError
	}
	if r.Latency == nil {
		r.Latency = &Histogram{}
	}
	r.Latency.Merge(o.Latency)
	if r.Catchup == nil {
		r.Catchup = &Histogram{}
	}
	r.Catchup.Merge(o.Catchup)
}

// worker holds a share of the subscribers.
type worker struct {
	spec       WorkerSpec
	hostPort   string
	reqHead    string // request line and headers up to the topics
	reqTail    []byte // the rest, with the final empty line
	localAddrs []net.Addr
	subs       []*subscriber
	stalled    []*subscriber // never read: see stalled.go
	loops      []*readLoop   // read the subscribers' streams, if any
	dialSem    chan struct{}
	started    time.Time

	latency       atomicHistogram
	catchup       atomicHistogram
	connected     atomic.Uint64
	delivered     atomic.Uint64
	lastDelivery  atomic.Int64
	disconnects   atomic.Uint64
	reconnects    atomic.Uint64
	connectErrors atomic.Uint64
	refused       atomic.Uint64
	caughtUp      atomic.Uint64
	stalledLive   atomic.Uint64
	allLive       atomic.Bool // liveOne has seen every subscriber live
	stalledCut    atomic.Uint64
	foreign       atomic.Uint64
	other         atomic.Uint64
	lastErr       atomic.Pointer[string]
	connectedAt   atomic.Int64 // ns since started
	events        chan string  // "connected", "nudge"
}

func (w *worker) setLastError(err error) {
	s := err.Error()
	w.lastErr.Store(&s)
}

func (w *worker) lastError() string {
	if p := w.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// liveOne notes that one more subscriber, stalled or not, is live, and
// signals when all are.
func (w *worker) liveOne() {
	if w.connected.Load() == uint64(len(w.subs)) && w.stalledLive.Load() == uint64(len(w.stalled)) &&
		w.allLive.CompareAndSwap(false, true) {
		w.allConnected()
	}
}

func (w *worker) allConnected() {
	w.connectedAt.Store(int64(time.Since(w.started)))
	w.signal("connected")
}

func (w *worker) nudge() { w.signal("nudge") }

func (w *worker) signal(ev string) {
	select {
	case w.events <- ev:
	default:
	}
}

// topicName is the name of topic index i.
func topicName(prefix string, topics int, i int) string {
	if i == topics {
		return prefix + "shared"
	}
	return prefix + strconv.Itoa(i)
}

// newWorker checks spec and prepares the requests.
func newWorker(spec WorkerSpec) (*worker, error) {
	u, err := url.Parse(spec.Hub)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("hub URL %q: want an http:// URL (HTTPS is not supported by the load tool)", spec.Hub)
	}
	if spec.Topics < 1 || spec.Count < 0 || spec.Stalled < 0 {
		return nil, errors.New("worker spec: want at least one topic and a non-negative count")
	}
	w := &worker{spec: spec, events: make(chan string, 4), started: time.Now()}
	w.hostPort = u.Host
	if u.Port() == "" {
		w.hostPort = net.JoinHostPort(u.Hostname(), "80")
	}
	for _, ip := range spec.SourceIPs {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, fmt.Errorf("source address %q is not an IP address", ip)
		}
		w.localAddrs = append(w.localAddrs, &net.TCPAddr{IP: a})
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	sep := "?"
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
		sep = "&"
	}
	w.reqHead = "GET " + path + sep
	tail := " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\nUser-Agent: ssehub-bench\r\n"
	if spec.Token != "" {
		tail += "Authorization: Bearer " + spec.Token + "\r\n"
	}
	w.reqTail = []byte(tail + "\r\n")
	conc := max(spec.ConnectConcurrency, 1)
	w.dialSem = make(chan struct{}, conc)
	for i := range spec.Count {
		idx := spec.First + i
		s := &subscriber{w: w, index: idx, ntopic: 1}
		s.topics[0] = uint32(idx % spec.Topics)
		if spec.Shared {
			s.topics[1], s.ntopic = uint32(spec.Topics), 2
		}
		w.subs = append(w.subs, s)
	}
	for i := range spec.Stalled {
		idx := spec.StalledFirst + i
		s := &subscriber{w: w, index: idx, ntopic: 1, stalled: true}
		s.topics[0] = uint32(idx % spec.Topics)
		if spec.Shared {
			s.topics[1], s.ntopic = uint32(spec.Topics), 2
		}
		w.stalled = append(w.stalled, s)
	}
	return w, nil
}

// loopOf returns the read loop of s, or nil if s reads its own stream.
func (w *worker) loopOf(s *subscriber) *readLoop {
	if len(w.loops) == 0 {
		return nil
	}
	return w.loops[s.index%len(w.loops)]
}

// request returns the GET request of s, ending with the empty line.
func (w *worker) request(s *subscriber) []byte {
	b := make([]byte, 0, len(w.reqHead)+len(w.reqTail)+128)
	b = append(b, w.reqHead...)
	for i := range s.ntopic {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, "topic="...)
		b = append(b, url.QueryEscape(topicName(w.spec.TopicPrefix, w.spec.Topics, int(s.topics[i])))...)
	}
	return append(b, w.reqTail...)
}

// complete counts the subscribers that lack some expected event.
func (w *worker) incomplete(expected []uint64) int {
	n := 0
	for _, s := range w.subs {
		for i := range s.ntopic {
			t := int(s.topics[i])
			if t < len(expected) && s.got[i].Load() < expected[t] {
				n++
				break
			}
		}
	}
	return n
}

// ServeWorker is the worker side of the coordinator protocol: it reads
// commands, one JSON object per line, from in and writes reports to out
// until told to drain (it then answers with its result) or in ends. It is
// what the hidden `ssehub bench worker` mode runs.
func ServeWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(r report) error {
		outMu.Lock()
		defer outMu.Unlock()
		return enc.Encode(r)
	}
	cmds := make(chan command)
	readErr := make(chan error, 1)
	go func() {
		dec := json.NewDecoder(bufio.NewReader(in))
		for {
			var c command
			if err := dec.Decode(&c); err != nil {
				readErr <- err
				return
			}
			select {
			case cmds <- c:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
	}()
	next := func() (command, error) {
		select {
		case c := <-cmds:
			return c, nil
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				err = errors.New("the coordinator went away")
			}
			return command{}, err
		}
	}
	c, err := next()
	if err != nil {
		return err
	}
	if c.Op != "start" || c.Spec == nil {
		return fmt.Errorf("worker: first command is %q, want start", c.Op)
	}
	w, err := newWorker(*c.Spec)
	if err != nil {
		send(report{Op: "error", Error: err.Error()})
		return err
	}
	loops := w.spec.ReadLoops
	if loops == 0 {
		loops = DefaultReadLoops
	}
	if w.loops, err = startReadLoops(max(loops, 0)); err != nil {
		send(report{Op: "error", Error: err.Error()})
		return err
	}
	var wg sync.WaitGroup
	stopAll := func() {
		for _, s := range w.subs {
			s.interrupt(true)
		}
		for _, s := range w.stalled {
			s.interrupt(true)
		}
		cancel()
		wg.Wait()
		// Every stream has ended: the loops own none.
		for _, l := range w.loops {
			l.stop()
		}
		w.loops = nil
	}
	defer stopAll()
	for _, s := range w.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}
	for _, s := range w.stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runStalled(ctx)
		}()
	}
	if len(w.subs) == 0 && len(w.stalled) == 0 {
		w.allConnected()
	}
	tickEvery := w.spec.Tick
	if tickEvery <= 0 {
		tickEvery = time.Second
	}
	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	var (
		prev     *Histogram
		markCPU  float64
		markDel  uint64
		rss      int64
		syncing  []uint64 // expected events while a sync or drain is under way
		deadline <-chan time.Time
		draining bool
	)
	sendTick := func() error {
		snap := w.latency.snapshot()
		t := &tick{
			Connected:     w.connected.Load(),
			Delivered:     w.delivered.Load(),
			Disconnects:   w.disconnects.Load(),
			ConnectErrors: w.connectErrors.Load(),
			Refused:       w.refused.Load(),
			CaughtUp:      w.caughtUp.Load(),
			LastError:     w.lastError(),
			Latency:       snap.since(prev),
		}
		prev = snap
		return send(report{Op: "tick", Tick: t})
	}
	finish := func(incomplete int) error {
		w.checkStalled()
		stopAll()
		res := w.result(syncing, incomplete)
		res.DeliveredSinceMark = res.Delivered - markDel
		if !w.spec.InProcess {
			res.CPUSeconds = processCPU() - markCPU
			res.RSSBytes = rss
			res.Processes = 1
		}
		if err := sendTick(); err != nil {
			return err
		}
		return send(report{Op: "result", Result: res})
	}
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		var pollC <-chan time.Time
		if syncing != nil {
			pollC = poll.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				return errors.New("the coordinator went away")
			}
			return err
		case ev := <-w.events:
			if ev == "connected" {
				if err := send(report{Op: "connected"}); err != nil {
					return err
				}
			}
			if err := sendTick(); err != nil {
				return err
			}
		case <-ticker.C:
			if err := sendTick(); err != nil {
				return err
			}
		case <-pollC:
			if n := w.incomplete(syncing); n > 0 {
				continue
			}
			if draining {
				return finish(0)
			}
			syncing, deadline = nil, nil
			if err := send(report{Op: "synced"}); err != nil {
				return err
			}
		case <-deadline:
			n := w.incomplete(syncing)
			if draining {
				return finish(n)
			}
			syncing, deadline = nil, nil
			if err := send(report{Op: "synced", Incomplete: n}); err != nil {
				return err
			}
		case c := <-cmds:
			switch c.Op {
			case "mark":
				markCPU, markDel = processCPU(), w.delivered.Load()
				rss, _ = rssOf("self")
			case "storm":
				if c.Storm == nil {
					return errors.New("worker: storm without its parameters")
				}
				st := *c.Storm
				st.RunID, st.started = w.spec.RunID, time.Now()
				w.caughtUp.Store(0)
				for _, s := range w.subs {
					s.storm.Store(&st)
					s.interrupt(false)
				}
			case "sync", "drain":
				syncing = c.Expected
				if syncing == nil {
					syncing = []uint64{}
				}
				draining = c.Op == "drain"
				deadline = time.After(max(c.Timeout, time.Millisecond))
			default:
				return fmt.Errorf("worker: unknown command %q", c.Op)
			}
		}
	}
}

// result totals the subscribers' counts once their goroutines are done.
func (w *worker) result(expected []uint64, incomplete int) *WorkerResult {
	r := &WorkerResult{
		Subscribers:      len(w.subs),
		Connected:        w.connected.Load(),
		ConnectSeconds:   time.Duration(w.connectedAt.Load()).Seconds(),
		Delivered:        w.delivered.Load(),
		LastDelivery:     w.lastDelivery.Load(),
		Foreign:          w.foreign.Load(),
		Other:            w.other.Load(),
		Incomplete:       incomplete,
		Disconnects:      w.disconnects.Load(),
		Reconnects:       w.reconnects.Load(),
		ConnectErrors:    w.connectErrors.Load(),
		Refused:          w.refused.Load(),
		CaughtUp:         w.caughtUp.Load(),
		Stalled:          len(w.stalled),
		StalledConnected: w.stalledLive.Load(),
		StalledCutOff:    w.stalledCut.Load(),
		LastError:        w.lastError(),
		Latency:          w.latency.snapshot(),
		Catchup:          w.catchup.snapshot(),
	}
	for _, s := range w.subs {
		for i := range s.ntopic {
			t := &s.trk[i]
			r.Duplicated += t.dups
			r.Late += t.late
			want := uint64(0)
			if int(s.topics[i]) < len(expected) {
				want = expected[s.topics[i]]
			}
			if t.distinct < want {
				r.Lost += want - t.distinct
			} else {
				r.Extra += t.distinct - want
			}
		}
	}
	return r
}
