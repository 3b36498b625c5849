package proctest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDamagedLogEnd runs the real binary: kill -9 (a torn write at most,
// which recovers silently), then damage at the end of the write-ahead
// log (the newest segment truncated, the wal folder deleted), which the
// hub refuses to start on with one line naming the file and what to do;
// --accept-lost-updates then starts it under a new epoch, and a client
// resuming from before the loss is told of the gap.
func TestDamagedLogEnd(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	tok := token(t)
	pub := func(p *hubProc, ids ...string) {
		t.Helper()
		for _, id := range ids {
			status, body, err := publish(context.Background(), http.DefaultClient, p.url, tok, url.Values{"topic": {"damage"}, "id": {id}, "data": {"x"}})
			if err != nil || status != http.StatusOK || body != id {
				t.Fatalf("publish %s: %d %q %v", id, status, body, err)
			}
		}
	}
	kill := func(p *hubProc) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
	}

	// A crash: the restart recovers every acknowledged update.
	p := startHub(t, addr, "--data", dir)
	pub(p, "a1", "a2", "a3")
	kill(p)
	p = startHub(t, addr, "--data", dir)
	if got := readHistory(t, p.base, tok); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Fatalf("history after kill -9: %v", got)
	}
	pub(p, "b1", "b2")
	kill(p)

	// The newest segment cut in half.
	segs, err := os.ReadDir(filepath.Join(dir, "wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("log segments: %v, %v", segs, err)
	}
	newest := filepath.Join(dir, "wal", segs[len(segs)-1].Name())
	fi, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(newest)
	if err := os.Truncate(newest, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	msg := refused(t, "write-ahead log", addr, "--data", dir)
	if !strings.Contains(msg, newest) || !strings.Contains(msg, "bytes long") || !strings.Contains(msg, "--accept-lost-updates") {
		t.Errorf("refusal of a truncated segment: %q; want it to name %s and say what to do", msg, newest)
	}
	if err := os.WriteFile(newest, saved, 0o600); err != nil { // restored: it starts
		t.Fatal(err)
	}
	p = startHub(t, addr, "--data", dir)
	pub(p, "c1")
	kill(p)

	// The log deleted.
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	msg = refused(t, "write-ahead log", addr, "--data", dir)
	if !strings.Contains(msg, filepath.Join(dir, "wal")) || !strings.Contains(msg, "is missing") {
		t.Errorf("refusal of a deleted log: %q; want it to name the missing segment", msg)
	}
	p = startHub(t, addr, "--data", dir, "--accept-lost-updates")
	pub(p, "d1")
	// Whether or not bbolt held b2 before the kill, a client that saw it
	// is told of a gap, then gets what is retained.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, r := rawStream(t, ctx, p.url+"?topic=damage&last_event_id=b2")
	var lines []string
	for !slices.Contains(lines, "id: d1") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v after %q", err, lines)
		}
		lines = append(lines, strings.TrimRight(line, "\n"))
	}
	if !slices.Contains(lines, "event: ssehub.gap") {
		t.Errorf("resume from b2 after the loss: %q; want an ssehub.gap event", lines)
	}
	cancel()
	kill(p)
	if log := p.stderr.String(); !strings.Contains(log, "started a new epoch") || !strings.Contains(log, "is missing") {
		t.Errorf("the hub that accepted the loss did not log it:\n%s", log)
	}
}

// refused runs ssehub serve, which must exit with status 1 (not a panic,
// 2, nor a signal): it returns the line of its output that contains
// about, checking there is one.
func refused(t *testing.T, about, addr string, args ...string) string {
	t.Helper()
	all := append([]string{"serve", "--addr", addr, "--publisher-key", key}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, all...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || ctx.Err() != nil {
		t.Fatalf("ssehub serve on damaged data: %v; want it to exit with status 1\n%s", err, out)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, about) {
			if last != "" {
				t.Errorf("the error takes more than one line:\n%s", out)
			}
			last = l
		}
	}
	if last == "" {
		t.Fatalf("no line says %q:\n%s", about, out)
	}
	t.Logf("refused: %s", last)
	return last
}

// TestDamagedDataFile runs the real binary on a data.db damaged after
// kill -9: cut in half (bbolt would fault in its memory map: SIGBUS) or
// with a page's header overwritten (bbolt would panic). The hub exits with
// status 1 and one line naming the file and what to do; restored, it
// serves every acknowledged update.
func TestDamagedDataFile(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	tok := token(t)
	p := startHub(t, addr, "--data", dir)
	var want []string
	for i := range 300 {
		id := fmt.Sprint("e", i)
		status, body, err := publish(context.Background(), http.DefaultClient, p.url, tok, url.Values{"topic": {"damage"}, "id": {id}, "data": {strings.Repeat("x", 200)}})
		if err != nil || status != http.StatusOK || body != id {
			t.Fatalf("publish %s: %d %q %v", id, status, body, err)
		}
		want = append(want, id)
	}
	if got := readHistory(t, p.base, tok); len(got) != len(want) { // bbolt holds them all
		t.Fatalf("history: %d updates; want %d", len(got), len(want))
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	path := filepath.Join(dir, "data.db")
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"cut in half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"page header", func(b []byte) []byte {
			for pg := 2; pg*4096 < len(b); pg++ {
				b[pg*4096+1] ^= 0x5a // every page's id
			}
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(path, c.damage(append([]byte(nil), saved...)), 0o600); err != nil {
				t.Fatal(err)
			}
			msg := refused(t, "is damaged", addr, "--data", dir)
			if !strings.Contains(msg, path) || !strings.Contains(msg, "restore") {
				t.Errorf("refusal: %q; want it to name %s and say what to do", msg, path)
			}
		})
	}
	if err := os.WriteFile(path, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	p = startHub(t, addr, "--data", dir)
	if got := readHistory(t, p.base, tok); !slices.Equal(got, want) {
		t.Errorf("history after restoring data.db: %d updates; want the %d acknowledged", len(got), len(want))
	}
}
