package storetest_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestMemoryStore runs the suite against hub.MemoryStore, the reference
// implementation, so that the suite itself is checked.
func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) hub.Store { return hub.NewMemoryStore(hub.MemoryConfig{}) })
	storetest.RunRetention(t, storetest.Retention{
		New: func(_ *testing.T, n int) hub.Store { return hub.NewMemoryStore(hub.MemoryConfig{MaxUpdates: n}) },
	})
	storetest.RunTopicRetention(t, storetest.TopicRetention{
		New: func(_ *testing.T, limits hub.TopicLimits, now func() time.Time) hub.Store {
			return hub.NewMemoryStore(hub.MemoryConfig{TopicLimits: limits, Now: now})
		},
	})
}
