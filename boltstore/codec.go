package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/updatecodec"
)

// A record is one update in the encoding of internal/updatecodec, which
// the NATS engine's message bodies share. The fields read by retention and
// Lookup (time and ID) come first, so they decode without touching the rest.
const (
	recordVersion = updatecodec.Version
	flagPrivate   = updatecodec.FlagPrivate
	flagTime      = updatecodec.FlagTime
	flagKey       = updatecodec.FlagKey
)

// errCorrupt reports a record that does not decode.
var errCorrupt = errors.New("boltstore: corrupt record")

// encode appends the record of u to dst.
func encode(dst []byte, u *hub.Update) []byte { return updatecodec.Append(dst, u) }

// encodedSize bounds len(encode(nil, u)) for capacity planning.
func encodedSize(u *hub.Update) int { return updatecodec.Size(u) }

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
func readBytes(rec []byte, p int) ([]byte, int, bool) { return updatecodec.ReadBytes(rec, p) }

// decode returns the update a record holds. rec may be reused after decode
// returns: the update's strings share one copy of it.
func decode(rec []byte, pos hub.Position) (*hub.Update, error) {
	u, err := updatecodec.Decode(rec, pos)
	if err != nil {
		return nil, errCorrupt
	}
	return u, nil
}

// A value of the log bucket is a sealed record:
//
//	sealMark (1) | CRC-32C of the seq (8, big-endian) and the record (4, little-endian) | record
//
// so that a damaged value, or a record under another seq's key, is an
// error when it is read rather than an update served with wrong bytes.
// Values written before seals (stores of version 1) are bare records,
// which start with recordVersion: they are still read, unchecked, below
// the seq meta's "sealed" records (the next seq when the store was first
// opened with seals); from it on, a bare record is damage.
const (
	sealMark = 0xC5
	sealLen  = 5
)

// errDamagedRecord reports a sealed record whose checksum does not match.
var errDamagedRecord = errors.New("boltstore: damaged record (checksum mismatch)")

// seal appends to dst the value of the log bucket holding rec at seq.
func seal(dst []byte, seq uint64, rec []byte) []byte {
	dst = append(dst, sealMark)
	dst = binary.LittleEndian.AppendUint32(dst, sealSum(seq, rec))
	return append(dst, rec...)
}

func sealSum(seq uint64, rec []byte) uint32 {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return crc32.Update(crc32.Checksum(k[:], castagnoli), castagnoli, rec)
}

// unseal returns the record in the log bucket's value v under key k,
// checking the key's length and the checksum; a bare record (version 1)
// is returned as it is if its seq is below bare.
func unseal(k, v []byte, bare uint64) ([]byte, error) {
	if len(k) != 8 {
		return nil, fmt.Errorf("%w: log key of %d bytes", errCorrupt, len(k))
	}
	seq := binary.BigEndian.Uint64(k)
	switch {
	case len(v) >= sealLen && v[0] == sealMark:
		rec := v[sealLen:]
		if binary.LittleEndian.Uint32(v[1:]) != sealSum(seq, rec) {
			return nil, errDamagedRecord
		}
		return rec, nil
	case len(v) > 0 && v[0] == recordVersion && seq < bare:
		return v, nil
	}
	return nil, errDamagedRecord
}
