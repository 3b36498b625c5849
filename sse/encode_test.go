package sse

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ev      Event
		want    string
		wantErr error
	}{
		{"data only", Event{Data: "x"}, "data: x\n\n", nil},
		{"empty data", Event{}, "data: \n\n", nil},
		{"all fields", Event{ID: "1", Type: "t", Data: "d", Retry: 1500 * time.Millisecond},
			"id: 1\nevent: t\nretry: 1500\ndata: d\n\n", nil},
		{"LF splits data", Event{Data: "a\nb"}, "data: a\ndata: b\n\n", nil},
		{"CRLF splits data", Event{Data: "a\r\nb"}, "data: a\ndata: b\n\n", nil},
		{"lone CR splits data", Event{Data: "a\rb"}, "data: a\ndata: b\n\n", nil},
		{"CR CR is two line ends", Event{Data: "a\r\rb"}, "data: a\ndata: \ndata: b\n\n", nil},
		{"LF CR is two line ends", Event{Data: "a\n\rb"}, "data: a\ndata: \ndata: b\n\n", nil},
		{"trailing LF", Event{Data: "a\n"}, "data: a\ndata: \n\n", nil},
		{"injection attempt stays data", Event{Data: "x\n\nevent: evil\nid: 9"},
			"data: x\ndata: \ndata: event: evil\ndata: id: 9\n\n", nil},
		{"NUL in data is kept", Event{Data: "a\x00b"}, "data: a\x00b\n\n", nil},
		{"LF in ID", Event{ID: "1\nevent: evil", Data: "x"}, "", ErrInvalidID},
		{"CR in ID", Event{ID: "1\r", Data: "x"}, "", ErrInvalidID},
		{"NUL in ID", Event{ID: "1\x00", Data: "x"}, "", ErrInvalidID},
		{"LF in type", Event{Type: "a\nb"}, "", ErrInvalidType},
		{"CR in type", Event{Type: "a\rb"}, "", ErrInvalidType},
		{"NUL in type", Event{Type: "\x00"}, "", ErrInvalidType},
		{"negative retry", Event{Retry: -time.Second}, "", ErrInvalidRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// dst has spare capacity filled with a marker: an invalid event
			// must not touch it, not even past len(dst).
			dst := append(make([]byte, 0, 256), "prefix"...)
			spare := dst[len(dst):cap(dst)]
			for i := range spare {
				spare[i] = '#'
			}
			got, err := AppendEvent(dst, tt.ev)
			if err != tt.wantErr {
				t.Fatalf("got error %v; want %v", err, tt.wantErr)
			}
			if err != nil {
				if string(got) != "prefix" {
					t.Errorf("got %q; want dst unchanged", got)
				}
				if strings.Trim(string(spare), "#") != "" {
					t.Errorf("partial output written past dst: %q", spare)
				}
				var buf bytes.Buffer
				if err := NewEncoder(&buf).Encode(tt.ev); err != tt.wantErr || buf.Len() != 0 {
					t.Errorf("Encoder wrote %q, %v; want nothing, %v", buf.String(), err, tt.wantErr)
				}
				return
			}
			if string(got) != "prefix"+tt.want {
				t.Errorf("got %q; want %q", got[len("prefix"):], tt.want)
			}
		})
	}
}

func TestAppendCommentAndRetry(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{string(AppendComment(nil, "")), ":\n"},
		{string(AppendComment(nil, " ping")), ": ping\n"},
		{string(AppendComment(nil, "a\r\nb\rc\nd")), ":a\n:b\n:c\n:d\n"},
		{string(AppendRetry(nil, 3*time.Second)), "retry: 3000\n\n"},
		{string(AppendRetry(nil, 1999*time.Microsecond)), "retry: 1\n\n"},
		{string(AppendRetry(nil, 0)), ""},
		{string(AppendRetry(nil, -1)), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}

// normalizeData is what a receiver makes of data: CRLF and lone CR become
// LF, and invalid UTF-8 becomes U+FFFD.
func normalizeData(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return validString([]byte(s))
}

// FuzzRoundTrip checks that every valid event survives encoding and
// decoding, and that an invalid one is rejected with nothing written.
func FuzzRoundTrip(f *testing.F) {
	f.Add("1", "message", "hello", int64(0))
	f.Add("", "", "", int64(0))
	f.Add(" spaced ", " t ", " data\r\n\r\nmore\r", int64(1500))
	f.Add("\u2026", "日", "€😀\x00", int64(3000))
	f.Add("a\nb", "t", "x", int64(0))
	f.Add("", "\uFEFF", "\uFEFFdata:", int64(1))
	f.Add("", "", ":comment\n\nid: 1", int64(999999))
	for _, v := range readVectors(f) {
		if size(v) < 4096 {
			for _, conn := range v.Conns {
				f.Add("id", "type", string(bytes.Join(conn, nil)), int64(0))
			}
		}
	}
	f.Fuzz(func(t *testing.T, id, typ, data string, retryMS int64) {
		e := Event{ID: id, Type: typ, Data: data, Retry: time.Duration(retryMS) * time.Millisecond}
		b, err := AppendEvent([]byte("x"), e)
		if e.Validate() != nil {
			if err == nil || string(b) != "x" {
				t.Fatalf("invalid event %+v: got %q, %v; want rejection", e, b, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid event %+v: %v", e, err)
		}
		d := NewDecoder(bytes.NewReader(b[1:]))
		got, err := d.Decode()
		if err != nil {
			t.Fatalf("decoding %q: %v", b[1:], err)
		}
		want := Event{ID: validString([]byte(id)), Type: validString([]byte(typ)), Data: normalizeData(data)}
		if want.Type == "" {
			want.Type = "message"
		}
		if got != want {
			t.Fatalf("encoded %q\ngot  %+q\nwant %+q", b[1:], got, want)
		}
		if _, err := d.Decode(); err != io.EOF {
			t.Fatalf("second Decode: %v; want io.EOF", err)
		}
		if r, ok := d.Retry(); ok != (e.Retry > 0) || r != e.Retry.Truncate(time.Millisecond) {
			t.Fatalf("retry %v, %v; want %v", r, ok, e.Retry)
		}
		if !utf8.ValidString(got.Data) || !utf8.ValidString(got.ID) || !utf8.ValidString(got.Type) {
			t.Fatalf("decoded invalid UTF-8: %+q", got)
		}
	})
}

// BenchmarkAppendEvent encodes one event per iteration into a reused
// buffer.
func BenchmarkAppendEvent(b *testing.B) {
	benchmarks := []struct {
		name  string
		event Event
	}{
		{"small", Event{ID: "1234", Type: "update", Data: `{"topic":"/books/1","price":12}`}},
		{"multiline", Event{Data: strings.Repeat("line of text\n", 32)}},
		{"large-64KiB", Event{ID: "1", Data: strings.Repeat("x", 64<<10)}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			buf, _ := AppendEvent(nil, bm.event)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendEvent(buf[:0], bm.event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
