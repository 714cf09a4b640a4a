// Package beacon will hold LAN discovery: the wire format of the query, announce and
// reply packets (a magic, a version, the NodeID and listen ports; a reply carries a
// bounded list of bootstrap contacts) and their UDP broadcast send and receive on port
// 5483, shared by several nodes on one host (SO_REUSEADDR + SO_REUSEPORT). Own packets
// and packets from outside the local subnets will be ignored, and replies rate-limited
// and never much larger than the query. On loopback the beacon uses 127.255.255.255.
//
// Nothing lives here yet: the package marks where the beacon will go.
package beacon
