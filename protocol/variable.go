package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Variables (docs/particle-protocol.md#variables ✔):
//
//	S→D  CON GET v/<name>, 1-byte token
//	D→S  empty ACK, then separate 2.05 with the token (4.04 for an unknown name)
//
// Value encodings by declared type (the type comes from the describe):
//
//	BOOLEAN (1)  1 byte, 0 or 1
//	INT32   (2)  4 bytes, big-endian two's complement
//	STRING  (4)  raw bytes, no terminator, ≤ 1024
//	DOUBLE  (9)  8 bytes IEEE-754 LITTLE-endian (21.5 = 00 00 00 00 00 80 35 40)

// VariableType is the type code of a cloud variable.
type VariableType uint8

// Variable types (docs/particle-protocol.md#describe).
const (
	VariableBool   VariableType = 1
	VariableInt32  VariableType = 2
	VariableString VariableType = 4
	VariableDouble VariableType = 9
)

// MaxVariableNameLen and MaxStringValueLen are current firmware limits
// (docs/particle-protocol.md#functions, docs/particle-protocol.md#variables).
const (
	MaxVariableNameLen = 64
	MaxStringValueLen  = 1024
)

// String returns the API name: "bool", "int32", "string" or "double".
func (t VariableType) String() string {
	switch t {
	case VariableBool:
		return "bool"
	case VariableInt32:
		return "int32"
	case VariableString:
		return "string"
	case VariableDouble:
		return "double"
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// Variable errors.
var (
	// ErrVariableType means an unknown variable type name or code.
	ErrVariableType = errors.New("protocol: unknown variable type")
	// ErrVariableValue means a value whose size does not fit its type.
	ErrVariableValue = errors.New("protocol: malformed variable value")
)

// ParseVariableType parses the names used by older servers and clients:
// "bool"/"boolean", "int32"/"int"/"INT", "string", "double" (any case).
func ParseVariableType(s string) (VariableType, error) {
	switch strings.ToLower(s) {
	case "bool", "boolean":
		return VariableBool, nil
	case "int32", "int", "integer":
		return VariableInt32, nil
	case "string":
		return VariableString, nil
	case "double":
		return VariableDouble, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrVariableType, s)
}

// AppendVariable appends the encoding of v for type t. v must be bool,
// int32 (or int within range), float64 or string/[]byte respectively.
func AppendVariable(b []byte, t VariableType, v any) ([]byte, error) {
	switch t {
	case VariableBool:
		if x, ok := v.(bool); ok {
			if x {
				return append(b, 1), nil
			}
			return append(b, 0), nil
		}
	case VariableInt32:
		switch x := v.(type) {
		case int32:
			return binary.BigEndian.AppendUint32(b, uint32(x)), nil
		case int:
			if x >= math.MinInt32 && x <= math.MaxInt32 {
				return binary.BigEndian.AppendUint32(b, uint32(int32(x))), nil
			}
		}
	case VariableDouble:
		if x, ok := v.(float64); ok {
			return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
		}
	case VariableString:
		switch x := v.(type) {
		case string:
			return append(b, x...), nil
		case []byte:
			return append(b, x...), nil
		}
	default:
		return b, fmt.Errorf("%w: %d", ErrVariableType, uint8(t))
	}
	return b, fmt.Errorf("%w: %T for %s", ErrVariableValue, v, t)
}

// DecodeVariable decodes a variable response payload of type t into bool,
// int32, float64 or string. Booleans accept any non-empty payload (true when
// a byte is non-zero); the other types need their exact size.
func DecodeVariable(t VariableType, p []byte) (any, error) {
	switch t {
	case VariableBool:
		if len(p) == 0 {
			return nil, fmt.Errorf("%w: empty bool", ErrVariableValue)
		}
		for _, c := range p {
			if c != 0 {
				return true, nil
			}
		}
		return false, nil
	case VariableInt32:
		if len(p) != 4 {
			return nil, fmt.Errorf("%w: int32 of %d bytes", ErrVariableValue, len(p))
		}
		return int32(binary.BigEndian.Uint32(p)), nil
	case VariableDouble:
		if len(p) != 8 {
			return nil, fmt.Errorf("%w: double of %d bytes", ErrVariableValue, len(p))
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(p)), nil
	case VariableString:
		return string(p), nil
	}
	return nil, fmt.Errorf("%w: %d", ErrVariableType, uint8(t))
}

// NewVariableRequest returns CON GET v/<name> with a 1-byte token.
func NewVariableRequest(id uint16, token byte, name string) Message {
	m := request(Confirmable, CodeGET, id, token1(token), PathVariable)
	m.AddOption(OptionURIPath, []byte(name))
	return m
}

// ParseVariableRequest returns the requested variable name.
func ParseVariableRequest(m *Message) (string, error) {
	if err := expectKind(m, KindVariableRequest); err != nil {
		return "", err
	}
	return resourceName(m)
}

// NewVariableValue returns the device's separate 2.05 response carrying an
// encoded value (see AppendVariable); typ is NON over TCP, CON over UDP.
func NewVariableValue(typ Type, id uint16, token byte, value []byte) Message {
	return NewResponse(typ, id, token, CodeContent, value)
}

// ErrResourceName means a request without a resource name after the kind letter.
var ErrResourceName = errors.New("protocol: request has no resource name")

func resourceName(m *Message) (string, error) {
	name, ok := m.PathName()
	if !ok || name == "" {
		return "", ErrResourceName
	}
	return name, nil
}
