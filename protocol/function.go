package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Function calls (docs/particle-protocol.md#functions ✔):
//
//	S→D  CON POST f/<name> ?<argument>, 1-byte token
//	     options: 0xB1 'f' | 0x0N name | 0x4N argument (Uri-Query, possibly empty)
//	D→S  empty ACK (4.00 ACK when the argument is too long), then a separate
//	     2.04 with the token and a 4-byte big-endian int32 return value
//
// The firmware reads "the next option after the name" as the argument
// whatever its number, so the argument is always sent, even when empty.

// Function limits of current firmware (12 / 63 / 622 on old firmware).
const (
	MaxFunctionNameLen = 64
	MaxFunctionArgLen  = 1024
)

// NewFunctionCall returns CON POST f/<name>?<arg> with a 1-byte token.
func NewFunctionCall(id uint16, token byte, name, arg string) Message {
	m := request(Confirmable, CodePOST, id, token1(token), PathFunction)
	m.AddOption(OptionURIPath, []byte(name))
	m.AddOption(OptionURIQuery, []byte(arg))
	return m
}

// FunctionCall is a decoded function call.
type FunctionCall struct {
	Name     string
	Argument string
}

// ParseFunctionCall decodes a POST f. Several Uri-Query options are joined
// with "&" (a CoAP client may split a query); none is an empty argument.
func ParseFunctionCall(m *Message) (FunctionCall, error) {
	if err := expectKind(m, KindFunctionCall); err != nil {
		return FunctionCall{}, err
	}
	name, err := resourceName(m)
	if err != nil {
		return FunctionCall{}, err
	}
	var arg []byte
	n := 0
	for _, o := range m.Options {
		if o.Number == OptionURIQuery {
			if n > 0 {
				arg = append(arg, '&')
			}
			arg = append(arg, o.Value...)
			n++
		}
	}
	return FunctionCall{Name: name, Argument: string(arg)}, nil
}

// ErrFunctionResult means a function response whose payload is not 4 bytes.
var ErrFunctionResult = errors.New("protocol: malformed function result")

// NewFunctionResult returns the device's separate 2.04 with the int32 return
// value (typ: NON over TCP, CON over UDP).
func NewFunctionResult(typ Type, id uint16, token byte, ret int32) Message {
	return NewResponse(typ, id, token, CodeChanged, binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(ret)))
}

// ParseFunctionResult decodes the int32 of a 2.04 function response.
func ParseFunctionResult(m *Message) (int32, error) {
	if m.Code != CodeChanged {
		return 0, fmt.Errorf("%w: function answered %s", ErrWrongKind, m.Code)
	}
	if len(m.Payload) != 4 {
		return 0, fmt.Errorf("%w: %d bytes", ErrFunctionResult, len(m.Payload))
	}
	return int32(binary.BigEndian.Uint32(m.Payload)), nil
}
