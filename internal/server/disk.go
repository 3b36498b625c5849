package server

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"

	"github.com/ssehub/ssehub/hub"
)

// defaultSegmentSize is boltstore's default write-ahead log segment size,
// the room /readyz wants free before it reports a store that ran out of
// disk space ready again.
const defaultSegmentSize = 4 << 20

// dirStore is the embedded store as the server uses it: a hub.Store with a
// data directory and a size (what the metrics and the web UI read).
type dirStore interface {
	hub.Store
	Dir() string
	Size() (updates int, bytes int64)
}

// diskWatch watches the embedded store's appends for a full disk, so that
// /readyz can say the hub cannot take publishes. It is not ready from the
// first append refused for lack of space (ENOSPC, or EDQUOT for a quota)
// until an append succeeds or the data directory's file system has need
// bytes free again (which /readyz checks each time it is asked, since a
// hub taken out of rotation may get no publish to try).
type diskWatch struct {
	dirStore
	need int64
	// free returns the bytes available to the hub on the file system of
	// dir, or false if it cannot tell.
	free func(dir string) (uint64, bool)
	full atomic.Bool
}

// watchDisk wraps st; need is the free space that makes it ready again.
func watchDisk(st dirStore, need int64) *diskWatch {
	return &diskWatch{dirStore: st, need: need, free: freeSpace}
}

// Append implements hub.Store.
func (d *diskWatch) Append(ctx context.Context, u *hub.Update) error {
	err := d.dirStore.Append(ctx, u)
	switch {
	case err == nil:
		d.full.Store(false)
	case isNoSpace(err):
		d.full.Store(true)
	}
	return err
}

// noSpace reports whether the store is refusing appends for lack of disk
// space. Once the file system has need bytes free again it reports false
// (and the next append, failing or not, says what holds).
func (d *diskWatch) noSpace() bool {
	if !d.full.Load() {
		return false
	}
	if n, ok := d.free(d.Dir()); ok && n >= uint64(d.need) {
		d.full.Store(false)
		return false
	}
	return true
}

// isNoSpace reports whether err is a write refused for lack of space.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
