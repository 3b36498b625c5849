package clustertest

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKill9Hub kills one of three hubs with SIGKILL while publishers and
// subscribers are busy on every node, and later starts it again. Its
// subscribers must move to the other nodes and resume, its publishers
// too, and no subscriber may lose or repeat an acknowledged event
// published before, during or after the kill.
func TestKill9Hub(t *testing.T) {
	forEachEngine(t, func(t *testing.T, start func(testing.TB) Engine) {
		c := StartCluster(t, binary, start, 3)
		l := startLoad(t, c, loadConfig{})
		subs := l.subs
		sleep(time.Second)
		victim := c.Hubs[1]
		victim.Kill()
		killed := time.Now()
		// Everyone who was on the victim moves on.
		waitFor(t, 30*time.Second, "every subscriber to leave the killed hub", func() bool { return off(subs, 1) })
		sleep(time.Second)
		victim.Restart()
		sleep(time.Second)
		rep := l.finish()
		ended, cut := serverEnds(l.rec, 1)
		if len(ended)+len(cut) == 0 {
			t.Errorf("no stream of the killed hub ended: were its subscribers connected to it?")
		}
		failed := 0
		for _, p := range l.rec.Attempts() {
			if !p.Acked && p.Node == 1 && p.Start.Before(killed.Add(time.Second)) {
				failed++
			}
		}
		t.Logf("%d streams of the killed hub ended, %d of them cut; %d publishes to it failed over; %d gap notices", len(ended)+len(cut), len(cut), failed, rep.Gaps)
	})
}

// TestRollingRestart stops every hub in turn with SIGTERM and starts it
// again, as a rolling deployment does, under load. A draining hub must
// end its streams between events (no client sees a broken event) and
// exit 0, and no acknowledged event may be lost or repeated.
func TestRollingRestart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, start func(testing.TB) Engine) {
		c := StartCluster(t, binary, start, 3)
		l := startLoad(t, c, loadConfig{})
		for _, h := range c.Hubs {
			sleep(700 * time.Millisecond)
			h.Terminate()
			h.Restart()
		}
		sleep(700 * time.Millisecond)
		l.finish()
		for i := range c.Hubs {
			clean, cut := serverEnds(l.rec, i)
			if len(cut) > 0 {
				t.Errorf("hub %d ended %d streams badly while draining (a broken event, or not a clean end):\n  %s", i, len(cut), strings.Join(cut, "\n  "))
			}
			if len(clean)+len(cut) == 0 {
				t.Errorf("hub %d ended no stream when it drained: had it subscribers?", i)
			}
		}
		for _, p := range l.rec.Attempts() {
			if !p.Acked && p.Status != 0 && p.Status != http.StatusServiceUnavailable {
				t.Errorf("publish %s to draining hub %d: status %d %s; want 503", p.ID, p.Node, p.Status, p.Err)
			}
		}
	})
}

// TestEngineOutage takes the engine (redis-server, nats-server) away under
// load: killed with SIGKILL and started again on the same port and data,
// or unreachable (SIGSTOP) for longer than the hubs' store timeout (5 s)
// and then continued. Publishes during the outage must fail with 503 (not
// be acknowledged); streams stay open or reconnect; after recovery every
// acknowledged event is delivered, or a gap notice covers it, and none
// twice.
func TestEngineOutage(t *testing.T) {
	outages := []struct {
		name       string
		down, back func(Engine)
		lasts      time.Duration
	}{
		{"killed", Engine.Kill, Engine.Restart, 2 * time.Second},
		{"unreachable", func(e Engine) { e.Signal(syscall.SIGSTOP) }, func(e Engine) { e.Signal(syscall.SIGCONT) }, 6 * time.Second},
	}
	forEachEngine(t, func(t *testing.T, start func(testing.TB) Engine) {
		for _, o := range outages {
			t.Run(o.name, func(t *testing.T) {
				c := StartCluster(t, binary, start, 3)
				// Publishes wait longer than the hubs' store timeout, so
				// that the hub's answer, not the client's patience, ends them.
				l := startLoad(t, c, loadConfig{pubTimeout: 15 * time.Second})
				sleep(time.Second)
				down := time.Now() // before: publishes refused while it goes down count
				o.down(c.Engine)
				sleep(o.lasts)
				up := time.Now()
				o.back(c.Engine)
				// The hubs notice the engine is back (readiness checks the store).
				for _, h := range c.Hubs {
					h.WaitReady()
				}
				// Every publish under way during the outage gets its
				// answer before the test ends: one sent just before a NATS
				// kill waits for its lost acknowledgement until the hubs'
				// store timeout (5 s), which can outlast the pause below.
				waitFor(t, 20*time.Second, "the publishes of the outage to be answered", func() bool {
					for _, p := range l.rec.Attempts() {
						if p.Start.Before(up) && p.End.IsZero() {
							return false
						}
					}
					return true
				})
				sleep(1500 * time.Millisecond)
				stopped := time.Now() // attempts cut short by the end of the test are not refusals
				rep := l.finish()
				refused, wrong := 0, []string{}
				var slowest time.Duration
				for _, p := range l.rec.Attempts() {
					// Unacknowledged attempts under way during the outage.
					if p.Acked || !p.Start.Before(up) || !p.End.After(down) || p.End.After(stopped) {
						continue
					}
					refused++
					slowest = max(slowest, p.End.Sub(p.Start))
					if p.Status != http.StatusServiceUnavailable {
						wrong = append(wrong, fmt.Sprintf("%s to hub %d: %d %s", p.ID, p.Node, p.Status, p.Err))
					}
				}
				if refused == 0 {
					t.Error("no publish was refused while the engine was down: the test proved nothing")
				}
				if len(wrong) > 0 {
					t.Errorf("%d publishes during the outage failed otherwise than with 503:\n  %s", len(wrong), strings.Join(wrong[:min(len(wrong), 20)], "\n  "))
				}
				t.Logf("%d publishes refused during the outage, the slowest answer in %v; %d gap notices", refused, slowest.Round(time.Millisecond), rep.Gaps)
			})
		}
	})
}

// TestPausedHub stops one hub with SIGSTOP for longer than the clients'
// read timeout (and many heartbeats), then lets it continue. Its clients
// time out, move to other nodes and resume; when the hub wakes up it must
// not deliver anything twice to anyone, and nothing acknowledged may be
// lost.
func TestPausedHub(t *testing.T) {
	forEachEngine(t, func(t *testing.T, start func(testing.TB) Engine) {
		c := StartCluster(t, binary, start, 3)
		const readTimeout = 2 * time.Second
		l := startLoad(t, c, loadConfig{readTimeout: readTimeout, pubTimeout: readTimeout})
		subs := l.subs
		sleep(time.Second)
		victim := c.Hubs[1]
		victim.Signal(syscall.SIGSTOP)
		// Past the read timeout, and until every client moved on.
		sleep(readTimeout + time.Second)
		waitFor(t, 60*time.Second, "every subscriber to leave the paused hub", func() bool { return off(subs, 1) })
		victim.Signal(syscall.SIGCONT)
		victim.WaitReady()
		// Clients that rotate come back to it.
		for _, s := range subs[:3] {
			s.Hop()
		}
		sleep(1500 * time.Millisecond)
		l.finish()
	})
}

// off reports whether no subscriber is on node (its latest connection
// attempt went elsewhere).
func off(subs []*Subscriber, node int) bool {
	for _, s := range subs {
		if s.Node() == node {
			return false
		}
	}
	return true
}
