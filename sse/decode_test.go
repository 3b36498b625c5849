package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// decodeAll decodes every event of a stream and the error that ended it.
func decodeAll(d *Decoder) ([]Event, error) {
	var evs []Event
	for {
		ev, err := d.Decode()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// strictReader returns its chunks one per Read and fails the test if
// Decode reads once they are used up: the decoder must not read ahead once
// it has an event to return.
type strictReader struct {
	t      *testing.T
	chunks []string
}

func (r *strictReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		r.t.Error("Decode read past the input it needed")
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestDecodeReturnsWithoutReadingAhead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		chunks []string
		want   Event
	}{
		{"LF", []string{"data:1\n\n"}, Event{Type: "message", Data: "1"}},
		{"CR at the end of a read", []string{"data:1\r\r"}, Event{Type: "message", Data: "1"}},
		{"CRLF split", []string{"data:1\r", "\n\r"}, Event{Type: "message", Data: "1"}},
		{"id only block then event", []string{"id:7\n\n", "data:x\n\n"}, Event{ID: "7", Type: "message", Data: "x"}},
		{"BOM split", []string{"\xEF", "\xBB", "\xBF", "event:e\ndata:1\n\n"}, Event{Type: "e", Data: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := NewDecoder(&strictReader{t: t, chunks: tt.chunks})
			got, err := d.Decode()
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeCommentsInOrder(t *testing.T) {
	t.Parallel()
	var log []string
	d := NewDecoder(strings.NewReader(":hi\ndata:1\n\n: ping\n:\ndata:2\n\n:last\n"))
	d.OnComment = func(s string) { log = append(log, "comment "+s) }
	for {
		ev, err := d.Decode()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, "event "+ev.Data)
	}
	want := []string{"comment hi", "event 1", "comment  ping", "comment ", "event 2", "comment last"}
	if !slices.Equal(log, want) {
		t.Errorf("got %q; want %q", log, want)
	}
}

func TestDecoderResetKeepsLastEventID(t *testing.T) {
	t.Parallel()
	d := NewDecoder(strings.NewReader("id:1\ndata:a\n\nid:2\ndata:partial"))
	d.SetLastEventID("0")
	evs, err := decodeAll(d)
	if err != io.EOF {
		t.Fatalf("got %v; want io.EOF", err)
	}
	if len(evs) != 1 || evs[0].ID != "1" {
		t.Fatalf("got %+v; want one event with ID 1", evs)
	}
	if got := d.LastEventID(); got != "1" {
		t.Errorf("LastEventID after partial block = %q; want 1", got)
	}
	// The new connection starts with a BOM again and the discarded id 2
	// is not adopted.
	d.Reset(strings.NewReader("\uFEFFdata:b\n\n"))
	ev, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Event{ID: "1", Type: "message", Data: "b"}); ev != want {
		t.Errorf("got %+v; want %+v", ev, want)
	}
}

func TestDecoderInitialLastEventID(t *testing.T) {
	t.Parallel()
	d := NewDecoder(strings.NewReader("data:a\n\nid\ndata:b\n\n"))
	d.SetLastEventID("42")
	evs, _ := decodeAll(d)
	if len(evs) != 2 || evs[0].ID != "42" || evs[1].ID != "" {
		t.Errorf("got %+v; want IDs 42 then empty", evs)
	}
}

func TestDecoderRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"retry:03000\n", 3 * time.Second, true},
		{"retry: 10\n", 10 * time.Millisecond, true},
		{"retry:0\n", 0, true},
		{"retry:1000x\n", 0, false},
		{"retry\n", 0, false},
		{"retry:\n", 0, false},
		{"retry:-1\n", 0, false},
		{"retry: 1 \n", 0, false},
		{"retry:１\n", 0, false}, // fullwidth digit
		{"retry:3000\nretry:1000x\n", 3 * time.Second, true},
		{"retry:99999999999999999999999\n", time.Duration(1<<63 - 1), true},
	}
	for _, tt := range tests {
		d := NewDecoder(strings.NewReader(tt.in))
		decodeAll(d)
		got, ok := d.Retry()
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%q: got %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestDecoderMaxEventSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		max     int
		in      string
		comment bool
		wantN   int // events before the error
		wantErr bool
	}{
		{"fits", 16, "data:0123456789\n\n", false, 1, false},
		{"line too long", 8, "data:0123456789\n\n", false, 0, true},
		{"sum of lines too long", 16, "data:012345\ndata:012345\n\n", false, 0, true},
		{"buffer resets per event", 16, "data:012345\n\ndata:012345\n\n", false, 2, false},
		{"long unknown field is skipped", 16, "x-long:" + strings.Repeat("y", 1000) + "\ndata:1\n\n", false, 1, false},
		{"long comment without OnComment is skipped", 16, ":" + strings.Repeat("y", 1000) + "\ndata:1\n\n", false, 1, false},
		{"long comment with OnComment counts", 16, ":" + strings.Repeat("y", 1000) + "\ndata:1\n\n", true, 0, true},
		{"long id counts", 16, "id:" + strings.Repeat("y", 1000) + "\ndata:1\n\n", false, 0, true},
		{"error after good events", 16, "data:1\n\ndata:" + strings.Repeat("y", 100), false, 1, true},
	}
	for _, tt := range tests {
		for _, c := range chunkings {
			d := NewDecoder(c.reader([][]byte{[]byte(tt.in)}))
			d.SetMaxEventSize(tt.max)
			if tt.comment {
				d.OnComment = func(string) {}
			}
			evs, err := decodeAll(d)
			if len(evs) != tt.wantN {
				t.Errorf("%s/%s: got %d events; want %d", tt.name, c.name, len(evs), tt.wantN)
			}
			if got := errors.Is(err, ErrEventTooLarge); got != tt.wantErr {
				t.Errorf("%s/%s: got error %v; want ErrEventTooLarge: %v", tt.name, c.name, err, tt.wantErr)
			}
			if _, err2 := d.Decode(); err2 != err {
				t.Errorf("%s/%s: error is not sticky: %v then %v", tt.name, c.name, err, err2)
			}
			// Reset recovers: a new connection decodes again.
			d.Reset(strings.NewReader("data:ok\n\n"))
			if ev, err := d.Decode(); err != nil || ev.Data != "ok" {
				t.Errorf("%s/%s: after Reset got %+v, %v; want data ok", tt.name, c.name, ev, err)
			}
		}
	}
}

func TestDecoderDefaultMaxEventSize(t *testing.T) {
	t.Parallel()
	if DefaultMaxEventSize < 8<<20 {
		t.Fatalf("DefaultMaxEventSize = %d; want at least 8 MiB", DefaultMaxEventSize)
	}
	d := NewDecoder(nil)
	d.SetMaxEventSize(-1)
	if d.max != DefaultMaxEventSize {
		t.Errorf("SetMaxEventSize(-1) set %d; want the default", d.max)
	}
}

// errReader returns some bytes and then an error.
type errReader struct {
	data string
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	n := copy(p, r.data)
	r.data = r.data[n:]
	if r.data == "" {
		return n, r.err
	}
	return n, nil
}

func TestDecoderReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	d := NewDecoder(&errReader{data: "data:1\n\ndata:2", err: boom})
	evs, err := decodeAll(d)
	if len(evs) != 1 || err != boom {
		t.Errorf("got %d events, %v; want 1, boom", len(evs), err)
	}

	d = NewDecoder(&errReader{err: nil}) // (0, nil) forever
	if _, err := d.Decode(); err != io.ErrNoProgress {
		t.Errorf("got %v; want io.ErrNoProgress", err)
	}
}

// validString is validStringMax without a limit.
func validString(b []byte) string {
	s, _ := validStringMax(b, math.MaxInt)
	return s
}

func TestValidString(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"caf\xC3\xA9", "café"},
		{"\xE2\x82A", "\uFFFDA"},               // truncated 3-byte sequence: one U+FFFD
		{"\xF0\x9F\x98", "\uFFFD"},             // truncated at the end
		{"\xC0\x80", "\uFFFD\uFFFD"},           // overlong: two invalid lead bytes
		{"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate
		{"\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xFF\xFEa", "\uFFFD\uFFFDa"},
		{"\xEF\xBF\xBD", "\uFFFD"}, // a real U+FFFD
		{"\xF0\x9F\x98\x80", "😀"},
		{"\xE0\xA0", "\uFFFD"},
		{"\xE0\x80", "\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		if got := validString([]byte(tt.in)); got != tt.want {
			t.Errorf("validString(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if ref := string(refUTF8Decode([]byte(tt.in))); ref != tt.want {
			t.Errorf("refUTF8Decode(%q) = %q; want %q", tt.in, ref, tt.want)
		}
		if _, ok := validStringMax([]byte(tt.in), len(tt.want)-1); ok {
			t.Errorf("validStringMax(%q, %d) fits; want too long", tt.in, len(tt.want)-1)
		}
		if got, ok := validStringMax([]byte(tt.in), len(tt.want)); got != tt.want || !ok {
			t.Errorf("validStringMax(%q, %d) = %q, %v; want %q, true", tt.in, len(tt.want), got, ok, tt.want)
		}
	}
}

// sizedReader returns reads whose sizes cycle through sizes (each plus one).
type sizedReader struct {
	b     []byte
	sizes []byte
	i     int
}

func (r *sizedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := len(r.b)
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)]) + 1
		r.i++
	}
	n = copy(p[:min(n, len(p))], r.b)
	r.b = r.b[n:]
	return n, nil
}

// FuzzDecode feeds arbitrary bytes in arbitrary reads to a Decoder with
// an arbitrary size cap. The decoder must not panic, must keep its buffers
// within the cap, must never return a larger event and must agree with
// the reference parser on everything it reports.
func FuzzDecode(f *testing.F) {
	for _, v := range readVectors(f) {
		for _, conn := range v.Conns {
			in := bytes.Join(conn, nil)
			if len(in) > 4096 {
				continue
			}
			f.Add(in, []byte{0}, uint16(0))
			f.Add(in, []byte{2, 0, 6}, uint16(32))
		}
	}
	f.Fuzz(func(t *testing.T, input, sizes []byte, limit uint16) {
		max := DefaultMaxEventSize
		if limit != 0 {
			max = int(limit)
		}
		d := NewDecoder(&sizedReader{b: input, sizes: sizes})
		d.SetMaxEventSize(max)
		var items []string
		d.OnComment = func(s string) {
			if len(s) > max {
				t.Fatalf("comment of %d bytes exceeds the cap %d", len(s), max)
			}
			items = append(items, fmt.Sprintf("comment %s\n", quote(s)))
		}
		var err error
		for {
			var ev Event
			ev, err = d.Decode()
			if len(d.line)+len(d.data) > max {
				t.Fatalf("buffered %d+%d bytes; cap %d", len(d.line), len(d.data), max)
			}
			if bound := 3*max + 256; cap(d.line) > bound || cap(d.data) > bound {
				t.Fatalf("buffer capacities %d, %d exceed %d for cap %d", cap(d.line), cap(d.data), bound, max)
			}
			if err != nil {
				break
			}
			if len(ev.Data) > max || len(ev.ID) > max || len(ev.Type) > max && ev.Type != "message" {
				t.Fatalf("event %+v exceeds the cap %d", ev, max)
			}
			items = append(items, fmt.Sprintf("event type=%s id=%s data=%s\n", quote(ev.Type), quote(ev.ID), quote(ev.Data)))
		}
		ref := refDecode(input, "", true)
		switch {
		case err == io.EOF:
			if !slices.Equal(items, ref.items) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(items, ""), strings.Join(ref.items, ""))
			}
			if d.LastEventID() != ref.lastID {
				t.Fatalf("last event ID %q; want %q", d.LastEventID(), ref.lastID)
			}
			r, ok := d.Retry()
			if ok != (ref.retry != nil) || ok && r != ref.retry.d {
				t.Fatalf("retry %v, %v; want %+v", r, ok, ref.retry)
			}
		case errors.Is(err, ErrEventTooLarge):
			if limit == 0 {
				t.Fatalf("ErrEventTooLarge for %d bytes of input", len(input))
			}
			if len(items) > len(ref.items) || !slices.Equal(items, ref.items[:len(items)]) {
				t.Fatalf("got\n%s\nwant a prefix of\n%s", strings.Join(items, ""), strings.Join(ref.items, ""))
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// cycleReader repeats a stream forever.
type cycleReader struct {
	b []byte
	i int
}

func (r *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.i:])
		n += c
		r.i = (r.i + c) % len(r.b)
	}
	return n, nil
}

// BenchmarkDecode decodes one event per iteration from an endless stream;
// allocs/op is allocations per event.
func BenchmarkDecode(b *testing.B) {
	benchmarks := []struct {
		name  string
		event Event
	}{
		{"small", Event{ID: "1234", Type: "update", Data: `{"topic":"/books/1","price":12}`}},
		{"multiline", Event{Data: strings.Repeat("line of text\n", 32)}},
		{"large-64KiB", Event{ID: "1", Data: strings.Repeat("x", 64<<10)}},
		{"large-1MiB", Event{ID: "1", Data: strings.Repeat("x", 1<<20)}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			frame, err := AppendEvent(nil, bm.event)
			if err != nil {
				b.Fatal(err)
			}
			d := NewDecoder(&cycleReader{b: frame})
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
