// Package metrics exposes a crust node's state as Prometheus metrics.
//
// A Collector reads a crust.Service when Prometheus scrapes, so the data path does
// no work for it: the counters are the ones crust keeps anyway (Service.Peers,
// Traffic, LadderStats, Refused, Delivery). Only the punch durations come from events: the
// application passes each event it reads from Service.Events to Observe.
//
// Metrics:
//
//	crust_connections{kind}              gauge: connected peers by how the live
//	                                     connection was made ("tcp-direct", ...)
//	crust_ladder_attempts_total{step}    runs of each ladder step
//	crust_ladder_successes_total{kind}   sessions started by each kind of connection
//	crust_bytes_total{direction}         message payload bytes, "in" and "out",
//	                                     since the node started
//	crust_messages_total{direction}      messages, "in" and "out", since the node
//	                                     started
//	crust_refused_total{reason}          connections, messages and requests refused
//	crust_resumed_sessions_total         sessions that resumed a stream after a fault
//	crust_resent_messages_total          held messages written again on a resume
//	crust_undelivered_messages_total{kind} messages given back in Undelivered,
//	                                     "unacknowledged" and "unsent"
//	crust_punch_seconds{kind}            histogram: how long the winning hole-punch
//	                                     step ran, at the node that climbed the ladder
//
// crust_bytes_total and crust_messages_total are Service.Traffic: node-wide
// counters that every session adds to as it goes, so they count sessions that ended
// between two scrapes, or before the first, in full.
//
// NewRegistry puts a Collector in a registry of its own with the Go runtime and
// process collectors; Listen and Serve answer GET /metrics from it over HTTP.
package metrics
