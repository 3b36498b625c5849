package ssehttp

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// Headers of the hub's plain-text answers, shared: net/http copies a
// handler's header map when it writes the header.
var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
)

// setPlainText marks an answer as plain text that must not be sniffed,
// without allocating.
func setPlainText(hd http.Header) {
	hd["Content-Type"] = textPlain
	hd["X-Content-Type-Options"] = noSniff
}

// formBuffers holds the buffers publish bodies are read into.
var formBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledForm is the largest buffer returned to formBuffers.
const maxPooledForm = 64 << 10

// readForm reads an application/x-www-form-urlencoded body (bounded by
// the caller, e.g. with http.MaxBytesReader) and parses it. It is what
// Request.ParseForm does for a POST, without copying the fields into
// Request.Form or keeping the body: the body is read into a pooled
// buffer, and only the parsed fields are allocated.
func readForm(body io.Reader) (url.Values, error) {
	b := formBuffers.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= maxPooledForm {
			b.Reset()
			formBuffers.Put(b)
		}
	}()
	if _, err := b.ReadFrom(body); err != nil {
		return nil, err
	}
	return url.ParseQuery(b.String())
}
