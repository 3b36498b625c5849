package redisstore

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// entryValues returns the stream fields of u as Redis returns them (with
// the epoch the script adds).
func entryValues(u *hub.Update, epoch string) map[string]any {
	f := appendFields(nil, u)
	m := map[string]any{"e": epoch}
	for i := 0; i < len(f); i += 2 {
		m[f[i].(string)] = f[i+1]
	}
	return m
}

// TestEntryGolden pins the stream entry layout: nodes of different
// versions share one log, so a change here is a format change.
func TestEntryGolden(t *testing.T) {
	u := &hub.Update{
		ID:             "urn:uuid:7d2a",
		Topics:         []string{"https://example.com/books/1", "/books/{id}"},
		Type:           "book.updated",
		Data:           "line 1\nline 2",
		Retry:          2500 * time.Millisecond,
		Private:        true,
		Time:           time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		IdempotencyKey: "order-42",
	}
	var b strings.Builder
	f := appendFields(nil, u)
	for i := 0; i < len(f); i += 2 {
		fmt.Fprintf(&b, "%s\t%q\n", f[i], f[i+1])
	}
	path := filepath.Join("testdata", "entry.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("entry fields:\n%s\nwant (testdata/entry.golden):\n%s", b.String(), want)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := entryValues(&hub.Update{ID: "x", Topics: []string{"t"}, Data: "d", Time: time.Unix(1, 0)}, "ep")
	for _, c := range []struct {
		name   string
		id     string
		change func(map[string]any)
	}{
		{"bad entry ID", "abc", nil},
		{"entry ID with a sequence part", "5-1", nil},
		{"seq zero", "0-0", nil},
		{"no ID", "5-0", func(m map[string]any) { delete(m, "i") }},
		{"no data", "5-0", func(m map[string]any) { delete(m, "d") }},
		{"bad time", "5-0", func(m map[string]any) { m["m"] = "soon" }},
		{"bad retry", "5-0", func(m map[string]any) { m["r"] = "1s" }},
		{"bad private flag", "5-0", func(m map[string]any) { m["p"] = "yes" }},
		{"no topic", "5-0", func(m map[string]any) { delete(m, "t0") }},
		{"no epoch", "5-0", func(m map[string]any) { delete(m, "e") }},
		{"not a string", "5-0", func(m map[string]any) { m["i"] = 5 }},
	} {
		m := make(map[string]any)
		for k, v := range good {
			m[k] = v
		}
		if c.change != nil {
			c.change(m)
		}
		if u, err := decode(c.id, m); err == nil || !strings.HasPrefix(err.Error(), errCorrupt.Error()) {
			t.Errorf("%s: decode = %+v, %v; want a corrupt entry error", c.name, u, err)
		}
	}
}

// FuzzEntryRoundTrip checks that every update survives encoding into
// stream fields and decoding, byte for byte.
func FuzzEntryRoundTrip(f *testing.F) {
	f.Add("id", "t", "", "data", "", int64(0), false, int64(0), 1)
	f.Add("urn:uuid:1", "https://example.com/a\x00b", "ünï", "a\nb\r\n\x00", "key", int64(1500), true, int64(-1), 3)
	f.Fuzz(func(t *testing.T, id, topic, typ, data, key string, retry int64, private bool, ns int64, ntopics int) {
		ntopics = 1 + (ntopics%4+4)%4
		u := &hub.Update{ID: id, Type: typ, Data: data, IdempotencyKey: key, Retry: time.Duration(retry), Private: private, Time: time.Unix(0, ns)}
		for i := range ntopics {
			u.Topics = append(u.Topics, strings.Repeat(topic, i+1))
		}
		got, err := decode("42-0", entryValues(u, "ep"))
		if err != nil {
			t.Fatal(err)
		}
		u.Pos = hub.Position{Seq: 42, Epoch: "ep"}
		if got.ID != u.ID || got.Type != u.Type || got.Data != u.Data || got.IdempotencyKey != u.IdempotencyKey ||
			got.Retry != u.Retry || got.Private != u.Private || !got.Time.Equal(u.Time) || got.Pos != u.Pos ||
			!slices.Equal(got.Topics, u.Topics) {
			t.Fatalf("round trip of %+v gave %+v", u, got)
		}
	})
}

// FuzzParseURL checks that parseURL never panics, that its errors are one
// line and never show a password, and that an accepted prefix is safe in
// a hash tag.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://localhost:6379", "rediss://u:secret@h:1/2?prefix=a:b", "redis://h?prefix={x}",
		"redis://:secret@h?dial_timeout=x", "redis://h?prefix=a&prefix=b", "unix:///tmp/r.sock", "redis://[::1]:6379/0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		opts, prefix, err := parseURL(raw)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("multi-line error %q", msg)
			}
			if strings.Contains(raw, ":secret@") && strings.Contains(msg, ":secret@") {
				t.Errorf("error shows the password: %q", msg)
			}
			return
		}
		if opts == nil || checkPrefix(prefix) != nil {
			t.Errorf("parseURL(%q) accepted prefix %q, options %v", raw, prefix, opts)
		}
	})
}
