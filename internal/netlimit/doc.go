// Package netlimit caps the connections a listener keeps open, per client
// address and in total, so that no client can use up the process's file
// descriptors (docs/security.md, "Connection limits"). IPv4 clients are
// counted per address, IPv6 clients per /64 network: one host usually
// holds a whole /64. The package also raises the process's descriptor
// limit and derives default caps from it. It uses the standard library
// only.
package netlimit
