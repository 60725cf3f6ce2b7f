package module

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Layout sizes, in bytes.
const (
	PrefixSize = 24 // module info at the start of the module
	// MinSuffixSize is the suffix without product data: reserved(2),
	// SHA-256(32), size(2).
	MinSuffixSize = 36
	// ProductSuffixSize is the suffix with the product ID and version in
	// front of it, as the build tools write it for user parts.
	ProductSuffixSize = MinSuffixSize + 4
	crcSize           = 4
	// MinSize is the smallest possible module: a prefix, a suffix and the
	// CRC.
	MinSize = PrefixSize + MinSuffixSize + crcSize
)

// NoProduct is the product ID and version of a binary built for no product.
const NoProduct = 0xFFFF

// Function is what a module is (module_function in Device OS).
type Function uint8

// Module functions.
const (
	FunctionNone        Function = 0
	FunctionResource    Function = 1
	FunctionBootloader  Function = 2
	FunctionMono        Function = 3 // monolithic firmware
	FunctionSystem      Function = 4 // system part (Device OS)
	FunctionUser        Function = 5 // user part (the application)
	FunctionSettings    Function = 6
	FunctionNCP         Function = 7 // network co-processor firmware
	FunctionRadioStack  Function = 8
	FunctionAsset       Function = 9
	maxKnownFunction             = FunctionAsset
	functionNamesLength          = int(maxKnownFunction) + 1
)

var functionNames = [functionNamesLength]string{
	"none", "resource", "bootloader", "monolithic firmware", "system part",
	"user part", "settings", "NCP firmware", "radio stack", "asset",
}

// String names the function, such as "user part".
func (f Function) String() string {
	if int(f) < len(functionNames) {
		return functionNames[f]
	}
	return fmt.Sprintf("function %d", uint8(f))
}

// Flashable reports whether a device takes a module of this function over
// the air.
func (f Function) Flashable() bool {
	switch f {
	case FunctionBootloader, FunctionMono, FunctionSystem, FunctionUser, FunctionNCP, FunctionRadioStack:
		return true
	}
	return false
}

// Module flags (module_info_flags).
const (
	FlagDropModuleInfo   = 0x01
	FlagCompressed       = 0x02
	FlagCombined         = 0x04
	FlagEncrypted        = 0x08
	FlagPrefixExtensions = 0x10
	knownFlags           = 0x1F
)

// Dependency is a module another module needs: at least Version of the
// module with that function and index.
type Dependency struct {
	Function Function
	Index    uint8
	Version  uint16
}

// Info is what a module binary says about itself.
type Info struct {
	// PrefixOffset is where the prefix starts in the binary (0, or after
	// the interrupt vector table).
	PrefixOffset  int
	StartAddress  uint32
	EndAddress    uint32 // where the CRC-32 starts, as an address
	Flags         uint8
	ModuleVersion uint16
	PlatformID    uint16
	Function      Function
	Index         uint8
	// Dependencies lists the prefix's dependencies whose function is not
	// FunctionNone, in prefix order.
	Dependencies []Dependency

	// SuffixSize is the suffix's size field.
	SuffixSize int
	// HasProductData reports whether the suffix is large enough to carry
	// a product ID and version.
	HasProductData bool
	// ProductID and ProductVersion are NoProduct when the binary names no
	// product (or HasProductData is false).
	ProductID      uint16
	ProductVersion uint16
	// SHA256 is the hash the suffix records; SHA256OK reports whether it
	// is the hash of the module up to it (tools may leave it zero).
	SHA256   [32]byte
	SHA256OK bool
	CRC32    uint32
	Size     int
}

// IsProduct reports whether the binary was built for a product.
func (i *Info) IsProduct() bool {
	return i.HasProductData && i.ProductID != NoProduct
}

// Parse errors. Every error from Parse and CheckTarget wraps one of them.
var (
	ErrTruncated  = errors.New("module: binary is truncated")
	ErrPrefix     = errors.New("module: no valid module prefix")
	ErrSuffix     = errors.New("module: invalid module suffix")
	ErrCRC        = errors.New("module: CRC-32 mismatch")
	ErrPlatform   = errors.New("module: built for another platform")
	ErrFunction   = errors.New("module: not a module a device takes over the air")
	ErrDependency = errors.New("module: dependency not met")
	ErrProduct    = errors.New("module: product ID or version mismatch")
)

// prefixOffsets are where a prefix may sit: at the start, or after the
// interrupt vector table of a Gen 3 (0x200), Gen 2 (0x184) or Core (0x10C)
// MCU, or a Bluetooth module (0xC0).
var prefixOffsets = [...]int{0, 0x200, 0x184, 0xC0, 0x10C}

// Parse decodes and checks the structure of a module binary: a prefix at
// one of the known offsets whose addresses span the whole binary (bar the
// CRC; a combined module may be longer), a suffix whose size fits, and the
// CRC-32. It does not check that a device can take it (CheckTarget).
func Parse(b []byte) (*Info, error) {
	if len(b) < MinSize {
		return nil, fmt.Errorf("%w: %d bytes, a module has at least %d", ErrTruncated, len(b), MinSize)
	}
	var (
		info    Info
		lastErr error
		found   bool
	)
	for _, off := range prefixOffsets {
		if off+PrefixSize+MinSuffixSize+crcSize > len(b) {
			continue
		}
		i, err := parsePrefix(b, off)
		if err == nil {
			info, found = i, true
			break
		}
		// A truncation is the most telling failure: keep it over a
		// mismatch at another offset.
		if lastErr == nil || errors.Is(err, ErrTruncated) {
			lastErr = err
		}
	}
	if !found {
		return nil, lastErr
	}
	size := int(info.EndAddress-info.StartAddress) + crcSize
	info.Size = size
	if size > len(b) {
		return nil, fmt.Errorf("%w: the prefix spans %d bytes, the binary has %d", ErrTruncated, size, len(b))
	}
	if size < len(b) && info.Flags&FlagCombined == 0 {
		return nil, fmt.Errorf("%w: %d bytes after the module's end", ErrSuffix, len(b)-size)
	}
	m := b[:size]
	info.CRC32 = binary.BigEndian.Uint32(m[size-crcSize:])
	if got := crc32.ChecksumIEEE(m[:size-crcSize]); got != info.CRC32 {
		return nil, fmt.Errorf("%w: stored %08x, computed %08x", ErrCRC, info.CRC32, got)
	}
	end := size - crcSize
	info.SuffixSize = int(binary.LittleEndian.Uint16(m[end-2:]))
	if info.SuffixSize < MinSuffixSize || info.SuffixSize > end-info.PrefixOffset-PrefixSize {
		return nil, fmt.Errorf("%w: suffix size %d", ErrSuffix, info.SuffixSize)
	}
	shaAt := end - 2 - 32
	copy(info.SHA256[:], m[shaAt:shaAt+32])
	info.SHA256OK = sha256.Sum256(m[:shaAt]) == info.SHA256
	info.ProductID, info.ProductVersion = NoProduct, NoProduct
	if info.SuffixSize >= ProductSuffixSize {
		info.HasProductData = true
		info.ProductID = binary.LittleEndian.Uint16(m[end-ProductSuffixSize:])
		info.ProductVersion = binary.LittleEndian.Uint16(m[end-ProductSuffixSize+2:])
	}
	return &info, nil
}

// parsePrefix reads and sanity-checks the prefix at off.
func parsePrefix(b []byte, off int) (Info, error) {
	p := b[off : off+PrefixSize]
	i := Info{
		PrefixOffset:  off,
		StartAddress:  binary.LittleEndian.Uint32(p[0:]),
		EndAddress:    binary.LittleEndian.Uint32(p[4:]),
		Flags:         p[9],
		ModuleVersion: binary.LittleEndian.Uint16(p[10:]),
		PlatformID:    binary.LittleEndian.Uint16(p[12:]),
		Function:      Function(p[14]),
		Index:         p[15],
	}
	if i.EndAddress <= i.StartAddress {
		return i, fmt.Errorf("%w at offset %#x: end address %#x not after start %#x", ErrPrefix, off, i.EndAddress, i.StartAddress)
	}
	if i.Function == FunctionNone || i.Function > maxKnownFunction {
		return i, fmt.Errorf("%w at offset %#x: module function %d", ErrPrefix, off, uint8(i.Function))
	}
	if i.Flags&^knownFlags != 0 {
		return i, fmt.Errorf("%w at offset %#x: unknown flags %#x", ErrPrefix, off, i.Flags)
	}
	for _, d := range [2][]byte{p[16:20], p[20:24]} {
		dep := Dependency{Function: Function(d[0]), Index: d[1], Version: binary.LittleEndian.Uint16(d[2:])}
		if dep.Function == FunctionNone {
			if dep.Index != 0 || dep.Version != 0 {
				return i, fmt.Errorf("%w at offset %#x: empty dependency with index or version", ErrPrefix, off)
			}
			continue
		}
		if dep.Function > maxKnownFunction {
			return i, fmt.Errorf("%w at offset %#x: dependency function %d", ErrPrefix, off, uint8(dep.Function))
		}
		i.Dependencies = append(i.Dependencies, dep)
	}
	size := uint64(i.EndAddress-i.StartAddress) + crcSize
	if size < uint64(off+PrefixSize+MinSuffixSize+crcSize) {
		return i, fmt.Errorf("%w at offset %#x: module of %d bytes is smaller than its prefix and suffix", ErrPrefix, off, size)
	}
	if size > uint64(len(b)) {
		return i, fmt.Errorf("%w: the prefix spans %d bytes, the binary has %d", ErrTruncated, size, len(b))
	}
	return i, nil
}

// Target is what the cloud knows of a device about to take a module.
type Target struct {
	PlatformID int
	// SystemModuleVersion is the system part version from the device's
	// Hello; 0 means unknown, and system dependencies are not checked.
	SystemModuleVersion int
}

// CheckTarget reports whether a device described by t can take the
// module: the same platform, a function devices take over the air, and
// its system-part dependencies met by the device's system module version.
func (i *Info) CheckTarget(t Target) error {
	if int(i.PlatformID) != t.PlatformID {
		return fmt.Errorf("%w: the binary is for platform %d, the device is platform %d", ErrPlatform, i.PlatformID, t.PlatformID)
	}
	if !i.Function.Flashable() {
		return fmt.Errorf("%w: %s", ErrFunction, i.Function)
	}
	if t.SystemModuleVersion == 0 || i.Function == FunctionSystem || i.Function == FunctionBootloader {
		return nil
	}
	for _, d := range i.Dependencies {
		if d.Function == FunctionSystem && int(d.Version) > t.SystemModuleVersion {
			return fmt.Errorf("%w: the binary needs system module version %d or later, the device runs %d",
				ErrDependency, d.Version, t.SystemModuleVersion)
		}
	}
	return nil
}

// CheckProduct reports whether the binary is the given version of the
// given product, as the product firmware upload requires.
func (i *Info) CheckProduct(productID int64, version int) error {
	if i.Function != FunctionUser {
		return fmt.Errorf("%w: product firmware must be a user part, this is a %s", ErrFunction, i.Function)
	}
	if !i.IsProduct() {
		return fmt.Errorf("%w: the binary names no product (build it with PRODUCT_ID and PRODUCT_VERSION)", ErrProduct)
	}
	if int64(i.ProductID) != productID {
		return fmt.Errorf("%w: the binary is for product %d, not %d", ErrProduct, i.ProductID, productID)
	}
	if int(i.ProductVersion) != version {
		return fmt.Errorf("%w: the binary is version %d, not %d", ErrProduct, i.ProductVersion, version)
	}
	return nil
}

// Spec describes a module for Build.
type Spec struct {
	PrefixOffset  int    // bytes of vector table before the prefix
	StartAddress  uint32 // load address of the module's first byte
	Flags         uint8
	ModuleVersion uint16
	PlatformID    uint16
	Function      Function
	Index         uint8
	Dependencies  []Dependency // at most two
	// Product, when true, writes ProductID and ProductVersion before the
	// suffix; otherwise the suffix carries none.
	Product        bool
	ProductID      uint16
	ProductVersion uint16
	// Code is the module's body between the prefix and the suffix.
	Code []byte
}

// Build returns a well-formed module binary for s: prefix, code, product
// data, suffix with the SHA-256, and the CRC-32. Parse finds the prefix
// only at offset 0, 0xC0, 0x10C, 0x184 or 0x200. Build panics on more than
// two dependencies.
func Build(s Spec) []byte {
	if len(s.Dependencies) > 2 {
		panic("module: Build: more than two dependencies")
	}
	suffix := MinSuffixSize
	if s.Product {
		suffix = ProductSuffixSize
	}
	size := s.PrefixOffset + PrefixSize + len(s.Code) + suffix + crcSize
	b := make([]byte, 0, size)
	b = append(b, bytes.Repeat([]byte{0}, s.PrefixOffset)...)
	b = binary.LittleEndian.AppendUint32(b, s.StartAddress)
	b = binary.LittleEndian.AppendUint32(b, s.StartAddress+uint32(size-crcSize))
	b = append(b, 0, s.Flags)
	b = binary.LittleEndian.AppendUint16(b, s.ModuleVersion)
	b = binary.LittleEndian.AppendUint16(b, s.PlatformID)
	b = append(b, byte(s.Function), s.Index)
	for j := range 2 {
		var d Dependency
		if j < len(s.Dependencies) {
			d = s.Dependencies[j]
		}
		b = append(b, byte(d.Function), d.Index)
		b = binary.LittleEndian.AppendUint16(b, d.Version)
	}
	b = append(b, s.Code...)
	if s.Product {
		b = binary.LittleEndian.AppendUint16(b, s.ProductID)
		b = binary.LittleEndian.AppendUint16(b, s.ProductVersion)
	}
	b = append(b, 0, 0) // reserved
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	b = binary.LittleEndian.AppendUint16(b, uint16(suffix))
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}
