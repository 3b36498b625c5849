package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// checkFile checks the structure of the bbolt file at path before bbolt
// opens it, reading it with ReadAt rather than through a memory map. bbolt
// trusts the file: a page reference past the end of a truncated file
// faults in its memory map (SIGBUS), and an element pointing outside its
// page, a page reference that is out of range or whose page has another
// id, or a page of the wrong type makes it read wild memory or panic, in
// goroutines of its own (the freelist is rebuilt by walking every page
// when the file is opened). checkFile follows every reference bbolt
// follows and checks it first:
//
//   - the meta page bbolt will use (the valid one with the highest
//     transaction id, its checksum checked) and a file long enough for
//     every page below its high-water mark;
//   - the freelist page, if the file has one: ids in range;
//   - from the root bucket down, every page: in range, its own id in its
//     header, branch or leaf, its elements and their keys and values
//     inside it, keys in order, never reached twice; nested and inline
//     buckets alike.
//
// It returns how many keys the log bucket holds, which load compares with
// the count the store recorded: a branch pointing to a stale page that
// passes every other check loses keys.
func checkFile(path string) (logKeys uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil // a new store
		}
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() == 0 {
		return 0, nil // bbolt initializes an empty file
	}
	c := &checker{f: f, size: fi.Size()}
	m, err := c.meta()
	if err != nil {
		return 0, fileDamage{err}
	}
	// Pages are read through a read-only map of the pages below the
	// high-water mark, which meta checked the file holds. (If the file
	// shrank meanwhile, guard turns the fault into an error.)
	c.data, err = syscall.Mmap(int(f.Fd()), 0, int(c.hwm)*int(c.psz), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("mapping the file to check it: %w", err)
	}
	defer syscall.Munmap(c.data)
	c.seen = make([]uint64, (c.hwm+63)/64)
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return 0, fileDamage{err}
		}
	}
	if err := c.bucket(m.root, nil, 0, "/"); err != nil {
		return 0, fileDamage{err}
	}
	return c.logKeys, nil
}

const (
	metaMagic      = 0xED0CDAED
	metaVersion    = 2
	noFreelist     = ^uint64(0)
	pageHeaderSize = 16
	elemSize       = 16 // branch and leaf elements alike
	flagBranch     = 0x01
	flagLeaf       = 0x02
	flagFreelist   = 0x10
	flagBucket     = 0x01 // a leaf element that is a bucket
	maxDepth       = 64   // nesting of pages and buckets
)

type meta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64 // pages below it are in use or free
	txid     uint64
}

type checker struct {
	f    *os.File
	size int64
	psz  int64
	hwm  uint64
	data []byte   // the pages below hwm
	seen []uint64 // a bit per page: reached

	logKeys uint64
}

// parseMeta parses the meta page in b (a page header, then the meta).
func parseMeta(b []byte) (meta, bool) {
	if len(b) < pageHeaderSize+64 {
		return meta{}, false
	}
	d := b[pageHeaderSize:]
	le := binary.LittleEndian
	if le.Uint32(d) != metaMagic || le.Uint32(d[4:]) != metaVersion {
		return meta{}, false
	}
	h := fnv.New64a()
	_, _ = h.Write(d[:56])
	if h.Sum64() != le.Uint64(d[56:]) {
		return meta{}, false
	}
	return meta{pageSize: le.Uint32(d[8:]), root: le.Uint64(d[16:]), freelist: le.Uint64(d[32:]), hwm: le.Uint64(d[40:]), txid: le.Uint64(d[48:])}, true
}

// meta returns the meta page bbolt will use, having checked it.
func (c *checker) meta() (meta, error) {
	buf := make([]byte, 4096)
	n, _ := c.f.ReadAt(buf, 0)
	m0, ok0 := parseMeta(buf[:n])
	// bbolt takes the page size from the first meta page if it is valid,
	// else it looks for the second at the usual page sizes.
	var m1 meta
	ok1 := false
	for psz := int64(1024); psz <= 65536 && !ok1; psz *= 2 {
		if ok0 && psz != int64(m0.pageSize) {
			continue
		}
		n, _ := c.f.ReadAt(buf, psz)
		m1, ok1 = parseMeta(buf[:n])
		if ok1 && int64(m1.pageSize) != psz {
			ok1 = false
		}
	}
	var m meta
	switch {
	case ok0 && ok1:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case ok0:
		m = m0
	case ok1:
		m = m1
	default:
		return meta{}, errors.New("neither meta page is valid")
	}
	if ok0 && ok1 && m0.pageSize != m1.pageSize {
		return meta{}, fmt.Errorf("the meta pages disagree on the page size (%d, %d)", m0.pageSize, m1.pageSize)
	}
	c.psz = int64(m.pageSize)
	if c.psz < 512 || c.psz > 1<<20 || c.psz&(c.psz-1) != 0 {
		return meta{}, fmt.Errorf("page size %d", c.psz)
	}
	if m.hwm < 3 || m.hwm > uint64(c.size/c.psz) {
		return meta{}, fmt.Errorf("the file is %d bytes long, its meta page says %d pages of %d bytes: it was cut short", c.size, m.hwm, c.psz)
	}
	c.hwm = m.hwm
	return m, nil
}

// page reads page id (with its overflow pages), after checking it is in
// range, was not reached before and says it is page id.
func (c *checker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("reference to page %d, outside 2 to %d", id, c.hwm-1)
	}
	if c.reached(id) {
		return nil, fmt.Errorf("page %d is reached twice", id)
	}
	head := c.data[int64(id)*c.psz:]
	if got := binary.LittleEndian.Uint64(head); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	over := uint64(binary.LittleEndian.Uint32(head[12:]))
	if over >= c.hwm-id {
		return nil, fmt.Errorf("page %d runs past the last page (%d overflow pages)", id, over)
	}
	for i := id; i <= id+over; i++ {
		if c.reached(i) {
			return nil, fmt.Errorf("page %d is reached twice", i)
		}
		c.seen[i/64] |= 1 << (i % 64)
	}
	return c.data[int64(id)*c.psz : int64(id+over+1)*c.psz], nil
}

func (c *checker) reached(id uint64) bool { return c.seen[id/64]&(1<<(id%64)) != 0 }

// freelist checks the freelist page.
func (c *checker) freelist(id uint64) error {
	b, err := c.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	if flags := binary.LittleEndian.Uint16(b[8:]); flags != flagFreelist {
		return fmt.Errorf("freelist page %d has flags %#x", id, flags)
	}
	n, at := uint64(binary.LittleEndian.Uint16(b[10:])), uint64(pageHeaderSize)
	if n == 0xFFFF {
		n, at = binary.LittleEndian.Uint64(b[pageHeaderSize:]), pageHeaderSize+8
	}
	if n > (uint64(len(b))-at)/8 {
		return fmt.Errorf("freelist page %d lists %d pages, more than it holds", id, n)
	}
	for i := range n {
		if p := binary.LittleEndian.Uint64(b[at+8*i:]); p < 2 || p >= c.hwm {
			return fmt.Errorf("freelist page %d lists page %d, outside 2 to %d", id, p, c.hwm-1)
		}
	}
	return nil
}

// bucket checks a bucket: its root page, or if root is 0 the inline
// page inline. in is its name if it is one of the store's (top-level)
// buckets, "/" for the root bucket and "" for deeper ones.
func (c *checker) bucket(root uint64, inline []byte, depth int, in string) error {
	if root == 0 {
		_, err := c.node(inline, 0, depth, in, nil, nil)
		return err
	}
	b, err := c.page(root)
	if err != nil {
		return err
	}
	_, err = c.node(b, root, depth, in, nil, nil)
	return err
}

// node checks the page in b (page id; 0 for an inline page) of bucket in
// (see bucket) and what it references. Its keys must be at least lo and
// below hi (nil: no bound), and in order, as bbolt's own check (which it
// runs when it opens the file) requires; it returns the greatest key
// below it, nil if none.
func (c *checker) node(b []byte, id uint64, depth int, in string, lo, hi []byte) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("page %d: nested more than %d deep", id, maxDepth)
	}
	if len(b) < pageHeaderSize {
		return nil, fmt.Errorf("inline bucket of %d bytes", len(b))
	}
	le := binary.LittleEndian
	flags, count := le.Uint16(b[8:]), int(le.Uint16(b[10:]))
	if flags != flagBranch && flags != flagLeaf {
		return nil, fmt.Errorf("page %d has flags %#x, neither branch nor leaf", id, flags)
	}
	if count*elemSize > len(b)-pageHeaderSize {
		return nil, fmt.Errorf("page %d: %d elements do not fit in it", id, count)
	}
	var maxKey []byte
	running := lo
	for i := range count {
		base := pageHeaderSize + i*elemSize
		e := b[base:]
		var pos, ksize, vsize int
		if flags == flagBranch {
			pos, ksize = int(le.Uint32(e)), int(le.Uint32(e[4:]))
		} else {
			pos, ksize, vsize = int(le.Uint32(e[4:])), int(le.Uint32(e[8:])), int(le.Uint32(e[12:]))
		}
		start := base + pos
		if start > len(b) || ksize > len(b)-start || vsize > len(b)-start-ksize {
			return nil, fmt.Errorf("page %d: element %d lies outside the page", id, i)
		}
		key := b[start : start+ksize]
		if in == string(bucketLog) && ksize != 8 {
			return nil, fmt.Errorf("page %d: a key of %d bytes in the log", id, ksize)
		}
		if i == 0 && running != nil && bytes.Compare(running, key) > 0 || i > 0 && bytes.Compare(running, key) >= 0 || hi != nil && bytes.Compare(key, hi) >= 0 {
			return nil, fmt.Errorf("page %d: keys out of order at element %d", id, i)
		}
		if flags == flagBranch {
			next := hi
			if i < count-1 {
				n := b[pageHeaderSize+(i+1)*elemSize:]
				p, k := pageHeaderSize+(i+1)*elemSize+int(le.Uint32(n)), int(le.Uint32(n[4:]))
				if p > len(b) || k > len(b)-p {
					return nil, fmt.Errorf("page %d: element %d lies outside the page", id, i+1)
				}
				next = b[p : p+k]
			}
			child := le.Uint64(e[8:])
			cb, err := c.page(child)
			if err != nil {
				return nil, fmt.Errorf("page %d: %w", id, err)
			}
			if maxKey, err = c.node(cb, child, depth+1, in, key, next); err != nil {
				return nil, err
			}
			running = maxKey
			continue
		}
		running, maxKey = key, key
		if le.Uint32(e)&flagBucket == 0 {
			if in == string(bucketLog) {
				c.logKeys++
			}
			continue
		}
		v := b[start+ksize : start+ksize+vsize]
		if len(v) < 16 {
			return nil, fmt.Errorf("page %d: bucket %q has a header of %d bytes", id, key, len(v))
		}
		name := ""
		if in == "/" {
			name = string(key)
		}
		if err := c.bucket(le.Uint64(v), v[16:], depth+1, name); err != nil {
			return nil, err
		}
	}
	return maxKey, nil
}

// fileDamage is what checkFile found wrong with the file (as opposed to
// failing to read it).
type fileDamage struct{ error }

func (d fileDamage) Unwrap() error { return d.error }

// errPanicked reports a panic in bbolt (or a fault in its memory map)
// that guard turned into an error.
var errPanicked = errors.New("bbolt panicked")

// guard runs fn, turning a panic, and a fault reading bbolt's memory map
// (a file cut short under it), into an error wrapping errPanicked. bbolt
// panics on some damaged pages rather than returning an error.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanicked, r)
		}
	}()
	return fn()
}

// errDamagedFile reports a bbolt file that fails its checks.
var errDamagedFile = errors.New("is damaged")

// damagedFile returns the error for the bbolt file at path that failed a
// check with err: one line, naming the file and what to do.
func damagedFile(path string, err error) error {
	dir := filepath.Dir(path)
	return fmt.Errorf("boltstore: %s %w (%v); it is not served: restore %s from a copy taken while the hub was stopped, or move %s aside to start with an empty history (a new epoch: resuming clients are told of the gap)", path, errDamagedFile, oneLine(err), dir, dir)
}

// oneLine replaces the line breaks of err's text (bbolt's panics hold
// some) with spaces.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// checkLocked runs checkFile on path while holding the lock bbolt takes
// (an exclusive flock), so that it never reads a file another process is
// writing; it fails with berrors.ErrTimeout if the lock is not released
// within timeout. It releases the lock before returning, for bbolt.Open
// to take it again.
func checkLocked(path string, timeout time.Duration) (uint64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // a new store
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, berrors.ErrTimeout
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	var keys uint64
	err = guard(func() (err error) {
		keys, err = checkFile(path)
		return err
	})
	return keys, err
}
