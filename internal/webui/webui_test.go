package webui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerPages(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		method, path string
		status       int
		ctype        string
		contains     string
		location     string
	}{
		{method: "GET", path: "/", status: 200, ctype: "text/html; charset=utf-8", contains: "<title>Debugger · ssehub</title>"},
		{method: "GET", path: "/dashboard", status: 200, ctype: "text/html; charset=utf-8", contains: "<title>Dashboard · ssehub</title>"},
		{method: "GET", path: "/dashboard.html", status: 301, location: "/dashboard"},
		{method: "GET", path: "/index.html", status: 301, location: "./"},
		{method: "GET", path: "/js/sse.js", status: 200, ctype: "text/javascript; charset=utf-8", contains: "export class Parser"},
		{method: "GET", path: "/css/app.css", status: 200, ctype: "text/css; charset=utf-8", contains: ":focus-visible"},
		{method: "GET", path: "/favicon.svg", status: 200, ctype: "image/svg+xml", contains: "<svg"},
		{method: "HEAD", path: "/", status: 200, ctype: "text/html; charset=utf-8"},
		{method: "GET", path: "/missing", status: 404},
		{method: "POST", path: "/", status: 405},
		{method: "DELETE", path: "/dashboard", status: 405},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d", resp.StatusCode, tc.status)
			}
			h := resp.Header
			if h.Get("Content-Security-Policy") != csp || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("security headers %v", h)
			}
			if tc.ctype != "" && h.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q; want %q", h.Get("Content-Type"), tc.ctype)
			}
			if tc.contains != "" && !strings.Contains(string(body), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			if tc.location != "" && h.Get("Location") != tc.location {
				t.Errorf("Location %q; want %q", h.Get("Location"), tc.location)
			}
			if tc.status == 405 && h.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", h.Get("Allow"))
			}
		})
	}
}

// TestNoExternalResources checks that the embedded pages load nothing from
// another origin: no absolute or protocol-relative URLs in src, href,
// import or url(), and no inline script or style attribute that the
// Content-Security-Policy would block.
func TestNoExternalResources(t *testing.T) {
	t.Parallel()
	external := []*regexp.Regexp{
		regexp.MustCompile(`(?i)\b(src|href|action)\s*=\s*["']?\s*(https?:)?//`),
		regexp.MustCompile(`(?i)\bimport\b[^;"']*["'](https?:)?//`),
		regexp.MustCompile(`(?i)url\(\s*["']?(https?:)?//`),
		regexp.MustCompile(`(?i)@import`),
		regexp.MustCompile(`(?i)fetch\(\s*["'](https?:)?//`),
	}
	inline := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<]+</script>`), // inline script body
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*</script>`),   // checked below: must have src
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),                     // event handler attributes
		regexp.MustCompile(`(?i)\sstyle\s*=`),                        // style attributes
		regexp.MustCompile(`(?i)<style`),                             // style elements
	}
	n := 0
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := static.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(b)
		for _, re := range external {
			if m := re.FindString(s); m != "" && !strings.Contains(m, "www.w3.org/2000/svg") {
				t.Errorf("%s refers to another origin: %q", path, m)
			}
		}
		if strings.HasSuffix(path, ".html") {
			for i, re := range inline {
				for _, m := range re.FindAllString(s, -1) {
					if i == 1 && strings.Contains(m, " src=") {
						continue
					}
					t.Errorf("%s has inline code the CSP blocks: %q", path, m)
				}
			}
		}
		if strings.HasSuffix(path, ".js") && regexp.MustCompile(`setAttribute\(\s*["']style`).MatchString(s) {
			t.Errorf("%s sets a style attribute, which the CSP blocks", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 7 {
		t.Fatalf("walked %d files; the embedded tree is incomplete", n)
	}
}

// TestPagesAccessible checks the static accessibility rules the pages
// follow: a language, a viewport, one h1, a label for every input, select
// and textarea, and a live region for the event list.
func TestPagesAccessible(t *testing.T) {
	t.Parallel()
	for _, page := range []string{"static/index.html", "static/dashboard.html"} {
		b, err := static.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, want := range []string{`<html lang="en">`, `name="viewport"`, `class="skip"`, `<main id="main"`} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %s", page, want)
			}
		}
		if c := strings.Count(s, "<h1"); c != 1 {
			t.Errorf("%s has %d h1 elements; want 1", page, c)
		}
		labels := map[string]bool{}
		for _, m := range regexp.MustCompile(`<label[^>]*\sfor="([^"]+)"`).FindAllStringSubmatch(s, -1) {
			labels[m[1]] = true
		}
		for _, m := range regexp.MustCompile(`<(input|select|textarea)\b([^>]*)>`).FindAllStringSubmatch(s, -1) {
			attrs := m[2]
			if strings.Contains(attrs, `type="radio"`) || strings.Contains(attrs, `type="checkbox"`) {
				continue // wrapped in their label
			}
			id := regexp.MustCompile(`\sid="([^"]+)"`).FindStringSubmatch(attrs)
			if id == nil || !labels[id[1]] {
				t.Errorf("%s: <%s%s> has no label", page, m[1], attrs)
			}
		}
	}
	b, _ := static.ReadFile("static/index.html")
	if !regexp.MustCompile(`<ol id="events"[^>]*aria-live="polite"`).Match(b) {
		t.Error("the event list is not an aria-live region")
	}
}
