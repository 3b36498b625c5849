package ssehttp

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// template returns a URI template of n variables under prefix.
func template(prefix string, n int) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i := range n {
		fmt.Fprintf(&b, "/{v%d}", i)
	}
	return b.String()
}

// TestHostileSelectors is issue 17, point 6, through the HTTP face. The
// issue's selectors, 28 templates of ~400 variables, are refused with a
// one-line reason. The costliest selectors still allowed (28 templates of
// 16 variables on each of 5 anonymous streams) cost their streams only:
// a control subscriber receives its events, and every stream exactly its
// own, in order. (The hub's TestCostlySubscriptionsDoNotDelayOthers shows
// by the order of events that the control's are not queued behind their
// matching.)
func TestHostileSelectors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)

	q := url.Values{}
	for i := range 28 {
		q.Add("topic", template(fmt.Sprintf("https://example.com/h%d", i), 380))
	}
	// The selectors are each under the 2048-byte limit only in a
	// compact form; what matters is the number of variables.
	for i, v := range q["topic"] {
		q["topic"][i] = strings.ReplaceAll(strings.ReplaceAll(v, "/{", "{"), "{v", "{")
	}
	resp, err := http.Get(f.srv.URL + DefaultPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "selector: topic: template selector has more than 16 variables"; resp.StatusCode != 400 || strings.TrimSpace(string(body)) != want {
		t.Fatalf("400-variable templates: %d %q; want 400 %q", resp.StatusCode, body, want)
	}

	const streams, events = 5, 10
	var hostile []*stream
	for s := range streams {
		q := url.Values{}
		for i := range 28 {
			q.Add("topic", template(fmt.Sprintf("https://example.com/s%d/h%d", s, i), 16))
		}
		hostile = append(hostile, f.subscribe(t, q.Encode(), nil))
	}
	control := f.subscribe(t, "match=https://example.com/control", nil)
	topic := func(s int) string { // matched by one of stream s's templates
		var b strings.Builder
		fmt.Fprintf(&b, "https://example.com/s%d/h27", s)
		for i := range 16 {
			fmt.Fprintf(&b, "/%d", i)
		}
		return b.String()
	}
	for i := range events {
		for s := range streams {
			if status, _, _ := f.publish(t, "all", form("topic", topic(s), "id", fmt.Sprintf("s%d-%d", s, i)), nil); status != 200 {
				t.Fatalf("publish: %d", status)
			}
		}
		if status, _, _ := f.publish(t, "all", form("topic", "https://example.com/control", "id", fmt.Sprintf("c%d", i)), nil); status != 200 {
			t.Fatalf("publish: %d", status)
		}
	}
	for i := range events {
		if ev := control.next(t); ev.ID != fmt.Sprintf("c%d", i) {
			t.Fatalf("control event %d: %q", i, ev.ID)
		}
	}
	for s, st := range hostile {
		for i := range events {
			if ev := st.next(t); ev.ID != fmt.Sprintf("s%d-%d", s, i) {
				t.Fatalf("stream %d event %d: %q", s, i, ev.ID)
			}
		}
	}
}

// TestSelectorBytesPerClient: with Limits.MaxSelectorBytesPerClient, the
// compiled selectors of one client's streams are counted together; the
// stream that would exceed the budget is refused with 429 and a one-line
// reason, and a stream of exact topics is not refused for it.
func TestSelectorBytesPerClient(t *testing.T) {
	t.Parallel()
	q := url.Values{}
	for i := range 10 {
		q.Add("topic", template(fmt.Sprintf("https://example.com/t%d", i), 16))
	}
	ms, err := newFixture(t, nil).handler.cfg.Compiler.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	one := 0
	for _, m := range ms {
		one += m.Size()
	}
	f := newFixture(t, func(c *Config) { c.Limits.MaxSelectorBytesPerClient = 2*one + one/2 })
	f.subscribe(t, q.Encode(), nil)
	f.subscribe(t, q.Encode(), nil)
	resp, err := http.Get(f.srv.URL + DefaultPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf("the selectors of the streams from this address would take more than %d bytes", 2*one+one/2)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), want) {
		t.Fatalf("third stream: %d %q; want 429 %q", resp.StatusCode, body, want)
	}
	s := f.subscribe(t, "match=https://example.com/exact", nil)
	if s.resp.StatusCode != 200 {
		t.Fatalf("stream of an exact topic: %d", s.resp.StatusCode)
	}
}
