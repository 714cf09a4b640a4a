package actors

import (
	"testing"
	"time"
)

// A failed save is retried SaveDelay later, then twice as long each time, up to
// saveRetryMax, or SaveDelay when that is longer.
func TestSaveRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		saveDelay time.Duration
		failures  int
		want      time.Duration
	}{
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 3, 4 * time.Second},
		{time.Second, 6, 32 * time.Second},
		{time.Second, 7, time.Minute}, // 64 s, capped
		{time.Second, 1000, time.Minute},
		{100 * time.Millisecond, 4, 800 * time.Millisecond},
		{2 * time.Minute, 1, 2 * time.Minute}, // longer than the cap: kept
		{2 * time.Minute, 50, 2 * time.Minute},
	} {
		b := &bootstrapActor{n: &node{cfg: Config{SaveDelay: tc.saveDelay}}, saveFailures: tc.failures}
		if got := b.saveRetryDelay(); got != tc.want {
			t.Errorf("SaveDelay %v, %d failures: retry in %v, want %v", tc.saveDelay, tc.failures, got, tc.want)
		}
	}
}
