package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Modes of a run.
const (
	// ModeLoad connects the subscribers, then publishes at Config.Rate
	// for Config.Duration. Without subscribers it measures publishing
	// alone and reports the mode as ModePublish.
	ModeLoad = "load"
	// ModePublish is ModeLoad without subscribers.
	ModePublish = "publish"
	// ModeIdle connects the subscribers and holds them for
	// Config.Duration without publishing: memory per subscriber.
	ModeIdle = "idle"
	// ModeStorm publishes Config.Behind+10 events per topic, then has
	// every subscriber disconnect and resume Config.Behind events back,
	// while publishing continues at Config.Rate.
	ModeStorm = "resume-storm"
	// ModeRamp publishes at rising rates until the p99 latency of a step
	// passes Config.Ramp.MaxP99 or deliveries fall behind.
	ModeRamp = "ramp"
)

// MaxPerWorker is the most subscribers one worker process holds: a
// process here may have 20,000 open files at most.
const MaxPerWorker = 19000

// Config describes a run. Zero fields take the defaults documented on
// them.
type Config struct {
	// Hub is the hub's URL, e.g. http://127.0.0.1:8080/.well-known/mercure.
	Hub string
	// Mode is one of the Mode constants; empty means ModeLoad.
	Mode string
	// Subscribers is the number of subscribers.
	Subscribers int
	// Stalled is how many extra subscribers connect and then never read
	// (a slow consumer the hub must not let delay the others; see
	// stalled.go). Stalled subscriber j reads the topics subscriber j
	// does. They count in no latency, delivery or loss figure; the result
	// reports how many the hub had cut off by the end.
	Stalled int
	// Topics is the number of distinct topics; subscriber i reads topic
	// i mod Topics. Zero means 1.
	Topics int
	// SharedPercent, when positive, adds a topic every subscriber also
	// reads, which receives this percentage of the events.
	SharedPercent int
	// TopicPrefix starts every topic name. Empty means
	// "https://bench.example/t/".
	TopicPrefix string
	// Rate is events per second over all publishers; 0 means as fast as
	// the hub acknowledges (closed loop).
	Rate float64
	// Duration is how long to publish (or, idle, to hold). Zero means 10 s.
	Duration time.Duration
	// Events, when positive, stops publishing after that many events.
	Events uint64
	// PayloadSize is the size of each event's data in bytes; zero means
	// 100. The payload head (about 40 bytes) is never truncated.
	PayloadSize int
	// Publishers is the number of concurrent keep-alive publishers; zero
	// means 1.
	Publishers int
	// IDs makes the publishers choose the event IDs (ModeStorm always
	// does); otherwise the hub does.
	IDs bool
	// PublisherToken and SubscriberToken are bearer tokens; an empty
	// SubscriberToken subscribes anonymously.
	PublisherToken, SubscriberToken string
	// SourceIPs are the local addresses subscribers connect from, in
	// turn. Nil means: 127.0.0.1, 127.0.0.2, ... (one per 20,000
	// subscribers) when the hub's host is a 127.x address and there are
	// more than 20,000 subscribers, else the system's choice.
	SourceIPs []string
	// Workers is the number of worker processes holding the subscribers;
	// zero runs them in this process. A worker holds at most
	// MaxPerWorker subscribers.
	Workers int
	// WorkerCommand returns the command that runs a worker process (its
	// stdin and stdout are the protocol of ServeWorker). Required when
	// Workers > 0.
	WorkerCommand func() *exec.Cmd
	// ConnectConcurrency bounds the connections being opened at once;
	// zero means 100.
	ConnectConcurrency int
	// ReadLoops is how many read loops (loop_linux.go) each worker reads
	// its subscribers' streams with; zero means DefaultReadLoops, and
	// negative means none: a goroutine reads each stream.
	ReadLoops int
	// ConnectTimeout bounds the time to connect every subscriber; zero
	// means 2 minutes.
	ConnectTimeout time.Duration
	// Settle is the pause between connecting and measuring memory.
	Settle time.Duration
	// DrainTimeout bounds the wait, after publishing, for every
	// subscriber to receive every event; zero means 10 s.
	DrainTimeout time.Duration
	// Behind is how many events back subscribers resume in ModeStorm;
	// zero means 100. At most 1000.
	Behind uint64
	// StormTimeout bounds the wait for every subscriber to be live again
	// after a storm; zero means 60 s.
	StormTimeout time.Duration
	// Ramp configures ModeRamp.
	Ramp Ramp
	// PID is the hub's process ID, to read its memory and CPU from /proc;
	// zero skips that.
	PID int
	// Label names the run in reports.
	Label string
	// Progress receives a line per second while running; nil discards.
	Progress io.Writer
	// WorkerStderr receives the stderr of worker processes; nil means
	// os.Stderr.
	WorkerStderr io.Writer
}

// Ramp configures ModeRamp: steps of Step at Start events/s, multiplied
// by Factor each step, until a step's p99 latency passes MaxP99,
// deliveries fall below 80% of the target, or MaxSteps steps ran.
type Ramp struct {
	Start    float64       // zero means 10
	Factor   float64       // zero means 2
	Step     time.Duration // zero means 5 s
	MaxP99   time.Duration // zero means 500 ms
	MaxSteps int           // zero means 12
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeLoad
	}
	if c.Topics == 0 {
		c.Topics = 1
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = "https://bench.example/t/"
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.PayloadSize == 0 {
		c.PayloadSize = 100
	}
	if c.Publishers == 0 {
		c.Publishers = 1
	}
	if c.ConnectConcurrency == 0 {
		c.ConnectConcurrency = 100
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 2 * time.Minute
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Behind == 0 {
		c.Behind = 100
	}
	if c.StormTimeout == 0 {
		c.StormTimeout = time.Minute
	}
	r := &c.Ramp
	if r.Start == 0 {
		r.Start = 10
	}
	if r.Factor == 0 {
		r.Factor = 2
	}
	if r.Step == 0 {
		r.Step = 5 * time.Second
	}
	if r.MaxP99 == 0 {
		r.MaxP99 = 500 * time.Millisecond
	}
	if r.MaxSteps == 0 {
		r.MaxSteps = 12
	}
	if c.Mode == ModeStorm {
		c.IDs = true
	}
}

// Validate reports the first invalid field of c, with the defaults of its
// zero fields applied, as a one-line error.
func (c Config) Validate() error {
	c.setDefaults()
	u, err := url.Parse(c.Hub)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf("hub %q: want an http URL", c.Hub)
	case u.Scheme == "https" && c.Subscribers > 0:
		return errors.New("subscribers speak plain HTTP/1.1 only: give an http:// hub URL")
	}
	switch c.Mode {
	case ModeLoad, ModeIdle, ModeStorm, ModeRamp:
	default:
		return fmt.Errorf("unknown mode %q", c.Mode)
	}
	switch {
	case c.Subscribers < 0:
		return errors.New("subscribers must not be negative")
	case c.Stalled < 0:
		return errors.New("stalled subscribers must not be negative")
	case c.Subscribers == 0 && c.Mode != ModeLoad:
		return fmt.Errorf("mode %s needs subscribers", c.Mode)
	case c.Topics < 1:
		return errors.New("topics must be at least 1")
	case c.SharedPercent < 0 || c.SharedPercent > 100:
		return errors.New("shared percent must be 0 to 100")
	case c.SharedPercent > 0 && c.Mode == ModeStorm:
		return errors.New("a resume storm needs one topic per subscriber: no shared topic")
	case c.Rate < 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate):
		return errors.New("rate must not be negative")
	case c.Duration < 0:
		return errors.New("duration must not be negative")
	case c.PayloadSize < 0 || c.PayloadSize > 1<<20:
		return errors.New("payload size must be 0 to 1 MiB")
	case c.Publishers < 1 || c.Publishers > 10000:
		return errors.New("publishers must be 1 to 10000")
	case c.Workers < 0:
		return errors.New("workers must not be negative")
	case c.Workers > 0 && c.WorkerCommand == nil:
		return errors.New("worker processes need Config.WorkerCommand")
	case c.Workers > c.Subscribers && c.Subscribers > 0:
		return fmt.Errorf("%d workers for %d subscribers: want at most one worker per subscriber", c.Workers, c.Subscribers)
	case c.Subscribers+c.Stalled > MaxPerWorker*max(c.Workers, 1):
		return fmt.Errorf("%d subscribers need at least %d worker processes (at most %d each)",
			c.Subscribers+c.Stalled, (c.Subscribers+c.Stalled+MaxPerWorker-1)/MaxPerWorker, MaxPerWorker)
	case c.Behind > window-10:
		return fmt.Errorf("behind must be at most %d", window-10)
	case c.Ramp.Factor <= 1:
		return errors.New("ramp factor must be above 1")
	case c.Ramp.Start <= 0:
		return errors.New("ramp start rate must be positive")
	case c.Ramp.MaxSteps < 1:
		return errors.New("ramp steps must be at least 1")
	}
	for _, ip := range c.SourceIPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("source address %q is not an IP address", ip)
		}
	}
	return nil
}

// autoSourceIPs is the default of Config.SourceIPs.
func autoSourceIPs(hub string, n int) []string {
	const perIP = 20000
	u, err := url.Parse(hub)
	if err != nil || n <= perIP {
		return nil
	}
	ip := net.ParseIP(u.Hostname()).To4()
	if ip == nil || ip[0] != 127 {
		return nil
	}
	var ips []string
	for i := range (n + perIP - 1) / perIP {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i+1))
	}
	return ips
}

// workerClient is the coordinator's end of one worker.
type workerClient struct {
	in       io.WriteCloser
	enc      *json.Encoder
	readDone chan struct{} // closed when the worker's output ended
	wait     func() error  // after readDone: the worker's end
	kill     func()

	mu     sync.Mutex
	latest tick
}

func (wc *workerClient) send(c command) error {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.enc.Encode(c)
}

func (wc *workerClient) tick() tick {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.latest
}

// workerEvent is a report other than a tick, from worker i.
type workerEvent struct {
	i   int
	rep report
	err error // the worker's output ended
}

// coordinator is the state of one Run.
type coordinator struct {
	cfg      Config
	workers  []*workerClient
	events   chan workerEvent
	quit     chan struct{}
	quitOnce sync.Once

	mu       sync.Mutex
	interval Histogram // latencies since the last progress line
	step     Histogram // latencies since the ramp step began
	timeline []Point
	t0       time.Time
}

// Run performs one benchmark run against cfg.Hub and returns what it
// measured. Cancelling ctx aborts the run.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SourceIPs == nil {
		cfg.SourceIPs = autoSourceIPs(cfg.Hub, cfg.Subscribers+cfg.Stalled)
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	cfg.Progress = &lockedWriter{w: cfg.Progress} // the progress loop and the phases share it
	if cfg.WorkerStderr == nil {
		cfg.WorkerStderr = os.Stderr
	}
	var rid [4]byte
	_, _ = rand.Read(rid[:])
	runID := hex.EncodeToString(rid[:])
	mode := cfg.Mode
	if mode == ModeLoad && cfg.Subscribers == 0 {
		mode = ModePublish
	}
	res := &Result{
		Label: cfg.Label, Mode: mode, Hub: cfg.Hub, Started: time.Now().UTC().Truncate(time.Second),
		Subscribers: cfg.Subscribers, Stalled: cfg.Stalled,
		Params: Params{
			Topics: cfg.Topics, SharedPercent: cfg.SharedPercent, Rate: cfg.Rate,
			Duration: cfg.Duration.String(), PayloadSize: cfg.PayloadSize,
			Publishers: cfg.Publishers, Workers: cfg.Workers, SourceIPs: len(cfg.SourceIPs),
		},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &coordinator{cfg: cfg, events: make(chan workerEvent, 16), quit: make(chan struct{})}
	if err := c.startWorkers(ctx, runID); err != nil {
		c.stopWorkers()
		return nil, err
	}
	defer c.stopWorkers()
	err := c.run(ctx, res, runID)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// startWorkers starts the workers (goroutines or processes) and sends
// each its share of the subscribers.
func (c *coordinator) startWorkers(ctx context.Context, runID string) error {
	cfg := &c.cfg
	n := max(cfg.Workers, 1)
	c.t0 = time.Now()
	first, firstStalled := 0, 0
	for i := range n {
		count := cfg.Subscribers / n
		if i < cfg.Subscribers%n {
			count++
		}
		stalled := cfg.Stalled / n
		if i < cfg.Stalled%n {
			stalled++
		}
		spec := WorkerSpec{
			Hub: cfg.Hub, TopicPrefix: cfg.TopicPrefix, Topics: cfg.Topics, Shared: cfg.SharedPercent > 0,
			First: first, Count: count, Stalled: stalled, StalledFirst: firstStalled,
			SourceIPs: cfg.SourceIPs, Token: cfg.SubscriberToken,
			ConnectConcurrency: max(cfg.ConnectConcurrency/n, 1), Tick: 250 * time.Millisecond,
			RunID: runID, InProcess: cfg.Workers == 0, ReadLoops: cfg.ReadLoops,
		}
		first += count
		firstStalled += stalled
		wc := &workerClient{readDone: make(chan struct{}), kill: func() {}}
		var out io.Reader
		if cfg.Workers == 0 {
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			wc.in, out = inW, outR
			done := make(chan error, 1)
			go func() {
				err := ServeWorker(ctx, inR, outW)
				outW.Close()
				inR.Close()
				done <- err
			}()
			wc.wait = func() error { return <-done }
		} else {
			cmd := cfg.WorkerCommand()
			cmd.Stderr = cfg.WorkerStderr
			in, err := cmd.StdinPipe()
			if err != nil {
				return err
			}
			o, err := cmd.StdoutPipe()
			if err != nil {
				return err
			}
			if err := cmd.Start(); err != nil {
				return fmt.Errorf("starting worker process: %w", err)
			}
			wc.in, out = in, o
			wc.wait = cmd.Wait
			wc.kill = func() { _ = cmd.Process.Kill() }
		}
		wc.enc = json.NewEncoder(wc.in)
		c.workers = append(c.workers, wc)
		go c.readReports(i, wc, out)
		if err := wc.send(command{Op: "start", Spec: &spec}); err != nil {
			return fmt.Errorf("starting worker: %w", err)
		}
	}
	return nil
}

// readReports reads worker i's reports until its output ends: ticks
// update the progress, every other report goes to c.events.
func (c *coordinator) readReports(i int, wc *workerClient, out io.Reader) {
	defer close(wc.readDone)
	dec := json.NewDecoder(bufio.NewReader(out))
	for {
		var r report
		err := dec.Decode(&r)
		if err == nil && r.Op == "tick" && r.Tick != nil {
			c.mu.Lock()
			c.interval.Merge(r.Tick.Latency)
			c.step.Merge(r.Tick.Latency)
			c.mu.Unlock()
			t := *r.Tick
			t.Latency = nil
			wc.mu.Lock()
			wc.latest = t
			wc.mu.Unlock()
			continue
		}
		select {
		case c.events <- workerEvent{i: i, rep: r, err: err}:
		case <-c.quit:
			if err == nil {
				continue // drain the output until it ends
			}
		}
		if err != nil {
			return
		}
	}
}

// stopWorkers ends every worker and waits for it.
func (c *coordinator) stopWorkers() {
	c.quitOnce.Do(func() { close(c.quit) })
	for _, wc := range c.workers {
		wc.in.Close()
	}
	for _, wc := range c.workers {
		select {
		case <-wc.readDone:
		case <-time.After(10 * time.Second):
			wc.kill()
			<-wc.readDone
		}
		_ = wc.wait()
	}
}

var errTimeout = errors.New("timeout")

// waitAll waits for a report op from every worker.
func (c *coordinator) waitAll(ctx context.Context, op string, timeout time.Duration) ([]report, error) {
	got := make([]report, len(c.workers))
	seen := make([]bool, len(c.workers))
	t := time.NewTimer(timeout)
	defer t.Stop()
	for have := 0; have < len(c.workers); {
		select {
		case ev := <-c.events:
			switch {
			case ev.err != nil && seen[ev.i]:
				// It ended after answering, as a worker does after its result.
			case ev.err != nil:
				return nil, fmt.Errorf("worker %d ended early: %v", ev.i+1, ev.err)
			case ev.rep.Op == "error":
				return nil, errors.New(ev.rep.Error)
			case ev.rep.Op == op && !seen[ev.i]:
				got[ev.i], seen[ev.i] = ev.rep, true
				have++
			}
		case <-t.C:
			return nil, errTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return got, nil
}

func (c *coordinator) sendAll(cmd command) error {
	for _, wc := range c.workers {
		if err := wc.send(cmd); err != nil {
			return fmt.Errorf("talking to a worker: %w", err)
		}
	}
	return nil
}

// sum adds up the workers' latest ticks.
func (c *coordinator) sum() tick {
	var s tick
	for _, wc := range c.workers {
		t := wc.tick()
		s.Connected += t.Connected
		s.Delivered += t.Delivered
		s.Disconnects += t.Disconnects
		s.ConnectErrors += t.ConnectErrors
		s.Refused += t.Refused
		s.CaughtUp += t.CaughtUp
		if t.LastError != "" {
			s.LastError = t.LastError
		}
	}
	return s
}

// progress prints a line and records a Point every second until stop is
// closed.
func (c *coordinator) progress(pubs *publishers, stop <-chan struct{}) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	last, lastPub, lastT := uint64(0), uint64(0), c.t0
	for {
		select {
		case <-stop:
			return
		case now := <-tk.C:
			s := c.sum()
			pub := pubs.published.Load()
			c.mu.Lock()
			h := c.interval
			c.interval = Histogram{}
			c.mu.Unlock()
			dt := now.Sub(lastT).Seconds()
			p := Point{
				T:         now.Sub(c.t0).Seconds(),
				Connected: s.Connected,
				Published: float64(pub-lastPub) / dt,
				Delivered: float64(s.Delivered-last) / dt,
				P50:       ms(h.Quantile(0.5)),
				P99:       ms(h.Quantile(0.99)),
			}
			last, lastPub, lastT = s.Delivered, pub, now
			c.mu.Lock()
			c.timeline = append(c.timeline, p)
			c.mu.Unlock()
			line := fmt.Sprintf("%6.1fs  connected %d/%d  published %.0f/s  delivered %.0f/s",
				p.T, s.Connected, c.cfg.Subscribers, p.Published, p.Delivered)
			if h.Count() > 0 {
				line += fmt.Sprintf("  p50 %s  p99 %s", fmtMS(p.P50), fmtMS(p.P99))
			}
			if s.Disconnects > 0 || s.ConnectErrors > 0 {
				line += fmt.Sprintf("  disconnects %d  connect errors %d", s.Disconnects, s.ConnectErrors)
			}
			if s.Refused > 0 {
				line += fmt.Sprintf("  refused %d", s.Refused)
			}
			if e := pubs.errors.Load(); e > 0 {
				line += fmt.Sprintf("  publish errors %d", e)
			}
			fmt.Fprintln(c.cfg.Progress, line)
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run drives the phases of a run and fills res.
func (c *coordinator) run(ctx context.Context, res *Result, runID string) error {
	cfg := &c.cfg
	pubs := newPublishers(cfg, runID, cfg.Publishers)
	defer pubs.close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.progress(pubs, stop)
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	pid := ""
	var srv *ServerStats
	if cfg.PID > 0 {
		pid = strconv.Itoa(cfg.PID)
		rss, err := rssOf(pid)
		if err != nil {
			return fmt.Errorf("reading the hub's memory (--pid %d): %w", cfg.PID, err)
		}
		srv = &ServerStats{PID: cfg.PID, RSSBefore: rss}
	}

	if _, err := c.waitAll(ctx, "connected", cfg.ConnectTimeout); err != nil {
		if errors.Is(err, errTimeout) {
			s := c.sum()
			msg := fmt.Sprintf("only %d of %d subscribers connected within %s", s.Connected, cfg.Subscribers, cfg.ConnectTimeout)
			if s.LastError != "" {
				msg += " (last error: " + s.LastError + ")"
			}
			return errors.New(msg)
		}
		return err
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return err
	}
	if srv != nil {
		rss, err := rssOf(pid)
		if err != nil {
			return fmt.Errorf("reading the hub's memory: %w", err)
		}
		srv.RSSAfter = rss
		if cfg.Subscribers > 0 {
			srv.RSSPerSubscriber = float64(rss-srv.RSSBefore) / float64(cfg.Subscribers)
		}
	}
	if err := c.sendAll(command{Op: "mark"}); err != nil {
		return err
	}
	selfCPU0 := processCPU()
	var hubCPU0 float64
	if srv != nil {
		var err error
		if hubCPU0, err = cpuOf(pid); err != nil {
			return fmt.Errorf("reading the hub's CPU time: %w", err)
		}
	}

	tPub := time.Now()
	var err error
	switch cfg.Mode {
	case ModeIdle:
		err = sleep(ctx, cfg.Duration)
	case ModeLoad:
		pctx, cancel := context.WithTimeout(ctx, cfg.Duration)
		pubs.run(pctx, cfg.Rate, cfg.Events, cfg.Publishers)
		cancel()
	case ModeRamp:
		err = c.ramp(ctx, res, pubs)
	case ModeStorm:
		err = c.storm(ctx, res, pubs)
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pubEnd := time.Now()
	if pubs.published.Load() == 0 && pubs.errors.Load() > 0 {
		return fmt.Errorf("every publish failed (%d), the last with: %s", pubs.errors.Load(), pubs.lastError())
	}

	if err := c.sendAll(command{Op: "drain", Expected: pubs.expected(), Timeout: cfg.DrainTimeout}); err != nil {
		return err
	}
	reps, err := c.waitAll(ctx, "result", cfg.DrainTimeout+time.Minute)
	if err != nil {
		if errors.Is(err, errTimeout) {
			err = errors.New("the workers did not report their results in time")
		}
		return err
	}
	wr := &WorkerResult{}
	for _, r := range reps {
		if r.Result == nil {
			return errors.New("a worker reported no result")
		}
		wr.Merge(r.Result)
	}
	selfCPU := processCPU() - selfCPU0
	if srv != nil {
		cpu, err := cpuOf(pid)
		if err != nil {
			return fmt.Errorf("reading the hub's CPU time: %w", err)
		}
		srv.CPUSeconds = cpu - hubCPU0
		if srv.RSSEnd, err = rssOf(pid); err != nil {
			return fmt.Errorf("reading the hub's memory: %w", err)
		}
	}
	c.fill(res, wr, pubs, srv, selfCPU, tPub, pubEnd)
	return nil
}

// fill completes res from the merged worker results and the publishers.
func (c *coordinator) fill(res *Result, wr *WorkerResult, pubs *publishers, srv *ServerStats, selfCPU float64, tPub, pubEnd time.Time) {
	res.Connected = wr.Connected
	res.ConnectSeconds = wr.ConnectSeconds
	if wr.ConnectSeconds > 0 {
		res.ConnectPerSecond = float64(wr.Subscribers) / wr.ConnectSeconds
	}
	res.Published = pubs.published.Load()
	res.PublishErrors = pubs.errors.Load()
	res.PublishSeconds = pubEnd.Sub(tPub).Seconds()
	if res.PublishSeconds > 0 && res.Mode != ModeIdle {
		res.PublishesPerSecond = float64(res.Published) / res.PublishSeconds
	}
	ph := pubs.latency.snapshot()
	res.PublishLatency, res.PublishHistogram = ph.Summarize(), ph
	res.Delivered = wr.Delivered
	if wr.LastDelivery > tPub.UnixNano() {
		res.DeliveriesPerSecond = float64(wr.DeliveredSinceMark) / time.Duration(wr.LastDelivery-tPub.UnixNano()).Seconds()
	}
	res.Latency, res.LatencyHistogram = wr.Latency.Summarize(), wr.Latency
	res.Lost, res.Duplicated, res.Late, res.Extra = wr.Lost, wr.Duplicated, wr.Late, wr.Extra
	res.Incomplete = wr.Incomplete
	res.Disconnects, res.Reconnects, res.ConnectErrors, res.Refused = wr.Disconnects, wr.Reconnects, wr.ConnectErrors, wr.Refused
	res.Other, res.Foreign = wr.Other, wr.Foreign
	res.StalledConnected, res.StalledCutOff = wr.StalledConnected, wr.StalledCutOff
	res.LastError = wr.LastError
	if res.LastError == "" {
		res.LastError = pubs.lastError()
	}
	if srv != nil {
		if res.Delivered > 0 {
			srv.CPUPerMillionDelivered = srv.CPUSeconds / float64(res.Delivered) * 1e6
		}
		if res.Published > 0 {
			srv.CPUPerMillionPublished = srv.CPUSeconds / float64(res.Published) * 1e6
		}
		res.Server = srv
	}
	selfRSS, _ := rssOf("self")
	cl := ClientStats{
		Processes:  1 + wr.Processes,
		CPUSeconds: selfCPU + wr.CPUSeconds,
		RSSBytes:   selfRSS + wr.RSSBytes,
	}
	if res.Delivered > 0 {
		cl.CPUPerMillionDelivered = cl.CPUSeconds / float64(res.Delivered) * 1e6
	} else if res.Published > 0 {
		cl.CPUPerMillionPublished = cl.CPUSeconds / float64(res.Published) * 1e6
	}
	if res.Subscribers > 0 {
		if wr.Processes > 0 {
			cl.RSSPerSubscriber = float64(wr.RSSBytes) / float64(res.Subscribers)
		} else {
			cl.RSSPerSubscriber = float64(selfRSS) / float64(res.Subscribers)
		}
	}
	res.Client = cl
	if res.Storm != nil {
		res.Storm.LiveAgain = wr.CaughtUp
		res.Storm.CatchUp = wr.Catchup.Summarize()
	}
	c.mu.Lock()
	res.Timeline = c.timeline
	c.mu.Unlock()
}

// deliveriesPerEvent is how many subscribers an average event reaches.
func (c *coordinator) deliveriesPerEvent() float64 {
	cfg := &c.cfg
	f := float64(cfg.SharedPercent) / 100
	return (1-f)*float64(cfg.Subscribers)/float64(cfg.Topics) + f*float64(cfg.Subscribers)
}

// ramp publishes at rising rates until the hub saturates.
func (c *coordinator) ramp(ctx context.Context, res *Result, pubs *publishers) error {
	r := c.cfg.Ramp
	rate := r.Start
	for i := 0; i < r.MaxSteps; i++ {
		before := c.sum().Delivered
		pub0 := pubs.published.Load()
		c.mu.Lock()
		c.step = Histogram{}
		c.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, r.Step)
		pubs.run(pctx, rate, 0, c.cfg.Publishers)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		// Let the last events of the step arrive, and the ticks telling
		// of them: the deliveries of a step are those of its events.
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
		c.mu.Lock()
		h := c.step // the counts are ours now: c.step starts afresh
		c.step = Histogram{}
		c.mu.Unlock()
		st := RampStep{
			Rate:                rate,
			PublishesPerSecond:  float64(pubs.published.Load()-pub0) / r.Step.Seconds(),
			DeliveriesPerSecond: float64(c.sum().Delivered-before) / r.Step.Seconds(),
			Latency:             h.Summarize(),
		}
		// The hub keeps up when it delivers what was published; the
		// publishers keep up when they publish at the rate asked.
		target := st.PublishesPerSecond * c.deliveriesPerEvent()
		switch {
		case st.Latency.P99 > ms(int64(r.MaxP99)):
			st.Saturated = fmt.Sprintf("p99 %s above %s", fmtMS(st.Latency.P99), r.MaxP99)
		case st.DeliveriesPerSecond < 0.8*target:
			st.Saturated = fmt.Sprintf("deliveries %.0f/s below 80%% of the %.0f/s published", st.DeliveriesPerSecond, target)
		default:
			res.SaturationDeliveriesPerSecond = max(res.SaturationDeliveriesPerSecond, st.DeliveriesPerSecond)
			if st.PublishesPerSecond < 0.8*rate {
				st.Saturated = fmt.Sprintf("publishers saturated: %.0f/s of %.0f/s (add --publishers)", st.PublishesPerSecond, rate)
			}
		}
		res.Ramp = append(res.Ramp, st)
		fmt.Fprintf(c.cfg.Progress, "ramp step %d: %.0f events/s -> %.0f deliveries/s, p99 %s %s\n",
			i+1, rate, st.DeliveriesPerSecond, fmtMS(st.Latency.P99), st.Saturated)
		if st.Saturated != "" {
			return nil
		}
		rate *= r.Factor
	}
	return nil
}

// storm runs a resume storm.
func (c *coordinator) storm(ctx context.Context, res *Result, pubs *publishers) error {
	cfg := &c.cfg
	// History first, published one at a time so that the order of the
	// hub's log is the order of the sequence numbers.
	pre := (cfg.Behind + 10) * uint64(cfg.Topics)
	pubs.run(ctx, 0, pre, 1)
	if err := ctx.Err(); err != nil {
		return err
	}
	if e := pubs.errors.Load(); e > 0 {
		return fmt.Errorf("publishing the history before the storm: %d publishes failed (%s)", e, pubs.lastError())
	}
	if err := c.sendAll(command{Op: "sync", Expected: pubs.expected(), Timeout: cfg.DrainTimeout}); err != nil {
		return err
	}
	if _, err := c.waitAll(ctx, "synced", cfg.DrainTimeout+time.Minute); err != nil {
		return err
	}
	rate := cfg.Rate
	if rate == 0 {
		rate = 10
	}
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pubs.run(pctx, rate, 0, cfg.Publishers)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	start := time.Now()
	if err := c.sendAll(command{Op: "storm", Storm: &stormSpec{Behind: cfg.Behind, Last: pubs.last()}}); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Progress, "storm: %d subscribers resume %d events back\n", cfg.Subscribers, cfg.Behind)
	deadline := start.Add(cfg.StormTimeout)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for c.sum().CaughtUp < uint64(cfg.Subscribers) && time.Now().Before(deadline) {
		select {
		case <-poll.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	res.Storm = &StormResult{Behind: cfg.Behind, Seconds: time.Since(start).Seconds()}
	// Keep publishing a little, to check the resumed streams are live.
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	return nil
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// fmtMS formats milliseconds compactly.
func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0fms", v)
	case v >= 1:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.0fµs", v*1000)
	}
}
