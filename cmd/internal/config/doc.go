// Package config is the configuration file of crust-node, in TOML.
//
// Load reads a file over the defaults and reports each mistake with the file name,
// the line and the key ("crust.toml:3: listen_port: 70000 is out of range
// 0..65535"); WriteDefault prints every key with its default value and what it
// means, a file Load reads back to Default. Service turns a Config into the
// library's crust.Config; DataDir and AdminAddr resolve the paths a daemon needs.
package config
