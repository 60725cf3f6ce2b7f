package protocol

import (
	"errors"
	"fmt"
)

// Block option value (RFC 7959 §2.2), used as Block1 for device-posted
// describes and Block2 for server-fetched ones
// (docs/particle-protocol.md#describe):
//
//	 0 1 2 3 4 5 6 7   (1, 2 or 3 bytes; uint encoding)
//	+-+-+-+-+-+-+-+-+
//	|  NUM  |M| SZX |   size = 2^(SZX+4), SZX 7 reserved
//	+-+-+-+-+-+-+-+-+
const maxBlockNum = 1<<20 - 1

// Block is a decoded Block1/Block2 option.
type Block struct {
	Num  uint32 // block number
	More bool   // more blocks follow
	Size int    // 16..1024
}

// ErrBlock means a malformed block option or an invalid block size.
var ErrBlock = errors.New("protocol: malformed block option")

// Value returns the option value in minimal uint encoding.
func (b Block) Value() ([]byte, error) {
	szx := -1
	for i := 0; i < 7; i++ {
		if b.Size == 16<<i {
			szx = i
		}
	}
	if szx < 0 || b.Num > maxBlockNum {
		return nil, fmt.Errorf("%w: num %d size %d", ErrBlock, b.Num, b.Size)
	}
	v := b.Num<<4 | uint32(szx)
	if b.More {
		v |= 0x08
	}
	return AppendUint(nil, v), nil
}

// ParseBlock decodes a Block1/Block2 option value.
func ParseBlock(v []byte) (Block, error) {
	if len(v) > 3 {
		return Block{}, fmt.Errorf("%w: %d bytes", ErrBlock, len(v))
	}
	u, _ := ParseUint(v)
	szx := int(u & 0x07)
	if szx == 7 {
		return Block{}, fmt.Errorf("%w: reserved size exponent", ErrBlock)
	}
	return Block{Num: u >> 4, More: u&0x08 != 0, Size: 16 << szx}, nil
}

// blockOption returns the parsed option n of m, if present.
func blockOption(m *Message, n OptionNumber) (*Block, error) {
	v, ok := m.Option(n)
	if !ok {
		return nil, nil
	}
	b, err := ParseBlock(v)
	if err != nil {
		return nil, err
	}
	return &b, nil
}
