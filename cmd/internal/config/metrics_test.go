package config

import (
	"strings"
	"testing"
)

func TestCheckMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, err string // err: part of the error, "" for none
	}{
		{"", ""}, // off
		{"127.0.0.1:9464", ""},
		{"[::1]:9464", ""},
		{"127.0.0.1:0", ""}, // a free port
		{":9464", ""},       // every address
		{"localhost:9464", ""},
		{"metrics.internal.example:9464", ""},
		{"9464", "want host:port"},
		{"127.0.0.1:9464:1", "want host:port"},
		{"127.0.0.1:-1", "is not a number"},
		{"127.0.0.1:", "is not a number"},
		{"host/x:9464", "neither an IP address nor a host name"},
	} {
		err := CheckMetricsAddr(tc.addr)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("CheckMetricsAddr(%q) = %v, want nil", tc.addr, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CheckMetricsAddr(%q) = %v, want an error saying %q", tc.addr, err, tc.err)
		}
	}
}
