package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
	"github.com/ssehub/ssehub/internal/testsvc"
	"github.com/ssehub/ssehub/redisstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var prefixes atomic.Int64

// freshURL returns a URL of r with a key prefix no other store in this
// test binary uses.
func freshURL(r *testsvc.Redis) string {
	return fmt.Sprintf("%s?prefix=test%d", r.URL(), prefixes.Add(1))
}

func open(t testing.TB, rawURL string, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), rawURL, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	r := testsvc.StartRedis(t)
	storetest.Run(t, func(t *testing.T) hub.Store { return open(t, freshURL(r), redisstore.Config{}) })
	storetest.RunRetention(t, storetest.Retention{
		New: func(t *testing.T, n int) hub.Store {
			return open(t, freshURL(r), redisstore.Config{Limits: hub.Limits{MaxUpdates: n}})
		},
	})
}
