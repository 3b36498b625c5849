package testsvc

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Redis is a redis-server started for one test.
type Redis struct {
	*Process
	Addr string // host:port
	Dir  string // data directory (its AOF lives here)
	args []string
	bin  string
	t    testing.TB
}

// URL returns "redis://Addr".
func (r *Redis) URL() string { return "redis://" + r.Addr }

// StartRedis starts a redis-server on a free port with an append-only file
// fsynced on every write (appendfsync always), the setting under which the
// Redis engine promises no loss of acknowledged events.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := Require(t, "redis-server", "redis-server")
	port := FreePort(t)
	dir := t.TempDir()
	r := &Redis{Addr: Addr(port), Dir: dir, bin: bin, t: t, args: []string{
		"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--protected-mode", "no", "--daemonize", "no",
	}}
	r.Restart()
	return r
}

// Restart starts the server again (after Kill) on the same port and data.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Process = Start(r.t, r.bin, r.args...)
	WaitTCP(r.t, r.Process, r.Addr, 20*time.Second)
}

// NATS is a nats-server with JetStream started for one test.
type NATS struct {
	*Process
	Addr string
	Dir  string // JetStream store directory
	args []string
	bin  string
	t    testing.TB
}

// URL returns "nats://Addr".
func (n *NATS) URL() string { return "nats://" + n.Addr }

// StartNATS starts a nats-server with JetStream on a free port, with its
// store under a temporary directory. Debian's nats-server (2.9) writes
// every message to the file before acknowledging it, so a killed server
// loses nothing; it has no sync_interval setting (added in 2.10), so an
// operating-system crash can lose what was not yet fsynced.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	bin := Require(t, "nats-server", "nats-server")
	port := FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n}\n", port, filepath.Join(dir, "js"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &NATS{Addr: Addr(port), Dir: dir, bin: bin, t: t, args: []string{"-c", conf}}
	n.Restart()
	return n
}

// Restart starts the server again (after Kill) on the same port and data.
func (n *NATS) Restart() {
	n.t.Helper()
	n.Process = Start(n.t, n.bin, n.args...)
	WaitTCP(n.t, n.Process, n.Addr, 20*time.Second)
}
