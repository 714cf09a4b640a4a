// Package bootstrap will hold the bootstrap cache: the contacts of nodes this node has
// reached directly before ({id, endpoints, last_success, failures}), ranked by recent
// success, bounded in size, and kept in a human-readable JSON file that is saved
// atomically (temp file, fsync, rename) and locked against a second process. A
// corrupt file will be set aside, never lost, while the node starts with what it has;
// hard-coded contacts from the configuration always count.
//
// Nothing lives here yet: the package marks where the cache will go.
package bootstrap
