package ssehttp

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// TestIdempotencyKeyBelongsToItsPublisher: over HTTP, an Idempotency-Key
// is scoped by the publisher's identity: its token's issuer and subject,
// else its grant. A publisher using another's key gets a new update and
// its own ID, never the other's, and the other's later publish with that
// key is stored.
func TestIdempotencyKeyBelongsToItsPublisher(t *testing.T) {
	t.Parallel()
	comp, err := selector.New(selector.Config{HubURL: "https://hub.example/.well-known/mercure"})
	if err != nil {
		t.Fatal(err)
	}
	compile := func(k selector.Kind, s string) hub.Matcher {
		m, err := comp.Compile(k, s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	all := []hub.Matcher{compile(selector.Template, "*")}
	books := func() []hub.Matcher {
		return []hub.Matcher{compile(selector.URLPattern, "https://example.com/books/*"), compile(selector.Exact, "https://example.com/a")}
	}
	toks := tokens{
		"alice":          {Subject: "alice", Publish: all},
		"alice-again":    {Subject: "alice", Publish: books()}, // the same subject, another token: the same publisher
		"alice-other-is": {Subject: "alice", Issuer: "https://other.example", Publish: all},
		"bob":            {Subject: "bob", Publish: all},
		// Without a subject, the grant is the identity.
		"grant-books":      {Publish: books()},
		"grant-books-same": {Publish: append(books()[1:], books()...)}, // the same targets, in another order, repeated
		"grant-all":        {Publish: all},
		"grant-books-read": {Publish: books(), Subscribe: all},
		"grant-books-pay":  {Publish: books(), Payload: json.RawMessage(`{"user":"x"}`)},
		"grant-books-iss":  {Publish: books(), Issuer: "https://other.example"},
	}
	f := newFixture(t, func(c *Config) { c.Auth, c.Compiler = toks, comp })
	steps := []struct {
		token, key string
		// want names the publish whose ID the step must get: a new name
		// is a new update, a name seen before is a retry of that publish.
		want string
	}{
		{"alice", "k", "alice"},
		{"bob", "k", "bob"}, // bob gets his own ID, not alice's
		{"alice", "k", "alice"},
		{"alice-again", "k", "alice"},
		{"alice-other-is", "k", "alice of another issuer"},
		{"bob", "k", "bob"},
		{"bob", "k2", "bob k2"},     // bob uses k2 first...
		{"alice", "k2", "alice k2"}, // ...and alice's publish with it is still stored
		{"grant-books", "k", "books"},
		{"grant-books-same", "k", "books"},
		{"grant-all", "k", "all"},
		{"grant-books-read", "k", "books with read"},
		{"grant-books-pay", "k", "books with payload"},
		{"grant-books-iss", "k", "books of another issuer"},
		{"grant-books", "k", "books"},
	}
	ids := map[string]string{}
	for i, st := range steps {
		status, id, _ := f.publish(t, st.token, form("topic", "https://example.com/books/1", "data", st.want, "private", "on"), http.Header{"Idempotency-Key": {st.key}})
		if status != http.StatusOK {
			t.Fatalf("step %d (%s, key %q): %d %s", i, st.token, st.key, status, id)
		}
		want, seen := ids[st.want]
		switch {
		case !seen:
			for name, other := range ids {
				if other == id {
					t.Fatalf("step %d (%s, key %q) got the ID of %q; want a new update", i, st.token, st.key, name)
				}
			}
			ids[st.want] = id
		case id != want:
			t.Fatalf("step %d (%s, key %q) got %q; want %q, the ID of %q", i, st.token, st.key, id, want, st.want)
		}
	}
	page, err := f.hub.CatchUp(t.Context(), hub.CatchUpRequest{Topics: []hub.Matcher{hub.MatchAll}, CanRead: func([]string) bool { return true }, After: hub.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Updates) != len(ids) {
		t.Fatalf("stored %d updates; want %d, one per publisher and key", len(page.Updates), len(ids))
	}
	for _, u := range page.Updates {
		if ids[u.Data] != u.ID {
			t.Errorf("stored %q with data %q; want the ID of %q, %q", u.ID, u.Data, u.Data, ids[u.Data])
		}
	}
}

func TestPublisherIdentity(t *testing.T) {
	t.Parallel()
	// Every grant here is another publisher.
	grants := []*auth.Grant{
		{Subject: "a"},
		{Subject: "a", Issuer: "i"},
		{Subject: "i", Issuer: "a"},
		{Subject: `a" "b`},
		{Subject: "a", Issuer: `" "b`},
		{Publish: []hub.Matcher{hub.Exact("a")}},
		{Publish: []hub.Matcher{hub.Exact("a"), hub.Exact("b")}},
		{Publish: []hub.Matcher{hub.Exact("a,b")}},
		{Publish: []hub.Matcher{hub.MatchAll}},
		{Publish: []hub.Matcher{hub.Exact("a")}, Subscribe: []hub.Matcher{hub.Exact("a")}},
		{Publish: []hub.Matcher{hub.Exact("a")}, Issuer: "i"},
		{Publish: []hub.Matcher{hub.Exact("a")}, Payload: json.RawMessage(`1`)},
		{Publish: []hub.Matcher{hub.Exact("a")}, Payloads: []auth.Payload{{Match: hub.Exact("a"), Data: json.RawMessage(`1`)}}},
		{},
	}
	seen := map[string]int{}
	for i, g := range grants {
		id := publisherIdentity(g)
		if j, ok := seen[id]; ok {
			t.Errorf("grants %d and %d have the same identity %q", j, i, id)
		}
		seen[id] = i
		if again := publisherIdentity(g); again != id {
			t.Errorf("grant %d: identity not stable: %q then %q", i, id, again)
		}
	}
	// The order and repetition of targets do not matter.
	a := &auth.Grant{Publish: []hub.Matcher{hub.Exact("a"), hub.Exact("b")}}
	b := &auth.Grant{Publish: []hub.Matcher{hub.Exact("b"), hub.Exact("a"), hub.Exact("b")}}
	if publisherIdentity(a) != publisherIdentity(b) {
		t.Error("the same targets in another order are another publisher")
	}
}
