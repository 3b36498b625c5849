package testsvc

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestIsAptLockError checks which apt-get outputs count as another
// package manager holding a lock, worth waiting for, and which are
// failures that waiting does not cure.
func TestIsAptLockError(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want bool
	}{
		{"dpkg frontend lock", "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 2345 (apt-get)\n" +
			"N: Be aware that removing the lock file is not a solution and may break your system.\n" +
			"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n", true},
		{"after DPkg::Lock::Timeout", "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)... 5s\n" +
			"E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)\n" +
			"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n", true},
		{"lists lock (apt-get update)", "Reading package lists...\n" +
			"E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4321 (apt-get)\n" +
			"N: Be aware that removing the lock file is not a solution and may break your system.\n" +
			"E: Unable to lock directory /var/lib/apt/lists/\n", true},
		{"archives lock", "E: Could not get lock /var/cache/apt/archives/lock. It is held by process 4321 (apt-get)\n" +
			"E: Unable to lock directory /var/cache/apt/archives/\n", true},
		{"older apt, dpkg lock", "E: Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)\n" +
			"E: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?\n", true},
		{"dpkg itself", "dpkg: error: dpkg frontend lock was locked by another process with pid 2345\n" +
			"Note: removing the lock file is always wrong, and can end up damaging the\n" +
			"E: Sub-process /usr/bin/dpkg returned an error code (2)\n", true},

		{"not root", "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n" +
			"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n", false},
		{"unknown package", "Reading package lists...\nBuilding dependency tree...\nE: Unable to locate package nosuchpkg\n", false},
		{"unknown package named like a lock", "E: Unable to locate package lockfile-progs\n", false},
		{"no candidate", "E: Package 'nginx' has no installation candidate\n", false},
		{"stale lists", "E: Failed to fetch http://deb.example/pool/n/nginx.deb  404  Not Found\n" +
			"E: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?\n", false},
		{"interrupted dpkg", "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n", false},
		{"disk full", "E: You don't have enough free space in /var/cache/apt/archives/.\n", false},
		{"no output", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isAptLockError([]byte(tc.out)); got != tc.want {
				t.Errorf("isAptLockError = %v; want %v for:\n%s", got, tc.want, tc.out)
			}
		})
	}
}

func TestAptLockWait(t *testing.T) {
	for _, tc := range []struct {
		v       string
		want    time.Duration
		wantErr bool
	}{
		{"", 600 * time.Second, false},
		{"0", 0, false},
		{"30", 30 * time.Second, false},
		{"-1", 0, true},
		{"10s", 0, true},
		{"soon", 0, true},
	} {
		got, err := aptLockWait(tc.v)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("aptLockWait(%q) = %v, %v; want %v, error %v", tc.v, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "SSEHUB_APT_LOCK_WAIT") {
			t.Errorf("aptLockWait(%q): %v does not name the variable", tc.v, err)
		}
	}
}

const lockedOut = "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4321 (apt-get)\nE: Unable to lock directory /var/lib/apt/lists/\n"

// fakeApt is an apt-get whose runs answer from a script, on a fake clock
// that only sleep advances.
type fakeApt struct {
	answers []string // "" succeeds; lockedOut is refused on a lock; anything else fails
	runs    [][]string
	clock   time.Time
	slept   time.Duration
}

func (f *fakeApt) runner(wait time.Duration) aptRunner {
	f.clock = time.Unix(1e9, 0)
	return aptRunner{
		wait: wait,
		run: func(args ...string) ([]byte, error) {
			f.runs = append(f.runs, args)
			a := "E: Unable to locate package nosuchpkg\n"
			if n := len(f.runs) - 1; n < len(f.answers) {
				a = f.answers[n]
			}
			if a == "" {
				return []byte("ok\n"), nil
			}
			return []byte(a), errors.New("exit status 100")
		},
		now:   func() time.Time { return f.clock },
		sleep: func(d time.Duration) { f.clock = f.clock.Add(d); f.slept += d },
		logf:  func(string, ...any) {},
	}
}

func TestAptRunnerWaitsForTheLock(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wait     time.Duration
		answers  []string
		wantRuns int
		wantErr  error // nil, errAptLocked, or any other (errOther)
		timeouts []string
	}{
		{"free", 600 * time.Second, []string{""}, 1, nil, []string{"600"}},
		{"locked twice, then free", 600 * time.Second, []string{lockedOut, lockedOut, ""}, 3, nil, []string{"600", "595", "590"}},
		{"another failure fails at once", 600 * time.Second, []string{"E: Unable to locate package nosuchpkg\n"}, 1, errOther, []string{"600"}},
		{"locked past the bound", 12 * time.Second, []string{lockedOut, lockedOut, lockedOut, lockedOut}, 3, errAptLocked, []string{"12", "7", "2"}},
		{"no wait", 0, []string{lockedOut, ""}, 1, errAptLocked, []string{"0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeApt{answers: tc.answers}
			_, err := f.runner(tc.wait).get("update", "-q")
			switch {
			case tc.wantErr == nil && err != nil, tc.wantErr != nil && err == nil:
				t.Fatalf("err = %v; want %v", err, tc.wantErr)
			case tc.wantErr == errAptLocked && !errors.Is(err, errAptLocked):
				t.Fatalf("err = %v; want errAptLocked", err)
			case tc.wantErr == errOther && errors.Is(err, errAptLocked):
				t.Fatalf("err = %v; want a plain failure", err)
			}
			if len(f.runs) != tc.wantRuns {
				t.Fatalf("%d runs; want %d: %q", len(f.runs), tc.wantRuns, f.runs)
			}
			if f.slept > tc.wait {
				t.Errorf("slept %v; the bound is %v", f.slept, tc.wait)
			}
			for i, r := range f.runs {
				want := []string{"-o", "DPkg::Lock::Timeout=" + tc.timeouts[i], "update", "-q"}
				if !slices.Equal(r, want) {
					t.Errorf("run %d: apt-get %q; want %q", i, r, want)
				}
			}
		})
	}
}

var errOther = fmt.Errorf("another failure")

// TestAptInstall checks the install sequence: install; on failure update
// and install again; but not after waiting for the lock in vain.
func TestAptInstall(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []string
		want    []string // the apt-get commands run
		wantErr bool
	}{
		{"installed at once", []string{""}, []string{"install"}, false},
		{"stale lists", []string{"E: Unable to locate package nginx\n", "", ""}, []string{"install", "update", "install"}, false},
		{"unknown package", []string{"E: Unable to locate package nosuchpkg\n", "", "E: Unable to locate package nosuchpkg\n"}, []string{"install", "update", "install"}, true},
		{"locked in vain", []string{lockedOut, lockedOut, lockedOut}, []string{"install"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeApt{answers: tc.answers}
			err := f.runner(0).install("nginx")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v; want error %v", err, tc.wantErr)
			}
			var got []string
			for _, r := range f.runs {
				got = append(got, r[2])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ran apt-get %q; want %q", got, tc.want)
			}
		})
	}
}
