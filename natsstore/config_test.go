package natsstore

import (
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url      string
		servers  []string
		stream   string
		replicas int
		err      string
	}{
		{url: "nats://127.0.0.1:4222", servers: []string{"nats://127.0.0.1:4222"}, stream: "SSEHUB", replicas: 1},
		{url: "nats://h:4222/?stream=EVENTS&replicas=3", servers: []string{"nats://h:4222"}, stream: "EVENTS", replicas: 3},
		{url: "tls://u:secret@h1:4222,nats://h2?stream=a-b_9", servers: []string{"tls://u:secret@h1:4222", "nats://h2"}, stream: "a-b_9", replicas: 1},
		{url: "nats://a?stream=S,nats://b?stream=S", servers: []string{"nats://a", "nats://b"}, stream: "S", replicas: 1},
		{url: "", err: "empty URL"},
		{url: "  ", err: "empty URL"},
		{url: "redis://h:6379", err: "scheme must be nats:// or tls://"},
		{url: "h:4222", err: "scheme must be nats:// or tls://"},
		{url: "nats://", err: "no host"},
		{url: "nats:opaque", err: "no host"},
		{url: "nats://:4222", err: "no host name"},
		{url: "nats://h:99999", err: "port"},
		{url: "nats://h/path", err: "unexpected path"},
		{url: "nats://h#frag", err: "unexpected fragment"},
		{url: "nats://h?strem=x", err: `unknown parameter "strem"`},
		{url: "nats://h?stream=a.b", err: "only letters, digits"},
		{url: "nats://h?stream=a>", err: "only letters, digits"},
		{url: "nats://h?stream=", err: "1 to 64 characters"},
		{url: "nats://h?stream=" + strings.Repeat("s", 65), err: "1 to 64 characters"},
		{url: "nats://h?replicas=0", err: "replicas"},
		{url: "nats://h?replicas=6", err: "replicas"},
		{url: "nats://h?replicas=three", err: "replicas"},
		{url: "nats://a?stream=X,nats://b?stream=Y", err: "given twice"},
		{url: "nats://h?stream=X&stream=Y", err: "given twice"},
		{url: "nats://u:hunter2@h:1/x", err: "unexpected path"},
		{url: "nats://u:hunter2@h:4222 bad", err: "bad URL"},
	} {
		got, err := parseURL(c.url)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseURL(%q) = %+v, %v; want an error containing %q", c.url, got, err, c.err)
			} else if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("parseURL(%q): the error %q shows the password", c.url, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.servers, c.servers) || got.stream != c.stream || got.replicas != c.replicas {
			t.Errorf("parseURL(%q) = %+v, %v; want servers %q, stream %q, replicas %d", c.url, got, err, c.servers, c.stream, c.replicas)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"nats://h:4222?stream=S&replicas=3", "tls://u:p@h1,nats://h2", "nats://h?x=1", "nats://[::1]:4222"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseURL(raw)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q has more than one line", err)
			}
			return
		}
		if len(got.servers) == 0 || validStream(got.stream) != nil || got.replicas < 1 || got.replicas > MaxReplicas {
			t.Fatalf("parseURL(%q) accepted %+v", raw, got)
		}
		for _, s := range got.servers {
			if strings.ContainsAny(s, "?#") && !strings.Contains(s, "@") {
				t.Fatalf("server URL %q keeps a query or fragment", s)
			}
		}
	})
}
