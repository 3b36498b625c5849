// Package ssehttp is the HTTP face of a hub: the Mercure protocol at
// /.well-known/mercure. GET opens an event stream for the topics the query
// selects (1.0 draft "match", "match_exact" and "match_urlpattern" and the
// v0.24 "topic" parameter), resuming after the Last-Event-ID header or the
// "last_event_id" / "lastEventID" query parameter; POST publishes a
// form-encoded update. Authentication is delegated to an auth.Authenticator
// and topic selectors to a selector.Compiler.
//
// Every refusal is an HTTP status with a one-line text/plain reason, and a
// refused publish stores and delivers nothing.
package ssehttp
