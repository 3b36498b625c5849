package hub

import (
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// uuidV7 is the canonical lower-case form of an RFC 9562 version 7 UUID.
var uuidV7 = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDFormatAndOrder(t *testing.T) {
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = NewID()
		if !uuidV7.MatchString(ids[i]) {
			t.Fatalf("NewID() = %q; want a canonical urn:uuid: v7", ids[i])
		}
	}
	if !slices.IsSorted(ids) {
		t.Fatal("IDs made one after another do not sort in the order they were made")
	}
	if c := slices.Compact(ids); len(c) != 10000 {
		t.Fatalf("NewID() repeated itself: %d distinct of 10000", len(c))
	}
}

func TestNewIDTime(t *testing.T) {
	before := time.Now().UnixMilli()
	id := NewID()
	after := time.Now().UnixMilli()
	ms, err := strconv.ParseInt(id[9:17]+id[18:22], 16, 64) // the 48 bits of Unix milliseconds
	if err != nil {
		t.Fatal(err)
	}
	if ms < before || ms > after {
		t.Fatalf("NewID() at %d–%d ms holds %d ms", before, after, ms)
	}
}

func TestIDClock(t *testing.T) {
	var c idClock
	t0 := time.Unix(1_800_000_000, 500_000_000)
	a := c.next(t0)
	if want := uint64(1_800_000_000_500) << 12; a != want {
		t.Fatalf("next(t0) = %#x; want %#x", a, uint64(1_800_000_000_500)<<12)
	}
	// The same time, an earlier time (a clock stepped back) and a time
	// within the same 1/4096 ms all move on by one tick.
	for _, now := range []time.Time{t0, t0.Add(-time.Hour), t0.Add(100 * time.Nanosecond)} {
		b := c.next(now)
		if b != a+1 {
			t.Fatalf("next(%v) = %#x; want %#x", now, b, a+1)
		}
		a = b
	}
	if b := c.next(t0.Add(time.Second)); b <= a || b>>12 != uint64(1_800_000_001_500) {
		t.Fatalf("next(t0+1s) = %#x: want the millisecond 1800000001500", b)
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID()
	}
}
