// Package stuntest runs a small STUN server on loopback for tests: real UDP and TCP
// sockets, answers built with pion's message API, and modes that misbehave on
// purpose (silent, garbage, errors, wrong transaction, answers from the wrong port).
//
// Like coturn, the server listens at a second, alternate address, reports it as
// OTHER-ADDRESS and answers Binding requests there too (RFC 5780), so a client can
// compare the mappings the two addresses see. [Config.Mapped] and
// [Config.AltMapped] make either address report something other than the source it
// saw: a lying server, or an endpoint-dependent NAT emulated on loopback.
//
// The package imports only pion/stun and the standard library, so the tests of any
// crust package, nat/stun included, can use it.
package stuntest
