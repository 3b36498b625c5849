package boltstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ssehub/ssehub/boltstore"
	"github.com/ssehub/ssehub/hub"
)

type exact string

func (e exact) Match(t string) bool            { return string(e) == t }
func (e exact) Exact() (topic string, ok bool) { return string(e), true }

// TestHubResumesAcrossRestart publishes through a hub, restarts hub and
// store, and resumes from an ID seen before the restart.
func TestHubResumesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir, boltstore.Config{})
	h, err := hub.New(hub.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range []string{"one", "two", "three"} {
		id, err := h.Publish(ctx, &hub.Update{Topics: []string{"t"}, Data: d})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, boltstore.Config{})
	h, err = hub.New(hub.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close(ctx) }()
	sub, err := h.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{exact("t")}, LastEventID: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if r := sub.Resume(); r.Gap != hub.GapNone || r.Anchor != ids[0] {
		t.Fatalf("Resume = %+v; want no gap, anchored at %s", r, ids[0])
	}
	if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"t"}, Data: "four"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	timeout := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case <-sub.Ready():
		case <-timeout:
			t.Fatalf("got %v; want two, three, four", got)
		}
		us, err := sub.Drain(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			got = append(got, u.Data)
		}
	}
	if len(got) != 3 || got[0] != "two" || got[1] != "three" || got[2] != "four" {
		t.Errorf("after restart got %v; want [two three four]", got)
	}
}

// TestHubResumesFromCursorAcrossRestart takes the stream cursor of a
// subscription that received nothing, restarts hub and store, publishes,
// and resumes from the cursor: the update published after the
// subscription registered is replayed, without a gap.
func TestHubResumesFromCursorAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir, boltstore.Config{})
	h, err := hub.New(hub.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"t"}, Data: "before"}); err != nil {
		t.Fatal(err)
	}
	first, err := h.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{exact("t")}})
	if err != nil {
		t.Fatal(err)
	}
	cursor := first.Cursor()
	first.Close()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, boltstore.Config{})
	h, err = hub.New(hub.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close(ctx) }()
	if _, err := h.Publish(ctx, &hub.Update{Topics: []string{"t"}, Data: "while away"}); err != nil {
		t.Fatal(err)
	}
	sub, err := h.Subscribe(ctx, hub.SubscribeRequest{Topics: []hub.Matcher{exact("t")}, LastEventID: cursor})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if r := sub.Resume(); r.Gap != hub.GapNone || r.Anchor != cursor {
		t.Fatalf("Resume = %+v; want no gap, anchored at the cursor %s", r, cursor)
	}
	select {
	case <-sub.Ready():
	case <-time.After(30 * time.Second): // a hang detector
		t.Fatal("nothing to drain")
	}
	us, err := sub.Drain(ctx, nil)
	if err != nil || len(us) != 1 || us[0].Data != "while away" {
		t.Errorf("drained %d updates (%v); want only \"while away\"", len(us), err)
	}
}
