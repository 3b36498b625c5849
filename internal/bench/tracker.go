package bench

// window is how far behind the highest sequence number a tracker still
// tells a duplicate from a first arrival. Concurrent publishers reorder
// events by about their number, far less than this.
const window = 1024

// tracker follows the sequence numbers one subscriber receives on one
// topic: how many distinct ones, how many twice. It costs 144 bytes.
type tracker struct {
	hi       uint64 // highest sequence number seen
	distinct uint64
	dups     uint64
	late     uint64 // older than the window: counted as distinct, unchecked
	bits     [window / 64]uint64
}

func (t *tracker) bit(seq uint64) (word *uint64, mask uint64) {
	i := seq % window
	return &t.bits[i/64], 1 << (i % 64)
}

// mark records the arrival of seq (>= 1).
func (t *tracker) mark(seq uint64) {
	switch {
	case seq > t.hi:
		if seq-t.hi >= window {
			t.bits = [window / 64]uint64{}
		} else {
			for s := t.hi + 1; s < seq; s++ {
				w, m := t.bit(s)
				*w &^= m
			}
		}
		t.hi = seq
		w, m := t.bit(seq)
		*w |= m
		t.distinct++
	case t.hi-seq >= window:
		t.late++
		t.distinct++
	default:
		w, m := t.bit(seq)
		if *w&m != 0 {
			t.dups++
			return
		}
		*w |= m
		t.distinct++
	}
}

// rewind forgets every arrival after seq, as a client does that resumes
// from the event seq: those events are expected again. It reports false
// when seq is too far behind to rewind exactly.
func (t *tracker) rewind(seq uint64) bool {
	if seq >= t.hi {
		return true
	}
	if t.hi-seq >= window {
		return false
	}
	for s := seq + 1; s <= t.hi; s++ {
		w, m := t.bit(s)
		if *w&m != 0 {
			*w &^= m
			t.distinct--
		}
	}
	t.hi = seq
	return true
}
