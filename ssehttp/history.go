package ssehttp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// HistoryPath is where History is mounted, under the hub's reserved
// namespace.
const HistoryPath = DefaultPath + "/history"

// MaxHistoryLimit caps the "limit" parameter of the history endpoint.
const MaxHistoryLimit = 1000

// historyEvent is one event in a history page.
type historyEvent struct {
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	Data   string    `json:"data"`
	Topics []string  `json:"topics"`
	Time   time.Time `json:"time"`
}

// historyPage is the JSON answer of the history endpoint.
type historyPage struct {
	Events      []historyEvent `json:"events"`
	LastEventID string         `json:"last_event_id"`
	NextCursor  string         `json:"next_cursor"`
	More        bool           `json:"more"`
	Gap         hub.GapReason  `json:"gap,omitempty"`
}

// History returns the catch-up endpoint: GET with the subscribe
// parameters (topic selectors), "after" (an event ID, or "earliest"),
// "cursor" (a previous page's next_cursor) and "limit" (1 to 1000, default
// 100) answers one JSON page of the retained events the client may see,
// under the same authorization rules as the stream. See docs/protocol.md.
func (h *Handler) History() http.Handler {
	return http.HandlerFunc(h.history)
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	h.cors(w, r)
	switch r.Method {
	case http.MethodGet:
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, OPTIONS")
		h.fail(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	q, topics, grant, ok := h.reader(w, r, "reading history")
	if !ok {
		return
	}
	req := hub.CatchUpRequest{Topics: topics, After: q.Get("after"), Limit: 100}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			h.fail(w, r, http.StatusBadRequest, "limit must be a number from 1 to 1000")
			return
		}
		req.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		pos, ok := decodeCursor(v)
		if !ok {
			h.fail(w, r, http.StatusBadRequest, "malformed cursor")
			return
		}
		req.Cursor = pos
	}
	if grant != nil {
		req.CanRead = grant.CanRead
	}
	page, err := h.cfg.Hub.CatchUp(r.Context(), req)
	if err != nil {
		h.log.Warn("history failed", "err", err)
		h.fail(w, r, http.StatusServiceUnavailable, "history unavailable")
		return
	}
	out := historyPage{
		Events:      make([]historyEvent, 0, len(page.Updates)),
		LastEventID: page.LastID,
		NextCursor:  encodeCursor(page.Next),
		More:        page.More,
		Gap:         page.Gap,
	}
	for _, u := range page.Updates {
		typ := u.Type
		if typ == "" {
			typ = "message"
		}
		out.Events = append(out.Events, historyEvent{ID: u.ID, Type: typ, Data: u.Data, Topics: u.Topics, Time: u.Time.UTC()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// encodeCursor makes a position opaque to clients.
func encodeCursor(p hub.Position) string { return hub.EncodePosition(p) }

func decodeCursor(s string) (hub.Position, bool) { return hub.DecodePosition(s) }
