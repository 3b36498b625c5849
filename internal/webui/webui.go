// Package webui serves the hub's web UI, embedded in the binary: a
// debugger at "/" (subscribe to selectors and watch events live, publish,
// resume from an ID, browse retained history) and a live dashboard at
// "/dashboard" fed by the hub's own stats stream (see Stats, mounted at
// StatsPath). The pages are plain HTML, CSS and JavaScript modules with no
// build step; they load nothing from other origins. docs/web-ui.md
// describes them.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Pages maps the clean paths the UI links to onto their files.
var pages = map[string]string{
	"/dashboard": "/dashboard.html",
}

// csp allows the pages to load their own scripts, styles and images and
// to talk to their own origin only: no inline script, no third party.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the embedded UI: "/" is the debugger, "/dashboard" the
// dashboard, and the files under static/ their assets. Only GET and HEAD
// are allowed.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The files carry no modification time in the binary; make
		// browsers revalidate so an upgraded hub serves its new UI.
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if file, ok := pages[r.URL.Path]; ok {
			r2 := r.Clone(r.Context())
			r2.URL.Path = file
			r = r2
		} else if r.URL.Path == "/dashboard.html" {
			http.Redirect(w, r, "/dashboard", http.StatusMovedPermanently)
			return
		}
		files.ServeHTTP(w, r)
	})
}
