package server

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/natsstore"
	"github.com/ssehub/ssehub/redisstore"
)

// openPresence returns the presence registry that goes with store: the
// engine's own for a shared engine, so that every hub on it sees the whole
// cluster, and a map in this process for the embedded stores.
func openPresence(store hub.Store, lease time.Duration) (hub.Presence, error) {
	lease = cmp.Or(lease, DefaultPresenceLease)
	if lease < 300*time.Millisecond {
		return nil, fmt.Errorf("presence lease %v is too short: at least 300ms", lease)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	node := hex.EncodeToString(b[:]) // this process, among the hubs on the engine
	switch s := store.(type) {
	case *redisstore.Store:
		return s.Presence(node, lease), nil
	case *natsstore.Store:
		return s.Presence(node, lease), nil
	}
	return hub.NewLocalPresence(), nil
}
