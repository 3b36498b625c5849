package sse

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestAppendID: a lone id field sets the decoder's last event ID and
// dispatches nothing; the next event carries it when it has no id of its
// own.
func TestAppendID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, id, wire string
		err            error
	}{
		{"cursor", "#YWJjLjQy", "id: #YWJjLjQy\n\n", nil},
		{"empty resets", "", "id: \n\n", nil},
		{"newline refused", "a\nb", "", ErrInvalidID},
		{"NUL refused", "a\x00", "", ErrInvalidID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendID([]byte("x"), tc.id)
			if !errors.Is(err, tc.err) || string(b) != "x"+tc.wire {
				t.Fatalf("AppendID = %q, %v; want %q, %v", b, err, "x"+tc.wire, tc.err)
			}
			if err != nil {
				return
			}
			d := NewDecoder(bytes.NewReader(append(b[1:], "data: d\n\n"...)))
			d.SetLastEventID("before")
			ev, err := d.Decode()
			if err != nil || ev.Data != "d" || ev.ID != tc.id {
				t.Errorf("first event %+v, %v; want data d with id %q", ev, err, tc.id)
			}
			if _, err := d.Decode(); err != io.EOF {
				t.Errorf("then %v; want EOF", err)
			}
			if d.LastEventID() != tc.id {
				t.Errorf("LastEventID %q; want %q", d.LastEventID(), tc.id)
			}
		})
	}
}
