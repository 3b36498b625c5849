package redisstore_test

import (
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
	"github.com/ssehub/ssehub/internal/testsvc"
	"github.com/ssehub/ssehub/redisstore"
)

func TestPresenceConformance(t *testing.T) {
	r := testsvc.StartRedis(t)
	urls := map[*testing.T]string{}
	const lease = 600 * time.Millisecond
	storetest.RunPresence(t, storetest.Presence{
		Lease: lease,
		Open: func(t *testing.T, node string) hub.Presence {
			u, ok := urls[t]
			if !ok {
				u = freshURL(r)
				urls[t] = u
			}
			// Each node is a hub process of its own: its own store.
			s := open(t, u, redisstore.Config{})
			return s.Presence(node, lease)
		},
	})
}
