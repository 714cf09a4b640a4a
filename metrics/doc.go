// Package metrics exposes a crust node's state as Prometheus metrics.
//
// A Collector reads a crust.Service when Prometheus scrapes, so the data path does
// no work for it: the counters are the ones crust keeps anyway (Service.Peers,
// LadderStats, Refused). Only the punch durations come from events: the
// application passes each event it reads from Service.Events to Observe.
//
// Metrics:
//
//	crust_connections{kind}              gauge: connected peers by how the live
//	                                     connection was made ("tcp-direct", ...)
//	crust_ladder_attempts_total{step}    runs of each ladder step
//	crust_ladder_successes_total{kind}   sessions started by each kind of connection
//	crust_bytes_total{direction}         message payload bytes, "in" and "out"
//	crust_messages_total{direction}      messages, "in" and "out"
//	crust_refused_total{reason}          connections, messages and requests refused
//	crust_punch_seconds{kind}            histogram: how long the winning hole-punch
//	                                     step ran, at the node that climbed the ladder
//
// crust counts traffic per peer and session, and forgets a session's counts when it
// ends. crust_bytes_total and crust_messages_total add to the live sessions the
// counts each ended session had at the last scrape that saw it, so they never go
// down; what a session sent or received after that scrape, and sessions that began
// and ended between two scrapes, are not counted. They are a lower bound, exact for
// the sessions still connected.
//
// NewRegistry puts a Collector in a registry of its own with the Go runtime and
// process collectors; Listen and Serve answer GET /metrics from it over HTTP.
package metrics
