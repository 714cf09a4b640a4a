package main

import (
	"math"
	"math/bits"
	"time"
)

// Bucket layout of the latency histogram, log-linear as in HdrHistogram: values below
// subBuckets nanoseconds each have a bucket of their own; above that, every power of
// two is split into subBuckets equal buckets, so a bucket is at most 1/subBuckets
// (3.1%) as wide as the values in it. That covers every int64 in bucketCount
// counters, with no allocation when a value is recorded.
const (
	subBucketBits = 5
	subBuckets    = 1 << subBucketBits
	bucketCount   = (64 - subBucketBits + 1) * subBuckets
)

// histogram counts latencies, in nanoseconds, to report percentiles. The zero value
// is empty and ready; it is not safe for concurrent use.
type histogram struct {
	counts [bucketCount]uint64
	// total is the number of values recorded.
	total uint64
	// max is the largest value recorded, exactly.
	max int64
}

// record counts one latency. A negative one (the clock stepped back between send and
// receive) counts as 0.
func (h *histogram) record(ns int64) {
	ns = max(ns, 0)
	h.counts[bucketOf(uint64(ns))]++
	h.total++
	h.max = max(h.max, ns)
}

// percentile returns a latency that p percent (0 < p ≤ 100) of the recorded ones do not
// exceed: the top of the bucket holding the ⌈p/100 × total⌉-th smallest value, capped
// at the largest value recorded, so it overstates the exact percentile by at most a
// bucket's width. It returns 0 when nothing was recorded.
func (h *histogram) percentile(p float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(p/100*float64(h.total))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketTop(i), uint64(h.max)))
		}
	}
	return time.Duration(h.max)
}

// bucketOf returns the index of the bucket that holds v.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	// v >> shift keeps v's top subBucketBits+1 bits: subBuckets to 2×subBuckets-1.
	shift := bits.Len64(v) - subBucketBits - 1
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketTop returns the largest value that bucket i holds.
func bucketTop(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	top := uint64(i%subBuckets + subBuckets)
	// For the last bucket this wraps round to the largest uint64, as it should.
	return (top+1)<<shift - 1
}
