// Package abusetest attacks a real ssehub server (internal/server, on a
// loopback port) the way broken and hostile clients do, and checks that
// the well-behaved clients are served correctly throughout: thousands of
// slowloris connections, stalled readers that never read their stream, and
// tokens in every place a request can carry them, which must never reach
// the logs. It holds tests only.
package abusetest
