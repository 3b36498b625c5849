package boltstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// Record format, version 1. Integers are Go varints (uvarint, or zig-zag
// varint where marked); strings are a uvarint length and the bytes.
//
//	version  byte = 1
//	flags    byte: 1 = private, 2 = has time, 4 = has idempotency key
//	time     varint Unix nanoseconds (present if flags&2)
//	retry    varint nanoseconds
//	id       string
//	key      string (present if flags&4)
//	type     string
//	topics   uvarint count, then count strings
//	data     the rest of the record
//
// The fields read by retention and Lookup (time and ID) come first, so they
// decode without touching the rest.
const (
	recordVersion = 1
	flagPrivate   = 1
	flagTime      = 2
	flagKey       = 4
)

// errCorrupt reports a record that does not decode.
var errCorrupt = errors.New("boltstore: corrupt record")

// encode appends the record of u to dst.
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
	dst = append(dst, recordVersion, flags)
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

// encodedSize returns len(encode(nil, u)) for capacity planning.
func encodedSize(u *hub.Update) int {
	n := 2 + binary.MaxVarintLen64*2 + len(u.ID) + len(u.IdempotencyKey) + len(u.Type) + len(u.Data) + 4*binary.MaxVarintLen32
	for _, t := range u.Topics {
		n += binary.MaxVarintLen32 + len(t)
	}
	return n
}

// header is the part of a record retention and Lookup need.
type header struct {
	time    time.Time // zero if the record has none
	id      []byte    // aliases the record
	private bool
	rest    int // offset of the type field
}

// decodeHeader decodes the fields up to and including the ID.
func decodeHeader(rec []byte) (header, error) {
	var h header
	if len(rec) < 2 || rec[0] != recordVersion {
		return h, errCorrupt
	}
	flags, p := rec[1], 2
	h.private = flags&flagPrivate != 0
	if flags&flagTime != 0 {
		ns, n := binary.Varint(rec[p:])
		if n <= 0 {
			return h, errCorrupt
		}
		h.time, p = time.Unix(0, ns), p+n
	}
	_, n := binary.Varint(rec[p:]) // retry
	if n <= 0 {
		return h, errCorrupt
	}
	id, p, ok := readBytes(rec, p+n)
	if !ok {
		return h, errCorrupt
	}
	h.id, h.rest = id, p
	return h, nil
}

// readBytes reads a length-prefixed string at rec[p:].
func readBytes(rec []byte, p int) ([]byte, int, bool) {
	l, n := binary.Uvarint(rec[p:])
	if n <= 0 || l > uint64(len(rec)-p-n) {
		return nil, 0, false
	}
	p += n
	return rec[p : p+int(l) : p+int(l)], p + int(l), true
}

// decode returns the update a record holds. rec may be reused after decode
// returns: the update's strings share one copy of it.
func decode(rec []byte, pos hub.Position) (*hub.Update, error) {
	if len(rec) < 2 || rec[0] != recordVersion {
		return nil, errCorrupt
	}
	s := string(rec) // one copy; every string field below slices it
	flags, p := rec[1], 2
	u := &hub.Update{Private: flags&flagPrivate != 0, Pos: pos}
	if flags&flagTime != 0 {
		ns, n := binary.Varint(rec[p:])
		if n <= 0 {
			return nil, errCorrupt
		}
		u.Time, p = time.Unix(0, ns), p+n
	}
	retry, n := binary.Varint(rec[p:])
	if n <= 0 {
		return nil, errCorrupt
	}
	u.Retry, p = time.Duration(retry), p+n
	str := func() (string, bool) {
		l, n := binary.Uvarint(rec[p:])
		if n <= 0 || l > uint64(len(rec)-p-n) {
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
	count, n := binary.Uvarint(rec[p:])
	if n <= 0 || count > uint64(len(rec)-p) {
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
