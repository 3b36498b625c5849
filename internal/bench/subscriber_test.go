package bench

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// stream returns n benchmark events as a hub writes them.
func stream(n int) []byte {
	var b bytes.Buffer
	now := time.Now().UnixNano()
	for i := range n {
		b.WriteString("id: urn:uuid:8f1b6a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b\ndata: ")
		b.Write(AppendPayload(nil, Payload{Topic: 0, Seq: uint64(i + 1), Sent: now}, 100))
		b.WriteString("\n\n")
		if i%10 == 0 {
			b.WriteString(":\n\n")
		}
	}
	return b.Bytes()
}

// newTestSubscriber returns a subscriber of topic 0 on its own worker.
func newTestSubscriber() *subscriber {
	w := &worker{events: make(chan string, 4)}
	s := &subscriber{w: w, ntopic: 1}
	w.subs = []*subscriber{s}
	return s
}

func TestSubscriberParse(t *testing.T) {
	t.Parallel()
	s := newTestSubscriber()
	in := string(stream(5)) +
		"event: ssehub.gap\ndata: {}\n\n" + // typed: not a benchmark event
		"data: hello\n\n" + // foreign
		"id: last\r\ndata:sb1.0.6.1.\r\n\r\n" + // CRLF, no space after the colon
		"data: sb1.0.7.1." + strings.Repeat("x", 3*readBuffer) + "\n\n" + // longer than the buffer
		"data: sb1.0.7.1.\n\n" // a duplicate
	err := s.read(bufio.NewReaderSize(strings.NewReader(in), 16))
	if err == nil || !strings.Contains(err.Error(), "ended the stream") {
		t.Errorf("read: %v; want the end of the stream", err)
	}
	w := s.w
	if w.delivered.Load() != 8 || s.trk[0].distinct != 7 || s.trk[0].dups != 1 || w.other.Load() != 1 || w.foreign.Load() != 1 {
		t.Errorf("delivered %d distinct %d dups %d other %d foreign %d; want 8 7 1 1 1",
			w.delivered.Load(), s.trk[0].distinct, s.trk[0].dups, w.other.Load(), w.foreign.Load())
	}
	if string(s.lastID) != "last" {
		t.Errorf("last event ID %q; want %q", s.lastID, "last")
	}
}

// BenchmarkSubscriberRead measures the subscriber's parse and accounting
// per event, the tool's cost per delivery besides the read system call.
func BenchmarkSubscriberRead(b *testing.B) {
	data := stream(1000)
	s := newTestSubscriber()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	r := bytes.NewReader(data)
	br := bufio.NewReaderSize(r, readBuffer)
	for b.Loop() {
		r.Reset(data)
		br.Reset(r)
		s.trk[0] = tracker{}
		if err := s.read(br); err == nil {
			b.Fatal("no end")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

// BenchmarkSSEDecoder is the same stream through the repository's
// sse.Decoder and ParsePayload, for comparison.
func BenchmarkSSEDecoder(b *testing.B) {
	data := stream(1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d := sse.NewDecoder(bytes.NewReader(data))
		for {
			ev, err := d.Decode()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ParsePayload([]byte(ev.Data)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}
