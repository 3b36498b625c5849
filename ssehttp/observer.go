package ssehttp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
)

// Observer is told what a Handler does, for metrics. Config.Observer sets
// it; nil observes nothing.
//
// The methods are called concurrently from request goroutines, some on
// the delivery path: they must be safe for concurrent use, cheap (a few
// atomic operations) and must never block. Delivered is called once per
// write to a subscriber's connection, however many events the write holds;
// nothing is called per event.
type Observer interface {
	// Published reports an update the store acknowledged, d after its
	// publish request reached the handler: the time to a durable ack.
	Published(d time.Duration)
	// Delivered reports n events written to one subscriber's connection in
	// one write. appended is the Update.Time of the oldest live event of
	// the write, so that now minus appended is its delivery latency; it is
	// zero when the write held only replayed history and gap notices,
	// whose age says nothing about delivery.
	Delivered(n int, appended time.Time)
	// Refused reports a request refused for its credentials or by a
	// limit. reason is RefusedMissingToken, RefusedForbidden, the RFC 6750
	// error code the Authenticator gave (auth.Error.Code: "invalid_token"
	// or "invalid_request"), RefusedStreamLimit or RefusedPublishRate.
	Refused(reason string)
	// StreamOpened reports a stream whose response head was sent, with
	// the kinds of its topic selectors.
	StreamOpened(kinds SelectorKinds)
	// StreamClosed reports the end of a stream that StreamOpened reported:
	// its selector kinds, why it ended, how long it lasted and how many
	// events it sent.
	StreamClosed(kinds SelectorKinds, reason EndReason, d time.Duration, events int)
}

// The reasons of Observer.Refused that the handler itself decides.
const (
	// RefusedMissingToken is a request that needs credentials and has none.
	RefusedMissingToken = "missing_token"
	// RefusedForbidden is a valid token that does not grant the request (a
	// publish to a topic the token does not name), or a cookie-borne
	// publish from a foreign origin.
	RefusedForbidden = "forbidden"
)

// SelectorKinds is a set of topic selector kinds.
type SelectorKinds uint8

// The selector kinds.
const (
	// KindExact is a "match" or "match_exact" selector.
	KindExact SelectorKinds = 1 << iota
	// KindTemplate is a v0.24 "topic" selector, an RFC 6570 URI template.
	KindTemplate
	// KindURLPattern is a "match_urlpattern" selector.
	KindURLPattern
	// KindAll is the "*" wildcard, of any parameter.
	KindAll
)

// kindNames are the names of the kinds, in bit order.
var kindNames = [...]string{"exact", "template", "urlpattern", "all"}

// Each calls fn with the name of every kind in k: "exact", "template",
// "urlpattern" or "all".
func (k SelectorKinds) Each(fn func(name string)) {
	for i, name := range kindNames {
		if k&(1<<i) != 0 {
			fn(name)
		}
	}
}

// String returns the names of the kinds in k joined by "+", such as
// "exact+urlpattern", or "" for none.
func (k SelectorKinds) String() string {
	var b strings.Builder
	k.Each(func(name string) {
		if b.Len() > 0 {
			b.WriteByte('+')
		}
		b.WriteString(name)
	})
	return b.String()
}

// selectorKinds returns the kinds of ms. A matcher that is not a
// *selector.Matcher counts as exact if it selects one topic and as a URL
// pattern otherwise.
func selectorKinds(ms []hub.Matcher) SelectorKinds {
	var k SelectorKinds
	for _, m := range ms {
		switch sm, ok := m.(*selector.Matcher); {
		case ok && sm.Wildcard():
			k |= KindAll
		case ok && sm.Kind() == selector.Template:
			k |= KindTemplate
		case ok && sm.Kind() == selector.URLPattern:
			k |= KindURLPattern
		case ok:
			k |= KindExact
		default:
			if em, isExact := m.(hub.ExactMatcher); isExact {
				if _, one := em.Exact(); one {
					k |= KindExact
					continue
				}
			}
			k |= KindURLPattern
		}
	}
	return k
}

// EndReason says why a stream ended.
type EndReason string

// The reasons a stream ends.
const (
	// EndClientGone is the client closing the connection or the request
	// being canceled.
	EndClientGone EndReason = "client-gone"
	// EndDrain is the handler's Drain, at a graceful shutdown.
	EndDrain EndReason = "drain"
	// EndExpired is the subscriber's credentials expiring.
	EndExpired EndReason = "credentials-expired"
	// EndQueueOverflow is a slow consumer ended by the hub: its queue
	// overflowed (hub.ErrSlowConsumer).
	EndQueueOverflow EndReason = "queue-overflow"
	// EndWriteTimeout is a slow consumer that did not take a write within
	// Config.WriteTimeout.
	EndWriteTimeout EndReason = "write-timeout"
	// EndWriteFailed is any other failed write: the peer is gone.
	EndWriteFailed EndReason = "write-failed"
	// EndHubClosed is the hub closing (hub.ErrClosed).
	EndHubClosed EndReason = "hub-closed"
	// EndStoreFailed is the hub failing to read its store.
	EndStoreFailed EndReason = "store-failed"
)

// EndReasons lists every EndReason, for observers that set up their
// labels in advance.
var EndReasons = []EndReason{EndClientGone, EndDrain, EndExpired, EndQueueOverflow,
	EndWriteTimeout, EndWriteFailed, EndHubClosed, EndStoreFailed, EndMaxLifetime}

// writeEnd is the reason of a stream whose write failed with err.
func writeEnd(err error) EndReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return EndWriteTimeout
	}
	return EndWriteFailed
}

// drainEnd is the reason of a stream whose Subscription.Drain returned err.
func drainEnd(err error) EndReason {
	switch {
	case errors.Is(err, hub.ErrSlowConsumer):
		return EndQueueOverflow
	case errors.Is(err, hub.ErrClosed):
		return EndHubClosed
	}
	return EndStoreFailed
}

// nopObserver is the Observer of a Handler without one.
type nopObserver struct{}

func (nopObserver) Published(time.Duration)                                   {}
func (nopObserver) Delivered(int, time.Time)                                  {}
func (nopObserver) Refused(string)                                            {}
func (nopObserver) StreamOpened(SelectorKinds)                                {}
func (nopObserver) StreamClosed(SelectorKinds, EndReason, time.Duration, int) {}

// streamObs follows one stream for the log and the Observer: opened (one
// debug line), each write, closed (one line: debug, or info for a slow
// consumer). Only the goroutine writing the stream calls its methods, one
// at a time.
type streamObs struct {
	h      *Handler
	remote string
	kinds  SelectorKinds
	opened time.Time // wall clock, to tell replayed updates from live ones
	start  time.Time // monotonic, for the duration
	events int
	ended  bool
}

// openStream reports a stream whose head was sent. No part of the request
// that may carry credentials (query, headers, cookies) is logged.
func (h *Handler) openStream(r *http.Request, topics []hub.Matcher, sub *hub.Subscription) *streamObs {
	so := &streamObs{h: h, remote: r.RemoteAddr, kinds: selectorKinds(topics), opened: h.cfg.Now(), start: time.Now()}
	h.obs.StreamOpened(so.kinds)
	res := sub.Resume()
	h.log.Debug("stream opened", "remote", so.remote, "proto", r.Proto, "selectors", len(topics),
		"kinds", so.kinds.String(), "resume", res.Anchor, "gap", string(res.Gap))
	return so
}

// oldestLive returns the time of the oldest live update of batch, for
// wrote: the first update appended after the stream opened (earlier ones
// are replayed history, and the gap notice has no time), or zero. It looks
// at the first and the last update only.
func (so *streamObs) oldestLive(batch []*hub.Update) time.Time {
	if len(batch) == 0 {
		return time.Time{}
	}
	if first := batch[0]; !first.Time.Before(so.opened) {
		return first.Time
	}
	if last := batch[len(batch)-1]; !last.Time.Before(so.opened) {
		return last.Time // the write holds the hand-off from replay to live
	}
	return time.Time{}
}

// wrote reports n events written to the connection in one write, the
// oldest live one appended at appended (see oldestLive).
func (so *streamObs) wrote(n int, appended time.Time) {
	if n == 0 {
		return
	}
	so.events += n
	so.h.obs.Delivered(n, appended)
}

// end reports the end of the stream, once; later calls do nothing. err is
// the failure behind reason, if any.
func (so *streamObs) end(reason EndReason, err error) {
	if so.ended {
		return
	}
	so.ended = true
	d := time.Since(so.start)
	so.h.obs.StreamClosed(so.kinds, reason, d, so.events)
	level := slog.LevelDebug
	if reason == EndQueueOverflow || reason == EndWriteTimeout {
		level = slog.LevelInfo
	}
	args := []any{"remote", so.remote, "reason", string(reason), "events", so.events,
		"duration", d.Round(time.Millisecond).String()}
	if err != nil {
		args = append(args, "err", err.Error())
	}
	so.h.log.Log(context.Background(), level, "stream closed", args...)
}
