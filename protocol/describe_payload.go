package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Describe payloads (docs/particle-protocol.md#describe ✔):
//
//	application  {"f":["fn1","fn2"],"v":{"var1":2,"var2":9}}
//	system ≤3.x  {"p":6,"m":[{"s":262144,"l":"m","vc":30,"vv":30,"u":"<sha256 hex>",
//	              "f":"u","n":"1","v":6,"d":[{"f":"s","n":"2","v":1512}]}],"imei":..,"iccid":..}
//	system 6.x   protobuf particle.cloud.SystemDescribe, Content-Format 42
//	metrics      binary, starts 00 04 00 (kept raw)

// AppDescribe is the application describe: functions and typed variables.
type AppDescribe struct {
	Functions []string
	// Variables keeps the device's order.
	Variables []VariableDecl
}

// VariableDecl is one declared variable.
type VariableDecl struct {
	Name string
	Type VariableType
}

// VariableType returns the declared type of name.
func (a *AppDescribe) VariableType(name string) (VariableType, bool) {
	for _, v := range a.Variables {
		if v.Name == name {
			return v.Type, true
		}
	}
	return 0, false
}

// MarshalJSON renders {"f":[...],"v":{...}} with numeric type codes, in order.
func (a AppDescribe) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"f":[`)
	for i, f := range a.Functions {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, f)
	}
	b.WriteString(`],"v":{`)
	for i, v := range a.Variables {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, v.Name)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(v.Type)))
	}
	b.WriteString(`}}`)
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// UnmarshalJSON accepts numeric type codes and the string names older
// servers and clients use ("int32", "INT", "double", "string", "bool").
// A repeated variable name keeps its first position and its last type.
func (a *AppDescribe) UnmarshalJSON(data []byte) error {
	var raw struct {
		F []string        `json:"f"`
		V json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("protocol: application describe: %w", err)
	}
	a.Functions, a.Variables = raw.F, nil
	if len(raw.V) == 0 || string(raw.V) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw.V))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("protocol: application describe: \"v\" is not an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("protocol: application describe: %w", err)
		}
		name, _ := t.(string) // object keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("protocol: application describe: %w", err)
		}
		typ, err := parseVariableTypeJSON(v)
		if err != nil {
			return fmt.Errorf("protocol: application describe: variable %q: %w", name, err)
		}
		if i := a.indexOf(name); i >= 0 {
			a.Variables[i].Type = typ
			continue
		}
		a.Variables = append(a.Variables, VariableDecl{Name: name, Type: typ})
	}
	return nil
}

func (a *AppDescribe) indexOf(name string) int {
	for i, v := range a.Variables {
		if v.Name == name {
			return i
		}
	}
	return -1
}

func parseVariableTypeJSON(v json.RawMessage) (VariableType, error) {
	var n uint8
	if err := json.Unmarshal(v, &n); err == nil {
		return VariableType(n), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return 0, ErrVariableType
	}
	return ParseVariableType(s)
}

// SystemDescribe is the system describe: platform and firmware modules.
type SystemDescribe struct {
	Platform int              `json:"p"`
	Modules  []FirmwareModule `json:"m"`
	IMEI     string           `json:"imei,omitempty"`
	ICCID    string           `json:"iccid,omitempty"`
	// ModemFirmwareVersion and ProtectedState come from the 6.x protobuf form only.
	ModemFirmwareVersion string `json:"-"`
	ProtectedState       bool   `json:"-"`
}

// FirmwareModule is one module of the system describe.
type FirmwareModule struct {
	MaxSize uint32 `json:"s"`
	// Store: m main, b backup, f factory, t scratchpad.
	Store   string `json:"l"`
	Checked uint32 `json:"vc"`
	Passed  uint32 `json:"vv"`
	// Hash is the module's SHA-256, lowercase hex (user module: the app hash,
	// docs/particle-protocol.md#events-the-cloud-emits).
	Hash string `json:"u,omitempty"`
	// Function: b bootloader, s system part, u user part, m monolithic,
	// r resource, c NCP, a radio stack (other protobuf types: the decimal number).
	Function     string             `json:"f"`
	Index        string             `json:"n"`
	Version      int                `json:"v"`
	Dependencies []ModuleDependency `json:"d"`
}

// ModuleDependency is a module's dependency on another module.
type ModuleDependency struct {
	Function string `json:"f"`
	Index    string `json:"n"`
	Version  int    `json:"v"`
}

// UserModule returns the user-part module ("f":"u"), if any.
func (s *SystemDescribe) UserModule() (FirmwareModule, bool) {
	for _, m := range s.Modules {
		if m.Function == "u" {
			return m, true
		}
	}
	return FirmwareModule{}, false
}

// Description is a parsed describe payload: one or more of its parts.
type Description struct {
	System *SystemDescribe
	App    *AppDescribe
	// Metrics is the raw diagnostics payload (flag 0x04), not decoded here.
	Metrics []byte
}

// ErrDescribePayload means a describe payload that is neither valid JSON nor protobuf.
var ErrDescribePayload = errors.New("protocol: malformed describe payload")

// ParseDescription decodes a describe payload answering flags. JSON bodies
// may hold system keys ("p", "m"), application keys ("f", "v") or both (legacy
// merged form); the comma Device OS 3.3.1 omits between the two parts is
// repaired. A non-JSON body is a protobuf SystemDescribe when flags include
// system (or are unknown, 0), else metrics when flags include metrics.
func ParseDescription(flags DescribeFlags, payload []byte) (Description, error) {
	var d Description
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		switch {
		case flags&DescribeSystem != 0 || flags == 0:
			sys, err := ParseSystemDescribeProtobuf(payload)
			if err != nil {
				return d, err
			}
			d.System = &sys
		case flags&DescribeMetrics != 0:
			d.Metrics = append([]byte(nil), payload...)
		default:
			return d, fmt.Errorf("%w: application describe is not JSON", ErrDescribePayload)
		}
		return d, nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &keys); err != nil {
		repaired := repairDescribeJSON(trimmed)
		if err2 := json.Unmarshal(repaired, &keys); err2 != nil {
			return d, fmt.Errorf("%w: %w", ErrDescribePayload, err)
		}
		trimmed = repaired
	}
	_, hasP := keys["p"]
	_, hasM := keys["m"]
	_, hasF := keys["f"]
	_, hasV := keys["v"]
	if hasP || hasM {
		var s SystemDescribe
		if err := json.Unmarshal(trimmed, &s); err != nil {
			return d, fmt.Errorf("%w: system: %w", ErrDescribePayload, err)
		}
		d.System = &s
	}
	if hasF || hasV || (d.System == nil && flags&DescribeApplication != 0) {
		var a AppDescribe
		if err := a.UnmarshalJSON(trimmed); err != nil {
			return d, fmt.Errorf("%w: %w", ErrDescribePayload, err)
		}
		d.App = &a
	}
	if d.System == nil && d.App == nil {
		return d, fmt.Errorf("%w: no describe keys", ErrDescribePayload)
	}
	return d, nil
}

// repairDescribeJSON inserts the comma missing where a value ending in ']'
// or '}' is directly followed by a key ('"'), outside strings: the shape of
// Device OS 3.3.1's flags-3 answer {"p":3,"m":[]"f":[...],...}.
func repairDescribeJSON(b []byte) []byte {
	out := make([]byte, 0, len(b)+4)
	inString, escaped := false, false
	var prev byte
	for _, c := range b {
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				prev = c
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			out = append(out, c)
			continue
		case '"':
			if prev == ']' || prev == '}' {
				out = append(out, ',')
			}
			inString = true
		}
		out = append(out, c)
		prev = c
	}
	return out
}

// Protobuf field numbers of particle.cloud.SystemDescribe (device-os-protobuf
// cloud/describe.proto) and the wire types used here.
const (
	pbVarint  = 0
	pbFixed64 = 1
	pbBytes   = 2
	pbFixed32 = 5

	pbDescribeModules        = 1
	pbDescribeIMEI           = 2
	pbDescribeICCID          = 3
	pbDescribeModemFirmware  = 4
	pbDescribeProtectedState = 6

	pbModuleType         = 1
	pbModuleIndex        = 2
	pbModuleVersion      = 3
	pbModuleStore        = 4
	pbModuleMaxSize      = 5
	pbModuleCheckedFlags = 6
	pbModulePassedFlags  = 7
	pbModuleHash         = 8
	pbModuleDependencies = 9

	pbDependencyType    = 1
	pbDependencyIndex   = 2
	pbDependencyVersion = 3
)

// ParseSystemDescribeProtobuf decodes the Device OS 6.x protobuf system
// describe into the JSON-shaped SystemDescribe (Platform stays 0: the
// protobuf does not carry it; take it from the Hello). Unknown fields are skipped.
func ParseSystemDescribeProtobuf(b []byte) (SystemDescribe, error) {
	var s SystemDescribe
	err := pbFields(b, func(num int, wt int, v uint64, data []byte) error {
		switch {
		case num == pbDescribeModules && wt == pbBytes:
			m, err := parseModuleProtobuf(data)
			if err != nil {
				return err
			}
			s.Modules = append(s.Modules, m)
		case num == pbDescribeIMEI && wt == pbBytes:
			s.IMEI = pbString(data)
		case num == pbDescribeICCID && wt == pbBytes:
			s.ICCID = pbString(data)
		case num == pbDescribeModemFirmware && wt == pbBytes:
			s.ModemFirmwareVersion = pbString(data)
		case num == pbDescribeProtectedState && wt == pbVarint:
			s.ProtectedState = v != 0
		}
		return nil
	})
	return s, err
}

func parseModuleProtobuf(b []byte) (FirmwareModule, error) {
	m := FirmwareModule{Function: moduleFunction(0), Store: moduleStore(0), Index: "0", Dependencies: []ModuleDependency{}}
	err := pbFields(b, func(num int, wt int, v uint64, data []byte) error {
		switch {
		case num == pbModuleType && wt == pbVarint:
			m.Function = moduleFunction(v)
		case num == pbModuleIndex && wt == pbVarint:
			m.Index = strconv.FormatUint(uint64(uint32(v)), 10)
		case num == pbModuleVersion && wt == pbVarint:
			m.Version = int(uint32(v))
		case num == pbModuleStore && wt == pbVarint:
			m.Store = moduleStore(v)
		case num == pbModuleMaxSize && wt == pbVarint:
			m.MaxSize = uint32(v)
		case num == pbModuleCheckedFlags && wt == pbFixed32:
			m.Checked = uint32(v)
		case num == pbModulePassedFlags && wt == pbFixed32:
			m.Passed = uint32(v)
		case num == pbModuleHash && wt == pbBytes:
			m.Hash = hex.EncodeToString(data)
		case num == pbModuleDependencies && wt == pbBytes:
			d := ModuleDependency{Function: moduleFunction(0), Index: "0"}
			err := pbFields(data, func(num int, wt int, v uint64, _ []byte) error {
				switch {
				case num == pbDependencyType && wt == pbVarint:
					d.Function = moduleFunction(v)
				case num == pbDependencyIndex && wt == pbVarint:
					d.Index = strconv.FormatUint(uint64(uint32(v)), 10)
				case num == pbDependencyVersion && wt == pbVarint:
					d.Version = int(uint32(v))
				}
				return nil
			})
			if err != nil {
				return err
			}
			m.Dependencies = append(m.Dependencies, d)
		}
		return nil
	})
	return m, err
}

// pbString converts a protobuf string field, replacing invalid UTF-8 (proto3
// strings must be valid UTF-8; JSON would mangle it anyway).
func pbString(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }

// moduleFunction maps FirmwareModuleType to the JSON "f" letter.
func moduleFunction(t uint64) string {
	switch t {
	case 1:
		return "r" // RESOURCE_MODULE
	case 2:
		return "b" // BOOTLOADER_MODULE
	case 3:
		return "m" // MONO_FIRMWARE_MODULE
	case 4:
		return "s" // SYSTEM_PART_MODULE
	case 5:
		return "u" // USER_PART_MODULE
	case 7:
		return "c" // NCP_FIRMWARE_MODULE
	case 8:
		return "a" // RADIO_STACK_MODULE
	}
	return strconv.FormatUint(t, 10) // INVALID, SETTINGS, ASSET, future types
}

// moduleStore maps FirmwareModuleStore to the JSON "l" letter.
func moduleStore(s uint64) string {
	switch s {
	case 0:
		return "m"
	case 1:
		return "f"
	case 2:
		return "b"
	case 3:
		return "t"
	}
	return strconv.FormatUint(s, 10)
}

// pbFields walks the top-level fields of a protobuf message. For varint and
// fixed fields v holds the value; for length-delimited ones data does.
func pbFields(b []byte, fn func(num, wt int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: bad field key", ErrDescribePayload)
		}
		b = b[n:]
		num, wt := int(key>>3), int(key&7)
		if num == 0 {
			return fmt.Errorf("%w: field number 0", ErrDescribePayload)
		}
		var v uint64
		var data []byte
		switch wt {
		case pbVarint:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return fmt.Errorf("%w: bad varint", ErrDescribePayload)
			}
			b = b[n:]
		case pbFixed64:
			if len(b) < 8 {
				return fmt.Errorf("%w: short fixed64", ErrDescribePayload)
			}
			v, b = binary.LittleEndian.Uint64(b), b[8:]
		case pbFixed32:
			if len(b) < 4 {
				return fmt.Errorf("%w: short fixed32", ErrDescribePayload)
			}
			v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case pbBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return fmt.Errorf("%w: bad length", ErrDescribePayload)
			}
			data, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return fmt.Errorf("%w: unsupported wire type %d", ErrDescribePayload, wt)
		}
		if err := fn(num, wt, v, data); err != nil {
			return err
		}
	}
	return nil
}
