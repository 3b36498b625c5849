package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/natsstore"
	"github.com/ssehub/ssehub/redisstore"
)

// The shared engines' default retention: the embedded store's defaults,
// so that moving a hub from bolt to a cluster keeps the same history.
var sharedDefaults = hub.Limits{MaxUpdates: 1_000_000, MaxBytes: 1 << 30, MaxAge: 24 * time.Hour}

// IsEngineURL reports whether engine names a shared store by URL
// (redis://, rediss://, nats://) rather than an embedded one.
func IsEngineURL(engine string) bool {
	for _, p := range []string{"redis://", "rediss://", "nats://"} {
		if strings.HasPrefix(engine, p) {
			return true
		}
	}
	return false
}

// openShared opens the Redis Streams or NATS JetStream store that
// cfg.Engine's URL names. Several hubs given the same URL act as one.
func openShared(cfg Config, topics hub.TopicLimits) (hub.Store, error) {
	limits := sharedLimits(cfg.Retention)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch {
	case strings.HasPrefix(cfg.Engine, "nats://"):
		s, err := natsstore.Open(ctx, cfg.Engine, natsstore.Config{Limits: limits, TopicLimits: topics, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("opening the NATS JetStream store: %w", err)
		}
		return s, nil
	default:
		s, err := redisstore.Open(ctx, cfg.Engine, redisstore.Config{Limits: limits, TopicLimits: topics, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("opening the Redis Streams store: %w", err)
		}
		return s, nil
	}
}

// sharedLimits maps Retention (zero: default, negative: none) to the
// shared engines' limits (zero: none).
func sharedLimits(r Retention) hub.Limits {
	pick := func(v, def int64) int64 {
		switch {
		case v < 0:
			return 0
		case v == 0:
			return def
		}
		return v
	}
	return hub.Limits{
		MaxUpdates: int(pick(int64(r.MaxUpdates), int64(sharedDefaults.MaxUpdates))),
		MaxBytes:   pick(r.MaxBytes, sharedDefaults.MaxBytes),
		MaxAge:     time.Duration(pick(int64(r.MaxAge), int64(sharedDefaults.MaxAge))),
	}
}
