// Package nat will hold NAT and firewall traversal: STUN over UDP and TCP to learn the
// node's external endpoints, detection of the NAT's mapping and filtering behaviour,
// UPnP port mappings (with lease renewal and removal on stop), TCP and UDP hole
// punching from the listen port (SO_REUSEADDR + SO_REUSEPORT), and the hop-limited
// punch that opens a local firewall without NAT.
//
// Nothing lives here yet: the package marks where NAT traversal will go.
package nat
