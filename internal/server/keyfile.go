package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ssehub/ssehub/auth/jwtauth"
)

// KeyFileName is the file, in the embedded store's data directory, that
// keeps the publisher key the hub generated when none was configured, so
// that tokens signed with it survive a restart. `ssehub token` reads it.
const KeyFileName = "publisher.key"

// maxKeyFileBytes bounds what ReadKeyFile reads: a key is 64 hex digits.
const maxKeyFileBytes = 4 << 10

// ReadKeyFile returns the publisher key kept in the data directory dir,
// or an error wrapping fs.ErrNotExist when there is none. It refuses a file
// that group or others may read or write (as ssh does a private key: the
// key signs every token) and one whose key is not a usable HMAC secret.
func ReadKeyFile(dir string) (string, error) {
	path := filepath.Join(dir, KeyFileName)
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o: it holds the key that signs every token, so only its owner may read it (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxKeyFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes: not a key file", path, maxKeyFileBytes)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("%s is empty: delete it to have a new key generated", path)
	}
	if err := (jwtauth.Key{Secret: []byte(key)}).Validate(); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// keepKey returns the publisher key kept in dir, generating it and
// writing it there (mode 0600) on first use. The caller holds the data
// directory (the store's lock), so no other hub writes it meanwhile.
func keepKey(dir string) (string, error) {
	key, err := ReadKeyFile(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = generateKey()
	path := filepath.Join(dir, KeyFileName)
	if err := writeFileAtomic(dir, path, []byte(key+"\n")); err != nil {
		return "", fmt.Errorf("keeping the generated publisher key in %s: %w", path, err)
	}
	return key, nil
}

// writeFileAtomic writes data to path, in dir, with mode 0600: to a
// temporary file (os.CreateTemp makes it 0600), synced, then renamed, so
// that a crash never leaves a partial key behind.
func writeFileAtomic(dir, path string, data []byte) error {
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable, where the file system can sync
// a directory (as boltstore's log does).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err // EINVAL: a file system that cannot sync a directory
	}
	return nil
}

// generateKey returns a random publisher key: 32 bytes, hex-encoded.
func generateKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
