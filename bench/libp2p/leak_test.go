package libp2pbench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the benchmarks: every node, host,
// stream handler and listener must have been closed by its b.Cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
