// Package testsvc starts the real services integration tests need — a
// redis-server, a nats-server, an nginx, the ssehub binary — as child
// processes on free loopback ports, and stops them when the test ends.
//
// A missing program is installed from its Debian package when the test
// runs as root (as on CI, where scripts/test installs them all up front);
// otherwise the test fails with a message naming the package. Integration
// tests never skip silently: a test that did not run did not pass.
package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Require returns the path of the program cmd, installing the Debian
// package pkg first when cmd is missing and the process runs as root.
// Concurrent test binaries take turns through a lock file, as apt does not
// allow two installs at once.
func Require(t testing.TB, cmd, pkg string) string {
	t.Helper()
	if p, err := lookPath(cmd); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s is not installed: install the Debian package %q (make test does this as root)", cmd, pkg)
	}
	if err := aptInstall(pkg); err != nil {
		t.Fatalf("installing %s: %v", pkg, err)
	}
	p, err := lookPath(cmd)
	if err != nil {
		t.Fatalf("%s is still missing after installing %s", cmd, pkg)
	}
	return p
}

// lookPath is exec.LookPath that also searches the sbin directories, where
// Debian puts nginx and which a non-login PATH may lack.
func lookPath(cmd string) (string, error) {
	if p, err := exec.LookPath(cmd); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, cmd)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

var installMu sync.Mutex

func aptInstall(pkg string) error {
	installMu.Lock()
	defer installMu.Unlock()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "ssehub-testsvc-apt.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	install := func() ([]byte, error) {
		c := exec.Command("apt-get", "install", "-y", "-q", "--no-install-recommends", pkg)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return c.CombinedOutput()
	}
	if _, err := install(); err == nil {
		return nil
	}
	if out, err := exec.Command("apt-get", "update", "-q").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, tail(out))
	}
	if out, err := install(); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", pkg, err, tail(out))
	}
	return nil
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Process is a child process started by Start. Its combined output is kept
// and shown when the test fails.
type Process struct {
	Cmd  *exec.Cmd
	name string
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start runs name with args in the background. The process is killed (and
// waited for) when the test ends, and its output is logged if the test
// failed.
func Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(name, args...), name: filepath.Base(name), out: new(syncBuffer), done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	// Its own process group, so that Kill also ends the children it forks
	// (nginx's workers), which would otherwise hold the output pipe open.
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p.Cmd.WaitDelay = 5 * time.Second
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, tail(p.out.Bytes()))
		}
	})
	return p
}

// Output returns what the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Signal sends sig to the process, if it is still running.
func (p *Process) Signal(sig os.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.Cmd.Process.Signal(sig)
	}
}

// Kill stops the process and every process in its group with SIGKILL,
// and waits for it.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// Wait waits up to d for the process to exit and returns its exit error.
// It returns context.DeadlineExceeded if it is still running.
func (p *Process) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return context.DeadlineExceeded
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitTCP waits until addr accepts connections, failing the test after
// timeout or as soon as p (if not nil) exits.
func WaitTCP(t testing.TB, p *Process, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if p != nil && p.Exited() {
			t.Fatalf("%s exited before listening on %s: %v\n%s", p.name, addr, p.err, tail(p.out.Bytes()))
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %v", addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }

// BuildSSEHub compiles the ssehub command into dir, with the race detector
// when race is set, and returns the binary's path. The compiler's output
// goes to the test binary's stderr.
func BuildSSEHub(dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "ssehub")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/ssehub/ssehub/cmd/ssehub")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building ssehub: %w", err)
	}
	return bin, nil
}

// MainWithSSEHub is the TestMain of a package that runs the ssehub binary:
// it builds it into a temporary directory (with the race detector when race
// is set) unless prebuilt names one, sets *binary, runs the tests, removes
// the directory, and fails the run when the tests leaked goroutines
// (goleak, with opts). It returns the exit code for os.Exit.
func MainWithSSEHub(m *testing.M, race bool, prebuilt string, binary *string, opts ...goleak.Option) int {
	dir, err := os.MkdirTemp("", "ssehub-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *binary = prebuilt; prebuilt == "" {
		if *binary, err = BuildSSEHub(dir, race); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	return code
}

// HTTPClientGoroutines are the goroutines an http.Client's idle
// keep-alive connections leave behind, for MainWithSSEHub's opts.
var HTTPClientGoroutines = []goleak.Option{
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
}
