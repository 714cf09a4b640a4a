package upnp

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"testing"

	"go.uber.org/goleak"
)

// errNoMulticastInTests is what an SSDP search returns in tests.
var errNoMulticastInTests = errors.New("tests must not send SSDP multicast: set Config.RootURL or Config.search")

// TestMain makes sure no test sends SSDP multicast: every test talks only to
// servers on 127.0.0.1 (or to none), and the real search is replaced by one that
// refuses. It then checks that no goroutine outlives the tests.
func TestMain(m *testing.M) {
	defaultSearch = func(context.Context, netip.Addr, string) ([]*http.Response, error) {
		return nil, errNoMulticastInTests
	}
	goleak.VerifyTestMain(m)
}
