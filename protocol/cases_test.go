package protocol

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// This file is the shared table of raw CoAP messages used by the unit tests,
// the fuzz seeds and the benchmarks. Every wire form is assembled by hand
// from docs/particle-protocol.md and RFC 7252 — never produced by
// the encoder under test. The transcript in testdata/frames.golden (built by
// testdata/gen.sh with openssl) repeats many of them inside encrypted frames.

// hexb decodes hex written with spaces and '|' separators for readability.
func hexb(s string) []byte {
	s = strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("bad hex in test table: " + err.Error())
	}
	return b
}

// asc returns the hex of an ASCII string, for building wires by hand.
func asc(s string) string { return hex.EncodeToString([]byte(s)) }

func path(v string) Option  { return Option{Number: OptionURIPath, Value: []byte(v)} }
func query(v []byte) Option { return Option{Number: OptionURIQuery, Value: v} }

// coapCase is one hand-assembled message.
type coapCase struct {
	name string
	wire []byte
	// want is the expected decode (nil slices for absent parts).
	want Message
	kind Kind
	// build, when set, is the catalogue constructor that must produce wire
	// exactly. Non-canonical wires (what some firmware sends but we never
	// emit) leave it nil.
	build func() (Message, error)
	// check, when set, runs the catalogue parser and asserts typed fields.
	check func(t *testing.T, m *Message)
	// lenient marks wires our encoder writes differently (decode-only).
	lenient bool
}

func ok(m Message) (Message, error) { return m, nil }

var longEventName = strings.Repeat("n", 300) // needs the 2-byte length extension (≥ 269)

// helloObserved is the Hello of Device OS 3.3.1 gcc seen on the wire
// (docs/particle-protocol.md#hello ✔).
var helloObserved = Hello{ProductID: 3, ProductVersion: 0xFFFF, Flags: 0x36, PlatformID: 3,
	SystemVersion: 3302, MaxMessageSize: 960, MaxBinarySize: 0x19000, OTAChunkSize: 512}

var argonID = hexb("e00fce68 0123 4567 89ab cdef")

var helloArgon = Hello{ProductID: 12, ProductVersion: 0xFFFF, Flags: HelloDeviceDescribe | HelloGoodbye,
	PlatformID: 12, DeviceID: argonID, SystemVersion: 6200, MaxMessageSize: 1152, MaxBinarySize: 1 << 20, OTAChunkSize: 512}

const (
	sysJSONShort = `{"p":3,"m":[{"s":1048576,"l":"m","vc":30,"vv":30,"f":"s","n":"1","v":3302,"d":[]}]}`
	appJSON      = `{"f":["led"],"v":{"temp":9,"count":2,"label":4,"on":1}}`
)

var coapCases = []coapCase{
	{
		name: "hello",
		wire: hexb("5002 9c3b | b1 68 | ff | 0003 ffff 0036 0003 00 00 | 0ce6 03c0 00019000 0200"),
		want: Message{Type: NonConfirmable, Code: CodePOST, ID: 0x9c3b, Options: []Option{path("h")},
			Payload: hexb("0003 ffff 0036 0003 0000 0ce6 03c0 00019000 0200")},
		kind:  KindHello,
		build: func() (Message, error) { return ok(NewHello(NonConfirmable, 0x9c3b, helloObserved)) },
		check: func(t *testing.T, m *Message) {
			h, err := ParseHelloMessage(m)
			mustEqual(t, err, h, helloObserved)
		},
	},
	{
		name: "hello_udp",
		wire: hexb("4002 0001 | b1 68 | ff | 000c ffff 0030 000c 00 0c" + "e00fce680123456789abcdef" + "1838 0480 00100000 0200"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 1, Options: []Option{path("h")},
			Payload: hexb("000c ffff 0030 000c 000c e00fce680123456789abcdef 1838 0480 00100000 0200")},
		kind:  KindHello,
		build: func() (Message, error) { return ok(NewHello(Confirmable, 1, helloArgon)) },
		check: func(t *testing.T, m *Message) {
			h, err := ParseHelloMessage(m)
			mustEqual(t, err, h, helloArgon)
		},
	},
	{
		name:  "server_hello",
		wire:  hexb("5002 4000 | b1 68"),
		want:  Message{Type: NonConfirmable, Code: CodePOST, ID: 0x4000, Options: []Option{path("h")}},
		kind:  KindHello,
		build: func() (Message, error) { return ok(NewServerHello(NonConfirmable, 0x4000)) },
		check: func(t *testing.T, m *Message) {
			h, err := ParseHelloMessage(m)
			mustEqual(t, err, h, Hello{})
		},
	},
	{
		name: "describe_request_app",
		wire: hexb("4101 4004 04 | b1 64 | 41 02"),
		want: Message{Type: Confirmable, Code: CodeGET, ID: 0x4004, Token: []byte{4},
			Options: []Option{path("d"), query([]byte{2})}},
		kind:  KindDescribeRequest,
		build: func() (Message, error) { return NewDescribeRequest(0x4004, 4, DescribeApplication, nil) },
		check: func(t *testing.T, m *Message) {
			r, err := ParseDescribeRequest(m)
			mustEqual(t, err, r, DescribeRequest{Flags: DescribeApplication})
		},
	},
	{
		// Block2 (23) after Uri-Query (15): delta 8, len 1; num 2, m 0, szx 5 (512) = 0x25.
		name: "describe_request_block2",
		wire: hexb("4101 4008 09 | b1 64 | 41 01 | 81 25"),
		want: Message{Type: Confirmable, Code: CodeGET, ID: 0x4008, Token: []byte{9},
			Options: []Option{path("d"), query([]byte{1}), {Number: OptionBlock2, Value: []byte{0x25}}}},
		kind: KindDescribeRequest,
		build: func() (Message, error) {
			return NewDescribeRequest(0x4008, 9, DescribeSystem, &Block{Num: 2, Size: 512})
		},
		check: func(t *testing.T, m *Message) {
			r, err := ParseDescribeRequest(m)
			mustEqual(t, err, r, DescribeRequest{Flags: DescribeSystem, Block2: &Block{Num: 2, Size: 512}})
		},
	},
	{
		name: "describe_post_system",
		wire: hexb("4102 9c3c 7a | b1 64 | 41 01 | ff" + asc(sysJSONShort)),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x9c3c, Token: []byte{0x7a},
			Options: []Option{path("d"), query([]byte{1})}, Payload: []byte(sysJSONShort)},
		kind: KindDescribePost,
		build: func() (Message, error) {
			return NewDescribePost(0x9c3c, 0x7a, DescribeBody{Flags: DescribeSystem, Payload: []byte(sysJSONShort)})
		},
		check: func(t *testing.T, m *Message) {
			b, err := ParseDescribePost(m)
			mustEqual(t, err, b, DescribeBody{Flags: DescribeSystem, Payload: []byte(sysJSONShort)})
			d, err := ParseDescription(b.Flags, b.Payload)
			mustEqual(t, err, d, Description{System: &SystemDescribe{Platform: 3, Modules: []FirmwareModule{{
				MaxSize: 1048576, Store: "m", Checked: 30, Passed: 30, Function: "s", Index: "1", Version: 3302,
				Dependencies: []ModuleDependency{}}}}})
		},
	},
	{
		// Content-Format 12: delta 1 = 0x11 0x2a; Uri-Query: delta 3 = 0x31 0x01;
		// Block1 27: delta 12 = 0xc1, num 0 m 1 szx 6 (1024) = 0x0e.
		name: "describe_post_protobuf_block1",
		wire: hexb("4102 0005 11 | b1 64 | 11 2a | 31 01 | c1 0e | ff 0a00"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 5, Token: []byte{0x11},
			Options: []Option{path("d"), {Number: OptionContentFormat, Value: []byte{42}}, query([]byte{1}),
				{Number: OptionBlock1, Value: []byte{0x0e}}},
			Payload: hexb("0a00")},
		kind: KindDescribePost,
		build: func() (Message, error) {
			return NewDescribePost(5, 0x11, DescribeBody{Flags: DescribeSystem, ContentFormat: ContentFormatOctetStream,
				HasContentFormat: true, Block: &Block{More: true, Size: 1024}, Payload: hexb("0a00")})
		},
		check: func(t *testing.T, m *Message) {
			b, err := ParseDescribePost(m)
			mustEqual(t, err, b, DescribeBody{Flags: DescribeSystem, ContentFormat: 42, HasContentFormat: true,
				Block: &Block{More: true, Size: 1024}, Payload: hexb("0a00")})
		},
	},
	{
		// ETag 4: delta 4 len 4 = 0x44; Block2 23: delta 19 = nibble 13 + ext 6, len 1 = 0xd1 0x06;
		// num 0, m 1, szx 5 = 0x0d.
		name: "describe_response_block2_etag",
		wire: hexb("4145 9c50 09 | 44 deadbeef | d1 06 0d | ff" + asc(`{"p":3`)),
		want: Message{Type: Confirmable, Code: CodeContent, ID: 0x9c50, Token: []byte{9},
			Options: []Option{{Number: OptionETag, Value: hexb("deadbeef")}, {Number: OptionBlock2, Value: []byte{0x0d}}},
			Payload: []byte(`{"p":3`)},
		kind: KindResponse,
		build: func() (Message, error) {
			return NewDescribeResponse(Confirmable, 0x9c50, 9, DescribeBody{ETag: hexb("deadbeef"),
				Block: &Block{More: true, Size: 512}, Payload: []byte(`{"p":3`)})
		},
		check: func(t *testing.T, m *Message) {
			b, err := ParseDescribeResponse(m)
			mustEqual(t, err, b, DescribeBody{ETag: hexb("deadbeef"), Block: &Block{More: true, Size: 512}, Payload: []byte(`{"p":3`)})
		},
	},
	{
		name: "function_call",
		wire: hexb("4102 4001 01 | b1 66 | 03" + asc("led") + "| 42" + asc("on")),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x4001, Token: []byte{1},
			Options: []Option{path("f"), path("led"), query([]byte("on"))}},
		kind:  KindFunctionCall,
		build: func() (Message, error) { return ok(NewFunctionCall(0x4001, 1, "led", "on")) },
		check: func(t *testing.T, m *Message) {
			c, err := ParseFunctionCall(m)
			mustEqual(t, err, c, FunctionCall{Name: "led", Argument: "on"})
		},
	},
	{
		// A zero-length Uri-Query is still sent: delta 4, len 0 = 0x40.
		name: "function_call_empty_arg",
		wire: hexb("4102 4009 0a | b1 66 | 03" + asc("led") + "| 40"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x4009, Token: []byte{0x0a},
			Options: []Option{path("f"), path("led"), {Number: OptionURIQuery, Value: []byte{}}}},
		kind:  KindFunctionCall,
		build: func() (Message, error) { return ok(NewFunctionCall(0x4009, 0x0a, "led", "")) },
		check: func(t *testing.T, m *Message) {
			c, err := ParseFunctionCall(m)
			mustEqual(t, err, c, FunctionCall{Name: "led"})
		},
	},
	{
		name:  "function_result",
		wire:  hexb("5144 9c42 01 | ff 00000001"),
		want:  Message{Type: NonConfirmable, Code: CodeChanged, ID: 0x9c42, Token: []byte{1}, Payload: hexb("00000001")},
		kind:  KindResponse,
		build: func() (Message, error) { return ok(NewFunctionResult(NonConfirmable, 0x9c42, 1, 1)) },
		check: func(t *testing.T, m *Message) {
			v, err := ParseFunctionResult(m)
			mustEqual(t, err, v, int32(1))
		},
	},
	{
		name:  "function_result_negative",
		wire:  hexb("4144 0007 02 | ff ffffffff"),
		want:  Message{Type: Confirmable, Code: CodeChanged, ID: 7, Token: []byte{2}, Payload: hexb("ffffffff")},
		kind:  KindResponse,
		build: func() (Message, error) { return ok(NewFunctionResult(Confirmable, 7, 2, -1)) },
		check: func(t *testing.T, m *Message) {
			v, err := ParseFunctionResult(m)
			mustEqual(t, err, v, int32(-1))
		},
	},
	{
		name: "variable_request",
		wire: hexb("4101 4002 02 | b1 76 | 04" + asc("temp")),
		want: Message{Type: Confirmable, Code: CodeGET, ID: 0x4002, Token: []byte{2},
			Options: []Option{path("v"), path("temp")}},
		kind:  KindVariableRequest,
		build: func() (Message, error) { return ok(NewVariableRequest(0x4002, 2, "temp")) },
		check: func(t *testing.T, m *Message) {
			n, err := ParseVariableRequest(m)
			mustEqual(t, err, n, "temp")
		},
	},
	{
		// 21.5 as little-endian IEEE-754
		// (docs/particle-protocol.md#variables ✔).
		name: "variable_double",
		wire: hexb("5145 9c43 02 | ff 0000000000803540"),
		want: Message{Type: NonConfirmable, Code: CodeContent, ID: 0x9c43, Token: []byte{2}, Payload: hexb("0000000000803540")},
		kind: KindResponse,
		build: func() (Message, error) {
			v, err := AppendVariable(nil, VariableDouble, 21.5)
			return NewVariableValue(NonConfirmable, 0x9c43, 2, v), err
		},
		check: func(t *testing.T, m *Message) {
			v, err := DecodeVariable(VariableDouble, m.Payload)
			mustEqual(t, err, v, any(21.5))
		},
	},
	{
		name: "variable_int32",
		wire: hexb("5145 0008 03 | ff ffffff85"),
		want: Message{Type: NonConfirmable, Code: CodeContent, ID: 8, Token: []byte{3}, Payload: hexb("ffffff85")},
		kind: KindResponse,
		build: func() (Message, error) {
			v, err := AppendVariable(nil, VariableInt32, int32(-123))
			return NewVariableValue(NonConfirmable, 8, 3, v), err
		},
		check: func(t *testing.T, m *Message) {
			v, err := DecodeVariable(VariableInt32, m.Payload)
			mustEqual(t, err, v, any(int32(-123)))
		},
	},
	{
		name: "variable_bool",
		wire: hexb("5145 0009 04 | ff 01"),
		want: Message{Type: NonConfirmable, Code: CodeContent, ID: 9, Token: []byte{4}, Payload: []byte{1}},
		kind: KindResponse,
		build: func() (Message, error) {
			v, err := AppendVariable(nil, VariableBool, true)
			return NewVariableValue(NonConfirmable, 9, 4, v), err
		},
		check: func(t *testing.T, m *Message) {
			v, err := DecodeVariable(VariableBool, m.Payload)
			mustEqual(t, err, v, any(true))
		},
	},
	{
		name: "variable_string",
		wire: hexb("5145 9c44 05 | ff" + asc("hello wick")),
		want: Message{Type: NonConfirmable, Code: CodeContent, ID: 0x9c44, Token: []byte{5}, Payload: []byte("hello wick")},
		kind: KindResponse,
		build: func() (Message, error) {
			v, err := AppendVariable(nil, VariableString, "hello wick")
			return NewVariableValue(NonConfirmable, 0x9c44, 5, v), err
		},
		check: func(t *testing.T, m *Message) {
			v, err := DecodeVariable(VariableString, m.Payload)
			mustEqual(t, err, v, any("hello wick"))
		},
	},
	{
		name:  "variable_not_found",
		wire:  hexb("5184 9c47 06"),
		want:  Message{Type: NonConfirmable, Code: CodeNotFound, ID: 0x9c47, Token: []byte{6}},
		kind:  KindResponse,
		build: func() (Message, error) { return ok(NewResponse(NonConfirmable, 0x9c47, 6, CodeNotFound, nil)) },
	},
	{
		// Name of 31 bytes: length nibble 13, extension 31-13 = 0x12
		// (docs/particle-protocol.md#events ✔).
		name: "event_private",
		wire: hexb("5002 9c3f | b1 45 | 0d 12" + asc("particle/device/updates/enabled") + "| ff" + asc("true")),
		want: Message{Type: NonConfirmable, Code: CodePOST, ID: 0x9c3f,
			Options: []Option{path("E"), path("particle/device/updates/enabled")}, Payload: []byte("true")},
		kind: KindEvent,
		build: func() (Message, error) {
			return NewEvent(NonConfirmable, 0x9c3f, Event{Name: "particle/device/updates/enabled", Data: []byte("true"), Private: true, TTL: DefaultEventTTL})
		},
		check: func(t *testing.T, m *Message) {
			e, err := ParseEvent(m)
			mustEqual(t, err, e, Event{Name: "particle/device/updates/enabled", Data: []byte("true"), Private: true, TTL: 60})
		},
	},
	{
		// Max-Age (14) after Uri-Path (11): delta 3, length 3, always 3 bytes like Device OS.
		name: "event_public_ttl",
		wire: hexb("5002 9c41 | b1 65 | 04" + asc("temp") + "| 33 000e10 | ff" + asc("21.5")),
		want: Message{Type: NonConfirmable, Code: CodePOST, ID: 0x9c41,
			Options: []Option{path("e"), path("temp"), {Number: OptionMaxAge, Value: hexb("000e10")}}, Payload: []byte("21.5")},
		kind: KindEvent,
		build: func() (Message, error) {
			return NewEvent(NonConfirmable, 0x9c41, Event{Name: "temp", Data: []byte("21.5"), TTL: 3600})
		},
		check: func(t *testing.T, m *Message) {
			e, err := ParseEvent(m)
			mustEqual(t, err, e, Event{Name: "temp", Data: []byte("21.5"), TTL: 3600})
		},
	},
	{
		// Device OS writes the payload marker even for empty data (messages.cpp); RFC 7252 would reject it.
		name:    "event_empty_data_marker",
		wire:    hexb("5002 0010 | b1 45 | 03" + asc("abc") + "| ff"),
		want:    Message{Type: NonConfirmable, Code: CodePOST, ID: 0x10, Options: []Option{path("E"), path("abc")}},
		kind:    KindEvent,
		lenient: true,
		check: func(t *testing.T, m *Message) {
			e, err := ParseEvent(m)
			mustEqual(t, err, e, Event{Name: "abc", Private: true, TTL: 60})
		},
	},
	{
		// particle-collider sends the kind letter and the name in one option.
		name: "event_collider_path",
		wire: hexb("4002 0011 | b5" + asc("e/foo")),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x11, Options: []Option{path("e/foo")}},
		kind: KindEvent,
		check: func(t *testing.T, m *Message) {
			e, err := ParseEvent(m)
			mustEqual(t, err, e, Event{Name: "foo", TTL: 60})
		},
	},
	{
		name: "event_split_name",
		wire: hexb("5002 0012 | b1 45 | 05" + asc("spark") + "| 06" + asc("device")),
		want: Message{Type: NonConfirmable, Code: CodePOST, ID: 0x12, Options: []Option{path("E"), path("spark"), path("device")}},
		kind: KindEvent,
		check: func(t *testing.T, m *Message) {
			e, err := ParseEvent(m)
			mustEqual(t, err, e, Event{Name: "spark/device", Private: true, TTL: 60})
		},
	},
	{
		// Content-Format (12): delta 1, len 1, 60 = CBOR (Device OS 6.x).
		name: "event_cbor",
		wire: hexb("4002 0013 | b1 45 | 04" + asc("data") + "| 11 3c | ff a1616101"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x13,
			Options: []Option{path("E"), path("data"), {Number: OptionContentFormat, Value: []byte{60}}}, Payload: hexb("a1616101")},
		kind: KindEvent,
		build: func() (Message, error) {
			return NewEvent(Confirmable, 0x13, Event{Name: "data", Data: hexb("a1616101"), Private: true, TTL: DefaultEventTTL,
				ContentFormat: ContentFormatCBOR, HasContentFormat: true})
		},
		check: func(t *testing.T, m *Message) {
			e, err := ParseEvent(m)
			mustEqual(t, err, e, Event{Name: "data", Data: hexb("a1616101"), Private: true, TTL: 60,
				ContentFormat: ContentFormatCBOR, HasContentFormat: true})
		},
	},
	{
		// 300-byte name: length nibble 14, 2-byte extension 300-269 = 0x001f.
		name: "event_long_name",
		wire: hexb("5002 0014 | b1 45 | 0e 001f" + asc(longEventName) + "| ff 31"),
		want: Message{Type: NonConfirmable, Code: CodePOST, ID: 0x14,
			Options: []Option{path("E"), path(longEventName)}, Payload: []byte("1")},
		kind: KindEvent,
		build: func() (Message, error) {
			return NewEvent(NonConfirmable, 0x14, Event{Name: longEventName, Data: []byte("1"), Private: true, TTL: DefaultEventTTL})
		},
	},
	{
		name: "event_to_device",
		wire: hexb("5002 4005 | b1 45 | 0d 04" + asc("spark/device/name") + "| ff" + asc("wick-sim-1")),
		want: Message{Type: NonConfirmable, Code: CodePOST, ID: 0x4005,
			Options: []Option{path("E"), path("spark/device/name")}, Payload: []byte("wick-sim-1")},
		kind: KindEvent,
		build: func() (Message, error) {
			return NewEvent(NonConfirmable, 0x4005, Event{Name: "spark/device/name", Data: []byte("wick-sim-1"), Private: true, TTL: DefaultEventTTL})
		},
	},
	{
		name: "claim_code",
		wire: hexb("5002 0015 | b1 45 | 0d 0a" + asc("spark/device/claim/code") + "| ff" + asc("abcd1234")),
		want: Message{Type: NonConfirmable, Code: CodePOST, ID: 0x15,
			Options: []Option{path("E"), path("spark/device/claim/code")}, Payload: []byte("abcd1234")},
		kind: KindEvent,
		check: func(t *testing.T, m *Message) {
			e, err := ParseEvent(m)
			if err != nil {
				t.Fatal(err)
			}
			code, isClaim, err := ClaimCode(e)
			mustEqual(t, err, []any{code, isClaim}, []any{"abcd1234", true})
		},
	},
	{
		// Uri-Query 'u' after the prefix: delta 4, len 1 (events.cpp).
		name: "subscribe_my_devices",
		wire: hexb("4001 9c40 | b1 65 | 05" + asc("spark") + "| 41 75"),
		want: Message{Type: Confirmable, Code: CodeGET, ID: 0x9c40,
			Options: []Option{path("e"), path("spark"), query([]byte("u"))}},
		kind: KindSubscribe,
		build: func() (Message, error) {
			return ok(NewSubscribe(Confirmable, 0x9c40, Subscription{Prefix: "spark", MyDevices: true}))
		},
		check: func(t *testing.T, m *Message) {
			s, err := ParseSubscribe(m)
			mustEqual(t, err, s, Subscription{Prefix: "spark", MyDevices: true})
		},
	},
	{
		name: "subscribe_device_id",
		wire: hexb("4001 0020 | b1 65 | 04" + asc("temp") + "| ff" + asc("0123456789abcdef01234567")),
		want: Message{Type: Confirmable, Code: CodeGET, ID: 0x20,
			Options: []Option{path("e"), path("temp")}, Payload: []byte("0123456789abcdef01234567")},
		kind: KindSubscribe,
		build: func() (Message, error) {
			return ok(NewSubscribe(Confirmable, 0x20, Subscription{Prefix: "temp", DeviceID: "0123456789abcdef01234567"}))
		},
		check: func(t *testing.T, m *Message) {
			s, err := ParseSubscribe(m)
			mustEqual(t, err, s, Subscription{Prefix: "temp", DeviceID: "0123456789abcdef01234567"})
		},
	},
	{
		// Two Uri-Query options: the second has delta 0.
		name: "subscribe_binary_cbor",
		wire: hexb("5001 0021 | b1 65 | 04" + asc("cmd/") + "| 41 62 | 01 63"),
		want: Message{Type: NonConfirmable, Code: CodeGET, ID: 0x21,
			Options: []Option{path("e"), path("cmd/"), query([]byte("b")), query([]byte("c"))}},
		kind: KindSubscribe,
		build: func() (Message, error) {
			return ok(NewSubscribe(NonConfirmable, 0x21, Subscription{Prefix: "cmd/", Binary: true, CBOR: true}))
		},
		check: func(t *testing.T, m *Message) {
			s, err := ParseSubscribe(m)
			mustEqual(t, err, s, Subscription{Prefix: "cmd/", Binary: true, CBOR: true})
		},
	},
	{
		name:  "time_request",
		wire:  hexb("4101 9c3e 7c | b1 74"),
		want:  Message{Type: Confirmable, Code: CodeGET, ID: 0x9c3e, Token: []byte{0x7c}, Options: []Option{path("t")}},
		kind:  KindTimeRequest,
		build: func() (Message, error) { return ok(NewTimeRequest(0x9c3e, 0x7c)) },
	},
	{
		// The fixed layout the firmware reads at offsets 6..9
		// (docs/particle-protocol.md#time ✔).
		name:  "time_response",
		wire:  hexb("61 45 9c3e 7c ff 6553f100"),
		want:  Message{Type: Acknowledgement, Code: CodeContent, ID: 0x9c3e, Token: []byte{0x7c}, Payload: hexb("6553f100")},
		kind:  KindResponse,
		build: func() (Message, error) { return ok(NewTimeResponse(0x9c3e, 0x7c, 1700000000)) },
		check: func(t *testing.T, m *Message) {
			v, err := ParseTimeResponse(m)
			mustEqual(t, err, v, uint32(1700000000))
		},
	},
	{
		name:  "ping",
		wire:  hexb("4000 9c45"),
		want:  Message{Type: Confirmable, Code: CodeEmpty, ID: 0x9c45},
		kind:  KindPing,
		build: func() (Message, error) { return ok(NewPing(0x9c45)) },
	},
	{
		name:  "empty_ack",
		wire:  hexb("6000 9c45"),
		want:  Message{Type: Acknowledgement, Code: CodeEmpty, ID: 0x9c45},
		kind:  KindEmptyACK,
		build: func() (Message, error) { return ok(NewEmptyACK(0x9c45)) },
	},
	{
		name:  "reset",
		wire:  hexb("7000 1234"),
		want:  Message{Type: Reset, Code: CodeEmpty, ID: 0x1234},
		kind:  KindReset,
		build: func() (Message, error) { return ok(NewReset(0x1234)) },
	},
	{
		// ACK 4.00 answering a CON publish: spark-protocol's EventSlowdown.
		name:  "ack_slow_down",
		wire:  hexb("6080 9c41"),
		want:  Message{Type: Acknowledgement, Code: CodeBadRequest, ID: 0x9c41},
		kind:  KindResponse,
		build: func() (Message, error) { return ok(NewACK(0x9c41, nil, CodeBadRequest, nil)) },
	},
	{
		name: "signal_start",
		wire: hexb("4103 4003 03 | b1 73 | 41 01"),
		want: Message{Type: Confirmable, Code: CodePUT, ID: 0x4003, Token: []byte{3},
			Options: []Option{path("s"), query([]byte{1})}},
		kind:  KindSignal,
		build: func() (Message, error) { return ok(NewSignal(0x4003, 3, true)) },
		check: func(t *testing.T, m *Message) {
			on, err := ParseSignal(m)
			mustEqual(t, err, on, true)
		},
	},
	{
		name: "signal_stop",
		wire: hexb("4103 4004 04 | b1 73 | 41 00"),
		want: Message{Type: Confirmable, Code: CodePUT, ID: 0x4004, Token: []byte{4},
			Options: []Option{path("s"), query([]byte{0})}},
		kind:  KindSignal,
		build: func() (Message, error) { return ok(NewSignal(0x4004, 4, false)) },
		check: func(t *testing.T, m *Message) {
			on, err := ParseSignal(m)
			mustEqual(t, err, on, false)
		},
	},
	{
		name:  "signal_ack",
		wire:  hexb("6144 4003 03"),
		want:  Message{Type: Acknowledgement, Code: CodeChanged, ID: 0x4003, Token: []byte{3}},
		kind:  KindResponse,
		build: func() (Message, error) { return ok(NewACK(0x4003, []byte{3}, CodeChanged, nil)) },
	},
	{
		// No-Response (258) after Uri-Path (11): delta 247 = nibble 13 + ext 234 (0xea), len 0.
		// Payload: flags 0x05 (cloud reason, sleep), reason 2, sleep 300 = LEB128 ac 02.
		name: "goodbye_non",
		wire: hexb("5002 9c46 | b1 78 | d0 ea | ff 05 02 ac02"),
		want: Message{Type: NonConfirmable, Code: CodePOST, ID: 0x9c46,
			Options: []Option{path("x"), {Number: OptionNoResponse, Value: []byte{}}}, Payload: hexb("0502ac02")},
		kind: KindGoodbye,
		build: func() (Message, error) {
			return ok(NewGoodbye(NonConfirmable, 0x9c46, Goodbye{CloudReason: 2, SleepSeconds: 300}))
		},
		check: func(t *testing.T, m *Message) {
			g, err := ParseGoodbye(m)
			mustEqual(t, err, g, Goodbye{CloudReason: 2, SleepSeconds: 300})
		},
	},
	{
		name: "goodbye_con",
		wire: hexb("4002 0030 | b1 78 | ff 0a 28 07"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x30, Options: []Option{path("x")}, Payload: hexb("0a2807")},
		kind: KindGoodbye,
		build: func() (Message, error) {
			return ok(NewGoodbye(Confirmable, 0x30, Goodbye{ResetReason: 40, NetworkReason: 7}))
		},
		check: func(t *testing.T, m *Message) {
			g, err := ParseGoodbye(m)
			mustEqual(t, err, g, Goodbye{ResetReason: 40, NetworkReason: 7})
		},
	},
	{
		name: "key_change",
		wire: hexb("4103 0031 0b | b1 6b | 41 01"),
		want: Message{Type: Confirmable, Code: CodePUT, ID: 0x31, Token: []byte{0x0b},
			Options: []Option{path("k"), query([]byte{1})}},
		kind:  KindKeyChange,
		build: func() (Message, error) { return ok(NewKeyChange(0x31, 0x0b, KeyChangeDiscardSession)) },
		check: func(t *testing.T, m *Message) {
			f, err := ParseKeyChange(m)
			mustEqual(t, err, f, byte(1))
		},
	},
	{
		name: "server_moved",
		wire: hexb("4102 0032 0c | b1 4d | ff 0a00"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x32, Token: []byte{0x0c},
			Options: []Option{path("M")}, Payload: hexb("0a00")},
		kind: KindServerMoved,
	},
	{
		name: "update_begin",
		wire: hexb("4102 0040 0d | b1 75 | ff 01 0200 00019000 00 00000000"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x40, Token: []byte{0x0d},
			Options: []Option{path("u")}, Payload: hexb("01 0200 00019000 00 00000000")},
		kind: KindUpdateBegin,
		build: func() (Message, error) {
			return ok(NewUpdateBegin(0x40, 0x0d, UpdateBegin{Fast: true, ChunkSize: 512, FileSize: 0x19000}))
		},
		check: func(t *testing.T, m *Message) {
			u, present, err := ParseUpdateBegin(m)
			mustEqual(t, err, []any{u, present}, []any{UpdateBegin{Fast: true, ChunkSize: 512, FileSize: 0x19000}, true})
		},
	},
	{
		// crc32 as a 4-byte Uri-Query (delta 4 = 0x44), chunk index as a 2-byte one (delta 0 = 0x02).
		name: "chunk_fast",
		wire: hexb("4102 0041 0e | b1 63 | 44 cbf43926 | 02 0005 | ff 313233343536373839"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x41, Token: []byte{0x0e},
			Options: []Option{path("c"), query(hexb("cbf43926")), query(hexb("0005"))}, Payload: []byte("123456789")},
		kind: KindChunk,
		build: func() (Message, error) {
			return ok(NewChunk(0x41, 0x0e, Chunk{CRC32: 0xcbf43926, Index: 5, HasIndex: true, Data: []byte("123456789")}))
		},
		check: func(t *testing.T, m *Message) {
			c, err := ParseChunk(m)
			mustEqual(t, err, c, Chunk{CRC32: 0xcbf43926, Index: 5, HasIndex: true, Data: []byte("123456789")})
		},
	},
	{
		name:  "chunk_missed",
		wire:  hexb("4001 9c50 | b1 63 | ff 0005 0007"),
		want:  Message{Type: Confirmable, Code: CodeGET, ID: 0x9c50, Options: []Option{path("c")}, Payload: hexb("00050007")},
		kind:  KindChunkMissed,
		build: func() (Message, error) { return ok(NewChunkMissed(0x9c50, 5, 7)) },
		check: func(t *testing.T, m *Message) {
			idx, err := ParseChunkMissed(m)
			mustEqual(t, err, idx, []uint16{5, 7})
		},
	},
	{
		name:  "update_done",
		wire:  hexb("4103 0042 0f | b1 75"),
		want:  Message{Type: Confirmable, Code: CodePUT, ID: 0x42, Token: []byte{0x0f}, Options: []Option{path("u")}},
		kind:  KindUpdateDone,
		build: func() (Message, error) { return ok(NewUpdateDone(0x42, 0x0f)) },
	},
	{
		name: "update_start_v3",
		wire: hexb("4102 0043 10 | b1 53"),
		want: Message{Type: Confirmable, Code: CodePOST, ID: 0x43, Token: []byte{0x10}, Options: []Option{path("S")}},
		kind: KindUpdateStart,
	},
	{
		// Option 2000 with no Uri-Path: delta nibble 14, extension 2000-269 = 0x06c3, len 0.
		name: "unknown_option_ext16",
		wire: hexb("4001 0050 | e0 06c3"),
		want: Message{Type: Confirmable, Code: CodeGET, ID: 0x50, Options: []Option{{Number: 2000, Value: []byte{}}}},
		kind: KindUnknown,
	},
	{
		name: "token_8_bytes",
		wire: hexb("4845 0051 0102030405060708"),
		want: Message{Type: Confirmable, Code: CodeContent, ID: 0x51, Token: hexb("0102030405060708")},
		kind: KindResponse,
	},
}

// badCoapCases must fail to decode with the given error.
var badCoapCases = []struct {
	name string
	wire []byte
	err  error
}{
	{"empty", nil, ErrMessageTooShort},
	{"three_bytes", hexb("400100"), ErrMessageTooShort},
	{"version_0", hexb("0001 0000"), ErrMessageVersion},
	{"version_2", hexb("8001 0000"), ErrMessageVersion},
	{"tkl_9", hexb("4901 0000 010203040506070809"), ErrTokenLength},
	{"token_truncated", hexb("4201 0000 aa"), ErrMessageTooShort},
	{"delta_nibble_15", hexb("4001 0000 f1 00"), ErrOptionFormat},
	{"length_nibble_15", hexb("4001 0000 bf 00"), ErrOptionFormat},
	{"value_past_end", hexb("4001 0000 b5 68"), ErrOptionFormat},
	{"delta_ext8_missing", hexb("4001 0000 d0"), ErrOptionFormat},
	{"delta_ext16_missing", hexb("4001 0000 e0 01"), ErrOptionFormat},
	{"length_ext8_missing", hexb("4001 0000 0d"), ErrOptionFormat},
	{"option_number_overflow", hexb("4001 0000 e0 ffff e0 ffff"), ErrOptionFormat},
}

// mustEqual fails t unless err is nil and got equals want.
func mustEqual(t *testing.T, err error, got, want any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// golden holds the records of a testdata/*.golden file: name -> values in order.
type golden map[string][][]string

// loadGolden reads "name field..." lines, skipping blanks and # comments.
func loadGolden(t testing.TB, file string) golden {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := golden{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		g[fields[0]] = append(g[fields[0]], fields[1:])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

// hex1 returns the single hex value of a keyed record.
func (g golden) hex1(t testing.TB, name string) []byte {
	t.Helper()
	recs := g[name]
	if len(recs) != 1 || len(recs[0]) != 1 {
		t.Fatalf("golden record %q missing or not a single value", name)
	}
	b, err := hex.DecodeString(recs[0][0])
	if err != nil {
		t.Fatalf("golden record %q: %v", name, err)
	}
	return b
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
