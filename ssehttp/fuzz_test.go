package ssehttp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/sse"
)

// FuzzPublishForm feeds arbitrary publish bodies to the whole publish
// path (form parsing, validation, the hub). Nothing panics; every answer
// is 200, 400 or 413 with a one-line reason; and an accepted update
// reaches the wire as exactly one event whose id and type are the ones
// published and whose data is the published data with its line ends
// normalized: no field can be injected.
func FuzzPublishForm(f *testing.F) {
	for _, s := range []string{
		"topic=a&data=hello",
		"topic=a&topic=b&id=x&type=t&retry=1500&private=on&data=line1%0Aline2%0D%0Aline3%0Dline4",
		"topic=a&id=x%0Aid%3A+evil&data=d",
		"topic=a&type=a%0D%0Adata%3A+evil",
		"topic=a&id=%00",
		"topic=a&retry=10s",
		"topic=%2F.well-known%2Fmercure%2Fx",
		"topic=a&data=%FF%FE",
		"topic=*",
		"topic=a;b",
		"topic=a&id=%E2%80%8B",
		"%zz",
		"",
	} {
		f.Add(s)
	}
	h, err := hub.New(hub.Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer h.Close(f.Context())
	comp, err := selector.New(selector.Config{HubURL: "https://hub.example/.well-known/mercure"})
	if err != nil {
		f.Fatal(err)
	}
	hd, err := New(Config{Hub: h, Compiler: comp, Auth: testTokens, MaxBodyBytes: 4096, MaxTopics: 5})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, perr := url.ParseQuery(body)
		u, status, reason := hd.parseUpdate(form)
		if status == 0 && u != nil {
			checkUpdateOnTheWire(t, u)
		}
		if status != 0 && (strings.ContainsAny(reason, "\r\n") || reason == "") {
			t.Fatalf("parseUpdate reason is not one line: %q", reason)
		}

		r := httptest.NewRequest(http.MethodPost, DefaultPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Bearer all")
		w := httptest.NewRecorder()
		hd.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code != 200 && strings.Count(w.Body.String(), "\n") != 1 {
			t.Fatalf("reason is not one line: %q", w.Body)
		}
		if w.Code == 200 && (perr != nil || status != 0) && len(body) <= 4096 {
			t.Fatalf("accepted over HTTP, refused by parseUpdate (%d %s, %v): %q", status, reason, perr, body)
		}
	})
}

// checkUpdateOnTheWire encodes u as the hub would and decodes it as a
// client would.
func checkUpdateOnTheWire(t *testing.T, u *hub.Update) {
	t.Helper()
	if u.ID == "" {
		u.ID = "generated"
	}
	frame := u.Frame()
	if frame == nil {
		t.Fatalf("an accepted update does not encode: %+v", u)
	}
	dec := sse.NewDecoder(bytes.NewReader(frame))
	ev, err := dec.Decode()
	if err != nil {
		t.Fatalf("decoding %q: %v", frame, err)
	}
	want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(u.Data)
	wantType := u.Type
	if wantType == "" {
		wantType = "message"
	}
	if ev.ID != u.ID || ev.Type != wantType || ev.Data != want {
		t.Fatalf("on the wire: id %q type %q data %q; published id %q type %q data %q", ev.ID, ev.Type, ev.Data, u.ID, u.Type, u.Data)
	}
	if _, err := dec.Decode(); err == nil {
		t.Fatalf("one update decoded as several events: %q", frame)
	}
}

// FuzzReserved checks reserved's shortcut: for every topic and hub path,
// it answers what resolving the topic against the hub URL answers.
func FuzzReserved(f *testing.F) {
	for _, s := range []string{
		"a", "", "?x", "#f", ".", "..", "./", "mercure", "/.well-known/mercure", "/.well-known/mercure/x",
		"https://other.example/.well-known/mercure", "/.well-known/%6Dercure/x", "/a/../.well-known/mercure/x",
		"//host", "http:", "http:?x", "https://example.com/books/1", "https://example.com/x/mercure/y", "//host/.well-known/mercure", "urn:x:mercure", "MERCURE",
	} {
		f.Add(s, "/.well-known/mercure")
		f.Add(s, "/hub")
	}
	f.Add("?x", "/")
	f.Fuzz(func(t *testing.T, topic, hubPath string) {
		if !strings.HasPrefix(hubPath, "/") {
			return
		}
		h := &Handler{}
		h.setHubURL(&url.URL{Scheme: "https", Host: "hub.example", Path: hubPath})
		if got, want := h.reserved(topic), h.underHub(topic); got != want {
			t.Fatalf("hub path %q: reserved(%q) = %v; resolving it says %v", hubPath, topic, got, want)
		}
	})
}
