package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestIdempotencyKeyBelongsToItsPublisher: the same Idempotency-Key from
// two publishers names two publishes. Before keys were scoped, a publisher
// using another's key got the other's (possibly private) ID back, and the
// other's later publish with that key was acknowledged but never stored.
func TestIdempotencyKeyBelongsToItsPublisher(t *testing.T) {
	t.Parallel()
	store := NewMemoryStore(MemoryConfig{})
	defer store.Close()
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	steps := []struct {
		publisher, key string
		// want names the publish whose ID the step must get: a new name
		// is a new update, a name seen before is a retry of that publish.
		want string
	}{
		{"sub:alice", "k", "alice-k"},
		{"sub:bob", "k", "bob-k"}, // bob gets his own ID, not alice's
		{"sub:alice", "k", "alice-k"},
		{"sub:bob", "k", "bob-k"},
		{"", "k", "anonymous-k"}, // the anonymous publisher is a scope of its own
		{"", "k", "anonymous-k"},
		{"sub:carol", "k3", "carol-k3"}, // carol uses k3 first...
		{"sub:alice", "k3", "alice-k3"}, // ...and alice's publish with it is still stored
		{"sub:alice", "k3", "alice-k3"},
		// A publisher is its identity string, whatever it is made of:
		// "ab" with key "c" is not "a" with key "bc".
		{"ab", "c", "ab-c"},
		{"a", "bc", "a-bc"},
		{"grant:0f1e", "k", "grant-k"},
		{"grant:0f1f", "k", "other-grant-k"},
	}
	run := func(h *Hub, ids map[string]string, private bool) {
		t.Helper()
		for i, st := range steps {
			id := publish(t, h, &Update{Topics: []string{"t"}, Data: st.want, Private: private, Publisher: st.publisher, IdempotencyKey: st.key})
			want, seen := ids[st.want]
			switch {
			case !seen:
				for name, other := range ids {
					if other == id {
						t.Fatalf("step %d (%q, key %q) got the ID of %s; want a new update", i, st.publisher, st.key, name)
					}
				}
				ids[st.want] = id
			case id != want:
				t.Fatalf("step %d (%q, key %q) got %q; want %q, the ID of %s", i, st.publisher, st.key, id, want, st.want)
			}
		}
	}
	h := newHub(t, Config{Store: store, Now: clock})
	ids := map[string]string{}
	run(h, ids, true)
	_, newest, _ := store.Bounds(context.Background())
	if int(newest.Seq) != len(ids) {
		t.Fatalf("stored %d updates; want %d, one per publish", newest.Seq, len(ids))
	}
	// Every stored update carries its own data: no publish was swallowed.
	var datas []string
	_ = store.Read(context.Background(), Position{Epoch: newest.Epoch}, func(u *Update) bool {
		datas = append(datas, u.Data)
		if u.Publisher != "" {
			t.Errorf("update %q was stored with its publisher %q; want it folded into the key", u.ID, u.Publisher)
		}
		return true
	})
	if len(datas) != len(ids) {
		t.Fatalf("stored %v", datas)
	}
	// A restarted hub relearns the scoped keys from history: every step is
	// now a retry.
	h2 := newHub(t, Config{Store: store, Now: clock})
	run(h2, ids, true)
	if _, n, _ := store.Bounds(context.Background()); n.Seq != newest.Seq {
		t.Fatalf("after restart, the retries stored %d more updates", n.Seq-newest.Seq)
	}
}

// TestIdempotencyKeyLearnedFromOtherHubs: a hub learns the scoped keys of
// updates another hub appended to the shared store, when it dispatches
// them, and keeps them apart by publisher.
func TestIdempotencyKeyLearnedFromOtherHubs(t *testing.T) {
	t.Parallel()
	store := NewMemoryStore(MemoryConfig{})
	defer store.Close()
	a := newHub(t, Config{Store: store})
	b := newHub(t, Config{Store: store})
	sub, err := b.Subscribe(context.Background(), SubscribeRequest{Topics: []Matcher{Exact("t")}, CanRead: func([]string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first := publish(t, a, &Update{Topics: []string{"t"}, Private: true, Publisher: "sub:alice", IdempotencyKey: "k"})
	if _, err := next(t, sub, 1); err != nil { // b dispatched it: b knows the key
		t.Fatal(err)
	}
	if id := publish(t, b, &Update{Topics: []string{"t"}, Publisher: "sub:bob", IdempotencyKey: "k"}); id == first {
		t.Fatalf("bob got alice's ID %q from the other hub", id)
	}
	if id := publish(t, b, &Update{Topics: []string{"t"}, Publisher: "sub:alice", IdempotencyKey: "k"}); id != first {
		t.Fatalf("alice's retry on the other hub got %q; want %q", id, first)
	}
}

// TestIdempotencyKeyOfOldRecords: updates stored by a version that did not
// scope keys carry the bare key. No publisher may claim them: a retry of
// such a publish after the upgrade is stored again, rather than any
// publisher getting the old update's ID.
func TestIdempotencyKeyOfOldRecords(t *testing.T) {
	t.Parallel()
	store := NewMemoryStore(MemoryConfig{})
	defer store.Close()
	old := &Update{ID: "old", Topics: []string{"t"}, Private: true, IdempotencyKey: "k", Time: time.Now()}
	if err := store.Append(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	h := newHub(t, Config{Store: store})
	for _, p := range []string{"", "sub:alice"} {
		if id := publish(t, h, &Update{Topics: []string{"t"}, Publisher: p, IdempotencyKey: "k"}); id == "old" {
			t.Errorf("publisher %q got the ID of an old record with a bare key", p)
		}
	}
}

func TestScopedKey(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, tc := range []struct{ publisher, key string }{
		{"", "k"}, {"sub:alice", "k"}, {"sub:bob", "k"}, {"sub:alice", "k2"},
		{"ab", "c"}, {"a", "bc"}, {"", "ab"}, {"a", "b"},
		{"sub:a\x00b", "k"}, {"sub:a", "\x00bk"},
	} {
		k := scopedKey(tc.publisher, tc.key)
		if !isScopedKey(k) || !strings.HasPrefix(k, scopedKeyPrefix) || len(k) > 64 {
			t.Errorf("scopedKey(%q, %q) = %q: not a scoped key", tc.publisher, tc.key, k)
		}
		if k != scopedKey(tc.publisher, tc.key) {
			t.Errorf("scopedKey(%q, %q) is not stable", tc.publisher, tc.key)
		}
		name := tc.publisher + "/" + tc.key
		if other, ok := seen[k]; ok {
			t.Errorf("scopedKey(%q, %q) = that of %s", tc.publisher, tc.key, other)
		}
		seen[k] = name
	}
	for _, bare := range []string{"k", "order-42", scopedKeyPrefix, scopedKeyPrefix + "x"} {
		if isScopedKey(bare) {
			t.Errorf("isScopedKey(%q) = true", bare)
		}
	}
}

// TestIdempotencyBudgets checks which keys the window remembers under its
// count and byte budgets: the oldest are forgotten first, and the byte
// budget binds for long update IDs (keys are scoped, of fixed length).
func TestIdempotencyBudgets(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	key := func(i int) string { return scopedKey("p", fmt.Sprint(i)) }
	id := func(n, i int) string { return fmt.Sprintf("%0*d", n, i) }
	for _, tc := range []struct {
		name     string
		max      int
		maxBytes int64
		idLen    int
		learn    int
		want     int // keys remembered: the newest ones
	}{
		{"within both", 10, 1 << 20, 36, 5, 5},
		{"count binds", 3, 1 << 20, 36, 5, 3},
		{"bytes bind", 100, 3 * idemCost(key(0), id(1000, 0)), 1000, 10, 3},
		{"bytes bind before count", 5, 2 * idemCost(key(0), id(1000, 0)), 1000, 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newIdempotency(time.Hour, tc.max, tc.maxBytes, clock)
			for i := range tc.learn {
				c.learn(key(i), id(tc.idLen, i), now)
			}
			if got := c.order.Len(); got != tc.want {
				t.Fatalf("%d keys remembered, want %d", got, tc.want)
			}
			for i := range tc.learn {
				_, ok := c.ids[key(i)]
				if want := i >= tc.learn-tc.want; ok != want {
					t.Errorf("key %d remembered: %v, want %v", i, ok, want)
				}
			}
			if c.bytes > tc.maxBytes {
				t.Errorf("%d bytes counted, more than the budget of %d", c.bytes, tc.maxBytes)
			}
		})
	}
}

// TestIdempotencyCopiesStrings checks that a remembered key and ID do not
// share memory with the update they came from: a decoded update's strings
// slice one copy of its whole record, data included.
func TestIdempotencyCopiesStrings(t *testing.T) {
	t.Parallel()
	k := scopedKey("p", "k")
	record := k + "urn:uuid:1" + strings.Repeat("x", 1<<20)
	key, id := record[:len(k)], record[len(k):len(k)+10]
	c := newIdempotency(time.Hour, 10, 1<<20, time.Now)
	c.learn(key, id, time.Now())
	if c.order.Len() != 1 {
		t.Fatalf("%d keys remembered, want 1", c.order.Len())
	}
	en := c.order.Front().Value.(*idemEntry)
	if en.key != key || en.id != id {
		t.Fatalf("remembered %q %q, want %q %q", en.key, en.id, key, id)
	}
	if unsafe.StringData(en.key) == unsafe.StringData(key) || unsafe.StringData(en.id) == unsafe.StringData(id) {
		t.Fatal("the remembered key or ID shares the record's memory")
	}
}
