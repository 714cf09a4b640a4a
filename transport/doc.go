// Package transport carries crust connections: verified (TLS 1.3 over the node key),
// framed (package wire) and greeted (a Hello each way) before anyone else sees them.
//
// Consumers use the small Transport, Listener and Conn interfaces. Implementations open
// sockets only through Net and read time only through Clock, so the same code runs over
// the operating system or over sim's virtual network.
package transport
