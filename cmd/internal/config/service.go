package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/beacon"
)

// Service returns the library's configuration for c. It resolves the data directory
// (DataDir) and, with the beacon on and no beacon_addresses, lists the LAN's
// broadcast addresses from the host's interfaces (beacon.LANAddrs). stun_servers
// and upnp have no counterpart in the library yet and are left out.
//
// A Config from Load is valid; one built by hand is checked here, and each mistake
// is an *Error naming the key.
func (c Config) Service() (crust.Config, error) {
	lib, errs := c.check()
	if len(errs) > 0 {
		return crust.Config{}, joinErrors(errs)
	}
	dir, err := c.DataDir()
	if err != nil {
		return crust.Config{}, err
	}
	lib.DataDir = dir
	if c.Beacon && len(c.BeaconAddresses) == 0 {
		addrs, err := beacon.LANAddrs(nil)
		if err != nil {
			return crust.Config{}, fmt.Errorf("finding the LAN's broadcast addresses for the beacon: %w; list them in beacon_addresses, or set beacon = false", err)
		}
		lib.BeaconAddrs = addrs
	}
	return lib, nil
}

// DataDir returns the data directory: data_dir if set, else
// $XDG_DATA_HOME/crust-node, else ~/.local/share/crust-node.
func (c Config) DataDir() (string, error) {
	if c.DataDirectory != "" {
		return c.DataDirectory, nil
	}
	// The XDG base directory spec says to ignore a relative path.
	if xdg := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(xdg) {
		return filepath.Join(xdg, "crust-node"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the data directory: %w; set data_dir", err)
	}
	return filepath.Join(home, ".local", "share", "crust-node"), nil
}

// AdminAddr returns where the admin endpoint listens, for net.Listen: ("unix",
// path) or ("tcp", "127.0.0.1:port"). A relative socket path, as the default
// admin.sock, is inside dataDir, the directory DataDir returned. With admin = "off"
// network and address are empty.
func (c Config) AdminAddr(dataDir string) (network, address string, err error) {
	network, address, err = parseAdmin(c.Admin)
	if err != nil {
		return "", "", &Error{Key: "admin", Err: err}
	}
	if network == "unix" && !filepath.IsAbs(address) {
		address = filepath.Join(dataDir, address)
	}
	return network, address, nil
}

// parseAdmin parses the admin key; a unix socket's path may be relative.
func parseAdmin(s string) (network, address string, err error) {
	switch {
	case s == "":
		return "unix", "admin.sock", nil
	case s == "off":
		return "", "", nil
	case strings.HasPrefix(s, "unix://"):
		path := strings.TrimPrefix(s, "unix://")
		if !filepath.IsAbs(path) {
			return "", "", fmt.Errorf(`%q: "unix://" takes an absolute path, "unix:///run/crust-node.sock"; write "unix:%s" for a path in data_dir`, s, path)
		}
		return "unix", path, nil
	case strings.HasPrefix(s, "unix:"):
		path := strings.TrimPrefix(s, "unix:")
		if path == "" {
			return "", "", fmt.Errorf(`%q: no path, want "unix:admin.sock" or "unix:///run/crust-node.sock"`, s)
		}
		return "unix", path, nil
	case strings.HasPrefix(s, "tcp://"):
		addr, err := loopbackAddr(strings.TrimPrefix(s, "tcp://"))
		if err != nil {
			return "", "", fmt.Errorf("%q: %w", s, err)
		}
		return "tcp", addr, nil
	}
	return "", "", fmt.Errorf(`%q: want "off", "unix:PATH", "unix:///ABSOLUTE/PATH" or "tcp://127.0.0.1:PORT"`, s)
}

// CheckMetricsAddr checks a metrics_addr value, or crust-node's -metrics flag: "" is
// off; else "host:port" as net.Listen takes it, the host an IP address, a host name,
// or empty for every address of the host, and the port from 0 to 65535 (0 picks a
// free one).
func CheckMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf(`%q: want host:port, like "127.0.0.1:9464"`, addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

// loopbackAddr checks "ip:port" with a loopback IP: whoever reaches the admin
// endpoint controls the node.
func loopbackAddr(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", errors.New(`want tcp://127.0.0.1:PORT or tcp://[::1]:PORT`)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%q is not a loopback address: the admin endpoint controls the node, so only 127.0.0.1 or ::1 may be used", host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(n, 10)), nil
}
