package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Buckets follow one another with no gap or overlap, each at most 1/subBuckets as
// wide as the values in it.
func TestHistogramBuckets(t *testing.T) {
	values := []uint64{0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 1000, 123456789, 1 << 40, math.MaxInt64, math.MaxUint64}
	for range 1000 {
		values = append(values, rand.Uint64()>>rand.IntN(64))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= bucketCount {
			t.Fatalf("bucketOf(%d) = %d, out of 0..%d", v, i, bucketCount-1)
		}
		if top := bucketTop(i); top < v {
			t.Errorf("value %d is above the top %d of its bucket %d", v, top, i)
		}
		if i > 0 {
			bottom := bucketTop(i-1) + 1
			if bottom > v {
				t.Errorf("value %d is below its bucket %d, which starts at %d", v, i, bottom)
			}
			if width := bucketTop(i) - bottom; v >= subBuckets && width > v/subBuckets {
				t.Errorf("bucket %d of value %d is %d wide, over 1/%d of it", i, v, width, subBuckets)
			}
		}
	}
	if got := bucketOf(math.MaxUint64); got != bucketCount-1 {
		t.Errorf("the largest value is in bucket %d, want the last, %d", got, bucketCount-1)
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var h histogram
	if got := h.percentile(50); got != 0 {
		t.Errorf("empty: p50 = %v, want 0", got)
	}
	// 1 µs to 1000 µs, one of each.
	for i := int64(1000); i >= 1; i-- {
		h.record(i * 1000)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration // the exact percentile
	}{
		{50, 500 * time.Microsecond},
		{90, 900 * time.Microsecond},
		{99, 990 * time.Microsecond},
		{100, time.Millisecond},
		{0.01, time.Microsecond},
	} {
		got := h.percentile(tt.p)
		if got < tt.want || got > tt.want+tt.want/subBuckets {
			t.Errorf("p%v = %v, want %v to %v", tt.p, got, tt.want, tt.want+tt.want/subBuckets)
		}
	}
	if h.max != int64(time.Millisecond) || h.total != 1000 {
		t.Errorf("max %d, total %d; want 1ms, 1000", h.max, h.total)
	}
}

// Against the exact percentiles of random latencies, the histogram's are never below
// and at most a bucket's width above.
func TestHistogramMatchesExactPercentiles(t *testing.T) {
	var h histogram
	values := make([]int64, 20000)
	for i := range values {
		values[i] = int64(rand.ExpFloat64() * float64(200*time.Microsecond))
		h.record(values[i])
	}
	slices.Sort(values)
	for _, p := range []float64{1, 10, 50, 90, 99, 99.9, 100} {
		rank := int(math.Ceil(p / 100 * float64(len(values))))
		exact := time.Duration(values[rank-1])
		got := h.percentile(p)
		if got < exact || got > exact+exact/subBuckets+1 {
			t.Errorf("p%v = %v, exact %v", p, got, exact)
		}
	}
}

// A single value is every percentile, exactly (capped at the maximum); a negative
// latency (a clock stepped back) counts as 0.
func TestHistogramSingleAndNegativeValues(t *testing.T) {
	var h histogram
	h.record(123456)
	for _, p := range []float64{1, 50, 100} {
		if got := h.percentile(p); got != 123456 {
			t.Errorf("p%v = %d, want 123456", p, got)
		}
	}
	var neg histogram
	neg.record(-5)
	if neg.total != 1 || neg.max != 0 || neg.percentile(50) != 0 {
		t.Errorf("negative latency: total %d, max %d, p50 %v", neg.total, neg.max, neg.percentile(50))
	}
}
