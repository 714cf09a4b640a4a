// Package sim will hold an in-process virtual internet with NAT models (RFC 4787
// mapping and filtering behaviours) that drives crust's real actors through the
// transport and NAT interfaces, for NAT matrices and runs with thousands of nodes. Its
// testbed/ will run the real binaries behind real Linux NAT in network namespaces.
//
// Nothing lives here yet: the package marks where the simulator will go.
package sim
