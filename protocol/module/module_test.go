package module

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// userSpec is a user part for an Argon (platform 12) of product 4242,
// version 7, needing system part 1 at module version 3302.
func userSpec() Spec {
	return Spec{
		PrefixOffset:  0,
		StartAddress:  0x000B4000,
		ModuleVersion: 6,
		PlatformID:    12,
		Function:      FunctionUser,
		Index:         1,
		Dependencies:  []Dependency{{Function: FunctionSystem, Index: 1, Version: 3302}},
		Product:       true, ProductID: 4242, ProductVersion: 7,
		Code: bytes.Repeat([]byte("wick"), 1000),
	}
}

// recrc rewrites the CRC-32 of b after a test changed it.
func recrc(b []byte) []byte {
	n := len(b) - 4
	binary.BigEndian.PutUint32(b[n:], crc32.ChecksumIEEE(b[:n]))
	return b
}

func TestParse(t *testing.T) {
	gen2 := userSpec()
	gen2.PrefixOffset, gen2.PlatformID, gen2.Product = 0x184, 6, false
	gen3 := userSpec()
	gen3.PrefixOffset = 0x200
	system := Spec{StartAddress: 0x30000, PlatformID: 13, Function: FunctionSystem, Index: 1, ModuleVersion: 3302,
		Dependencies: []Dependency{{Function: FunctionBootloader, Version: 1101}}, Code: make([]byte, 300)}
	good := Build(userSpec())

	tests := []struct {
		name    string
		bin     []byte
		wantErr error
		check   func(t *testing.T, i *Info)
	}{
		{"user part with product", good, nil, func(t *testing.T, i *Info) {
			if i.PlatformID != 12 || i.Function != FunctionUser || i.Index != 1 || i.ModuleVersion != 6 {
				t.Errorf("prefix = %+v", i)
			}
			if !i.IsProduct() || i.ProductID != 4242 || i.ProductVersion != 7 || i.SuffixSize != ProductSuffixSize {
				t.Errorf("product = %d v%d (suffix %d)", i.ProductID, i.ProductVersion, i.SuffixSize)
			}
			if len(i.Dependencies) != 1 || i.Dependencies[0] != (Dependency{FunctionSystem, 1, 3302}) {
				t.Errorf("dependencies = %+v", i.Dependencies)
			}
			if !i.SHA256OK || i.Size != len(good) || i.StartAddress != 0xB4000 || i.EndAddress != 0xB4000+uint32(len(good)-4) {
				t.Errorf("suffix = %+v", i)
			}
		}},
		{"gen 2 vector table, no product", Build(gen2), nil, func(t *testing.T, i *Info) {
			if i.PrefixOffset != 0x184 || i.PlatformID != 6 || i.IsProduct() || i.HasProductData {
				t.Errorf("info = %+v", i)
			}
		}},
		{"gen 3 vector table", Build(gen3), nil, func(t *testing.T, i *Info) {
			if i.PrefixOffset != 0x200 || i.ProductID != 4242 {
				t.Errorf("info = %+v", i)
			}
		}},
		{"system part", Build(system), nil, func(t *testing.T, i *Info) {
			if i.Function != FunctionSystem || i.Dependencies[0].Function != FunctionBootloader {
				t.Errorf("info = %+v", i)
			}
		}},
		{"zero SHA-256 is tolerated", func() []byte {
			b := append([]byte(nil), good...)
			copy(b[len(b)-4-2-32:], make([]byte, 32))
			return recrc(b)
		}(), nil, func(t *testing.T, i *Info) {
			if i.SHA256OK {
				t.Error("SHA256OK for a zeroed hash")
			}
		}},
		{"empty", nil, ErrTruncated, nil},
		{"shorter than a prefix and suffix", good[:MinSize-1], ErrTruncated, nil},
		{"truncated", good[:len(good)-100], ErrTruncated, nil},
		{"truncated to its last byte", good[:len(good)-1], ErrTruncated, nil},
		{"bad CRC", func() []byte {
			b := append([]byte(nil), good...)
			b[100] ^= 0x40
			return b
		}(), ErrCRC, nil},
		{"trailing bytes", append(append([]byte(nil), good...), 0, 0, 0, 0), ErrSuffix, nil},
		{"no prefix", recrc(bytes.Repeat([]byte{0xff}, 2000)), ErrPrefix, nil},
		{"function none", func() []byte {
			b := append([]byte(nil), good...)
			b[14] = 0
			return recrc(b)
		}(), ErrPrefix, nil},
		{"unknown flags", func() []byte {
			b := append([]byte(nil), good...)
			b[9] = 0x80
			return recrc(b)
		}(), ErrPrefix, nil},
		{"empty dependency with a version", func() []byte {
			b := append([]byte(nil), good...)
			b[22] = 1
			return recrc(b)
		}(), ErrPrefix, nil},
		{"suffix size too small", func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint16(b[len(b)-6:], 10)
			return recrc(b)
		}(), ErrSuffix, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, err := Parse(tc.bin)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse: err = %v; want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, i)
		})
	}
}

func TestCheckTarget(t *testing.T) {
	parse := func(s Spec) *Info {
		i, err := Parse(Build(s))
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	user := parse(userSpec())
	asset := userSpec()
	asset.Function = FunctionAsset
	system := userSpec()
	system.Function, system.Dependencies = FunctionSystem, []Dependency{{Function: FunctionSystem, Index: 1, Version: 9000}}
	tests := []struct {
		name string
		info *Info
		t    Target
		want error
	}{
		{"same platform, new enough", user, Target{PlatformID: 12, SystemModuleVersion: 3302}, nil},
		{"unknown system version", user, Target{PlatformID: 12}, nil},
		{"newer system", user, Target{PlatformID: 12, SystemModuleVersion: 6200}, nil},
		{"wrong platform", user, Target{PlatformID: 13, SystemModuleVersion: 3302}, ErrPlatform},
		{"old system", user, Target{PlatformID: 12, SystemModuleVersion: 2102}, ErrDependency},
		{"not flashable", parse(asset), Target{PlatformID: 12}, ErrFunction},
		{"system part brings its own system", parse(system), Target{PlatformID: 12, SystemModuleVersion: 2102}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.info.CheckTarget(tc.t)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("CheckTarget = %v; want %v", err, tc.want)
			}
		})
	}
}

func TestCheckProduct(t *testing.T) {
	user, err := Parse(Build(userSpec()))
	if err != nil {
		t.Fatal(err)
	}
	plain := userSpec()
	plain.Product = false
	noProduct, err := Parse(Build(plain))
	if err != nil {
		t.Fatal(err)
	}
	unset := userSpec()
	unset.ProductID, unset.ProductVersion = NoProduct, NoProduct
	unsetInfo, err := Parse(Build(unset))
	if err != nil {
		t.Fatal(err)
	}
	sys := userSpec()
	sys.Function = FunctionSystem
	sysInfo, err := Parse(Build(sys))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		info    *Info
		product int64
		version int
		want    error
	}{
		{"match", user, 4242, 7, nil},
		{"wrong product", user, 4243, 7, ErrProduct},
		{"wrong version", user, 4242, 8, ErrProduct},
		{"no product data", noProduct, 4242, 7, ErrProduct},
		{"product 0xFFFF", unsetInfo, 4242, 7, ErrProduct},
		{"system part", sysInfo, 4242, 7, ErrFunction},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.info.CheckProduct(tc.product, tc.version)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("CheckProduct = %v; want %v", err, tc.want)
			}
		})
	}
}

func TestFunctionString(t *testing.T) {
	for f, want := range map[Function]string{FunctionUser: "user part", FunctionSystem: "system part", 200: "function 200"} {
		if got := f.String(); got != want {
			t.Errorf("%d.String() = %q; want %q", uint8(f), got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Build(userSpec()))
	gen3 := userSpec()
	gen3.PrefixOffset = 0x200
	f.Add(Build(gen3))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 200))
	f.Fuzz(func(t *testing.T, b []byte) {
		i, err := Parse(b)
		if err != nil {
			if i != nil {
				t.Fatal("info with an error")
			}
			return
		}
		// A module Parse accepts is internally consistent.
		if i.Size > len(b) || i.Size < MinSize || i.SuffixSize < MinSuffixSize {
			t.Fatalf("inconsistent info %+v for %d bytes", i, len(b))
		}
		if crc32.ChecksumIEEE(b[:i.Size-4]) != i.CRC32 {
			t.Fatal("accepted a bad CRC")
		}
		_ = i.CheckTarget(Target{PlatformID: int(i.PlatformID), SystemModuleVersion: 1})
		_ = i.CheckProduct(int64(i.ProductID), int(i.ProductVersion))
	})
}

func BenchmarkParse256K(b *testing.B) {
	s := userSpec()
	s.Code = bytes.Repeat([]byte{0xa5}, 256<<10)
	bin := Build(s)
	b.ReportAllocs()
	b.SetBytes(int64(len(bin)))
	for b.Loop() {
		if _, err := Parse(bin); err != nil {
			b.Fatal(err)
		}
	}
}
