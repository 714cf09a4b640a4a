package vnet

import (
	"errors"
	"syscall"
)

// ErrAddrInUse is returned (wrapped in a *net.OpError) by ListenPacket for a port
// another datagram socket of the host holds, by Listen for a port a listener or
// connection holds, and by DialFrom for a port a Dial connection holds. It is syscall.EADDRINUSE, so code written for the
// operating system's sockets recognises it with errors.Is.
var ErrAddrInUse error = syscall.EADDRINUSE

// ErrNoFreePort is returned by ListenPacket(0), Listen(0) and Dial when every
// ephemeral port of the host is taken.
var ErrNoFreePort = errors.New("vnet: no free ephemeral port")

// ErrAddrTaken is returned when a host or router is added with an address that is
// already used where it would sit (the internet, or the router's LAN).
var ErrAddrTaken = errors.New("vnet: address already taken")

// ErrNotIPv4 is returned when a host or router is given an address that is not IPv4,
// or Dial an address that is not IPv4 with a port: the virtual internet is IPv4 only.
var ErrNotIPv4 = errors.New("vnet: not an IPv4 address")

// ErrBadAddr is returned by WriteTo for an address that is not a *net.UDPAddr.
var ErrBadAddr = errors.New("vnet: address is not a *net.UDPAddr")

// ErrPortMappingConflict is returned by Router.AddPortMapping for an external port
// that another inside endpoint holds, by a port mapping or a dynamic mapping (UPnP's
// error 718, ConflictInMappingEntry).
var ErrPortMappingConflict = errors.New("vnet: external port mapped to another endpoint")

// ErrNoPortMapping is returned by Router.DeletePortMapping for an external port with
// no live port mapping (UPnP's error 714, NoSuchEntryInArray).
var ErrNoPortMapping = errors.New("vnet: no such port mapping")
