package sse_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// Encode an event. Data lines are split so that no payload can start a
// new field or event.
func ExampleAppendEvent() {
	frame, err := sse.AppendEvent(nil, sse.Event{
		ID:   "42",
		Type: "price",
		Data: "line one\nline two",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(frame))

	_, err = sse.AppendEvent(nil, sse.Event{ID: "1\nevent: forged"})
	fmt.Println(err)
	// Output:
	// id: 42
	// event: price
	// data: line one
	// data: line two
	//
	// sse: event id contains CR, LF or NUL
}

// Decode a stream the way a browser does: the id persists, comments are
// reported in order, and the unterminated final block is dropped.
func ExampleDecoder() {
	stream := "\uFEFF: welcome\r\nretry: 3000\nid: 1\nevent: add\ndata: a\ndata: b\n\ndata: c\n\ndata: lost"
	d := sse.NewDecoder(strings.NewReader(stream))
	d.OnComment = func(text string) { fmt.Printf("comment %q\n", text) }
	for {
		ev, err := d.Decode()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s id=%s data=%q\n", ev.Type, ev.ID, ev.Data)
	}
	retry, _ := d.Retry()
	fmt.Println("last event ID:", d.LastEventID(), "retry:", retry)
	// Output:
	// comment " welcome"
	// add id=1 data="a\nb"
	// message id=1 data="c"
	// last event ID: 1 retry: 3s
}

// Serve a stream with Upgrade: the handler owns the Writer, sends events
// as they come and a heartbeat comment when idle, and returns when the
// client goes away or a write fails.
func ExampleUpgrade() {
	events := make(chan sse.Event, 2)
	events <- sse.Event{ID: "1", Data: "hello"}
	events <- sse.Event{ID: "2", Data: "world"}
	close(events)

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, err := sse.Upgrade(w, r, &sse.WriterOptions{WriteTimeout: 10 * time.Second})
		if err != nil {
			http.Error(w, "streaming unsupported", http.StatusInternalServerError)
			return
		}
		heartbeat := time.NewTicker(15 * time.Second)
		defer heartbeat.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-heartbeat.C:
				if err := sw.Comment(""); err != nil {
					return
				}
			case ev, ok := <-events:
				if !ok {
					return // end at an event boundary; the client reconnects
				}
				if err := sw.WriteEvent(ev); err != nil {
					return
				}
			}
		}
	})

	srv := httptest.NewServer(handler)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Header.Get("Content-Type"))
	d := sse.NewDecoder(resp.Body)
	for {
		ev, err := d.Decode()
		if err != nil {
			break
		}
		fmt.Println(ev.ID, ev.Data)
	}
	// Output:
	// text/event-stream
	// 1 hello
	// 2 world
}
