package natsstore

import (
	"context"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
	"github.com/ssehub/ssehub/internal/testsvc"
)

func TestPresenceConformance(t *testing.T) {
	n := testsvc.StartNATS(t)
	streams := map[*testing.T]string{}
	const lease = 600 * time.Millisecond
	storetest.RunPresence(t, storetest.Presence{
		Lease: lease,
		Open: func(t *testing.T, node string) hub.Presence {
			name, ok := streams[t]
			if !ok {
				name = newStream()
				streams[t] = name
			}
			// Each node is a hub process of its own: its own store.
			s := open(t, n, "stream="+name, Config{})
			return s.Presence(node, lease)
		},
	})
}

func TestNodeToken(t *testing.T) {
	for node, want := range map[string]string{
		"node-a":  "node-a",
		"A_b-9":   "A_b-9",
		"a.b":     "=",
		"":        "=",
		"urn:x/y": "=",
	} {
		got := nodeToken(node)
		if want == "=" {
			if len(got) != 33 || got[0] != '=' {
				t.Errorf("nodeToken(%q) = %q; want '=' and 32 hex digits", node, got)
			}
			continue
		}
		if got != want {
			t.Errorf("nodeToken(%q) = %q; want %q", node, got, want)
		}
	}
}

// TestPresenceLeavesNothing: Leave and Close purge what they remove, so
// the registry's buckets hold no delete markers afterwards, and the
// buckets' reads go to the stream leader (no direct gets).
func TestPresenceLeavesNothing(t *testing.T) {
	n := testsvc.StartNATS(t)
	s := open(t, n, "stream="+newStream(), Config{})
	p := s.Presence("node-a", time.Second)
	ctx := context.Background()
	if _, _, err := p.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"urn:uuid:1", "urn:uuid:2"} {
		if err := p.Join(ctx, hub.PresenceEntry{Subscriber: sub}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Leave(ctx, "urn:uuid:1"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, bucket := range []string{p.entName, p.lseName} {
		st, err := s.js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		info := st.CachedInfo()
		if info.State.Msgs != 0 {
			t.Errorf("bucket %s holds %d messages after Close; want none", bucket, info.State.Msgs)
		}
		if info.Config.AllowDirect {
			t.Errorf("bucket %s allows direct gets", bucket)
		}
	}
}
