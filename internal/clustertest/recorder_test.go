package clustertest

import (
	"strings"
	"testing"
	"time"
)

// TestRecorderCheck feeds the recorder made-up runs and checks that it
// reports exactly the violations each one contains.
func TestRecorderCheck(t *testing.T) {
	// Publisher 0 publishes a1..a6 on topic A; a4 is not acknowledged.
	// Publisher 1 publishes b1..b2 on topic B.
	pubs := func(r *Recorder) {
		for i, id := range []string{"a1", "a2", "a3", "a4", "a5", "a6"} {
			r.Attempt(&Publish{ID: id, Topic: "A", Publisher: 0, Seq: i, Start: time.Now()})
			r.Done(id, id != "a4", 200, "", time.Now())
		}
		for i, id := range []string{"b1", "b2"} {
			r.Attempt(&Publish{ID: id, Topic: "B", Publisher: 1, Seq: i, Start: time.Now()})
			r.Done(id, true, 200, "", time.Now())
		}
	}
	log := []string{"a1", "b1", "a2", "a3", "a4", "b2", "a5", "a6"}
	ev := func(ids ...string) []Delivery {
		var ds []Delivery
		for _, id := range ids {
			if id == "GAP" {
				ds = append(ds, Delivery{Gap: true, Data: `{"reason":"unknown-id"}`})
				continue
			}
			ds = append(ds, Delivery{ID: id})
		}
		return ds
	}
	cases := []struct {
		name   string
		log    []string
		topics []string
		got    []Delivery
		want   []string // substrings of the problems, one per problem, in order
		lost   int
	}{
		{name: "everything", log: log, topics: []string{"A", "B"}, got: ev("a1", "b1", "a2", "a3", "a4", "b2", "a5", "a6")},
		{name: "unacknowledged may be missing", log: log, topics: []string{"A", "B"}, got: ev("a1", "b1", "a2", "a3", "b2", "a5", "a6")},
		{name: "one topic only", log: log, topics: []string{"B"}, got: ev("b1", "b2")},
		{name: "lost", log: log, topics: []string{"A"}, got: ev("a1", "a3", "a4", "a5", "a6"),
			want: []string{"sub: lost acknowledged a2 (topic A, log position 2) [publisher 0 via node 0"}, lost: 1},
		{name: "lost at the end", log: log, topics: []string{"B"}, got: ev("b1"),
			want: []string{"sub: lost acknowledged b2"}, lost: 1},
		{name: "duplicate", log: log, topics: []string{"B"}, got: ev("b1", "b1", "b2"),
			want: []string{"sub: b1 received twice: #0"}},
		{name: "unacknowledged duplicate", log: log, topics: []string{"A"}, got: ev("a1", "a2", "a3", "a4", "a4", "a5", "a6"),
			want: []string{"sub: a4 received twice"}},
		{name: "out of order", log: log, topics: []string{"A", "B"}, got: ev("a1", "a2", "b1", "a3", "a4", "b2", "a5", "a6"),
			want: []string{"sub: out of order: b1 (log position 1) arrived #2"}},
		{name: "gap covers what it skips", log: log, topics: []string{"A", "B"}, got: ev("a1", "b1", "GAP", "b2", "a5", "a6")},
		{name: "gap covers nothing before it", log: log, topics: []string{"A", "B"}, got: ev("b1", "GAP", "b2", "a5", "a6"),
			want: []string{"sub: lost acknowledged a1"}, lost: 1},
		{name: "gap at the end covers the rest", log: log, topics: []string{"A", "B"}, got: ev("a1", "b1", "a2", "GAP")},
		{name: "never published", log: log, topics: []string{"A", "B"}, got: ev("a1", "b1", "zz", "a2", "a3", "a4", "b2", "a5", "a6"),
			want: []string{"sub: received zz (#2 from node 0), which this test never published"}},
		{name: "wrong topic", log: log, topics: []string{"B"}, got: ev("a1", "b1", "b2"),
			want: []string{`sub: received a1 of topic "A", which it did not subscribe to`}},
		{name: "not in the log", log: []string{"a1", "b1", "a2", "a3", "b2", "a5", "a6"}, topics: []string{"A", "B"},
			got:  ev("a1", "b1", "a2", "a3", "a4", "b2", "a5", "a6"),
			want: []string{"sub: received a4 (#4 from node 0), which is not in the engine's log"}},
		{name: "acknowledged missing from the log", log: []string{"a1", "b1", "a3", "a4", "b2", "a5", "a6"}, topics: []string{"B"},
			got: ev("b1", "b2"), want: []string{"log: acknowledged a2 is missing from the engine's log"}},
		{name: "log holds a publisher's events out of order", log: []string{"a1", "b1", "a3", "a2", "a4", "b2", "a5", "a6"}, topics: []string{"B"},
			got: ev("b1", "b2"), want: []string{"log: publisher 0 published a3 after a2, but the log holds it before"}},
		{name: "log holds an ID twice", log: append([]string{"b1"}, log...), topics: []string{"B"}, got: ev("b1", "b2"),
			want: []string{"log: b1 is in the engine's log twice, at positions 0 and 2"}},
		{name: "log holds a stranger", log: append([]string{"x"}, log...), topics: []string{"B"}, got: ev("b1", "b2"),
			want: []string{"log: x at position 0 was never published by this test"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRecorder()
			pubs(r)
			s := r.sub("sub", tc.topics)
			for _, d := range tc.got {
				s.deliver(d)
			}
			rep := r.Check(tc.log)
			if len(rep.Problems) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(rep.Problems), len(tc.want), rep)
			}
			for i, w := range tc.want {
				if !strings.Contains(rep.Problems[i], w) {
					t.Errorf("problem %d is\n  %s\nwant it to contain\n  %s", i, rep.Problems[i], w)
				}
			}
			if rep.Lost != tc.lost {
				t.Errorf("Lost = %d, want %d", rep.Lost, tc.lost)
			}
			if rep.OK() != (len(tc.want) == 0) {
				t.Errorf("OK() = %v with problems %q", rep.OK(), rep.Problems)
			}
		})
	}
}

// TestRecorderCapsProblems shows at most perKind problems of one kind and
// counts the rest.
func TestRecorderCapsProblems(t *testing.T) {
	r := NewRecorder()
	var log []string
	for i := range 100 {
		id := "e" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		r.Attempt(&Publish{ID: id, Topic: "A", Seq: i})
		r.Done(id, true, 200, "", time.Now())
		log = append(log, id)
	}
	r.sub("sub", []string{"A"})
	rep := r.Check(log)
	if rep.Lost != 100 || len(rep.Problems) != perKind+1 || !strings.Contains(rep.Problems[perKind], "and 60 more problems of kind \"lost\"") {
		t.Fatalf("Lost %d, %d problem lines, last %q", rep.Lost, len(rep.Problems), rep.Problems[len(rep.Problems)-1])
	}
}

// TestTapBody tells streams that end between events from streams cut
// inside one.
func TestTapBody(t *testing.T) {
	cases := []struct {
		stream string
		mid    bool
	}{
		{"", false},
		{"retry: 3000\n\n", false},
		{"id: 1\ndata: x\n\n", false},
		{"id: 1\ndata: x\n\n:\n", false},
		{"id: 1\r\ndata: x\r\n\r\n", false},
		{"id: 1\rdata: x\r\r", false},
		{"id: 1\ndata: x\n", true},
		{"id: 1\ndata: x", true},
		{"id: 1\ndata: x\n\nid: 2\n", true},
		{":\n:", true},
	}
	for _, tc := range cases {
		b := &tapBody{}
		// Byte by byte, so that every split point is exercised.
		for i := range len(tc.stream) {
			b.scan([]byte{tc.stream[i]})
		}
		if got := b.partial || b.fields; got != tc.mid {
			t.Errorf("%q: mid-event %v, want %v", tc.stream, got, tc.mid)
		}
	}
}
