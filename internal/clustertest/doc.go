// Package clustertest proves that several ssehub processes sharing one
// engine act as one hub, and that they keep doing so under faults. Its
// tests run the real binary (built with -race) three times on loopback
// ports, on a real redis-server and on a real nats-server (started by
// internal/testsvc), and check every run with a Recorder.
//
// The pieces:
//
//   - Cluster starts the engine and three hubs, and kills (SIGKILL),
//     stops (SIGTERM, with a drain), pauses (SIGSTOP/SIGCONT) and restarts
//     them, or the engine, on the same ports and data.
//   - Subscriber is a client that knows every node's URL: it follows one
//     stream with package eventsource and, whenever the stream ends or a
//     connection attempt fails, moves to the next node, resending its
//     Last-Event-ID. It records every event, every ssehub.gap notice and
//     how each stream ended (cleanly at an event boundary, or cut).
//   - Publisher publishes events with unique IDs and fails over to the
//     next node when a publish is not acknowledged (no 200).
//   - Recorder holds what publishers attempted (ID, topic, acknowledged
//     or not) and what every subscriber received, and Check compares them
//     with the engine's log (read back through the history endpoint): no
//     acknowledged event lost unless a gap notice covers it, no event
//     twice, every subscriber in the log's order. A failed check prints
//     each problem on one line, with where it happened.
//
// The tests are bounded: every wait is a hang detector with a generous
// limit, never a timing assertion.
package clustertest
