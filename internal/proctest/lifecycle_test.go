package proctest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrainsAtEventBoundaries stops a hub with SIGTERM while a
// subscriber is streaming and another stalls: the stream ends cleanly
// after a whole event, and the process exits 0 within its grace period.
func TestSIGTERMDrainsAtEventBoundaries(t *testing.T) {
	t.Parallel()
	p := startHub(t, freeAddr(t), "--store", "memory", "--shutdown-grace", "2s")
	tok := token(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, r := rawStream(t, ctx, p.url+"?topic=drain")

	// A stalled reader: subscribes over raw TCP and never reads.
	stalled, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /.well-known/mercure?topic=drain HTTP/1.1\r\nHost: x\r\n\r\n")

	for i := range 20 {
		status, body, err := publish(ctx, http.DefaultClient, p.url, tok, url.Values{"topic": {"drain"}, "data": {strings.Repeat("x", 10000) + fmt.Sprint(i)}})
		if err != nil || status != 200 {
			t.Fatalf("publish: %d %s %v", status, body, err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("stream ended with %v; want a clean end", err)
	}
	resp.Body.Close()
	if n := bytes.Count(rest, []byte("\n\ndata: ")); len(rest) > 0 && !bytes.HasSuffix(rest, []byte("\n\n")) {
		t.Errorf("stream ended mid-event after %d events: ...%q", n, rest[max(0, len(rest)-40):])
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("ssehub exited with %v after SIGTERM\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ssehub did not exit after SIGTERM")
	}
}

// TestDiskFullAnswers503AndRecovers runs the hub on a small tmpfs: when the
// disk is full, publishing answers 503 with a reason and is not
// acknowledged, /readyz answers 503, live streams stay open, and once
// space is freed the hub is ready and publishing works again without a
// restart.
func TestDiskFullAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	data := filepath.Join(dir, "data")
	p := startHub(t, freeAddr(t), "--data", data)
	tok := token(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, r := rawStream(t, ctx, p.url+"?topic=disk")

	// Fill the disk with a file we can delete later.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()

	big := strings.Repeat("y", 200<<10)
	var status int
	var body string
	for i := range 100 {
		status, body, err = publish(ctx, http.DefaultClient, p.url, tok, url.Values{"topic": {"disk"}, "data": {big}, "id": {fmt.Sprint("full-", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if status != 200 {
			break
		}
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "out of disk space") {
		t.Fatalf("publishing on a full disk: %d %q; want 503 naming the full disk", status, body)
	}
	// The hub is still alive and serves streams, but is not ready: a
	// load balancer should send publishes elsewhere.
	if resp, err := http.Get(p.base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz on a full disk: %v", err)
	}
	if code, body := get(t, p.base+"/readyz"); code != http.StatusServiceUnavailable || body != "store is out of disk space\n" {
		t.Fatalf("readyz on a full disk: %d %q; want 503 naming the full disk", code, body)
	}
	os.Remove(filepath.Join(dir, "filler"))
	// Ready again once a WAL segment (4 MiB) fits, before any publish:
	// a hub out of rotation may get none to try.
	var st syscall.Statfs_t
	if err := syscall.Statfs(data, &st); err != nil {
		t.Fatal(err)
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	if free < 4<<20 {
		t.Fatalf("only %d bytes free once the filler is removed: the tmpfs is too small for this test", free)
	}
	if code, body := get(t, p.base+"/readyz"); code != 200 {
		t.Fatalf("readyz with %d bytes free: %d %q; want ready", free, code, body)
	}
	status, id, err := publish(ctx, http.DefaultClient, p.url, tok, url.Values{"topic": {"disk"}, "data": {"after"}, "id": {"recovered"}})
	if err != nil || status != 200 || id != "recovered" {
		t.Fatalf("publishing after space was freed: %d %q %v", status, id, err)
	}
	if code, body := get(t, p.base+"/readyz"); code != 200 {
		t.Fatalf("readyz after a publish succeeded: %d %q", code, body)
	}
	// The open stream receives it.
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream broke: %v", err)
		}
		if line == "id: recovered\n" {
			break
		}
	}
}

// get returns the status and body of a GET of rawURL.
func get(t *testing.T, rawURL string) (int, string) {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
