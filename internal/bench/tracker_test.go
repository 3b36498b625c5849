package bench

import "testing"

func TestTracker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                     string
		seqs                     []uint64
		distinct, dups, late, hi uint64
	}{
		{"in order", []uint64{1, 2, 3, 4}, 4, 0, 0, 4},
		{"reordered", []uint64{2, 1, 4, 3}, 4, 0, 0, 4},
		{"duplicate", []uint64{1, 2, 2, 3, 1}, 3, 2, 0, 3},
		{"gap", []uint64{1, 5}, 2, 0, 0, 5},
		{"jump past the window", []uint64{1, 5000, 5000, 4999}, 3, 1, 0, 5000},
		{"too late to tell", []uint64{5000, 1, 1}, 3, 0, 2, 5000},
		{"slot reuse across the window", []uint64{1, window + 1, 1}, 3, 0, 1, window + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr tracker
			for _, s := range tt.seqs {
				tr.mark(s)
			}
			if tr.distinct != tt.distinct || tr.dups != tt.dups || tr.late != tt.late || tr.hi != tt.hi {
				t.Errorf("distinct %d dups %d late %d hi %d; want %d %d %d %d",
					tr.distinct, tr.dups, tr.late, tr.hi, tt.distinct, tt.dups, tt.late, tt.hi)
			}
		})
	}
}

func TestTrackerRewind(t *testing.T) {
	t.Parallel()
	var tr tracker
	for s := uint64(1); s <= 200; s++ {
		if s != 150 {
			tr.mark(s)
		}
	}
	if !tr.rewind(100) {
		t.Fatal("rewind(100) failed")
	}
	if tr.distinct != 100 || tr.hi != 100 {
		t.Fatalf("after rewind: distinct %d hi %d; want 100 100", tr.distinct, tr.hi)
	}
	for s := uint64(101); s <= 200; s++ {
		tr.mark(s)
	}
	if tr.distinct != 200 || tr.dups != 0 {
		t.Errorf("after replay: distinct %d dups %d; want 200 0", tr.distinct, tr.dups)
	}
	tr.mark(150)
	if tr.dups != 1 {
		t.Errorf("150 again: dups %d; want 1", tr.dups)
	}
	tr.mark(2000)
	if tr.rewind(2000 - window) {
		t.Error("rewind past the window succeeded")
	}
	if !tr.rewind(3000) || tr.hi != 2000 {
		t.Error("rewind ahead of hi failed or changed something")
	}
}
