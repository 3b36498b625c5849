package redisstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/testsvc"
	"github.com/ssehub/ssehub/redisstore"
)

type exact string

func (e exact) Match(t string) bool            { return string(e) == t }
func (e exact) Exact() (topic string, ok bool) { return string(e), true }

func newHub(t *testing.T, s hub.Store) *hub.Hub {
	t.Helper()
	h, err := hub.New(hub.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func receive(t *testing.T, sub *hub.Subscription, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(wait)
	for len(got) < n {
		select {
		case <-sub.Ready():
		case <-timeout:
			t.Fatalf("received %q; want %d updates", got, n)
		}
		us, err := sub.Drain(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			got = append(got, u.Data)
		}
	}
	return got
}

// TestTwoHubs runs two hubs on two stores sharing one Redis: what is
// published on either reaches the subscribers of both, in one order, and
// an ID published on one node resumes a subscription on the other.
func TestTwoHubs(t *testing.T) {
	r := testsvc.StartRedis(t)
	url := freshURL(r)
	ha := newHub(t, open(t, url, redisstore.Config{}))
	hb := newHub(t, open(t, url, redisstore.Config{}))
	ctx := context.Background()
	subA, err := ha.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{exact("t")}})
	if err != nil {
		t.Fatal(err)
	}
	defer subA.Close()
	subB, err := hb.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{exact("t")}})
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()
	var ids []string
	for i, d := range []string{"one", "two", "three", "four"} {
		h := []*hub.Hub{ha, hb}[i%2]
		id, err := h.Publish(ctx, &hub.Update{Topics: []string{"t"}, Data: d})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	want := []string{"one", "two", "three", "four"}
	for name, sub := range map[string]*hub.Subscription{"a": subA, "b": subB} {
		if got := receive(t, sub, 4); !slices.Equal(got, want) {
			t.Errorf("subscriber on hub %s received %q; want %q", name, got, want)
		}
	}
	resumed, err := hb.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{exact("t")}, LastEventID: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	if res := resumed.Resume(); res.Gap != hub.GapNone || res.Anchor != ids[0] {
		t.Fatalf("Resume on hub b from an ID published on hub a = %+v; want no gap", res)
	}
	if got := receive(t, resumed, 3); !slices.Equal(got, want[1:]) {
		t.Errorf("resumed subscriber received %q; want %q", got, want[1:])
	}
}
