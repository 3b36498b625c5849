// Package testsvc starts the real services integration tests need — a
// redis-server, a nats-server, an nginx, the ssehub binary — as child
// processes on free loopback ports, and stops them when the test ends.
//
// A missing program is installed from its Debian package when the test
// runs as root (as on CI, where scripts/test installs them all up front),
// waiting like scripts/test, up to SSEHUB_APT_LOCK_WAIT seconds (default
// 600), while another package manager holds apt's lock; otherwise the test
// fails with a message naming the package. Integration
// tests never skip silently: a test that did not run did not pass.
package testsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
// allow two installs at once; another package manager's apt lock is waited
// for (bounded: SSEHUB_APT_LOCK_WAIT seconds, default 600, and never past
// a minute before the test's deadline) instead of failing at once.
func Require(t testing.TB, cmd, pkg string) string {
	t.Helper()
	if p, err := lookPath(cmd); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s is not installed: install the Debian package %q (make test does this as root)", cmd, pkg)
	}
	wait, err := aptLockWait(os.Getenv(aptLockWaitEnv))
	if err != nil {
		t.Fatal(err)
	}
	if tt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := tt.Deadline(); ok {
			// Give up on the lock before go test's -timeout ends the
			// whole binary, so the failure says why.
			wait = min(wait, max(0, time.Until(d)-time.Minute))
		}
	}
	apt := aptRunner{wait: wait, run: runAptGet, now: time.Now, sleep: time.Sleep, logf: t.Logf}
	if err := apt.install(pkg); err != nil {
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

// aptLockWaitEnv names the variable that bounds, in seconds, how long an
// install waits for another package manager (unattended-upgrades, another
// test binary's apt-get, another CI job) to release apt's locks; the same
// variable as scripts/test's, with the same default.
const aptLockWaitEnv = "SSEHUB_APT_LOCK_WAIT"

const (
	defaultAptLockWait = 600 * time.Second
	aptRetryEvery      = 5 * time.Second // between runs refused on a lock
)

// aptLockWait parses the value of SSEHUB_APT_LOCK_WAIT: a whole number of
// seconds (0: do not wait), or empty for the default.
func aptLockWait(v string) (time.Duration, error) {
	if v == "" {
		return defaultAptLockWait, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a whole number of seconds", aptLockWaitEnv, v)
	}
	return time.Duration(n) * time.Second, nil
}

// aptLocked matches what apt-get and dpkg print when another process holds
// one of their locks (the dpkg frontend lock, the dpkg database lock,
// apt's lists or archives lock), in current and older wordings. aptNotRoot
// matches the same messages when the lock file could not even be opened:
// a permission problem, which waiting does not cure.
var (
	aptLocked  = regexp.MustCompile(`Could not get lock|Unable to (acquire|lock)\b|locked by another process`)
	aptNotRoot = regexp.MustCompile(`Could not open lock file|are you root\?`)
)

// isAptLockError reports whether out, the output of a failed apt-get run,
// says that another process holds apt's or dpkg's lock, so that the same
// run may succeed later.
func isAptLockError(out []byte) bool {
	return aptLocked.Match(out) && !aptNotRoot.Match(out)
}

// aptRunner runs apt-get, waiting (bounded) for another package manager's
// lock instead of failing at once: apt waits for the dpkg lock itself
// (DPkg::Lock::Timeout), and a run refused on any lock (apt-get update's
// lists lock, which that option does not cover) is run again every
// aptRetryEvery, until wait has passed since the first run.
type aptRunner struct {
	wait  time.Duration
	run   func(args ...string) ([]byte, error) // runs apt-get with args
	now   func() time.Time
	sleep func(time.Duration)
	logf  func(format string, args ...any)
}

// get runs apt-get with args and returns its combined output.
func (a aptRunner) get(args ...string) ([]byte, error) {
	deadline := a.now().Add(a.wait)
	for {
		left := max(0, deadline.Sub(a.now()))
		secs := int((left + time.Second - 1) / time.Second) // rounded up
		out, err := a.run(append([]string{"-o", "DPkg::Lock::Timeout=" + strconv.Itoa(secs)}, args...)...)
		if err == nil || !isAptLockError(out) {
			return out, err
		}
		if !a.now().Add(aptRetryEvery).Before(deadline) {
			return out, fmt.Errorf("%w: %v (still, after %v; %s bounds the wait)", errAptLocked, err, a.wait, aptLockWaitEnv)
		}
		a.logf("apt is locked by another package manager; trying again in %v (until %v have passed)", aptRetryEvery, a.wait)
		a.sleep(aptRetryEvery)
	}
}

// errAptLocked is the error of a run still refused on a lock after the
// wait.
var errAptLocked = errors.New("apt is locked by another package manager")

// install installs the Debian package pkg, updating the package lists
// first when a plain install fails (not when it waited for the lock in
// vain: the update would wait again). Concurrent test binaries take turns
// through a lock file, as apt does not allow two installs at once.
func (a aptRunner) install(pkg string) error {
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
	install := []string{"install", "-y", "-q", "--no-install-recommends", pkg}
	out, err := a.get(install...)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errAptLocked):
		return fmt.Errorf("apt-get install %s: %v\n%s", pkg, err, tail(out))
	}
	if out, err := a.get("update", "-q"); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, tail(out))
	}
	if out, err := a.get(install...); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", pkg, err, tail(out))
	}
	return nil
}

// runAptGet runs the real apt-get, non-interactively.
func runAptGet(args ...string) ([]byte, error) {
	c := exec.Command("apt-get", args...)
	c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return c.CombinedOutput()
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
