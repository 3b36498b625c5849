package ssehttp

import (
	"io"
	"net/url"
	"sync"
)

// Headers of the hub's plain-text answers, shared: net/http copies a
// handler's header map when it writes the header.
var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
)

// formBuffers holds the buffers publish bodies are read into.
var formBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledForm is the largest buffer returned to formBuffers.
const maxPooledForm = 64 << 10

// readForm reads an application/x-www-form-urlencoded body (bounded by
// the caller, e.g. with http.MaxBytesReader) and parses it. It is what
// Request.ParseForm does for a POST, without copying the fields into
// Request.Form or keeping the body: the body is read into a pooled
// buffer, and only the parsed fields are allocated.
func readForm(body io.Reader) (url.Values, error) {
	bp := formBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() {
		if cap(b) <= maxPooledForm {
			*bp = b[:0]
			formBuffers.Put(bp)
		}
	}()
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return url.ParseQuery(string(b))
}
