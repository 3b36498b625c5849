// Package redisstore is the hub.Store that lets several ssehub nodes act as
// one hub: they share one log kept in Redis Streams.
package redisstore
