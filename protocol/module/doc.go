// Package module parses and checks Particle firmware module binaries: the
// files that `particle compile` produces and that the cloud sends to a
// device over the air (docs/ota.md, "Binaries").
//
// A module is laid out as
//
//	[vector table] prefix(24) ... code and data ... [product data] suffix CRC-32(4)
//
// The prefix (Device OS's module info) sits at the start of the module or
// just after the MCU's interrupt vector table; it gives the module's start
// and end addresses, flags, module version, platform ID, function (user
// part, system part, bootloader, ...), index and up to two dependencies on
// other modules. The suffix ends the module: a reserved half-word, the
// SHA-256 of everything before it and the suffix's size. A user part built
// with PRODUCT_ID / PRODUCT_VERSION carries both, 16 bits each, just before
// the suffix; 0xFFFF means "not a product binary". The last four bytes are
// the big-endian CRC-32 (IEEE) of everything before them. All other
// integers are little-endian.
//
// Parse checks the structure (sizes, prefix, CRC); Info.CheckTarget checks
// that one device can take the module. Build writes a well-formed module
// from a Spec, for tests and the device simulator. The package is pure:
// no I/O, no goroutines, standard library only.
package module
