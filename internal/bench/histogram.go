package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: every power of two is split into
// 2^subBits equal buckets, so a recorded value is known to within
// 1/2^subBits (0.8%) of itself. Values below 2^(subBits+1) are exact.
const subBits = 7

// numBuckets covers every non-negative int64.
const numBuckets = (63 - subBits + 1) << subBits

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // v is in [2^e, 2^(e+1))
	sub := int(v>>(e-subBits)) - 1<<subBits
	return (e-subBits+1)<<subBits + sub
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	g := i >> subBits
	if g == 0 {
		return int64(i), 1
	}
	sub := int64(i & (1<<subBits - 1))
	return (1<<subBits + sub) << (g - 1), 1 << (g - 1)
}

// Histogram counts non-negative values (durations in nanoseconds) in
// log-linear buckets, in the manner of an HDR histogram: constant relative
// precision (under 1%) from 1 ns to the largest int64, in a fixed 58 KiB.
// The zero value is empty and ready to use. A Histogram is not safe for
// concurrent use.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      float64
	min, max int64
}

// Record adds the value v; negative values count as 0.
func (h *Histogram) Record(v int64) { h.RecordN(v, 1) }

// RecordN adds n occurrences of the value v.
func (h *Histogram) RecordN(v int64, n uint64) {
	if n == 0 {
		return
	}
	v = max(v, 0)
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	h.counts[bucketOf(v)] += n
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n += n
	h.sum += float64(v) * float64(n)
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest value recorded, or 0.
func (h *Histogram) Max() int64 { return h.max }

// Min returns the smallest value recorded, or 0.
func (h *Histogram) Min() int64 { return h.min }

// Mean returns the mean of the values recorded, or 0.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value below or at which the fraction q (0 to 1) of
// the recorded values lie, as the highest value of the bucket holding that
// rank, capped at Max. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			lo, w := bucketRange(i)
			return min(lo+w-1, h.max)
		}
	}
	return h.max
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// histogramJSON is the sparse wire and file form of a Histogram.
type histogramJSON struct {
	N       uint64      `json:"n"`
	Sum     float64     `json:"sum"`
	Min     int64       `json:"min"`
	Max     int64       `json:"max"`
	Buckets [][2]uint64 `json:"buckets"` // [index, count] of non-empty buckets
}

// MarshalJSON encodes the non-empty buckets only.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histogramJSON{N: h.n, Sum: h.sum, Min: h.min, Max: h.max, Buckets: [][2]uint64{}}
	for i, c := range h.counts {
		if c != 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histogramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = Histogram{}
	var n uint64
	for _, bc := range j.Buckets {
		if bc[0] >= numBuckets {
			return fmt.Errorf("histogram bucket %d out of range", bc[0])
		}
		if h.counts == nil {
			h.counts = make([]uint64, numBuckets)
		}
		h.counts[bc[0]] += bc[1]
		n += bc[1]
	}
	if n != j.N {
		return fmt.Errorf("histogram counts add up to %d, not %d", n, j.N)
	}
	h.n, h.sum, h.min, h.max = j.N, j.Sum, j.Min, j.Max
	return nil
}

// atomicHistogram is a Histogram many goroutines record into at once.
type atomicHistogram struct {
	counts [numBuckets]atomic.Uint64
	max    atomic.Int64
	sum    atomic.Int64 // nanoseconds; overflows only after 292 years of latency
}

func (a *atomicHistogram) record(v int64) {
	v = max(v, 0)
	a.counts[bucketOf(v)].Add(1)
	a.sum.Add(v)
	for {
		m := a.max.Load()
		if v <= m || a.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// snapshot returns the values recorded so far. Values recorded during the
// call may be partly included; the next snapshot includes them.
func (a *atomicHistogram) snapshot() *Histogram {
	h := &Histogram{counts: make([]uint64, numBuckets)}
	first := true
	for i := range a.counts {
		c := a.counts[i].Load()
		if c == 0 {
			continue
		}
		h.counts[i] = c
		h.n += c
		if first {
			h.min, _ = bucketRange(i)
			first = false
		}
	}
	h.sum = float64(a.sum.Load())
	h.max = a.max.Load()
	if h.n == 0 {
		h.max = 0
	}
	return h
}

// since returns the values of h not in the earlier snapshot prev; its Min
// and Max are bucket bounds, as a delta knows no exact extremes.
func (h *Histogram) since(prev *Histogram) *Histogram {
	d := &Histogram{counts: make([]uint64, numBuckets)}
	for i, c := range h.counts {
		if prev != nil && prev.counts != nil {
			c -= prev.counts[i]
		}
		if c == 0 {
			continue
		}
		lo, w := bucketRange(i)
		if d.n == 0 {
			d.min = lo
		}
		d.max = min(lo+w-1, h.max)
		d.counts[i] = c
		d.n += c
	}
	d.sum = h.sum
	if prev != nil {
		d.sum -= prev.sum
	}
	if d.n == 0 {
		d.sum = 0
	}
	return d
}

// Summary is the usual digest of a latency histogram, in milliseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize digests h.
func (h *Histogram) Summarize() Summary {
	return Summary{
		Count: h.n,
		Mean:  h.Mean() / 1e6,
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.max),
	}
}

func ms(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
