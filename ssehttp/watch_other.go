//go:build !linux

package ssehttp

import "net"

// watcher is a no-op where there is no epoll: a stream notices a peer
// that hung up when its next write (at the latest, a heartbeat) fails.
type watcher struct{}

func (w *watcher) add(*hijacked, net.Conn) uint32 { return 0 }
func (w *watcher) remove(uint32)                  {}
