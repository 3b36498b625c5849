package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// damageBase is a small store closed cleanly: its data.db, and the
// updates it holds by seq.
var damageBase struct {
	once sync.Once
	db   []byte
	want map[uint64]*hub.Update
	err  error
}

func baseFile(t testing.TB) ([]byte, map[uint64]*hub.Update) {
	damageBase.once.Do(func() {
		dir, err := os.MkdirTemp("", "boltstore-damage")
		if err != nil {
			damageBase.err = err
			return
		}
		defer os.RemoveAll(dir)
		s, err := Open(dir, Config{MaxAge: -1, TopicLimits: func(topic string) (hub.Limits, bool) {
			return hub.Limits{MaxUpdates: 40}, topic == "limited"
		}})
		if err != nil {
			damageBase.err = err
			return
		}
		want := map[uint64]*hub.Update{}
		for i := range 120 {
			u := &hub.Update{ID: fmt.Sprint("u", i), Topics: []string{"t", fmt.Sprint("t", i%7)}, Data: strings.Repeat(fmt.Sprint(i%10), 50+i*3), Type: "x",
				Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)}
			if i%3 == 0 {
				u.Topics = append(u.Topics, "limited")
			}
			if err := s.Append(context.Background(), u); err != nil {
				damageBase.err = err
				return
			}
			want[u.Pos.Seq] = u
		}
		if err := s.Close(); err != nil {
			damageBase.err = err
			return
		}
		damageBase.db, damageBase.err = os.ReadFile(filepath.Join(dir, FileName))
		damageBase.want = want
	})
	if damageBase.err != nil {
		t.Fatal(damageBase.err)
	}
	return damageBase.db, damageBase.want
}

// FuzzDamagedFile flips bytes in (and may cut short) the data.db of a
// real store and opens it: Open must refuse it with an error naming the
// file, or serve exactly what was appended (an update at its seq with the
// same fields; an error for what it cannot read); never panic, fault or
// serve wrong bytes.
func FuzzDamagedFile(f *testing.F) {
	db, _ := baseFile(f)
	n := uint32(len(db))
	f.Add(uint32(0), byte(0), uint32(0), byte(0), uint32(0))  // undamaged
	f.Add(uint32(20), byte(1), uint32(0), byte(0), uint32(0)) // meta 0 checksum
	f.Add(uint32(20), byte(1), uint32(4096+20), byte(1), uint32(0))
	f.Add(uint32(0), byte(0), uint32(0), byte(0), n/2) // cut in half
	f.Add(uint32(0), byte(0), uint32(0), byte(0), n-1) // one byte short
	for pg := uint32(2); pg*4096 < n; pg++ {
		f.Add(pg*4096, byte(0x40), uint32(0), byte(0), uint32(0))      // page id
		f.Add(pg*4096+8, byte(3), uint32(0), byte(0), uint32(0))       // flags
		f.Add(pg*4096+10, byte(0x80), uint32(0), byte(0), uint32(0))   // count
		f.Add(pg*4096+16+4, byte(0x10), uint32(0), byte(0), uint32(0)) // first element's pos
		f.Add(pg*4096+16+8, byte(0x7), uint32(0), byte(0), uint32(0))  // a branch's child, a leaf's key size
		f.Add(pg*4096+2000, byte(0x01), uint32(0), byte(0), uint32(0)) // inside the data
	}
	f.Fuzz(func(t *testing.T, pos uint32, mask byte, pos2 uint32, mask2 byte, cut uint32) {
		db, want := baseFile(t)
		b := append([]byte(nil), db...)
		b[int(pos)%len(b)] ^= mask
		b[int(pos2)%len(b)] ^= mask2
		if cut != 0 {
			b = b[:int(cut)%len(b)]
		}
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Config{MaxAge: -1})
		if err != nil {
			// The file, or, when bbolt falls back to the previous meta
			// page, which predates the clean Close, the log it lacks.
			if msg := err.Error(); !strings.Contains(msg, dir) || strings.Contains(msg, "\n") || !strings.Contains(msg, "restore") {
				t.Fatalf("Open refused with %q; want one line naming %s and what to do", msg, dir)
			}
			return
		}
		defer s.Close()
		check := func(u *hub.Update) {
			w := want[u.Pos.Seq]
			if w == nil {
				t.Fatalf("served seq %d (%s), never appended", u.Pos.Seq, u.ID)
			}
			if u.ID != w.ID || u.Data != w.Data || u.Type != w.Type || !reflect.DeepEqual(u.Topics, w.Topics) || !u.Time.Equal(w.Time) || u.Private != w.Private {
				t.Fatalf("served at seq %d: ID %q, type %q, topics %q, time %v, private %v, %d bytes of data; appended ID %q, type %q, topics %q, time %v, private %v, %d bytes of data", u.Pos.Seq,
					u.ID, u.Type, u.Topics, u.Time, u.Private, len(u.Data), w.ID, w.Type, w.Topics, w.Time, w.Private, len(w.Data))
			}
		}
		var ids []string
		err = s.Read(context.Background(), hub.Position{}, func(u *hub.Update) bool {
			check(u)
			ids = append(ids, u.ID)
			return true
		})
		if err != nil && !errors.Is(err, errDamagedRecord) && !errors.Is(err, errCorrupt) && !errors.Is(err, errPanicked) {
			t.Fatalf("Read: %v", err)
		}
		for _, id := range ids {
			pos, err := s.Lookup(context.Background(), id)
			if err != nil {
				continue
			}
			if w := want[pos.Seq]; w == nil || w.ID != id {
				t.Fatalf("Lookup(%s) = seq %d, which holds another update", id, pos.Seq)
			}
		}
		_, _, _ = s.Bounds(context.Background())
		_ = s.Append(context.Background(), &hub.Update{ID: "new", Topics: []string{"t"}})
	})
}

// TestDamagedFileRefused: damage that once crashed the process or served
// garbage is refused with one line naming the file and what to do.
func TestDamagedFileRefused(t *testing.T) {
	db, _ := baseFile(t)
	for _, tt := range []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"cut in half", func(b []byte) []byte { return b[:len(b)/2] }, "it was cut short"},
		{"both meta pages", func(b []byte) []byte { b[20] ^= 1; b[4096+20] ^= 1; return b }, "neither meta page is valid"},
		{"page id", func(b []byte) []byte { b[3*4096] ^= 0x40; return b }, "says it is page"},
		{"page type", func(b []byte) []byte { b[3*4096+8] = 0x04; return b }, "neither branch nor leaf"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, tt.damage(append([]byte(nil), db...)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, Config{})
			if !errors.Is(err, errDamagedFile) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "restore") {
				t.Fatalf("Open: %v; want errDamagedFile naming %s, saying %q and what to do", err, path, tt.want)
			}
		})
	}
}

// TestDamagedRecordNotServed: a byte flipped inside a record's data (the
// page stays well formed) is an error on read, never served.
func TestDamagedRecordNotServed(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	appendIDs(t, s, "a")
	if err := s.Append(context.Background(), &hub.Update{ID: "b", Topics: []string{"t"}, Data: "MARKER-data-of-b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	b := readFile(t, path)
	// Every copy (bbolt leaves old versions of pages behind, free).
	n := 0
	for i := strings.Index(string(b), "MARKER"); i >= 0; i = strings.Index(string(b), "MARKER") {
		b[i] = 'X'
		n++
	}
	if n == 0 {
		t.Fatal("record not found in the file")
	}
	writeFile(t, path, b)
	r := reopen(t, dir)
	var got []string
	err = r.Read(context.Background(), hub.Position{}, func(u *hub.Update) bool { got = append(got, u.ID+"="+u.Data); return true })
	if !errors.Is(err, errDamagedRecord) || !strings.Contains(err.Error(), "seq 2") {
		t.Errorf("Read of a damaged record: %v (after %v); want errDamagedRecord at seq 2", err, got)
	}
	for _, g := range got {
		if strings.Contains(g, "XARKER") {
			t.Errorf("served the damaged record: %s", g)
		}
	}
}
