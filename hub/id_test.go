package hub_test

import (
	"regexp"
	"testing"

	"github.com/ssehub/ssehub/hub"
)

// uuidV4 is the canonical lower-case form of an RFC 9562 version 4 UUID.
var uuidV4 = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDFormat(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := hub.NewID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("NewID() = %q; want a canonical urn:uuid: v4", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = hub.NewID()
	}
}
