package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// An update is one stream entry whose ID is "<seq>-0" and whose fields are:
//
//	e   the epoch the entry was appended in (added by the append script)
//	i   ID
//	d   Data
//	m   Time, Unix nanoseconds
//	n   size charged against MaxBytes: len(Data+ID+Type) + len of every topic
//	y   Type (omitted when empty)
//	r   Retry, nanoseconds (omitted when zero)
//	p   "1" when Private (omitted otherwise)
//	k   IdempotencyKey (omitted when empty)
//	t0… Topics, in order: t0 is the canonical topic
//
// Redis strings are binary-safe, so every field round-trips byte for byte.

// errCorrupt reports a stream entry that does not decode.
var errCorrupt = errors.New("redisstore: corrupt log entry")

// size is what an update is charged against MaxBytes.
func size(u *hub.Update) int64 {
	n := len(u.Data) + len(u.ID) + len(u.Type)
	for _, t := range u.Topics {
		n += len(t)
	}
	return int64(n)
}

// appendFields appends the field-value pairs of u's entry (without "e").
func appendFields(dst []any, u *hub.Update) []any {
	dst = append(dst,
		"i", u.ID,
		"d", u.Data,
		"m", strconv.FormatInt(u.Time.UnixNano(), 10),
		"n", strconv.FormatInt(size(u), 10))
	if u.Type != "" {
		dst = append(dst, "y", u.Type)
	}
	if u.Retry != 0 {
		dst = append(dst, "r", strconv.FormatInt(int64(u.Retry), 10))
	}
	if u.Private {
		dst = append(dst, "p", "1")
	}
	if u.IdempotencyKey != "" {
		dst = append(dst, "k", u.IdempotencyKey)
	}
	for i, t := range u.Topics {
		dst = append(dst, "t"+strconv.Itoa(i), t)
	}
	return dst
}

// parseSeq returns the seq of a stream entry ID "<seq>-0".
func parseSeq(id string) (uint64, error) {
	s, rest, ok := strings.Cut(id, "-")
	if !ok || rest != "0" {
		return 0, fmt.Errorf("%w: entry ID %q", errCorrupt, id)
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%w: entry ID %q", errCorrupt, id)
	}
	return seq, nil
}

// decode returns the update stored in the entry with the given stream ID
// and fields. Its position's epoch is the one it was appended in.
func decode(id string, values map[string]any) (*hub.Update, error) {
	seq, err := parseSeq(id)
	if err != nil {
		return nil, err
	}
	str := func(k string) (string, bool) {
		v, ok := values[k]
		if !ok {
			return "", false
		}
		s, ok := v.(string)
		return s, ok
	}
	bad := func(what string) error { return fmt.Errorf("%w at seq %d: %s", errCorrupt, seq, what) }
	u := &hub.Update{}
	var ok bool
	if u.ID, ok = str("i"); !ok {
		return nil, bad("no ID")
	}
	if u.Data, ok = str("d"); !ok {
		return nil, bad("no data")
	}
	ms, ok := str("m")
	ns, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return nil, bad("bad time")
	}
	u.Time = time.Unix(0, ns)
	u.Type, _ = str("y")
	if r, ok := str("r"); ok {
		n, err := strconv.ParseInt(r, 10, 64)
		if err != nil {
			return nil, bad("bad retry")
		}
		u.Retry = time.Duration(n)
	}
	if p, ok := str("p"); ok {
		if p != "1" {
			return nil, bad("bad private flag")
		}
		u.Private = true
	}
	u.IdempotencyKey, _ = str("k")
	for i := 0; ; i++ {
		t, ok := str("t" + strconv.Itoa(i))
		if !ok {
			break
		}
		u.Topics = append(u.Topics, t)
	}
	if len(u.Topics) == 0 {
		return nil, bad("no topic")
	}
	e, ok := str("e")
	if !ok || e == "" {
		return nil, bad("no epoch")
	}
	u.Pos = hub.Position{Seq: seq, Epoch: e}
	return u, nil
}
