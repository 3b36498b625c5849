package server

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/auth/jwtauth"
)

// startNoKey starts a hub with cfg as is (no publisher key filled in) and
// stops it when the test ends.
func startNoKey(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-s.Done()
	})
	return s
}

// TestGeneratedKeyIsKept starts a hub without a publisher key twice on the
// same data directory: the key is generated once, kept in
// DataDir/publisher.key with mode 0600, and reused, so a token minted at
// the first start still publishes after the restart.
func TestGeneratedKeyIsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, err := Start(Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	key, generated := s1.PublisherKey()
	file := filepath.Join(dir, KeyFileName)
	if !generated || s1.PublisherKeyFile() != file {
		t.Fatalf("PublisherKey generated %v, PublisherKeyFile %q; want true, %q", generated, s1.PublisherKeyFile(), file)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	if got, err := ReadKeyFile(dir); err != nil || got != key {
		t.Fatalf("ReadKeyFile = %v; want the key in use", err)
	}
	tok := mint(t, key, jwtauth.Claims{Publish: []string{"*"}})
	if status, body := publish(t, http.DefaultClient, s1.HubURL(), tok, url.Values{"topic": {"t"}}); status != 200 {
		t.Fatalf("publish: %d %q", status, body)
	}
	if err := s1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-s1.Done()

	s2 := startNoKey(t, Config{DataDir: dir})
	if k, generated := s2.PublisherKey(); k != key || !generated || s2.PublisherKeyFile() != file {
		t.Fatalf("after a restart: same key %v, generated %v, file %q", k == key, generated, s2.PublisherKeyFile())
	}
	if status, body := publish(t, http.DefaultClient, s2.HubURL(), tok, url.Values{"topic": {"t"}}); status != 200 {
		t.Fatalf("the first start's token after a restart: %d %q", status, body)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), KeyFileName+".") {
			t.Errorf("temporary key file left behind: %s", e.Name())
		}
	}
}

// TestKeyFileOnlyWhenGenerated checks where no key file is written: with
// a configured key, and with the memory store (no data directory: a key
// per run, as before).
func TestKeyFileOnlyWhenGenerated(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"configured key": {PublisherKey: testKey},
		"memory store":   {Engine: "memory"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg.DataDir = t.TempDir()
			s := startNoKey(t, cfg)
			_, generated := s.PublisherKey()
			if generated != (cfg.PublisherKey == "") || s.PublisherKeyFile() != "" {
				t.Errorf("generated %v, PublisherKeyFile %q", generated, s.PublisherKeyFile())
			}
			if _, err := os.Stat(filepath.Join(cfg.DataDir, KeyFileName)); !os.IsNotExist(err) {
				t.Errorf("key file: %v; want none", err)
			}
		})
	}
}

// TestBadKeyFile checks that a hub refuses to start on a key file others
// may read, or one that holds no usable key, with a message naming the
// file and never the key, and leaves the file as it was.
func TestBadKeyFile(t *testing.T) {
	t.Parallel()
	const good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", good + "\n", 0o644, "has mode 0644: it holds the key that signs every token, so only its owner may read it (chmod 600 "},
		{"writable by group", good, 0o620, "has mode 0620"},
		{"too short", "short\n", 0o600, "the HMAC secret is 5 bytes; HS256 needs at least 32"},
		{"empty", "", 0o600, "is empty: delete it to have a new key generated"},
		{"too large", strings.Repeat("k", 5000), 0o600, "larger than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := filepath.Join(dir, KeyFileName)
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, tc.mode); err != nil {
				t.Fatal(err)
			}
			s, err := Start(Config{Addr: "127.0.0.1:0", DataDir: dir})
			if err == nil {
				s.Shutdown(context.Background())
				<-s.Done()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
				t.Errorf("error %q; want it to name %s and contain %q", err, file, tc.want)
			}
			if len(tc.content) >= 16 && strings.Contains(err.Error(), tc.content[:16]) {
				t.Errorf("error %q contains the key", err)
			}
			if b, _ := os.ReadFile(file); string(b) != tc.content {
				t.Error("the key file changed")
			}
		})
	}
	// A directory where the file should be.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, KeyFileName), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Config{Addr: "127.0.0.1:0", DataDir: dir}); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("a directory as the key file: %v", err)
	}
}
