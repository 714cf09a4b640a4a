// Package bootstrap is the bootstrap cache: the contacts of nodes this node has reached
// directly before ({id, endpoints, last_success, failures}), ranked by recent success,
// bounded in size, and kept in a human-readable JSON file in the data directory.
//
// The file is saved atomically (temp file, fsync, rename, fsync of the directory) and
// locked against a second process (flock on bootstrap.lock beside it). A corrupt or
// truncated file is set aside as bootstrap.json.corrupt-<UTC time>, never deleted, and
// the node starts with what it has. While the cache is open its memory is the truth:
// a file changed by someone else is merged (or, unreadable, set aside likewise) at the
// next save, and Close writes the file again if it is no longer what the cache wrote,
// even when nothing new was learned. Hard-coded contacts from the configuration always
// count: Contacts returns them first, and they are never evicted or saved.
//
// A Cache is safe for concurrent use. It never reads the clock for its ranking: the
// caller passes the time of each outcome.
package bootstrap
