package boltstore

import (
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
