package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/hub"
)

// TestLogDamageAtTheEnd: damage at the end of the log that may have taken
// acknowledged updates with it makes Open refuse, with an error naming
// the file; a torn final frame (never acknowledged) does not.
func TestLogDamageAtTheEnd(t *testing.T) { bothModes(t, testLogDamageAtTheEnd) }

func testLogDamageAtTheEnd(t *testing.T, buffered bool) {
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, img, seg string)
		want   string // in the error; empty: Open succeeds with a and b
	}{
		{"torn final frame", func(t *testing.T, img, seg string) {
			b := readFile(t, seg)
			frames := frameOffsets(t, b)
			last := frames[len(frames)-1]
			clear(b[last+frameLen(b[last:])/2 : last+frameLen(b[last:])])
			writeFile(t, seg, b)
		}, ""},
		{"segment truncated to a block", func(t *testing.T, img, seg string) {
			truncate(t, seg, blockSize)
		}, "is 4096 bytes long, its header says 65536"},
		{"segment truncated inside a frame", func(t *testing.T, img, seg string) {
			b := readFile(t, seg)
			frames := frameOffsets(t, b)
			truncate(t, seg, int64(frames[1]+3))
		}, "bytes long, its header says 65536"},
		{"segment truncated to nothing", func(t *testing.T, img, seg string) {
			truncate(t, seg, 0)
		}, "has a damaged header"},
		{"header zeroed", func(t *testing.T, img, seg string) {
			b := readFile(t, seg)
			clear(b[:segHeaderLen])
			writeFile(t, seg, b)
		}, "has a damaged header"},
		{"header of a later number", func(t *testing.T, img, seg string) {
			b := readFile(t, seg)
			b[8] = 9
			writeFile(t, seg, b)
		}, "has a damaged header"},
		{"segment deleted", func(t *testing.T, img, seg string) {
			remove(t, seg)
		}, "0000000000000001 is missing (data.db records it)"},
		{"wal folder deleted", func(t *testing.T, img, seg string) {
			remove(t, filepath.Join(img, walDirName))
		}, "0000000000000001 is missing (data.db records it)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := stalled(t, dir, Config{bufferedWAL: buffered, SegmentSize: 64 << 10})
			appendIDs(t, s, "a", "b", "c")
			img := crashImage(t, dir)
			tt.damage(t, img, filepath.Join(img, walDirName, "0000000000000001"))
			r, err := Open(img, Config{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer r.Close()
				if got := storedIDs(t, r); !slices.Equal(got, []string{"a", "b"}) {
					t.Errorf("history %v; want [a b]", got)
				}
				return
			}
			if err == nil {
				r.Close()
				t.Fatalf("Open of a log damaged at its end succeeded; want an error containing %q", tt.want)
			}
			msg := err.Error()
			if !errors.Is(err, errLogDamaged) || !strings.Contains(msg, tt.want) || !strings.Contains(msg, img) || strings.Contains(msg, "\n") {
				t.Errorf("Open: %v; want one line wrapping errLogDamaged, naming %s and saying %q", err, img, tt.want)
			}
			if !strings.Contains(msg, "restore") {
				t.Errorf("Open: %v; want it to say what to do", err)
			}
		})
	}
}

// TestLogDamageRuledOut: damage the log can show to be harmless does not
// stop Open: a damaged spare segment, older than frames of a later one;
// and any damage after a clean Close, which leaves the log holding
// nothing bbolt lacks.
func TestLogDamageRuledOut(t *testing.T) {
	t.Run("damaged spare segment", func(t *testing.T) {
		img, segs, want := appliedImage(t)
		oldest := filepath.Join(img, walDirName, segs[0].Name())
		b := readFile(t, oldest)
		clear(b[:segHeaderLen])
		writeFile(t, oldest, b)
		r := reopen(t, img)
		if got := storedIDs(t, r); !slices.Equal(got, want) {
			t.Errorf("history after damage to a spare segment: %d updates; want %d", len(got), len(want))
		}
	})
	for _, name := range []string{"wal folder deleted", "segment truncated"} {
		t.Run("clean close, "+name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Config{})
			if err != nil {
				t.Fatal(err)
			}
			appendIDs(t, s, "a", "b")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if name == "wal folder deleted" {
				remove(t, filepath.Join(dir, walDirName))
			} else {
				truncate(t, onlySegment(t, dir), 100)
			}
			r := reopen(t, dir)
			if got := storedIDs(t, r); !slices.Equal(got, []string{"a", "b"}) {
				t.Errorf("history %v; want [a b]", got)
			}
			appendIDs(t, r, "c")
			// The new log is recorded: losing it now is refused again.
			img := crashImage(t, dir)
			remove(t, filepath.Join(img, walDirName))
			if _, err := Open(img, Config{}); !errors.Is(err, errLogDamaged) {
				t.Errorf("Open after a crash and a deleted log: %v; want errLogDamaged", err)
			}
		})
	}
}

func upd1k(id string) *hub.Update {
	return &hub.Update{ID: id, Topics: []string{"t"}, Data: strings.Repeat("d", 1000)}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

// TestNewestSegmentLost: a segment the writer moved to after bbolt's last
// commit is known only to the log: the trailer of the segment before it
// shows its loss.
func TestNewestSegmentLost(t *testing.T) { bothModes(t, testNewestSegmentLost) }

func testNewestSegmentLost(t *testing.T, buffered bool) {
	dir := t.TempDir()
	s := stalled(t, dir, Config{bufferedWAL: buffered, SegmentSize: 64 << 10})
	for i := range 40 {
		if err := s.Append(context.Background(), upd1k(fmt.Sprint("a", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.settle(context.Background()); err != nil { // bbolt learns of segment 1
		t.Fatal(err)
	}
	for i := range 40 {
		if err := s.Append(context.Background(), upd1k(fmt.Sprint("b", i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.wal.segs); n != 2 {
		t.Fatalf("%d segments; want 2", n)
	}
	img := crashImage(t, dir)
	// The whole image opens.
	whole := crashImage(t, img)
	if got := storedIDs(t, reopen(t, whole)); len(got) != 80 {
		t.Fatalf("crash image holds %d updates; want 80", len(got))
	}
	remove(t, filepath.Join(img, walDirName, "0000000000000002"))
	_, err := Open(img, Config{})
	if !errors.Is(err, errLogDamaged) || !strings.Contains(err.Error(), "0000000000000002 is missing (") || !strings.Contains(err.Error(), "0000000000000001 ends pointing to it") {
		t.Fatalf("Open without the newest segment: %v; want errLogDamaged naming it and the segment pointing to it", err)
	}
}

func TestTrailerRoundTrip(t *testing.T) {
	b := appendTrailer(nil, 42, 7)
	if len(b) != trailerLen {
		t.Fatalf("trailer of %d bytes; want %d", len(b), trailerLen)
	}
	if next, ok := parseTrailer(b, 42); !ok || next != 7 {
		t.Errorf("parseTrailer = %d, %v; want 7, true", next, ok)
	}
	if _, ok := parseTrailer(b, 43); ok {
		t.Error("parseTrailer accepted another salt")
	}
	if _, _, _, ok := parseFrame(b, 42); ok {
		t.Error("parseFrame accepted a trailer")
	}
	for i := range b {
		c := slices.Clone(b)
		c[i] ^= 1
		if _, ok := parseTrailer(c, 42); ok {
			t.Errorf("parseTrailer accepted a flip at byte %d", i)
		}
	}
}

// TestAcceptLostUpdates: with AcceptLostUpdates, a store whose log lost
// acknowledged updates opens with what is left under a new epoch, and
// positions and IDs from before the loss resolve to the old epoch, which
// reads refuse, so that a resuming client is told of the gap. The choice
// is kept: later opens need no flag and keep the new epoch.
func TestAcceptLostUpdates(t *testing.T) {
	dir := t.TempDir()
	s := stalled(t, dir, Config{})
	appendIDs(t, s, "a", "b")
	oldB, err := s.Lookup(context.Background(), "b") // bbolt holds a and b
	if err != nil {
		t.Fatal(err)
	}
	appendIDs(t, s, "c", "d") // in the log only
	img := crashImage(t, dir)
	remove(t, filepath.Join(img, walDirName))
	if _, err := Open(img, Config{}); !errors.Is(err, errLogDamaged) {
		t.Fatalf("Open: %v; want errLogDamaged", err)
	}
	r, err := Open(img, Config{AcceptLostUpdates: true})
	if err != nil {
		t.Fatalf("Open with AcceptLostUpdates: %v", err)
	}
	if lost := r.Lost(); !errors.Is(lost, errLogDamaged) {
		t.Errorf("Lost() = %v; want the damage accepted", lost)
	}
	check := func(r *Store) {
		t.Helper()
		if r.epoch == s.epoch {
			t.Errorf("epoch %s unchanged after a loss", r.epoch)
		}
		if got := storedIDs(t, r); !slices.Equal(got, []string{"a", "b", "e"}) {
			t.Errorf("history %v; want [a b e]", got)
		}
		pos, err := r.Lookup(context.Background(), "b")
		if err != nil || pos != oldB {
			t.Errorf("Lookup(b) = %v, %v; want %v, its position in the old epoch", pos, err, oldB)
		}
		if err := r.Read(context.Background(), pos, func(*hub.Update) bool { return true }); !errors.Is(err, hub.ErrEpochChanged) {
			t.Errorf("Read after b: %v; want ErrEpochChanged", err)
		}
		if pos, err := r.Lookup(context.Background(), "e"); err != nil || pos.Epoch != r.epoch || pos.Seq != 3 {
			t.Errorf("Lookup(e) = %v, %v; want seq 3 of the new epoch", pos, err)
		}
	}
	appendIDs(t, r, "e")
	check(r)
	epoch := r.epoch
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = reopen(t, img)
	if lost := r.Lost(); lost != nil {
		t.Errorf("Lost() after a whole reopen = %v; want nil", lost)
	}
	if r.epoch != epoch {
		t.Errorf("epoch after reopening %s; want %s", r.epoch, epoch)
	}
	check(r)
}

// TestInterruptedReuseIsNormal: a crash between renaming a spare segment
// for reuse and writing its new header leaves a segment whose header is a
// previous life's (an older number). That is normal: Open goes on with
// every update, and reuses it.
func TestInterruptedReuseIsNormal(t *testing.T) {
	img, segs, want := appliedImage(t)
	newest, _ := strconvParseHex(segs[len(segs)-1].Name())
	from := filepath.Join(img, walDirName, segs[0].Name())
	to := filepath.Join(img, walDirName, fmt.Sprintf("%016x", newest+1))
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
	r := reopen(t, img)
	if got := storedIDs(t, r); !slices.Equal(got, want) {
		t.Errorf("history after an interrupted reuse: %d updates; want %d", len(got), len(want))
	}
}

// appliedImage appends 300 updates of 1 KiB to a store with 64 KiB
// segments, waits until bbolt holds them all, and returns a crash image of
// its directory, the image's log segments (at least two: one is a spare)
// and the IDs appended.
func appliedImage(t *testing.T) (img string, segs []os.DirEntry, want []string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Config{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 300 {
		id := fmt.Sprint("u", i)
		want = append(want, id)
		if err := s.Append(context.Background(), upd1k(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	img = crashImage(t, dir)
	segs, _ = os.ReadDir(filepath.Join(img, walDirName))
	if len(segs) < 2 {
		t.Fatalf("%d segments; want a spare", len(segs))
	}
	return img, segs, want
}

func strconvParseHex(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

// FuzzParseSegHeader checks that parsing a segment header or a trailer
// never panics, that what segHeader writes parses back, and that a
// trailer parses back and is never taken for a frame.
func FuzzParseSegHeader(f *testing.F) {
	f.Add(segHeader(3, 42, 65536), uint64(3), uint64(42))
	f.Add(appendTrailer(nil, 42, 4), uint64(4), uint64(42))
	f.Add(make([]byte, 40), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, num, salt uint64) {
		_, _ = parseSegHeader(b, num)
		_, _ = parseTrailer(b, salt)
		h, st := parseSegHeader(segHeader(num, salt, int64(len(b))), num)
		if st != headOK || h.salt != salt || h.size != int64(len(b)) || h.start != segHeaderLen {
			t.Fatalf("segHeader(%d, %d) parses as %+v, %v", num, salt, h, st)
		}
		tr := appendTrailer(nil, salt, num)
		if next, ok := parseTrailer(tr, salt); !ok || next != num {
			t.Fatalf("trailer to %d parses as %d, %v", num, next, ok)
		}
		if _, _, _, ok := parseFrame(tr, salt); ok {
			t.Fatal("a trailer parses as a frame")
		}
	})
}
