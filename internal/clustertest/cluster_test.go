package clustertest

import (
	"testing"
	"time"
)

// TestClusterActsAsOne runs three hubs on one engine with publishers on
// every node and subscribers on every node, some of which keep hopping to
// the next node mid-stream with their Last-Event-ID. Every subscriber must
// get every acknowledged event of its topics once, in the log's order
// (hence in the same order on every node), the hoppers included, and the
// catch-up endpoint of every node must show the same, whole log.
func TestClusterActsAsOne(t *testing.T) {
	forEachEngine(t, func(t *testing.T, start func(testing.TB) Engine) {
		c := StartCluster(t, binary, start, 3)
		l := startLoad(t, c, loadConfig{})
		// The first subscriber of every node hops every 200 ms, cutting
		// its stream wherever it is, even inside an event.
		subs := l.subs
		hoppers := subs[:3]
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
			for _, s := range hoppers {
				s.Hop()
			}
			sleep(200 * time.Millisecond)
		}
		l.finish()
		for _, s := range hoppers {
			if s.Connections() < 4 {
				t.Errorf("%s made %d connections: it did not hop to other nodes", s.cfg.Name, s.Connections())
			}
		}
		// Nothing else ends streams: a hub that did would be a bug. (A
		// client's read timeout on a stalled machine would not be.)
		ends := l.rec.Ends()
		for _, s := range subs[3:] {
			for _, e := range ends[s.cfg.Name] {
				if !e.ByClient {
					t.Errorf("%s: hub %d ended its stream (connection %d, clean %v, %s) for no reason", s.cfg.Name, e.Node, e.Conn, e.Clean, e.Err)
				}
			}
		}
	})
}
