package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/testsvc"
	"github.com/ssehub/ssehub/selector"
)

func TestParseTopicRule(t *testing.T) {
	for _, c := range []struct {
		in   string
		want TopicRule
	}{
		{"https://example.com/books/{id}=max-updates=100,max-age=1h,max-bytes=1MB",
			TopicRule{Selector: "https://example.com/books/{id}", Limits: hub.Limits{MaxUpdates: 100, MaxAge: time.Hour, MaxBytes: 1_000_000}}},
		{"chat=max-updates=2", TopicRule{Selector: "chat", Limits: hub.Limits{MaxUpdates: 2}}},
		{"*=max-age=90s", TopicRule{Selector: "*", Limits: hub.Limits{MaxAge: 90 * time.Second}}},
		{"/rooms/*=max-bytes=2KiB,match-type=urlpattern", TopicRule{Selector: "/rooms/*", Kind: selector.URLPattern, Limits: hub.Limits{MaxBytes: 2048}}},
		{"a{b=max-bytes=5,match-type=exact", TopicRule{Selector: "a{b", Kind: selector.Exact, Limits: hub.Limits{MaxBytes: 5}}},
		// A template's commas and a query's "=" belong to the pattern.
		{"/books/{id,fmt}=max-updates=1", TopicRule{Selector: "/books/{id,fmt}", Limits: hub.Limits{MaxUpdates: 1}}},
		{"https://example.com/?a=b=max-updates=3", TopicRule{Selector: "https://example.com/?a=b", Limits: hub.Limits{MaxUpdates: 3}}},
		{"t=max-bytes=3gib", TopicRule{Selector: "t", Limits: hub.Limits{MaxBytes: 3 << 30}}},
	} {
		got, err := ParseTopicRule(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseTopicRule(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, err string }{
		{"", "no limit: want PATTERN="},
		{"chat", "no limit: want PATTERN="},
		{"chat=100", "no limit: want PATTERN="},
		{"=max-updates=1", "the pattern is empty"},
		{"chat=max-updates=0", "max-updates=0: want a positive whole number"},
		{"chat=max-updates=-1", "max-updates=-1: want a positive whole number"},
		{"chat=max-updates=lots", "max-updates=lots: want a positive whole number"},
		{"chat=max-bytes=1XB", "max-bytes=1XB: want a positive number of bytes"},
		{"chat=max-bytes=99999999999999999GB", "max-bytes=99999999999999999GB: too large"},
		{"chat=max-age=soon", "max-age=soon: want a positive duration"},
		{"chat=max-age=-1h", "max-age=-1h: want a positive duration"},
		{"chat=max-updates=1,max-updates=2", "max-updates is given twice"},
		{"chat=max-updates=1,colour=blue", `unknown limit "colour"`},
		{"chat=max-updates=1,", `unknown limit ""`},
		{"chat=match-type=exact", "no limit: give max-updates, max-bytes or max-age"},
		{"chat=max-updates=1,match-type=regexp", "match-type=regexp: want exact, template or urlpattern"},
		{"/books/{id=max-updates=1", `pattern "/books/{id": invalid URI template`},
		{"https://[=max-updates=1,match-type=urlpattern", `pattern "https://[": invalid URL pattern`},
		{"a\x00b=max-updates=1", `pattern "a\x00b": `},
	} {
		_, err := ParseTopicRule(c.in)
		if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseTopicRule(%q) error = %v; want one line containing %q", c.in, err, c.err)
		}
	}
}

// FuzzParseTopicRule checks that the parser never panics, and that a rule
// it accepts reads back the same from its String form.
func FuzzParseTopicRule(f *testing.F) {
	for _, s := range []string{
		"https://example.com/books/{id}=max-updates=100,max-age=1h,max-bytes=1MB",
		"/rooms/*=max-bytes=2KiB,match-type=urlpattern", "a=b=max-age=1s", "x=max-updates=1,,", "=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseTopicRule(s)
		if err != nil {
			return
		}
		again, err := ParseTopicRule(r.String())
		if err != nil || again != r {
			// A pattern may contain "=max-age=..." only if an earlier "="
			// already started the limits, which String cannot produce.
			t.Fatalf("ParseTopicRule(%q) = %+v; its String %q reads back as %+v, %v", s, r, r.String(), again, err)
		}
	})
}

// TestTopicRetentionRules starts hubs on each embedded engine with
// retention rules and checks that the first matching rule limits each
// topic on its own.
func TestTopicRetentionRules(t *testing.T) {
	rule := func(s string) TopicRule {
		r, err := ParseTopicRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, engine := range []string{"memory", "bolt", "redis", "nats"} {
		t.Run(engine, func(t *testing.T) {
			switch engine {
			case "redis":
				engine = testsvc.StartRedis(t).URL() + "?prefix=topicrules"
			case "nats":
				engine = testsvc.StartNATS(t).URL() + "?stream=TOPICRULES"
			}
			s := start(t, Config{Engine: engine, Retention: Retention{Topics: []TopicRule{
				rule("https://example.com/books/1=max-updates=3"), // first match wins
				rule("https://example.com/books/{id}=max-updates=1"),
				rule("/rooms/*=max-updates=2,match-type=urlpattern"), // relative: resolved against the hub URL
			}}})
			ctx := context.Background()
			for i := range 4 {
				for _, topic := range []string{
					"https://example.com/books/1", "https://example.com/books/2", "https://example.com/books/3",
					s.URL() + "/rooms/a", "https://example.com/other",
				} {
					if _, err := s.Hub().Publish(ctx, &hub.Update{ID: fmt.Sprint(topic, "#", i), Topics: []string{topic}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			kept := make(map[string]int)
			err := s.Hub().Store().Read(ctx, hub.Position{}, func(u *hub.Update) bool {
				kept[strings.TrimPrefix(u.Topics[0], s.URL())]++
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{
				"https://example.com/books/1": 3, "https://example.com/books/2": 1, "https://example.com/books/3": 1,
				"/rooms/a": 2, "https://example.com/other": 4,
			}
			if fmt.Sprint(kept) != fmt.Sprint(want) {
				t.Errorf("retained per topic: %v; want %v", kept, want)
			}
		})
	}
}

func TestReplayLimitWired(t *testing.T) {
	s := start(t, Config{Engine: "memory", ReplayLimit: 2})
	ctx := context.Background()
	for i := range 4 {
		if _, err := s.Hub().Publish(ctx, &hub.Update{ID: fmt.Sprint(i), Topics: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.Hub().CatchUp(ctx, hub.CatchUpRequest{Topics: []hub.Matcher{matchAll{}}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Updates) != 2 || !page.More {
		t.Errorf("a page with limit 100 under a replay limit of 2 has %d updates, more %v; want 2, true", len(page.Updates), page.More)
	}
}

type matchAll struct{}

func (matchAll) Match(string) bool { return true }
