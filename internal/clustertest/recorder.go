package clustertest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Publish is one publish attempt.
type Publish struct {
	// ID is the event ID the publisher chose; every attempt has its own.
	ID string
	// Topic is the event's only topic.
	Topic string
	// Publisher and Seq name the publisher and the attempt's place in its
	// sequence of attempts.
	Publisher, Seq int
	// Node is the index of the node the attempt was sent to.
	Node int
	// Acked says the node answered 200 with the ID: the event is
	// acknowledged and must be delivered.
	Acked bool
	// Status is the HTTP status, 0 when no response arrived; Err says why
	// the attempt failed, if it did.
	Status int
	Err    string
	// Start and End bracket the attempt.
	Start, End time.Time
}

// Delivery is one event, or one gap notice, a subscriber received.
type Delivery struct {
	// ID is the event's ID; for a gap notice, the ID the stream resumed
	// from.
	ID string
	// Gap marks an ssehub.gap notice; Data holds its JSON.
	Gap  bool
	Data string
	// Node and Conn say which node served it over which of the
	// subscriber's connections (numbered from 1).
	Node, Conn int
	// At is when it arrived.
	At time.Time
}

// StreamEnd is how one of a subscriber's connections ended.
type StreamEnd struct {
	// Node and Conn name the connection.
	Node, Conn int
	// ByClient says the client closed it (a hop, a read timeout or the
	// end of the test); otherwise the server or the network ended it.
	ByClient bool
	// Clean says the body ended with io.EOF.
	Clean bool
	// MidEvent says it ended inside an event: fields or part of a line
	// had arrived since the last blank line. The client discards such an
	// event, but a drain must never cause one.
	MidEvent bool
	// Err is the read error, if not io.EOF.
	Err string
	// Events is how many complete events the connection carried.
	Events int
}

// subLog is what one subscriber recorded.
type subLog struct {
	name       string
	topics     []string
	deliveries []Delivery
	ends       []StreamEnd
	bad        []string // events whose data does not match their ID
}

// Recorder records publish attempts and deliveries, and checks them
// against the engine's log. It is safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	pubs  map[string]*Publish
	order []*Publish // in the order attempts started
	subs  []*subLog
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{pubs: map[string]*Publish{}}
}

// Attempt records the start of a publish attempt; Done records its end.
func (r *Recorder) Attempt(p *Publish) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.pubs[p.ID]; dup {
		panic("clustertest: two publish attempts with ID " + p.ID)
	}
	r.pubs[p.ID] = p
	r.order = append(r.order, p)
}

// Done records the outcome of the attempt with p's ID.
func (r *Recorder) Done(id string, acked bool, status int, err string, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pubs[id]
	p.Acked, p.Status, p.Err, p.End = acked, status, err, end
}

// sub returns a handle through which one subscriber records.
func (r *Recorder) sub(name string, topics []string) *subRecorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &subLog{name: name, topics: slices.Clone(topics)}
	r.subs = append(r.subs, l)
	return &subRecorder{r: r, l: l}
}

// subRecorder records for one subscriber.
type subRecorder struct {
	r *Recorder
	l *subLog
}

func (s *subRecorder) deliver(d Delivery) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.l.deliveries = append(s.l.deliveries, d)
}

func (s *subRecorder) end(e StreamEnd) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.l.ends = append(s.l.ends, e)
}

func (s *subRecorder) badEvent(desc string) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.l.bad = append(s.l.bad, desc)
}

// Acked returns the acknowledged IDs, in the order their attempts started.
func (r *Recorder) Acked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, p := range r.order {
		if p.Acked {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

// Attempts returns a copy of every publish attempt, in the order they
// started.
func (r *Recorder) Attempts() []Publish {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Publish, len(r.order))
	for i, p := range r.order {
		out[i] = *p
	}
	return out
}

// Ends returns how every subscriber's connections ended so far, by
// subscriber name.
func (r *Recorder) Ends() map[string][]StreamEnd {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]StreamEnd{}
	for _, s := range r.subs {
		out[s.name] = slices.Clone(s.ends)
	}
	return out
}

// Report is the outcome of Check.
type Report struct {
	// Problems lists every violation, one line each; empty means the run
	// kept every promise.
	Problems []string
	// Attempted, Acked and InLog count publish attempts, acknowledged ones
	// and IDs in the engine's log; UnackedInLog counts attempts that got
	// no 200 but were stored anyway.
	Attempted, Acked, InLog, UnackedInLog int
	// Delivered counts events received over all subscribers, Gaps the gap
	// notices, Covered the acknowledged events a gap notice excuses, and
	// Optional the unacknowledged events in the log some subscriber did
	// not receive (allowed).
	Delivered, Gaps, Covered, Optional int
	// Subscribers counts the subscribers checked.
	Subscribers int
	// Lost counts acknowledged events some subscriber is missing, and no
	// gap notice covers (each is also a problem).
	Lost int
	// StoredUnacked describes the unacknowledged attempts found in the log
	// (at most 10): what the publisher was told about an event that was
	// stored after all.
	StoredUnacked []string
}

// OK reports whether the check found no problem.
func (rep *Report) OK() bool { return len(rep.Problems) == 0 }

// Summary is one line of counts.
func (rep *Report) Summary() string {
	return fmt.Sprintf("%d publishes attempted, %d acknowledged, %d in the log (%d of them unacknowledged); %d subscribers received %d events, %d gap notices covering %d acknowledged events; %d unacknowledged events not received by some subscriber (allowed)",
		rep.Attempted, rep.Acked, rep.InLog, rep.UnackedInLog, rep.Subscribers, rep.Delivered, rep.Gaps, rep.Covered, rep.Optional)
}

// String is the summary followed by every problem (at most 40 per kind
// of check, then a count of the rest).
func (rep *Report) String() string {
	var b strings.Builder
	b.WriteString(rep.Summary())
	for _, p := range rep.Problems {
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	return b.String()
}

// problems collects problem lines, capping each kind.
type problems struct {
	lines  []string
	counts map[string]int
}

const perKind = 40

func (p *problems) add(kind, format string, args ...any) {
	if p.note(kind) {
		p.lines = append(p.lines, fmt.Sprintf(format, args...))
	}
}

// note counts a problem of kind and reports whether it is to be shown:
// expensive descriptions are built only then.
func (p *problems) note(kind string) bool {
	if p.counts == nil {
		p.counts = map[string]int{}
	}
	p.counts[kind]++
	return p.counts[kind] <= perKind
}

func (p *problems) done() []string {
	kinds := make([]string, 0, len(p.counts))
	for k := range p.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		if n := p.counts[k]; n > perKind {
			p.lines = append(p.lines, fmt.Sprintf("... and %d more problems of kind %q", n-perKind, k))
		}
	}
	return p.lines
}

// Check compares what was published and delivered with log, the IDs in the
// engine's log in its order (read through the history endpoint). It
// checks:
//
//   - the log: no ID twice, nothing nobody published, every acknowledged
//     ID present, each publisher's acknowledged IDs in the order it
//     published them;
//   - each subscriber: every event was published, is in the log and
//     carries its own data; no ID twice; the events arrive in the log's
//     order (so in the same relative order on every node); every
//     acknowledged event on its topics arrived, unless a gap notice covers
//     it, that is it falls between the events received just before and
//     just after the notice. Subscribers start from "earliest", so every
//     acknowledged event concerns every subscriber of its topic.
//
// Unacknowledged events are optional: they may be in the log and
// delivered, or not, but never twice.
func (r *Recorder) Check(log []string) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pr problems
	rep := &Report{Attempted: len(r.order), InLog: len(log), Subscribers: len(r.subs)}

	pos := make(map[string]int, len(log))
	for i, id := range log {
		if j, dup := pos[id]; dup {
			pr.add("log-duplicate", "log: %s is in the engine's log twice, at positions %d and %d%s", id, j, i, r.describe(id))
			continue
		}
		pos[id] = i
		p, ok := r.pubs[id]
		switch {
		case !ok:
			pr.add("log-unknown", "log: %s at position %d was never published by this test", id, i)
		case !p.Acked:
			rep.UnackedInLog++
			if len(rep.StoredUnacked) < 10 {
				rep.StoredUnacked = append(rep.StoredUnacked, fmt.Sprintf("%s to node %d: status %d after %v: %s",
					id, p.Node, p.Status, p.End.Sub(p.Start).Round(time.Millisecond), p.Err))
			}
		}
	}
	last := map[int]*Publish{} // per publisher, its latest acknowledged publish
	for _, p := range r.order {
		if !p.Acked {
			continue
		}
		rep.Acked++
		at, ok := pos[p.ID]
		if !ok {
			pr.add("log-lost", "log: acknowledged %s is missing from the engine's log%s", p.ID, r.describe(p.ID))
			continue
		}
		if prev := last[p.Publisher]; prev != nil && pos[prev.ID] > at {
			pr.add("log-order", "log: publisher %d published %s after %s, but the log holds it before (positions %d < %d)", p.Publisher, p.ID, prev.ID, at, pos[prev.ID])
		}
		last[p.Publisher] = p
	}

	for _, s := range r.subs {
		r.checkSub(s, log, pos, &pr, rep)
	}
	rep.Problems = pr.done()
	return rep
}

// checkSub checks one subscriber; r.mu is held.
func (r *Recorder) checkSub(s *subLog, log []string, pos map[string]int, pr *problems, rep *Report) {
	wants := map[string]bool{}
	for _, t := range s.topics {
		wants[t] = true
	}
	for _, b := range s.bad {
		pr.add("bad-event", "%s: %s", s.name, b)
	}
	type interval struct{ lo, hi int } // log positions strictly between lo and hi
	var gaps []interval
	got := map[string]int{} // ID -> index in deliveries
	lastPos, lastIdx := -1, -1
	openGap := -1 // index of a gap notice waiting for the next event
	for i, d := range s.deliveries {
		if d.Gap {
			rep.Gaps++
			if openGap < 0 {
				openGap = i
				gaps = append(gaps, interval{lo: lastPos, hi: len(log)})
			}
			continue
		}
		rep.Delivered++
		if j, dup := got[d.ID]; dup {
			first := s.deliveries[j]
			pr.add("duplicate", "%s: %s received twice: #%d on connection %d from node %d, again #%d on connection %d from node %d",
				s.name, d.ID, j, first.Conn, first.Node, i, d.Conn, d.Node)
			continue
		}
		got[d.ID] = i
		p, published := r.pubs[d.ID]
		if !published {
			pr.add("unknown", "%s: received %s (#%d from node %d), which this test never published", s.name, d.ID, i, d.Node)
			continue
		}
		if !wants[p.Topic] {
			pr.add("wrong-topic", "%s: received %s of topic %q, which it did not subscribe to", s.name, d.ID, p.Topic)
		}
		at, inLog := pos[d.ID]
		if !inLog {
			pr.add("not-in-log", "%s: received %s (#%d from node %d), which is not in the engine's log", s.name, d.ID, i, d.Node)
			continue
		}
		if openGap >= 0 {
			gaps[len(gaps)-1].hi = at
			openGap = -1
		}
		if at < lastPos {
			prev := s.deliveries[lastIdx]
			pr.add("order", "%s: out of order: %s (log position %d) arrived #%d from node %d after %s (log position %d, #%d from node %d)",
				s.name, d.ID, at, i, d.Node, prev.ID, lastPos, lastIdx, prev.Node)
			continue
		}
		lastPos, lastIdx = at, i
	}

	covered := func(at int) bool {
		for _, g := range gaps {
			if at > g.lo && at < g.hi {
				return true
			}
		}
		return false
	}
	for at, id := range log {
		p, ok := r.pubs[id]
		if !ok || !wants[p.Topic] {
			continue
		}
		if _, ok := got[id]; ok {
			continue
		}
		switch {
		case !p.Acked:
			rep.Optional++
		case covered(at):
			rep.Covered++
		default:
			rep.Lost++
			if pr.note("lost") {
				pr.lines = append(pr.lines, fmt.Sprintf("%s: lost acknowledged %s (topic %s, log position %d)%s; %s",
					s.name, id, p.Topic, at, r.describe(id), s.around(at, pos)))
			}
		}
	}
}

// describe says who published id, where and when; r.mu is held.
func (r *Recorder) describe(id string) string {
	p, ok := r.pubs[id]
	if !ok {
		return ""
	}
	state := "acknowledged"
	if !p.Acked {
		state = fmt.Sprintf("not acknowledged: status %d %s", p.Status, p.Err)
	}
	return fmt.Sprintf(" [publisher %d via node %d at %s, %s]", p.Publisher, p.Node, p.Start.Format("15:04:05.000"), state)
}

// around describes what the subscriber received around log position at.
func (s *subLog) around(at int, pos map[string]int) string {
	var before, after *Delivery
	for i := range s.deliveries {
		d := &s.deliveries[i]
		if d.Gap {
			continue
		}
		p, ok := pos[d.ID]
		if !ok {
			continue
		}
		if p < at && (before == nil || p > pos[before.ID]) {
			before = d
		}
		if p > at && (after == nil || p < pos[after.ID]) {
			after = d
		}
	}
	show := func(d *Delivery) string {
		if d == nil {
			return "nothing"
		}
		return fmt.Sprintf("%s (log position %d, connection %d from node %d at %s)", d.ID, pos[d.ID], d.Conn, d.Node, d.At.Format("15:04:05.000"))
	}
	return "it received " + show(before) + " before it and " + show(after) + " after it"
}
