// Package updatecodec is the binary form of a hub.Update that the stores
// keep: a bolt record (boltstore) and a JetStream message body (natsstore)
// are this encoding, so both read and write it with the same code.
//
// Format, version 1. Integers are Go varints (uvarint, or zig-zag varint
// where marked); strings are a uvarint length and the bytes.
//
//	version  byte = 1
//	flags    byte: 1 = private, 2 = has time, 4 = has idempotency key
//	time     varint Unix nanoseconds (present if flags&2)
//	retry    varint nanoseconds
//	id       string
//	key      string (present if flags&4)
//	type     string
//	topics   uvarint count, then count strings
//	data     the rest
//
// The fields read by retention and lookups (time and ID) come first, so
// they decode without touching the rest.
package updatecodec

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// The version byte and the flag bits.
const (
	Version     = 1
	FlagPrivate = 1
	FlagTime    = 2
	FlagKey     = 4
	// KnownFlags are every flag this version defines.
	KnownFlags = FlagPrivate | FlagTime | FlagKey
)

// ErrCorrupt reports bytes that do not decode.
var ErrCorrupt = errors.New("updatecodec: corrupt update")

// Append appends the encoding of u to dst.
func Append(dst []byte, u *hub.Update) []byte {
	var flags byte
	if u.Private {
		flags |= FlagPrivate
	}
	if !u.Time.IsZero() {
		flags |= FlagTime
	}
	if u.IdempotencyKey != "" {
		flags |= FlagKey
	}
	dst = append(dst, Version, flags)
	if flags&FlagTime != 0 {
		dst = binary.AppendVarint(dst, u.Time.UnixNano())
	}
	dst = binary.AppendVarint(dst, int64(u.Retry))
	dst = appendString(dst, u.ID)
	if flags&FlagKey != 0 {
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

// Size bounds len(Append(nil, u)), for capacity planning.
func Size(u *hub.Update) int {
	n := 2 + 3*binary.MaxVarintLen64 + len(u.ID) + len(u.IdempotencyKey) + len(u.Type) + len(u.Data) + 3*binary.MaxVarintLen64
	for _, t := range u.Topics {
		n += binary.MaxVarintLen64 + len(t)
	}
	return n
}

// ReadBytes reads the length-prefixed string at b[p:] and returns it
// (aliasing b) and the offset after it.
func ReadBytes(b []byte, p int) ([]byte, int, bool) {
	l, n := binary.Uvarint(b[p:])
	if n <= 0 || l > uint64(len(b)-p-n) {
		return nil, 0, false
	}
	p += n
	return b[p : p+int(l) : p+int(l)], p + int(l), true
}

// Decode returns the update b holds, positioned at pos. b may be reused
// after Decode returns: the update's strings share one copy of it. Flag
// bits this version does not define are ignored.
func Decode(b []byte, pos hub.Position) (*hub.Update, error) {
	if len(b) < 2 || b[0] != Version {
		return nil, ErrCorrupt
	}
	s := string(b) // one copy; every string field below slices it
	flags, p := b[1], 2
	u := &hub.Update{Private: flags&FlagPrivate != 0, Pos: pos}
	if flags&FlagTime != 0 {
		ns, n := binary.Varint(b[p:])
		if n <= 0 {
			return nil, ErrCorrupt
		}
		u.Time, p = time.Unix(0, ns), p+n
	}
	retry, n := binary.Varint(b[p:])
	if n <= 0 {
		return nil, ErrCorrupt
	}
	u.Retry, p = time.Duration(retry), p+n
	str := func() (string, bool) {
		l, n := binary.Uvarint(b[p:])
		if n <= 0 || l > uint64(len(b)-p-n) {
			return "", false
		}
		start := p + n
		p = start + int(l)
		return s[start:p], true
	}
	var ok bool
	if u.ID, ok = str(); !ok {
		return nil, ErrCorrupt
	}
	if flags&FlagKey != 0 {
		if u.IdempotencyKey, ok = str(); !ok {
			return nil, ErrCorrupt
		}
	}
	if u.Type, ok = str(); !ok {
		return nil, ErrCorrupt
	}
	count, n := binary.Uvarint(b[p:])
	if n <= 0 || count > uint64(len(b)-p) {
		return nil, ErrCorrupt
	}
	p += n
	u.Topics = make([]string, count)
	for i := range u.Topics {
		if u.Topics[i], ok = str(); !ok {
			return nil, ErrCorrupt
		}
	}
	u.Data = s[p:]
	return u, nil
}
