package clustertest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/testsvc"
)

// binary is the ssehub binary built with -race for this run.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testsvc.MainWithSSEHub(m, true, "", &binary))
}

// The topics of the tests: subscribers read two of the three each, so
// that every subscriber also proves it gets nothing it did not ask for.
var topics = []string{"https://example.com/a", "https://example.com/b", "https://example.com/c"}

// load is the traffic of one test: publishers and subscribers spread over
// the nodes.
type load struct {
	t    *testing.T
	c    *Cluster
	rec  *Recorder
	subs []*Subscriber
	pubs []*Publisher
}

// loadConfig shapes a load.
type loadConfig struct {
	subsPerNode int           // subscribers starting on each node (default 2)
	publishers  int           // publishers, spread over the nodes (default 3)
	interval    time.Duration // pause between a publisher's publishes (default 10 ms)
	readTimeout time.Duration // subscribers' read timeout (default 10 s)
	pubTimeout  time.Duration // bound of one publish (default 5 s)
}

// startLoad connects the subscribers, waits until each has a stream open,
// then starts the publishers.
func startLoad(t *testing.T, c *Cluster, cfg loadConfig) *load {
	t.Helper()
	if cfg.subsPerNode == 0 {
		cfg.subsPerNode = 2
	}
	if cfg.publishers == 0 {
		cfg.publishers = 3
	}
	if cfg.interval == 0 {
		cfg.interval = 10 * time.Millisecond
	}
	l := &load{t: t, c: c, rec: NewRecorder()}
	nodes := c.Nodes()
	for i := range cfg.subsPerNode * len(nodes) {
		tops := topics[:2]
		if i%2 == 1 {
			tops = topics[1:]
		}
		l.subs = append(l.subs, StartSubscriber(SubscriberConfig{
			Name: fmt.Sprintf("sub%d", i), Nodes: nodes, First: i % len(nodes), Topics: tops,
			ReadTimeout: cfg.readTimeout, Recorder: l.rec,
		}))
	}
	t.Cleanup(l.stopSubscribers)
	for _, s := range l.subs {
		waitFor(t, 30*time.Second, s.cfg.Name+" to open its stream", s.streaming)
	}
	for i := range cfg.publishers {
		l.pubs = append(l.pubs, StartPublisher(PublisherConfig{
			ID: i, Nodes: nodes, First: i % len(nodes), Topics: topics, Token: c.Token,
			Interval: cfg.interval, Timeout: cfg.pubTimeout, Recorder: l.rec,
		}))
	}
	t.Cleanup(l.stopPublishers)
	return l
}

// streaming reports whether the subscriber has a stream open.
func (s *Subscriber) streaming() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.body != nil
}

func (l *load) stopPublishers() {
	for _, p := range l.pubs {
		p.Stop()
	}
}

func (l *load) stopSubscribers() {
	for _, s := range l.subs {
		if err := s.Stop(); err != nil {
			l.t.Errorf("%s: the subscription ended before the test did: %v", s.cfg.Name, err)
		}
	}
	l.subs = nil
}

// finish stops publishing, waits (at most a minute) until every
// subscriber has every acknowledged event or a gap notice for it, stops
// the subscribers, reads the log back from every live node (they must all
// show the same log) and checks the run. It returns the report.
func (l *load) finish(live ...int) *Report {
	t := l.t
	t.Helper()
	l.stopPublishers()
	if len(live) == 0 {
		for i := range l.c.Hubs {
			live = append(live, i)
		}
	}
	base := l.c.Hubs[live[0]].Base()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rep *Report
	deadline := time.Now().Add(time.Minute)
	for {
		log, err := History(ctx, base)
		if err == nil {
			rep = l.rec.Check(log)
			if rep.Lost == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Logf("subscribers still miss events after a minute (history: %v); checking what arrived", err)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	l.stopSubscribers()
	// The log read after every subscriber stopped holds everything any of
	// them received.
	var log []string
	for _, i := range live {
		got, err := History(ctx, l.c.Hubs[i].Base())
		if err != nil {
			t.Fatalf("reading history from hub %d: %v", i, err)
		}
		if log == nil {
			log = got
			continue
		}
		if !slices.Equal(got, log) {
			t.Errorf("the catch-up endpoint of hub %d shows another history than hub %d's: %s", i, live[0], firstDifference(log, got))
		}
	}
	rep = l.rec.Check(log)
	if rep.Acked == 0 || rep.Delivered == 0 {
		t.Fatalf("nothing was acknowledged or delivered: the test proved nothing\n%s", rep)
	}
	if !rep.OK() {
		t.Errorf("the recorder found problems:\n%s", rep)
	} else {
		t.Log(rep.Summary())
	}
	for _, u := range rep.StoredUnacked {
		t.Logf("stored although not acknowledged: %s", u)
	}
	return rep
}

// firstDifference describes where two ID lists first differ.
func firstDifference(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at position %d: %s versus %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// waitFor polls cond every 20 ms and fails the test if it does not hold
// within limit (a hang detector, not a timing assertion).
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleep lets traffic flow for d.
func sleep(d time.Duration) { time.Sleep(d) }

// forEachEngine runs body as a subtest on every engine.
func forEachEngine(t *testing.T, body func(t *testing.T, start func(testing.TB) Engine)) {
	for _, e := range Engines {
		t.Run(e.Name, func(t *testing.T) { body(t, e.Start) })
	}
}

// endsOn describes the stream ends on node that the server caused.
func serverEnds(rec *Recorder, node int) (clean, cut []string) {
	for name, ends := range rec.Ends() {
		for _, e := range ends {
			if e.Node != node || e.ByClient {
				continue
			}
			d := fmt.Sprintf("%s connection %d (%d events)", name, e.Conn, e.Events)
			if e.Clean && !e.MidEvent {
				clean = append(clean, d)
			} else {
				cut = append(cut, d+": "+strings.TrimSpace(fmt.Sprintf("mid-event=%v %s", e.MidEvent, e.Err)))
			}
		}
	}
	return clean, cut
}
