package bench

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

func TestBuckets(t *testing.T) {
	t.Parallel()
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 257, 1000, 1e6, 1e9, 1<<62 - 1, 1 << 62, 1<<63 - 1} {
		i := bucketOf(v)
		if i < prev || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d; want in [%d, %d)", v, i, prev, numBuckets)
		}
		prev = i
		lo, w := bucketRange(i)
		if v < lo || v-lo >= w {
			t.Errorf("value %d in bucket %d = [%d, %d+%d); want inside", v, i, lo, lo, w)
		}
		if v >= 256 && float64(w)/float64(v) > 1.0/128 {
			t.Errorf("bucket of %d is %d wide; want at most 1/128 of the value", v, w)
		}
	}
}

func TestQuantiles(t *testing.T) {
	t.Parallel()
	uniform := func(n int64) []int64 {
		var vs []int64
		for v := int64(1); v <= n; v++ {
			vs = append(vs, v)
		}
		return vs
	}
	tests := []struct {
		name   string
		values []int64
		q      float64
		want   int64 // within 1%
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []int64{42}, 0.99, 42},
		{"exact small p50", uniform(100), 0.5, 50},
		{"exact small p99", uniform(100), 0.99, 99},
		{"min", uniform(100), 0, 1},
		{"max", uniform(100), 1, 100},
		{"uniform p50", uniform(100000), 0.5, 50000},
		{"uniform p90", uniform(100000), 0.9, 90000},
		{"uniform p99.9", uniform(100000), 0.999, 99900},
		{"outlier p99", append(uniform(99), 1e9), 0.99, 99},
		{"outlier max", append(uniform(99), 1e9), 1, 1e9},
		{"negative counts as zero", []int64{-5, -5, 10}, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			lo, hi := tt.want, tt.want+tt.want/100
			if got < lo || got > hi {
				t.Errorf("Quantile(%v) = %d; want %d (to within 1%%)", tt.q, got, tt.want)
			}
		})
	}
}

func TestHistogramMergeAndJSON(t *testing.T) {
	t.Parallel()
	var all, a, b Histogram
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 10000 {
		v := r.Int64N(1e9)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(nil)
	js, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		if got, want := back.Quantile(q), all.Quantile(q); got != want {
			t.Errorf("merged and decoded Quantile(%v) = %d; want %d", q, got, want)
		}
	}
	if back.Count() != all.Count() || back.Min() != all.Min() || back.Max() != all.Max() || back.Mean() != all.Mean() {
		t.Errorf("merged and decoded: count %d min %d max %d mean %v; want %d %d %d %v",
			back.Count(), back.Min(), back.Max(), back.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for _, bad := range []string{`{"n":2,"buckets":[[1,1]]}`, `{"n":1,"buckets":[[99999,1]]}`, `[`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("decoding %s: no error", bad)
		}
	}
}

func TestAtomicSnapshotsAndDeltas(t *testing.T) {
	t.Parallel()
	var a atomicHistogram
	for v := range int64(100) {
		a.record(v * 1000)
	}
	first := a.snapshot()
	for v := range int64(50) {
		a.record(1e6 + v)
	}
	second := a.snapshot()
	d := second.since(first)
	if d.Count() != 50 || first.Count() != 100 || second.Count() != 150 {
		t.Fatalf("counts %d, %d, delta %d; want 100, 150, 50", first.Count(), second.Count(), d.Count())
	}
	if got := d.Quantile(0.5); got < 1e6 || got > 1e6+50+1e6/100 {
		t.Errorf("delta p50 = %d; want about 1e6+25", got)
	}
	var sum Histogram
	sum.Merge(first)
	sum.Merge(d)
	if sum.Quantile(0.99) != second.Quantile(0.99) {
		t.Errorf("snapshot + delta p99 = %d; want %d", sum.Quantile(0.99), second.Quantile(0.99))
	}
}
