package boltstore

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// The write-ahead log is what makes an append durable: the writer puts
// each batch of appends in one frame, writes it and fdatasyncs the file
// once, and only then answers the appends; bbolt is brought up to date
// behind it (see applier in store.go), in larger transactions.
//
// The log is a series of segment files in the directory "wal" of the data
// directory, named by their number in 16 hex digits. Each starts with a
// header:
//
//	magic "ssehubW2" (8) | segment number (8) | salt (8) | file size (8)
//
// (segments written before the size was recorded have the magic
// "ssehubW1" and no size: a 24-byte header),
// followed by frames:
//
//	crc (4) | payload length (4) | first seq (8) | count (4) | payload
//
// The payload is count records (the same bytes as the values of the log
// bucket), each preceded by its length as a uvarint; the records hold
// seqs first, first+1, ... The crc is the CRC-32C of the salt followed by
// everything in the frame after the crc.
//
// A segment is filled with bytes before it is written to (new ones with
// zeros, reused ones with their old frames), so that writing a frame
// changes no file metadata and the sync has only the data to flush: on
// ext4 that is two to three times faster than writing into a new or
// fallocated file. Where the file system allows it, frames are written
// with O_DIRECT|O_DSYNC, as whole 4 KiB blocks (the block a frame starts
// in is rewritten with the same bytes before the frame): one system call
// that returns once the blocks are on disk, 8-16% more appends/s than a
// write and an fdatasync here. Elsewhere (tmpfs, say) they go through the
// page cache and fdatasync. The writer moves to the next segment when a frame
// would not fit. A segment whose updates bbolt holds durably is reused:
// renamed to the next number, given a new header with a new random salt,
// and synced with its directory before its first frame. Its old frames
// stay behind the new ones; their salt no longer matches, so they are
// never read as frames, and neither is anything a publisher put in an
// update's data, since the salt is never shown outside the file.
//
// Recovery (Open) reads the segments in number order and the frames of each
// until one does not check; it applies to bbolt the records after the
// last seq bbolt holds, which must follow on without a gap. Damage that
// may have taken acknowledged updates with it fails recovery (see
// errLogDamaged): a segment shorter than its header says, a header that
// is neither valid nor the previous life's (a reused segment whose new
// header was not synced), unless a later segment holds a frame (then
// everything the damaged one held is older than that frame, and the gap
// check decides).
const (
	walDirName     = "wal"
	walMagic       = "ssehubW2"
	walMagicV1     = "ssehubW1"
	segHeaderLen   = 32
	segHeaderLenV1 = 24
	frameHeadLen   = 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends to dst the frame of recs, whose first seq is first,
// sealed with salt.
func appendFrame(dst []byte, salt uint64, first uint64, recs [][]byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeadLen)...)
	for _, r := range recs {
		dst = binary.AppendUvarint(dst, uint64(len(r)))
		dst = append(dst, r...)
	}
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[4:], uint32(len(h)-frameHeadLen))
	binary.LittleEndian.PutUint64(h[8:], first)
	binary.LittleEndian.PutUint32(h[16:], uint32(len(recs)))
	binary.LittleEndian.PutUint32(h[0:], frameCRC(salt, h[4:]))
	return dst
}

func frameCRC(salt uint64, rest []byte) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], salt)
	return crc32.Update(crc32.Checksum(s[:], castagnoli), castagnoli, rest)
}

// parseFrame reads the frame at the start of b. It returns the frame's
// first seq, its records (aliasing b) and its length, or ok false if b
// does not start with a whole frame sealed with salt.
func parseFrame(b []byte, salt uint64) (first uint64, recs [][]byte, n int, ok bool) {
	if len(b) < frameHeadLen {
		return 0, nil, 0, false
	}
	size := binary.LittleEndian.Uint32(b[4:])
	if uint64(size) > uint64(len(b)-frameHeadLen) {
		return 0, nil, 0, false
	}
	n = frameHeadLen + int(size)
	if binary.LittleEndian.Uint32(b) != frameCRC(salt, b[4:n]) {
		return 0, nil, 0, false
	}
	first = binary.LittleEndian.Uint64(b[8:])
	count := binary.LittleEndian.Uint32(b[16:])
	if count == 0 || first == 0 || first+uint64(count) < first || uint64(count) > uint64(size) {
		return 0, nil, 0, false
	}
	p := b[frameHeadLen:n]
	recs = make([][]byte, 0, count)
	for len(p) > 0 {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return 0, nil, 0, false
		}
		recs = append(recs, p[k:k+int(l)])
		p = p[k+int(l):]
	}
	if len(recs) != int(count) {
		return 0, nil, 0, false
	}
	return first, recs, n, true
}

// segHeader returns the header of segment num with salt, in a file of
// size bytes.
func segHeader(num, salt uint64, size int64) []byte {
	h := append(make([]byte, 0, segHeaderLen), walMagic...)
	h = binary.LittleEndian.AppendUint64(h, num)
	h = binary.LittleEndian.AppendUint64(h, salt)
	return binary.LittleEndian.AppendUint64(h, uint64(size))
}

// segHead is a parsed segment header.
type segHead struct {
	salt  uint64
	start int   // where the frames start
	size  int64 // the file's size when the header was written; 0 if not recorded (W1)
}

// headState says what a segment's header is.
type headState int

const (
	headOK      headState = iota
	headStale             // a valid header of an older number: reused, its new header not written
	headDamaged           // anything else: neither this life's header nor a previous one's
)

// parseSegHeader parses the header of segment num at the start of b.
func parseSegHeader(b []byte, num uint64) (segHead, headState) {
	var h segHead
	switch {
	case len(b) >= segHeaderLen && string(b[:8]) == walMagic:
		h.start, h.size = segHeaderLen, int64(binary.LittleEndian.Uint64(b[24:]))
	case len(b) >= segHeaderLenV1 && string(b[:8]) == walMagicV1:
		h.start = segHeaderLenV1
	default:
		return h, headDamaged
	}
	switch n := binary.LittleEndian.Uint64(b[8:]); {
	case n < num:
		return h, headStale
	case n > num:
		return h, headDamaged
	}
	h.salt = binary.LittleEndian.Uint64(b[16:])
	return h, headOK
}

// segment is one file of the log.
type segment struct {
	num  uint64
	last uint64 // newest seq written to it in this life; 0 if none
}

// errLogDamaged reports damage to the write-ahead log that may have
// taken acknowledged updates with it.
var errLogDamaged = errors.New("the write-ahead log is damaged")

// wal is the writer's side of the log. Only the writer goroutine uses it.
type wal struct {
	dir   string
	size  int64      // a segment's size; frames start below it
	segs  []*segment // oldest first; the last is being written
	f     *os.File   // the last segment
	salt  uint64
	off   int64 // where the next frame goes
	retry bool  // the frame at off failed: the next goes there too
	buf   []byte
	// direct: f was opened with O_DIRECT|O_DSYNC, and a frame is written
	// as whole blocks from block, which starts with the bytes of the
	// segment from blockStart(off) to off; a write returns once the blocks
	// are on disk. Else frames are written through the page cache and
	// fdatasynced.
	direct bool
	block  []byte
	// buffered: never use O_DIRECT (tests of the other path).
	buffered bool
	// fault, if set, is called after each frame is written and fails it
	// with its error; tests set it.
	fault func(*os.File) error
	// owed is the trailer the previous segment lacks, written before the
	// first frame of the current one.
	owed *trailer
}

// A trailer ends a segment the writer has left for the next one, after
// its last frame: a frame with first seq 0, count 0 and, as payload, the
// number of the next segment (8 bytes), sealed with the segment's salt.
// It is written, and synced, once the next segment is durable and before
// the first frame in it, so that the loss of the newest segment shows in
// the one before it. It takes trailerLen bytes, which frames leave free
// at the end of a segment.
type trailer struct {
	path string
	off  int64
	salt uint64
	next uint64
}

const trailerLen = frameHeadLen + 8

// appendTrailer appends to dst the trailer pointing to segment next,
// sealed with salt.
func appendTrailer(dst []byte, salt, next uint64) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeadLen)...)
	dst = binary.LittleEndian.AppendUint64(dst, next)
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[4:], 8)
	binary.LittleEndian.PutUint32(h[0:], frameCRC(salt, h[4:]))
	return dst
}

// parseTrailer returns the next segment's number if b starts with a
// trailer sealed with salt.
func parseTrailer(b []byte, salt uint64) (next uint64, ok bool) {
	if len(b) < trailerLen || binary.LittleEndian.Uint32(b[4:]) != 8 ||
		binary.LittleEndian.Uint64(b[8:]) != 0 || binary.LittleEndian.Uint32(b[16:]) != 0 ||
		binary.LittleEndian.Uint32(b) != frameCRC(salt, b[4:trailerLen]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[frameHeadLen:]), true
}

// write writes the trailer through the page cache and syncs it (the
// segment's O_DIRECT handle is closed by then).
func (t *trailer) write() error {
	f, err := os.OpenFile(t.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("ending write-ahead log segment: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(appendTrailer(nil, t.salt, t.next), t.off); err != nil {
		return fmt.Errorf("ending write-ahead log segment: %w", err)
	}
	if err := fdatasync(f); err != nil {
		return fmt.Errorf("ending write-ahead log segment: %w", err)
	}
	return nil
}

// blockSize is the unit of O_DIRECT writes: a multiple of every logical
// block size in use.
const blockSize = 4096

func blockStart(off int64) int64 { return off &^ (blockSize - 1) }

func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// alignedBuf returns a zeroed buffer of n bytes whose address is a
// multiple of blockSize.
func alignedBuf(n int) []byte {
	b := make([]byte, n+blockSize)
	skip := blockSize - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))&(blockSize-1))
	return b[skip : skip+n : skip+n]
}

// recovered is what openWAL found after bbolt's last seq.
type recovered struct {
	first uint64   // seq of recs[0]
	recs  [][]byte // contiguous
	// newest is the number of the newest segment with a header (valid
	// or stale); 0 if none.
	newest uint64
	// damage describes damage at the end of the log (no frame in a later
	// segment rules it out), naming the file; empty if none.
	damage string
	// expect is the highest segment number a trailer points to, and
	// pointer the segment whose trailer that is.
	expect  uint64
	pointer string
}

// openWAL reads the log in dir/wal (creating the directory if needed) and
// returns the records with seqs from next on. It fails if the log skips
// seqs after next, or starts after it. The wal it returns has no segment
// to write to yet: next gives it one, once the caller has applied the
// records.
func openWAL(dir string, size int64, next uint64, buffered bool, fault func(*os.File) error) (*wal, recovered, error) {
	var rec recovered
	w := &wal{dir: filepath.Join(dir, walDirName), size: size, buffered: buffered, fault: fault}
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return nil, rec, fmt.Errorf("creating write-ahead log directory: %w", err)
	}
	names, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, rec, fmt.Errorf("reading write-ahead log directory: %w", err)
	}
	for _, e := range names {
		if strings.HasSuffix(e.Name(), ".new") {
			// An interrupted creation.
			_ = os.Remove(filepath.Join(w.dir, e.Name()))
			continue
		}
		num, err := strconv.ParseUint(e.Name(), 16, 64)
		if err != nil || len(e.Name()) != 16 || !e.Type().IsRegular() {
			continue
		}
		w.segs = append(w.segs, &segment{num: num})
	}
	slices.SortFunc(w.segs, func(a, b *segment) int { return cmp.Compare(a.num, b.num) })
	want := next // the seq the next record must have
	done := false
	for _, sg := range w.segs {
		if done {
			break
		}
		b, err := os.ReadFile(w.path(sg.num))
		if err != nil {
			return nil, rec, fmt.Errorf("reading write-ahead log: %w", err)
		}
		hd, st := parseSegHeader(b, sg.num)
		switch st {
		case headStale:
			// Reused, and never written to in its new life: its new
			// header was not synced, and bbolt held every update of its
			// old life.
			rec.newest = sg.num
			continue
		case headDamaged:
			rec.damage = fmt.Sprintf("%s has a damaged header", w.path(sg.num))
			continue
		}
		rec.newest = sg.num
		salt := hd.salt
		framed := false // a frame of this life was found
		for off := hd.start; ; {
			first, recs, n, ok := parseFrame(b[off:], salt)
			if !ok {
				if nx, ok := parseTrailer(b[off:], salt); ok {
					if nx > rec.expect {
						rec.expect, rec.pointer = nx, w.path(sg.num)
					}
					break
				}
				// The end of the log, unless a frame of this segment's
				// life follows: then frames in between were damaged.
				if at, f := findFrame(b, salt, off+1); at >= 0 {
					return nil, rec, fmt.Errorf("%w: the write-ahead log is damaged at offset %d of segment %016x (seq %d and later are intact at offset %d)", errCorrupt, off, sg.num, f, at)
				}
				break
			}
			last := first + uint64(len(recs)) - 1
			if !framed {
				// Everything an earlier damaged segment held is older
				// than this frame: the gap check below decides.
				framed, rec.damage = true, ""
			}
			if first > want {
				return nil, rec, fmt.Errorf("%w: the write-ahead log is missing seqs %d to %d (segment %016x)", errCorrupt, want, first-1, sg.num)
			}
			if last < want {
				if len(rec.recs) > 0 {
					// An older frame after newer ones: the end of the log
					// (a reused segment's first life).
					done = true
					break
				}
				off += n
				sg.last = last
				continue
			}
			if len(rec.recs) == 0 {
				rec.first = want
			}
			rec.recs = append(rec.recs, recs[want-first:]...)
			want = last + 1
			sg.last = last
			off += n
		}
		if int64(len(b)) < hd.size {
			rec.damage = fmt.Sprintf("%s is %d bytes long, its header says %d", w.path(sg.num), len(b), hd.size)
		}
	}
	return w, rec, nil
}

// findFrame returns the offset and first seq of the first frame sealed
// with salt in b at or after from, or -1. Offsets whose seq or count
// fields are zero (most of the zeros and records a segment holds) are
// rejected before the CRC is computed.
func findFrame(b []byte, salt uint64, from int) (at int, first uint64) {
	for off := from; off+frameHeadLen <= len(b); off++ {
		h := b[off:]
		if binary.LittleEndian.Uint64(h[8:]) == 0 || binary.LittleEndian.Uint32(h[16:]) == 0 ||
			uint64(binary.LittleEndian.Uint32(h[4:])) > uint64(len(h)-frameHeadLen) {
			continue
		}
		if first, _, _, ok := parseFrame(h, salt); ok {
			return off, first
		}
	}
	return -1, 0
}

func (w *wal) path(num uint64) string { return filepath.Join(w.dir, fmt.Sprintf("%016x", num)) }

// append writes the frame of recs (seqs first, first+1, ...) and syncs
// it. applied is the newest seq bbolt holds durably: segments holding
// nothing newer may be reused. On failure nothing is acknowledged, and
// the next frame is written at the same place, so that the failed one
// (which may have reached the disk) is overwritten.
func (w *wal) append(first uint64, recs [][]byte, applied uint64) error {
	w.buf = appendFrame(w.buf[:0], w.salt, first, recs)
	if w.f == nil || !w.retry && w.off > segHeaderLen && w.off+int64(len(w.buf)) > w.size-trailerLen {
		if err := w.next(applied); err != nil {
			return err
		}
		// Seal it with the new segment's salt.
		binary.LittleEndian.PutUint32(w.buf, frameCRC(w.salt, w.buf[4:]))
	}
	if w.owed != nil {
		// The previous segment must point to this one before this one
		// holds an acknowledged update.
		if err := w.owed.write(); err != nil {
			return err
		}
		w.owed = nil
	}
	if err := w.write(); err != nil {
		w.retry = true
		return err
	}
	w.retry = false
	w.off += int64(len(w.buf))
	if w.direct {
		// Keep the bytes of the new last block up to the new end.
		from := int(blockStart(w.off) - blockStart(w.off-int64(len(w.buf))))
		k := int(w.off - blockStart(w.off))
		w.block = w.block[:copy(w.block[:k], w.block[from:from+k])]
	}
	w.segs[len(w.segs)-1].last = first + uint64(len(recs)) - 1
	w.shrink()
	return nil
}

// maxKeptFrame is the largest frame whose buffers the writer keeps for
// the next frame: past it, one batch of large appends would otherwise
// keep its size in memory (twice: buf, and block under O_DIRECT, which
// grows by doubling) for the life of the store.
const maxKeptFrame = 1 << 20

// shrink drops buffers that a large frame grew past maxKeptFrame,
// keeping the bytes of the last block that block must start with.
func (w *wal) shrink() {
	if cap(w.buf) > maxKeptFrame {
		w.buf = nil
	}
	if cap(w.block) > maxKeptFrame+blockSize {
		b := alignedBuf(2 * blockSize)
		w.block = b[:copy(b, w.block)]
	}
}

// write writes the frame in w.buf at w.off and makes it durable.
func (w *wal) write() error {
	if !w.direct {
		if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
			return err
		}
		if err := fdatasync(w.f); err != nil {
			return err
		}
	} else {
		head := len(w.block) // == w.off - blockStart(w.off)
		n := (head + len(w.buf) + blockSize - 1) &^ (blockSize - 1)
		if cap(w.block) < n {
			b := alignedBuf(max(n, 2*cap(w.block)))
			copy(b, w.block)
			w.block = b[:head]
		}
		b := append(w.block, w.buf...)
		clear(b[len(b):n])
		if _, err := w.f.WriteAt(b[:n], blockStart(w.off)); err != nil {
			return err
		}
	}
	if w.fault != nil {
		return w.fault(w.f)
	}
	return nil
}

// next switches to a new segment: a reused one if one holds nothing
// newer than applied, else a new one filled with zeros. Segments beyond
// the two newest that bbolt holds are deleted.
func (w *wal) next(applied uint64) error {
	var num uint64 = 1
	if n := len(w.segs); n > 0 {
		num = w.segs[n-1].num + 1
	}
	var salt uint64
	var hdr []byte
	var b [8]byte
	_, _ = rand.Read(b[:])
	salt = binary.LittleEndian.Uint64(b[:])
	path := w.path(num)
	var f *os.File
	var err error
	cur := -1 // the segment being written, if any
	if w.f != nil {
		cur = len(w.segs) - 1
	}
	reuse := -1
	for i, sg := range w.segs {
		if i != cur && sg.last <= applied {
			reuse = i
			break
		}
	}
	if reuse < 0 && cur >= 0 && w.segs[cur].last <= applied {
		reuse = cur
	}
	if reuse >= 0 {
		f, hdr, err = w.reuse(w.segs[reuse].num, num, salt, reuse == cur)
	} else {
		hdr = segHeader(num, salt, w.size)
		f, err = w.create(path, hdr)
	}
	if err != nil {
		return err
	}
	if err := syncDir(w.dir); err != nil {
		_ = f.Close()
		return err
	}
	// Frames go through O_DIRECT|O_DSYNC where the file system has it:
	// one write that returns once the data is on disk costs less than a
	// write and an fdatasync (one system call, no page cache to flush).
	direct := false
	if !w.buffered {
		if df, err := os.OpenFile(w.path(num), os.O_RDWR|syscall.O_DIRECT|syscall.O_DSYNC, 0); err == nil {
			_ = f.Close()
			f, direct = df, true
		}
	}
	if cur >= 0 && reuse != cur {
		w.owed = &trailer{path: w.path(w.segs[cur].num), off: w.off, salt: w.salt, next: num}
	}
	if reuse >= 0 {
		w.segs = slices.Delete(w.segs, reuse, reuse+1)
	}
	if w.f != nil {
		_ = w.f.Close()
	}
	w.segs = append(w.segs, &segment{num: num})
	w.f, w.salt, w.off, w.retry, w.direct = f, salt, segHeaderLen, false, direct
	if direct {
		if cap(w.block) < blockSize {
			w.block = alignedBuf(blockSize)
		}
		w.block = append(w.block[:0], hdr...)
	}
	// Keep at most two spare segments whose updates bbolt holds.
	spare := 0
	for i := len(w.segs) - 2; i >= 0; i-- {
		if w.segs[i].last > applied {
			continue
		}
		if spare++; spare > 2 {
			if os.Remove(w.path(w.segs[i].num)) == nil {
				w.segs = slices.Delete(w.segs, i, i+1)
			}
		}
	}
	return nil
}

// reuse renames segment old to num and gives it a new header, which it
// returns.
func (w *wal) reuse(old, num, salt uint64, current bool) (*os.File, []byte, error) {
	if current {
		_ = w.f.Close()
		w.f = nil
	}
	if err := os.Rename(w.path(old), w.path(num)); err != nil {
		return nil, nil, fmt.Errorf("reusing write-ahead log segment: %w", err)
	}
	f, err := os.OpenFile(w.path(num), os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("reusing write-ahead log segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("reusing write-ahead log segment: %w", err)
	}
	hdr := segHeader(num, salt, fi.Size())
	if _, err := f.WriteAt(hdr, 0); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("reusing write-ahead log segment: %w", err)
	}
	if err := fdatasync(f); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("reusing write-ahead log segment: %w", err)
	}
	return f, hdr, nil
}

// create makes a segment at path, with header hdr: written under a
// temporary name, filled with zeros, synced, then renamed.
func (w *wal) create(path string, hdr []byte) (*os.File, error) {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating write-ahead log segment: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("creating write-ahead log segment: %w", err)
	}
	zeros := make([]byte, min(w.size, 1<<20))
	copy(zeros, hdr)
	for off := int64(0); off < w.size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), w.size-off)], off); err != nil {
			return fail(err)
		}
		if off == 0 {
			clear(zeros[:segHeaderLen])
		}
	}
	if err := fdatasync(f); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return f, nil
}

// close closes the segment being written.
func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing write-ahead log directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("syncing write-ahead log directory: %w", err)
	}
	return nil
}
