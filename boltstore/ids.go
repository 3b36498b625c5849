package boltstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The ID index (bucket ids) maps the ID of every retained update to its
// seq: each key is idPrefix(ID) followed by the seq (8 bytes, big-endian),
// and there is no value. Lookup seeks the prefix and reads the records it
// names until one has the ID asked for.
//
// The prefix of a version 7 UUID in "urn:uuid:" form, which is what the
// hub makes when a publisher gives no ID (hub.NewID), is the UUID's own 16
// bytes: they begin with the time, so the index grows at its end, and a
// commit rewrites one index page however many updates it holds. Any other
// ID is hashed (the first 16 bytes of its SHA-256), which spreads its
// entries over the index: one page written per such update.
//
// Stores written before this layout (format 1, with no "ids" key in the
// meta bucket) held 8-byte hash prefixes; Open rebuilds their index.
var keyIDFormat = []byte("ids")

// idFormat is the layout of the ID index described above.
const idFormat = 2

// idPrefix returns the index prefix of id.
func idPrefix(id string) (p [16]byte) {
	const urn = "urn:uuid:"
	if len(id) == len(urn)+36 && id[:len(urn)] == urn && id[len(urn)+14] == '7' {
		u := id[len(urn):]
		if u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-' {
			var h [32]byte
			n := copy(h[:], u[:8])
			n += copy(h[n:], u[9:13])
			n += copy(h[n:], u[14:18])
			n += copy(h[n:], u[19:23])
			copy(h[n:], u[24:])
			if _, err := hex.Decode(p[:], h[:]); err == nil {
				return p
			}
		}
	}
	sum := sha256.Sum256([]byte(id))
	copy(p[:], sum[:16])
	return p
}

// idKey returns the index key of the update at seq whose ID has prefix p.
func idKey(p [16]byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 24), p[:]...), seq)
}

// upgradeIDs rebuilds the ID index of a store written with an older
// layout, from the log, in the transaction that opens the store.
func upgradeIDs(tx *bolt.Tx, bare uint64) error {
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyIDFormat); len(v) == 1 && v[0] == idFormat {
		return nil
	}
	if err := tx.DeleteBucket(bucketIDs); err != nil {
		return err
	}
	ids, err := tx.CreateBucket(bucketIDs)
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
		rec, err := unseal(k, v, bare)
		if err != nil {
			return fmt.Errorf("%w at seq %x", err, k)
		}
		h, err := decodeHeader(rec)
		if err != nil {
			return fmt.Errorf("%w at seq %d", err, binary.BigEndian.Uint64(k))
		}
		return ids.Put(idKey(idPrefix(string(h.id)), binary.BigEndian.Uint64(k)), nil)
	})
	if err != nil {
		return err
	}
	return meta.Put(keyIDFormat, []byte{idFormat})
}
