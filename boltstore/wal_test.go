package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first uint64
		recs  [][]byte
	}{
		{"one", 1, [][]byte{[]byte("a")}},
		{"several", 1 << 40, [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("x"), 300)}},
		{"large record", 7, [][]byte{bytes.Repeat([]byte{0}, 1<<16)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := appendFrame([]byte("prefix"), 42, tt.first, tt.recs)
			first, recs, n, ok := parseFrame(append(b[len("prefix"):], "trailing"...), 42)
			if !ok || first != tt.first || n != len(b)-len("prefix") || len(recs) != len(tt.recs) {
				t.Fatalf("parseFrame = %d, %d records, %d bytes, %v; want %d, %d, %d, true", first, len(recs), n, ok, tt.first, len(tt.recs), len(b)-len("prefix"))
			}
			for i := range recs {
				if !bytes.Equal(recs[i], tt.recs[i]) {
					t.Errorf("record %d = %q; want %q", i, recs[i], tt.recs[i])
				}
			}
		})
	}
}

func TestFrameRejects(t *testing.T) {
	good := appendFrame(nil, 42, 5, [][]byte{[]byte("abc"), []byte("de")})
	flip := func(i int) []byte { b := slices.Clone(good); b[i] ^= 1; return b }
	for _, tt := range []struct {
		name string
		b    []byte
		salt uint64
	}{
		{"empty", nil, 42},
		{"zeros", make([]byte, 64), 42},
		{"torn", good[:len(good)-1], 42},
		{"header only", good[:frameHeadLen], 42},
		{"other salt", good, 43},
		{"crc", flip(0), 42},
		{"length", flip(4), 42},
		{"seq", flip(8), 42},
		{"count", flip(16), 42},
		{"payload", flip(len(good) - 1), 42},
		{"no records", appendFrame(nil, 42, 5, nil), 42},
		{"seq zero", appendFrame(nil, 42, 0, [][]byte{[]byte("a")}), 42},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, ok := parseFrame(tt.b, tt.salt); ok {
				t.Errorf("parseFrame accepted %x", tt.b)
			}
		})
	}
}

// FuzzParseFrame checks that parseFrame never panics, that what it accepts
// re-encodes to the same bytes, and that it finds every frame appendFrame
// makes.
func FuzzParseFrame(f *testing.F) {
	f.Add(appendFrame(nil, 7, 1, [][]byte{[]byte("a")}), uint64(7))
	f.Add(appendFrame(nil, 0, 1<<40, [][]byte{[]byte("abc"), {}, []byte("de")}), uint64(0))
	f.Add(make([]byte, 40), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, salt uint64) {
		first, recs, n, ok := parseFrame(b, salt)
		if ok {
			if again := appendFrame(nil, salt, first, recs); !bytes.Equal(again, b[:n]) {
				t.Fatalf("frame %x re-encodes as %x", b[:n], again)
			}
		}
		// Whatever the bytes, as records they make a frame that parses.
		recs = [][]byte{b, b[:len(b)/2]}
		fr := appendFrame(nil, salt, 9, recs)
		first, got, n, ok := parseFrame(fr, salt)
		if !ok || first != 9 || n != len(fr) || len(got) != 2 || !bytes.Equal(got[0], b) || !bytes.Equal(got[1], b[:len(b)/2]) {
			t.Fatalf("appendFrame's frame of %x did not parse back", b)
		}
	})
}

// bothModes runs test with the log written through O_DIRECT (checking
// that this file system has it) and through the page cache.
func bothModes(t *testing.T, test func(*testing.T, bool)) {
	t.Run("direct", func(t *testing.T) {
		s, err := Open(t.TempDir(), Config{})
		if err != nil {
			t.Fatal(err)
		}
		direct := s.wal.direct
		_ = s.Close()
		if !direct {
			t.Skip("this file system refuses O_DIRECT: the log is written through the page cache")
		}
		test(t, false)
	})
	t.Run("buffered", func(t *testing.T) { test(t, true) })
}

// crashImage copies the data directory of a running store: the files as
// a crash of the process (or of a machine that had synced them) leaves
// them.
func crashImage(t *testing.T, dir string) string {
	t.Helper()
	img := t.TempDir()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(img, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(img, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// stalled opens a store whose applier never applies by itself (its wait
// for a batch never ends), so appends stay in the log only until a read
// hurries it.
func stalled(t *testing.T, dir string, cfg Config) *Store {
	t.Helper()
	cfg.ApplyDelay = time.Hour
	cfg.applyAfter = func(time.Duration) <-chan time.Time { return nil }
	s, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func appendIDs(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.Append(context.Background(), &hub.Update{ID: id, Topics: []string{"t"}, Data: "data of " + id}); err != nil {
			t.Fatalf("Append(%s): %v", id, err)
		}
	}
}

func storedIDs(t *testing.T, s *Store) []string {
	t.Helper()
	var ids []string
	if err := s.Read(context.Background(), hub.Position{}, func(u *hub.Update) bool {
		ids = append(ids, u.ID)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func reopen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Config{})
	if err != nil {
		t.Fatalf("Open after a crash: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestRecoverFromLog: updates acknowledged but not yet in bbolt when the
// process dies are applied from the log when the store opens again, with
// their positions.
func TestRecoverFromLog(t *testing.T) { bothModes(t, testRecoverFromLog) }

func testRecoverFromLog(t *testing.T, buffered bool) {
	dir := t.TempDir()
	s := stalled(t, dir, Config{bufferedWAL: buffered})
	appendIDs(t, s, "a", "b")
	if got := storedIDs(t, s); !slices.Equal(got, []string{"a", "b"}) { // hurries the applier
		t.Fatalf("Read = %v", got)
	}
	appendIDs(t, s, "c", "d")
	// A frame of many blocks (the O_DIRECT buffer grows), then a small one
	// in the block where it ends.
	if err := s.Append(context.Background(), &hub.Update{ID: "big", Topics: []string{"t"}, Data: strings.Repeat("z", 100<<10)}); err != nil {
		t.Fatal(err)
	}
	appendIDs(t, s, "e")
	if n := s.inDB.Load(); n != 2 {
		t.Fatalf("bbolt holds up to seq %d; want 2 (the applier should be waiting)", n)
	}
	img := crashImage(t, dir)
	r := reopen(t, img)
	if got, want := storedIDs(t, r), []string{"a", "b", "c", "d", "big", "e"}; !slices.Equal(got, want) {
		t.Errorf("after the crash: %v; want %v", got, want)
	}
	if pos, err := r.Lookup(context.Background(), "e"); err != nil || pos.Seq != 6 || pos.Epoch != s.epoch {
		t.Errorf("Lookup(e) = %v, %v; want seq 6 of epoch %s", pos, err, s.epoch)
	}
	// The next append follows on.
	u := &hub.Update{ID: "f", Topics: []string{"t"}}
	if err := r.Append(context.Background(), u); err != nil || u.Pos.Seq != 7 {
		t.Errorf("append after recovery: seq %d, %v; want 7", u.Pos.Seq, err)
	}
}

// TestRecoverTornFrame: a frame whose write was cut short (it was never
// acknowledged) ends the log; the frames before it are recovered.
func TestRecoverTornFrame(t *testing.T) { bothModes(t, testRecoverTornFrame) }

func testRecoverTornFrame(t *testing.T, buffered bool) {
	img := damagedImage(t, buffered, func(b []byte, frames []int) {
		// Frames of one update each: cut the last one in half.
		last := frames[len(frames)-1]
		end := last + frameLen(b[last:])
		clear(b[last+(end-last)/2 : end])
	})
	r := reopen(t, img)
	if got, want := storedIDs(t, r), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("after a torn write: %v; want %v", got, want)
	}
}

// damagedImage appends a, b and c (one frame each) to a store whose
// applier waits, and returns a crash image of it whose log segment damage
// has changed, given the segment's bytes and where its frames start.
func damagedImage(t *testing.T, buffered bool, damage func(b []byte, frames []int)) string {
	t.Helper()
	dir := t.TempDir()
	s := stalled(t, dir, Config{bufferedWAL: buffered})
	appendIDs(t, s, "a", "b", "c")
	img := crashImage(t, dir)
	seg := onlySegment(t, img)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	damage(b, frameOffsets(t, b))
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestRecoverRefusesGap: a damaged frame followed by good ones means
// acknowledged updates are gone; Open says so rather than skipping them.
func TestRecoverRefusesGap(t *testing.T) { bothModes(t, testRecoverRefusesGap) }

func testRecoverRefusesGap(t *testing.T, buffered bool) {
	img := damagedImage(t, buffered, func(b []byte, frames []int) {
		b[frames[1]+frameHeadLen] ^= 0xff // damage b's frame
	})
	_, err := Open(img, Config{})
	if !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "seq 3 and later are intact") {
		t.Fatalf("Open of a log with a damaged frame before intact ones: %v; want an error saying so", err)
	}
}

// TestFailedFrameIsOverwritten: a frame whose sync failed may still be on
// the disk; its appends failed and their seqs are reused, so the next
// frame goes to the same place and a crash recovers that one, not both.
func TestFailedFrameIsOverwritten(t *testing.T) { bothModes(t, testFailedFrameIsOverwritten) }

func testFailedFrameIsOverwritten(t *testing.T, buffered bool) {
	dir := t.TempDir()
	var fail atomic.Bool
	s := stalled(t, dir, Config{bufferedWAL: buffered, walFault: func(f *os.File) error {
		if fail.Load() {
			return errors.New("injected sync failure")
		}
		return nil
	}})
	appendIDs(t, s, "a")
	fail.Store(true)
	long := &hub.Update{ID: "failed", Topics: []string{"t"}, Data: strings.Repeat("x", 500)}
	if err := s.Append(context.Background(), long); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("append with a failing sync: %v", err)
	}
	fail.Store(false)
	appendIDs(t, s, "b", "c")
	img := crashImage(t, dir)
	r := reopen(t, img)
	if got, want := storedIDs(t, r), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("after a failed frame and a crash: %v; want %v", got, want)
	}
}

// TestReusedSegments: segments are reused once bbolt holds their updates,
// the log stays a few segments long, and what a reused segment held
// before (including a frame forged inside an update's data, sealed with
// any salt a publisher could guess) is never recovered.
func TestReusedSegments(t *testing.T) { bothModes(t, testReusedSegments) }

func testReusedSegments(t *testing.T, buffered bool) {
	dir := t.TempDir()
	s, err := Open(dir, Config{SegmentSize: 64 << 10, bufferedWAL: buffered})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var want []string
	const n = 1000
	for i := range n {
		id := fmt.Sprint("u", i)
		// The data is a frame holding the next seq, sealed with salt 0.
		forged := appendFrame(nil, 0, uint64(i+2), [][]byte{encode(nil, &hub.Update{ID: "forged", Topics: []string{"t"}})})
		u := &hub.Update{ID: id, Topics: []string{"t"}, Data: string(forged) + strings.Repeat("y", 400)}
		if err := s.Append(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	files, _ := os.ReadDir(filepath.Join(dir, walDirName))
	if len(files) > 4 {
		t.Errorf("%d log segments after %d updates (%d KiB) in 64 KiB segments; want at most 4 (one being written, a few spare)", len(files), n, n*560>>10)
	}
	if last := s.wal.segs[len(s.wal.segs)-1].num; last < 8 {
		t.Errorf("newest segment is number %d: segments were not reused", last)
	}
	img := crashImage(t, dir)
	if err := os.WriteFile(filepath.Join(img, walDirName, "00000000000000ff.new"), []byte("interrupted"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(filepath.Join(img, walDirName))
	r := reopen(t, img)
	got := storedIDs(t, r)
	// Reopening reuses a segment rather than making one, and removes the
	// leftover of an interrupted creation.
	after, _ := os.ReadDir(filepath.Join(img, walDirName))
	if len(after) != len(before)-1 {
		t.Errorf("log files before reopening %v, after %v; want one fewer (the .new file)", before, after)
	}
	if !slices.Equal(got, want) {
		t.Errorf("after reusing segments and a crash: %d updates, first %v; want the %d appended", len(got), got[:min(3, len(got))], len(want))
	}
}

// TestApplyFailure: while bbolt cannot be written, appends fail and nothing
// acknowledged is hidden: reads serve what bbolt lacks from memory. Once
// bbolt can be written again the store goes on by itself.
func TestApplyFailure(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	injected := errors.New("injected apply failure")
	s, err := Open(dir, Config{applyFault: func() error {
		if fail.Load() {
			return injected
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendIDs(t, s, "a")
	fail.Store(true)
	appendIDs(t, s, "b") // logged; its apply fails
	if err := s.settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), &hub.Update{ID: "c", Topics: []string{"t"}}); !errors.Is(err, injected) {
		t.Fatalf("append while applying fails: %v; want the apply error", err)
	}
	if got := storedIDs(t, s); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Read while applying fails: %v; want [a b]", got)
	}
	if pos, err := s.Lookup(context.Background(), "b"); err != nil || pos.Seq != 2 {
		t.Errorf("Lookup(b) while applying fails: %v, %v", pos, err)
	}
	if oldest, newest, err := s.Bounds(context.Background()); err != nil || oldest.Seq != 1 || newest.Seq != 2 {
		t.Errorf("Bounds while applying fails: %v, %v, %v; want 1, 2", oldest, newest, err)
	}
	if n, _ := s.Size(); n != 2 {
		t.Errorf("Size while applying fails: %d; want 2", n)
	}
	fail.Store(false)
	appendIDs(t, s, "d")
	if err := s.settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.inDB.Load(); n != 3 {
		t.Errorf("bbolt holds up to seq %d after recovering; want 3", n)
	}
	if got := storedIDs(t, s); !slices.Equal(got, []string{"a", "b", "d"}) {
		t.Errorf("Read after recovering: %v; want [a b d]", got)
	}
}

// TestFailedRetentionPass: after a failed transaction with nothing to
// apply (age retention on the timer), the next append makes the applier
// try again, even with an empty queue, and goes on once that works.
func TestFailedRetentionPass(t *testing.T) {
	s, err := Open(t.TempDir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendIDs(t, s, "a")
	if err := s.settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock() // as a failed retention pass leaves it
	s.applyErr = errors.New("injected retention failure")
	s.mu.Unlock()
	appendIDs(t, s, "b")
	if got := storedIDs(t, s); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Read = %v; want [a b]", got)
	}
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	files, err := os.ReadDir(filepath.Join(dir, walDirName))
	if err != nil || len(files) != 1 {
		t.Fatalf("log segments: %v, %v; want one", files, err)
	}
	return filepath.Join(dir, walDirName, files[0].Name())
}

// frameOffsets returns where the frames of a segment start.
func frameOffsets(t *testing.T, b []byte) []int {
	t.Helper()
	hd, st := parseSegHeader(b, 1)
	if st != headOK {
		t.Fatal("segment 1 has no header")
	}
	var offs []int
	for off := hd.start; ; {
		_, _, n, ok := parseFrame(b[off:], hd.salt)
		if !ok {
			return offs
		}
		offs = append(offs, off)
		off += n
	}
}

func frameLen(b []byte) int {
	return frameHeadLen + int(uint32(b[4])|uint32(b[5])<<8|uint32(b[6])<<16|uint32(b[7])<<24)
}
