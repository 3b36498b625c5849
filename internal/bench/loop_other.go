//go:build !linux

package bench

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
)

// readLoop exists on Linux only (loop_linux.go); elsewhere every
// subscriber reads its stream with the pull reader.
type readLoop struct{}

func startReadLoops(int) ([]*readLoop, error) { return nil, nil }

func (*readLoop) stop() {}

func shutdownFD(int) {}

func (s *subscriber) readInLoop(context.Context, *readLoop, net.Conn, *bufio.Reader, *http.Response) error {
	return errors.New("no read loops on this system")
}
