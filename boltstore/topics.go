package boltstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub/hub"
)

// Per-topic retention keeps three buckets, written in the transactions
// that append and delete updates:
//
//	topics      topic hash (16) + seq (8) -> entry: the updates a limited
//	            topic retains, oldest first
//	topicstate  topic hash (16) -> count (8) + bytes (8) of its entries
//	ages        deadline (8) + topic hash (16) + seq (8) -> nothing: the
//	            entries of topics with an age limit, soonest first
//
// An entry is a flags byte (entryPinned: another topic of the update has no
// limit; entryDeadline: an age deadline follows), the record size as a
// uvarint, and the deadline as a varint of Unix nanoseconds. The topic hash
// is the first 16 bytes of SHA-256(topic): a collision would take 2^64
// work, so entries are not checked against the record's topics.
var (
	bucketTopics     = []byte("topics")
	bucketTopicState = []byte("topicstate")
	bucketAges       = []byte("ages")
)

const (
	entryPinned   = 1
	entryDeadline = 2
)

// topicVote is a limited topic of an update being appended.
type topicVote struct {
	hash [16]byte
	lim  hub.Limits
}

func topicHash(topic string) (h [16]byte) {
	sum := sha256.Sum256([]byte(topic))
	copy(h[:], sum[:16])
	return h
}

// limited reports whether l limits anything.
func limited(l hub.Limits) bool { return l.MaxUpdates > 0 || l.MaxBytes > 0 || l.MaxAge > 0 }

// votes returns the limited topics of u, once each, and whether one of its
// topics has no limit (which retains u whatever the others do).
func votes(limits hub.TopicLimits, u *hub.Update) (vs []topicVote, pinned bool) {
	if limits == nil {
		return nil, true
	}
	for i, t := range u.Topics {
		if slices.Contains(u.Topics[:i], t) {
			continue
		}
		lim, ok := limits(t)
		if !ok || !limited(lim) {
			pinned = true
			continue
		}
		h := topicHash(t)
		if !slices.ContainsFunc(vs, func(v topicVote) bool { return v.hash == h }) {
			vs = append(vs, topicVote{h, lim})
		}
	}
	return vs, pinned
}

func entryKey(h [16]byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 24), h[:]...), seq)
}

// ageKey is the key of an entry in ages. The deadline's sign bit is
// flipped so that byte order is time order.
func ageKey(deadline int64, h [16]byte, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 32), uint64(deadline)^1<<63)
	k = append(k, h[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

// entry is a decoded topics value.
type entry struct {
	flags    byte
	size     int64
	deadline int64
}

func (e entry) encode() []byte {
	b := binary.AppendUvarint([]byte{e.flags}, uint64(e.size))
	if e.flags&entryDeadline != 0 {
		b = binary.AppendVarint(b, e.deadline)
	}
	return b
}

func decodeEntry(v []byte) (entry, error) {
	var e entry
	if len(v) < 2 {
		return e, fmt.Errorf("%w: topic entry of %d bytes", errCorrupt, len(v))
	}
	e.flags = v[0]
	size, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return e, fmt.Errorf("%w: topic entry size", errCorrupt)
	}
	e.size = int64(size)
	if e.flags&entryDeadline != 0 {
		d, m := binary.Varint(v[1+n:])
		if m <= 0 {
			return e, fmt.Errorf("%w: topic entry deadline", errCorrupt)
		}
		e.deadline = d
	}
	return e, nil
}

// txn is the writer's view of one write transaction: the buckets, the
// global counters it updates and the deletions it may still make.
type txn struct {
	log, ids, topics, state, ages *bolt.Bucket
	total                         int64 // retained record bytes
	count                         uint64
	budget                        int    // deletions left in this transaction
	topicIndex                    bool   // the topic buckets may hold entries
	bare                          uint64 // see unseal
}

// topicState reads the count and bytes of a topic's entries.
func (w *txn) topicState(h [16]byte) (count, size int64, err error) {
	v := w.state.Get(h[:])
	switch len(v) {
	case 0:
		return 0, 0, nil
	case 16:
		return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), nil
	}
	return 0, 0, fmt.Errorf("%w: topic state of %d bytes", errCorrupt, len(v))
}

func (w *txn) putTopicState(h [16]byte, count, size int64) error {
	if count <= 0 {
		return w.state.Delete(h[:])
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], uint64(count))
	binary.BigEndian.PutUint64(b[8:], uint64(size))
	return w.state.Put(h[:], b[:])
}

// vote enters the update at seq in the queues of its limited topics and
// applies their count and byte limits.
func (w *txn) vote(seq uint64, r *request) error {
	for _, v := range r.votes {
		e := entry{size: int64(len(r.rec))}
		if r.pinned {
			e.flags |= entryPinned
		}
		if v.lim.MaxAge > 0 {
			e.flags |= entryDeadline
			e.deadline = r.u.Time.Add(v.lim.MaxAge).UnixNano()
			if err := w.ages.Put(ageKey(e.deadline, v.hash, seq), nil); err != nil {
				return err
			}
		}
		if err := w.topics.Put(entryKey(v.hash, seq), e.encode()); err != nil {
			return err
		}
		count, size, err := w.topicState(v.hash)
		if err != nil {
			return err
		}
		count, size = count+1, size+e.size
		for count > 1 && w.budget > 0 &&
			(v.lim.MaxUpdates > 0 && count > int64(v.lim.MaxUpdates) || v.lim.MaxBytes > 0 && size > v.lim.MaxBytes) {
			k, _ := w.topics.Cursor().Seek(v.hash[:])
			if k == nil || !bytes.HasPrefix(k, v.hash[:]) {
				break // cannot happen: count says there are entries
			}
			freed, err := w.dropVote(v.hash, binary.BigEndian.Uint64(k[16:]))
			if err != nil {
				return err
			}
			count, size = count-1, size-freed
		}
		if err := w.putTopicState(v.hash, count, size); err != nil {
			return err
		}
	}
	return nil
}

// dropVote removes the entry of topic h for the update at seq, and the
// update itself when no other topic retains it. It returns the entry's
// size and leaves the topic's state to the caller.
func (w *txn) dropVote(h [16]byte, seq uint64) (int64, error) {
	w.budget--
	key := entryKey(h, seq)
	e, err := decodeEntry(w.topics.Get(key))
	if err != nil {
		return 0, fmt.Errorf("%w at seq %d", err, seq)
	}
	if err := w.topics.Delete(key); err != nil {
		return 0, err
	}
	if e.flags&entryDeadline != 0 {
		if err := w.ages.Delete(ageKey(e.deadline, h, seq)); err != nil {
			return 0, err
		}
	}
	if e.flags&entryPinned != 0 {
		return e.size, nil
	}
	k := seqKey(seq)
	v := w.log.Get(k)
	if v == nil {
		return e.size, nil // already deleted (by a global limit)
	}
	rec, err := unseal(k, v, w.bare)
	if err != nil {
		return 0, fmt.Errorf("%w at seq %d", err, seq)
	}
	hs, err := recordTopicHashes(rec)
	if err != nil {
		return 0, fmt.Errorf("%w at seq %d", err, seq)
	}
	for _, o := range hs {
		if o != h && w.topics.Get(entryKey(o, seq)) != nil {
			return e.size, nil // another topic retains it
		}
	}
	return e.size, w.deleteUpdate(seq, rec, false)
}

// deleteUpdate deletes the update at seq, whose record is rec, and its ID
// index entry; with topics, also the entries its topics hold for it.
func (w *txn) deleteUpdate(seq uint64, rec []byte, topics bool) error {
	hd, err := decodeHeader(rec)
	if err != nil {
		return fmt.Errorf("%w at seq %d", err, seq)
	}
	idk := idKey(idPrefix(string(hd.id)), seq)
	var hs [][16]byte
	if topics && w.topicIndex {
		if hs, err = recordTopicHashes(rec); err != nil {
			return fmt.Errorf("%w at seq %d", err, seq)
		}
	}
	w.total -= int64(len(rec))
	w.count--
	if err := w.ids.Delete(idk); err != nil {
		return err
	}
	if err := w.log.Delete(seqKey(seq)); err != nil {
		return err
	}
	for _, h := range hs {
		key := entryKey(h, seq)
		v := w.topics.Get(key)
		if v == nil {
			continue
		}
		e, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("%w at seq %d", err, seq)
		}
		if err := w.topics.Delete(key); err != nil {
			return err
		}
		if e.flags&entryDeadline != 0 {
			if err := w.ages.Delete(ageKey(e.deadline, h, seq)); err != nil {
				return err
			}
		}
		count, size, err := w.topicState(h)
		if err != nil {
			return err
		}
		if err := w.putTopicState(h, count-1, size-e.size); err != nil {
			return err
		}
	}
	return nil
}

// expireTopics drops the entries whose topic's age limit has passed,
// soonest deadline first.
func (w *txn) expireTopics(now time.Time) error {
	c := w.ages.Cursor()
	for w.budget > 0 {
		k, _ := c.First()
		if k == nil || int64(binary.BigEndian.Uint64(k)^1<<63) >= now.UnixNano() {
			return nil
		}
		var h [16]byte
		copy(h[:], k[8:24])
		seq := binary.BigEndian.Uint64(k[24:])
		if w.topics.Get(entryKey(h, seq)) == nil {
			// An age key without its entry cannot be written, but must
			// not stop every later transaction if it ever is.
			if err := c.Delete(); err != nil {
				return err
			}
			continue
		}
		freed, err := w.dropVote(h, seq)
		if err != nil {
			return err
		}
		count, size, err := w.topicState(h)
		if err != nil {
			return err
		}
		if err := w.putTopicState(h, count-1, size-freed); err != nil {
			return err
		}
	}
	return nil
}

// recordTopicHashes returns the distinct topic hashes of a record.
func recordTopicHashes(rec []byte) ([][16]byte, error) {
	hd, err := decodeHeader(rec)
	if err != nil {
		return nil, err
	}
	p := hd.rest
	if rec[1]&flagKey != 0 {
		if _, p, err = skipString(rec, p); err != nil {
			return nil, err
		}
	}
	if _, p, err = skipString(rec, p); err != nil { // type
		return nil, err
	}
	count, n := binary.Uvarint(rec[p:])
	if n <= 0 || count > uint64(len(rec)-p) {
		return nil, errCorrupt
	}
	p += n
	hs := make([][16]byte, 0, count)
	for range count {
		var t []byte
		if t, p, err = skipString(rec, p); err != nil {
			return nil, err
		}
		if h := topicHash(string(t)); !slices.Contains(hs, h) {
			hs = append(hs, h)
		}
	}
	return hs, nil
}

// skipString returns the length-prefixed string at rec[p:] and the offset
// after it.
func skipString(rec []byte, p int) ([]byte, int, error) {
	s, q, ok := readBytes(rec, p)
	if !ok {
		return nil, 0, errCorrupt
	}
	return s, q, nil
}
