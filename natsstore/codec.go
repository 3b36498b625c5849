package natsstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// The body of every message in the stream is one update in this format,
// version 1. Integers are Go varints (uvarint, or zig-zag varint where
// marked); strings are a uvarint length and the bytes.
//
//	version  byte = 1
//	flags    byte: 1 = private, 2 = has time, 4 = has idempotency key
//	time     varint Unix nanoseconds (present if flags&2)
//	retry    varint nanoseconds
//	id       string
//	key      string (present if flags&4)
//	type     string
//	topics   uvarint count, then count strings
//	data     the rest of the body
//
// The idempotency key is also sent as the Nats-Msg-Id header, for the
// stream's de-duplication, but the body alone restores the update.
const (
	bodyVersion = 1
	flagPrivate = 1
	flagTime    = 2
	flagKey     = 4
)

// errCorrupt reports a message body that does not decode.
var errCorrupt = errors.New("natsstore: corrupt message body")

// encode appends the body of u to dst.
func encode(dst []byte, u *hub.Update) []byte {
	var flags byte
	if u.Private {
		flags |= flagPrivate
	}
	if !u.Time.IsZero() {
		flags |= flagTime
	}
	if u.IdempotencyKey != "" {
		flags |= flagKey
	}
	dst = append(dst, bodyVersion, flags)
	if flags&flagTime != 0 {
		dst = binary.AppendVarint(dst, u.Time.UnixNano())
	}
	dst = binary.AppendVarint(dst, int64(u.Retry))
	dst = appendString(dst, u.ID)
	if flags&flagKey != 0 {
		dst = appendString(dst, u.IdempotencyKey)
	}
	dst = appendString(dst, u.Type)
	dst = binary.AppendUvarint(dst, uint64(len(u.Topics)))
	for _, t := range u.Topics {
		dst = appendString(dst, t)
	}
	return append(dst, u.Data...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// encodedSize bounds len(encode(nil, u)), for capacity planning.
func encodedSize(u *hub.Update) int {
	n := 2 + 3*binary.MaxVarintLen64 + len(u.ID) + len(u.IdempotencyKey) + len(u.Type) + len(u.Data) + 3*binary.MaxVarintLen64
	for _, t := range u.Topics {
		n += binary.MaxVarintLen64 + len(t)
	}
	return n
}

// decode returns the update a body holds, positioned at pos. The update's
// strings share one copy of body, which may be reused afterwards.
func decode(body []byte, pos hub.Position) (*hub.Update, error) {
	if len(body) < 2 || body[0] != bodyVersion {
		return nil, errCorrupt
	}
	s := string(body)
	flags, p := body[1], 2
	if flags&^(flagPrivate|flagTime|flagKey) != 0 {
		return nil, errCorrupt
	}
	u := &hub.Update{Private: flags&flagPrivate != 0, Pos: pos}
	if flags&flagTime != 0 {
		ns, n := binary.Varint(body[p:])
		if n <= 0 {
			return nil, errCorrupt
		}
		u.Time, p = time.Unix(0, ns), p+n
	}
	retry, n := binary.Varint(body[p:])
	if n <= 0 {
		return nil, errCorrupt
	}
	u.Retry, p = time.Duration(retry), p+n
	str := func() (string, bool) {
		l, n := binary.Uvarint(body[p:])
		if n <= 0 || l > uint64(len(body)-p-n) {
			return "", false
		}
		start := p + n
		p = start + int(l)
		return s[start:p], true
	}
	var ok bool
	if u.ID, ok = str(); !ok {
		return nil, errCorrupt
	}
	if flags&flagKey != 0 {
		if u.IdempotencyKey, ok = str(); !ok {
			return nil, errCorrupt
		}
	}
	if u.Type, ok = str(); !ok {
		return nil, errCorrupt
	}
	count, n := binary.Uvarint(body[p:])
	if n <= 0 || count > uint64(len(body)-p) {
		return nil, errCorrupt
	}
	p += n
	u.Topics = make([]string, count)
	for i := range u.Topics {
		if u.Topics[i], ok = str(); !ok {
			return nil, errCorrupt
		}
	}
	u.Data = s[p:]
	return u, nil
}
