package boltstore

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// FuzzDecode checks that decode never panics on arbitrary bytes and that
// whatever decodes re-encodes to the same record.
func FuzzDecode(f *testing.F) {
	f.Add(encode(nil, &hub.Update{ID: "a", Topics: []string{"t", "u"}, Type: "x", Data: "d\x00\n", Retry: time.Second, Private: true, Time: time.Unix(1, 2)}))
	f.Add(encode(nil, &hub.Update{Topics: []string{"t"}}))
	f.Add([]byte{1, 2, 0xff})
	f.Fuzz(func(t *testing.T, rec []byte) {
		u, err := decode(rec, hub.Position{})
		if err != nil {
			return
		}
		if _, err := decodeHeader(rec); err != nil {
			t.Fatalf("decode accepted what decodeHeader rejects: %v", err)
		}
		again := encode(nil, u)
		if u2, err := decode(again, hub.Position{}); err != nil || u2.ID != u.ID || u2.Data != u.Data || len(u2.Topics) != len(u.Topics) || !u2.Time.Equal(u.Time) {
			t.Fatalf("re-encoding %q does not round-trip: %v", rec, err)
		}
	})
}

// TestRecordSize pins the overhead of the encoding for a typical update.
func TestRecordSize(t *testing.T) {
	u := &hub.Update{
		ID:     "urn:uuid:0a1b2c3d-0a1b-4c3d-8e9f-0a1b2c3d4e5f",
		Topics: []string{"https://example.com/books/12345"},
		Data:   string(make([]byte, 100)),
		Time:   time.Now(),
	}
	content := len(u.ID) + len(u.Topics[0]) + len(u.Data)
	if got := len(encode(nil, u)); got-content > 16 {
		t.Errorf("record of %d content bytes is %d bytes; want at most 16 bytes of overhead", content, got)
	}
}

func TestIDPrefix(t *testing.T) {
	v7 := "urn:uuid:019aa1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	raw := [16]byte{0x01, 0x9a, 0xa1, 0xb2, 0xc3, 0xd4, 0x7e, 0x5f, 0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b}
	hashed := func(id string) (p [16]byte) {
		sum := sha256.Sum256([]byte(id))
		copy(p[:], sum[:16])
		return p
	}
	for _, c := range []struct {
		id   string
		want [16]byte
	}{
		{v7, raw},
		{strings.ToUpper(v7[:9]) + v7[9:], hashed(strings.ToUpper(v7[:9]) + v7[9:])},                               // not the urn form
		{"urn:uuid:019aa1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b", hashed("urn:uuid:019aa1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b")}, // v4
		{"urn:uuid:019aa1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g", hashed("urn:uuid:019aa1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g")}, // not hex
		{"urn:uuid:019aa1b2c-3d4-7e5f-8a9b-0c1d2e3f4a5b", hashed("urn:uuid:019aa1b2c-3d4-7e5f-8a9b-0c1d2e3f4a5b")}, // hyphen moved
		{"a1", hashed("a1")},
		{"", hashed("")},
	} {
		if got := idPrefix(c.id); got != c.want {
			t.Errorf("idPrefix(%q) = %x; want %x", c.id, got, c.want)
		}
	}
	// The hub's IDs, made one after another, have growing prefixes.
	a, b := idPrefix(hub.NewID()), idPrefix(hub.NewID())
	if bytes.Compare(a[:], b[:]) >= 0 {
		t.Errorf("prefixes of consecutive hub IDs do not grow: %x then %x", a, b)
	}
}
