package redisstore

import "context"

// Sweep enforces the age limits now, as the sweeper does every
// RetentionInterval.
func (s *Store) Sweep(ctx context.Context) error { return s.sweep(ctx) }

// Keys returns the keys the scripts get, for tests that inspect Redis.
func (s *Store) Keys() []string { return s.keys }
