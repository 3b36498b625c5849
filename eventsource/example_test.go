package eventsource_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/ssehub/ssehub/eventsource"
	"github.com/ssehub/ssehub/sse"
)

// newHub starts a server that streams two events, drops the connection,
// streams one more to whoever comes back, then answers 204 to stop.
func newHub() *httptest.Server {
	var n atomic.Int32
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "retry: 10\nid: 1\ndata: hello\n\nid: 2\nevent: update\ndata: world\n\n")
		case 2:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 3\ndata: resumed after "+r.Header.Get("Last-Event-ID")+"\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
}

func ExampleClient_Subscribe() {
	hub := newHub()
	defer hub.Close()

	var c eventsource.Client
	req, _ := http.NewRequest(http.MethodGet, hub.URL, nil)
	err := c.Subscribe(context.Background(), req, func(ev sse.Event) error {
		fmt.Printf("%s %s: %s\n", ev.ID, ev.Type, ev.Data)
		return nil
	})
	fmt.Println("stopped:", err, "last ID:", c.LastEventID())
	// Output:
	// 1 message: hello
	// 2 update: world
	// 3 message: resumed after 2
	// stopped: <nil> last ID: 3
}

func ExampleClient_Events() {
	hub := newHub()
	defer hub.Close()

	c := &eventsource.Client{RetryPolicy: eventsource.RetryTransient}
	req, _ := http.NewRequest(http.MethodGet, hub.URL, nil)
	req.Header.Set("Last-Event-ID", "0") // resume from a stored position
	for ev, err := range c.Events(context.Background(), req) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(ev.Data)
	}
	// Output:
	// hello
	// world
	// resumed after 2
}
