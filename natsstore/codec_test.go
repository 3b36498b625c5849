package natsstore

import (
	"bytes"
	"encoding/hex"
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

// codecCases are updates whose every field must survive encoding.
func codecCases() []*hub.Update {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)
	return []*hub.Update{
		{ID: "plain", Topics: []string{"https://example.com/books/1"}, Data: "hello", Time: ts},
		{ID: "all-fields", Topics: []string{"https://example.com/books/1", "/books/{id}"}, Type: "book.updated", Data: "{\"title\":\"x\"}", Retry: 2500 * time.Millisecond, Private: true, Time: ts, IdempotencyKey: "order-42/retry"},
		{ID: "", Topics: []string{"t"}},
		{ID: "lines-nul-utf8", Topics: []string{"ラベル/🙂"}, Data: "a\nb\r\nc\x00\xff", Time: time.Unix(-5, 0)},
	}
}

func sameUpdate(got, want *hub.Update) bool {
	return got.ID == want.ID && slices.Equal(got.Topics, want.Topics) && got.Type == want.Type && got.Data == want.Data &&
		got.Retry == want.Retry && got.Private == want.Private && got.IdempotencyKey == want.IdempotencyKey &&
		got.Time.Equal(want.Time) && got.Time.IsZero() == want.Time.IsZero() && got.Pos == want.Pos
}

// TestCodecGolden pins the body format: what is in a stream today must
// decode tomorrow. Run with -update to rewrite testdata/bodies.golden
// after a deliberate format change (which also needs a new version byte).
func TestCodecGolden(t *testing.T) {
	var out bytes.Buffer
	for _, u := range codecCases() {
		b := encode(nil, u)
		if len(b) > encodedSize(u) {
			t.Errorf("%q: encoded to %d bytes; encodedSize said at most %d", u.ID, len(b), encodedSize(u))
		}
		fmt.Fprintf(&out, "%q\n%s\n", u.ID, hex.EncodeToString(b))
	}
	path := filepath.Join("testdata", "bodies.golden")
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("encoding changed:\n%s\nwant:\n%s", out.Bytes(), want)
	}
	// Every golden body decodes to its update.
	lines := strings.Split(strings.TrimSpace(string(want)), "\n")
	for i, u := range codecCases() {
		b, err := hex.DecodeString(lines[2*i+1])
		if err != nil {
			t.Fatal(err)
		}
		pos := hub.Position{Seq: uint64(i + 1), Epoch: "e"}
		got, err := decode(b, pos)
		u.Pos = pos
		if err != nil || !sameUpdate(got, u) {
			t.Errorf("golden body %q decodes to %+v, %v; want %+v", u.ID, got, err, u)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := encode(nil, codecCases()[1])
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"version only", []byte{bodyVersion}},
		{"other version", append([]byte{2}, good[1:]...)},
		{"unknown flag", append([]byte{bodyVersion, 0x80}, good[2:]...)},
		{"truncated", good[:12]},
		{"huge topic count", []byte{bodyVersion, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		if u, err := decode(c.body, hub.Position{}); err == nil {
			t.Errorf("%s: decoded to %+v; want an error", c.name, u)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, u := range codecCases() {
		f.Add(encode(nil, u))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := decode(body, hub.Position{})
		if err != nil {
			return
		}
		// Whatever decodes encodes to a body that decodes to the same
		// update (the bytes may differ: varints need not be minimal).
		again, err := decode(encode(nil, u), hub.Position{})
		if err != nil || !sameUpdate(again, u) {
			t.Fatalf("decode, encode, decode of %x gave %+v, %v; want %+v", body, again, err, u)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("id", "topic", "type", "data", int64(1500), true, int64(1e18), "key")
	f.Fuzz(func(t *testing.T, id, topic, typ, data string, retry int64, private bool, ns int64, key string) {
		u := &hub.Update{ID: id, Topics: []string{topic, topic + "/alt"}, Type: typ, Data: data, Retry: time.Duration(retry), Private: private, IdempotencyKey: key}
		if ns != 0 {
			u.Time = time.Unix(0, ns)
		}
		got, err := decode(encode(nil, u), hub.Position{})
		if err != nil || !sameUpdate(got, u) {
			t.Fatalf("round trip of %+v gave %+v, %v", u, got, err)
		}
	})
}
