// Package bench is the load tool behind `ssehub bench`: it measures any
// hub that speaks the Mercure protocol (ssehub, the yardstick in
// cmd/yardstick, the Mercure hub) with the same code.
//
// # Shape of a run
//
// Run is the coordinator. It starts workers, each holding a share of the
// subscribers, and drives the publishers itself. A worker is either a
// goroutine of this process or a child process (the hidden
// `ssehub bench worker` mode); both speak the same protocol, one JSON
// object per line over a pipe (ServeWorker is the worker side), so the
// in-process path tests the multi-process one. Child processes exist
// because a process on the benchmark machine can hold only about 20,000
// sockets; subscribers also spread over several loopback source addresses
// (127.0.0.1, 127.0.0.2, ...) so that their number can exceed the
// ephemeral port range of one address.
//
// # What a subscriber is
//
// A subscriber is a raw HTTP/1.1 connection and a goroutine that dials it
// and reads the response head. On Linux the goroutine then hands the socket
// to one of the worker's read loops (loop_linux.go): a thread on an epoll
// instance that reads every stream it holds into one buffer and parses each
// with a push parser (push.go). Elsewhere the goroutine reads the stream
// itself through two 1 KiB buffers. Both parsers share the minimal SSE
// line logic, which allocates nothing per event. Every payload carries its
// topic, a per-topic sequence number and the send time (see Payload), so
// the subscriber computes publish-to-receive latency into a log-linear
// Histogram and detects lost and duplicated events with a sliding window
// per topic.
//
// # What is measured
//
// Connect rate, deliveries per second, latency percentiles, lost and
// duplicated events, publish throughput and latency, and, given the hub's
// process ID, the hub's memory per subscriber and CPU per million
// deliveries read from /proc; the tool's own CPU per delivery (coordinator
// and workers), or per publish when nothing is delivered, is reported
// beside it to show the tool is not the bottleneck. Results are a Result, printed as a table (WriteText) and
// written as JSON or a self-contained HTML page (WriteHTML).
package bench
