package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const sysJSONFull = `{"p":3,"m":[{"s":1048576,"l":"m","vc":30,"vv":30,"f":"s","n":"1","v":3302,"d":[]},` +
	`{"s":131072,"l":"m","vc":30,"vv":30,"u":"2f9a1c53b0e4d8a77b61c2d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081",` +
	`"f":"u","n":"1","v":6,"d":[{"f":"s","n":"1","v":3302}]}],"imei":"352753090012345"}`

var sysFull = SystemDescribe{Platform: 3, IMEI: "352753090012345", Modules: []FirmwareModule{
	{MaxSize: 1048576, Store: "m", Checked: 30, Passed: 30, Function: "s", Index: "1", Version: 3302, Dependencies: []ModuleDependency{}},
	{MaxSize: 131072, Store: "m", Checked: 30, Passed: 30, Hash: "2f9a1c53b0e4d8a77b61c2d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081",
		Function: "u", Index: "1", Version: 6, Dependencies: []ModuleDependency{{Function: "s", Index: "1", Version: 3302}}},
}}

var appSim = AppDescribe{Functions: []string{"led"}, Variables: []VariableDecl{
	{"temp", VariableDouble}, {"count", VariableInt32}, {"label", VariableString}, {"on", VariableBool}}}

// Hand-assembled particle.cloud.SystemDescribe (cloud/describe.proto):
//
//	0a 3f  module #1 (63 bytes)
//	       08 05  type USER_PART     10 01  index 1      18 06  version 6
//	       28 80 80 08  max_size 131072
//	       35 1e000000  checked_flags 30 (fixed32)   3d 1e000000  passed_flags 30
//	       42 20 <32-byte hash>
//	       4a 07  dependency: 08 04 (SYSTEM_PART) 10 01 (index 1) 18 e6 19 (version 3302)
//	0a 06  module #2: 08 02 (BOOTLOADER) 18 0b (version 11) 20 01 (FACTORY store)
//	12 0f  imei "352753090012345"
//	30 01  protected_state true
//	78 05  field 15, unknown: skipped
var sysProtobuf = hexb("0a3f 0805 1001 1806 28808008 351e000000 3d1e000000" +
	"4220 2f9a1c53b0e4d8a77b61c2d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081" +
	"4a07 0804 1001 18e619" +
	"0a06 0802 180b 2001" +
	"120f" + asc("352753090012345") + "3001 7805")

var sysFromProtobuf = SystemDescribe{IMEI: "352753090012345", ProtectedState: true, Modules: []FirmwareModule{
	{MaxSize: 131072, Store: "m", Checked: 30, Passed: 30, Hash: "2f9a1c53b0e4d8a77b61c2d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081",
		Function: "u", Index: "1", Version: 6, Dependencies: []ModuleDependency{{Function: "s", Index: "1", Version: 3302}}},
	{Store: "f", Function: "b", Index: "0", Version: 11, Dependencies: []ModuleDependency{}},
}}

// describeCases are describe payloads with their parsed form.
var describeCases = []struct {
	name    string
	flags   DescribeFlags
	payload []byte
	want    Description
}{
	{"app", DescribeApplication, []byte(appJSON), Description{App: &appSim}},
	{"app_empty", DescribeApplication, []byte(`{"f":[],"v":{}}`), Description{App: &AppDescribe{Functions: []string{}}}},
	{"app_string_types", DescribeApplication,
		[]byte(`{"f":["a"],"v":{"i":"int32","j":"INT","d":"double","s":"string","b":"bool"}}`),
		Description{App: &AppDescribe{Functions: []string{"a"}, Variables: []VariableDecl{
			{"i", VariableInt32}, {"j", VariableInt32}, {"d", VariableDouble}, {"s", VariableString}, {"b", VariableBool}}}}},
	{"app_no_keys", DescribeApplication, []byte(`{}`), Description{App: &AppDescribe{}}},
	{"app_duplicate_name", DescribeApplication, []byte(`{"v":{"x":2,"y":1,"x":9}}`),
		Description{App: &AppDescribe{Variables: []VariableDecl{{"x", VariableDouble}, {"y", VariableBool}}}}},
	{"system_json", DescribeSystem, []byte(sysJSONFull), Description{System: &sysFull}},
	{"system_protobuf", DescribeSystem, sysProtobuf, Description{System: &sysFromProtobuf}},
	// Device OS 3.3.1 answering flags 3: the two bodies run together without a comma
	// (docs/particle-protocol.md#describe ✔).
	{"flags3_concatenated", DescribeSystem | DescribeApplication, []byte(`{"p":3,"m":[]"f":["led"],"v":{"on":1}}`),
		Description{System: &SystemDescribe{Platform: 3, Modules: []FirmwareModule{}},
			App: &AppDescribe{Functions: []string{"led"}, Variables: []VariableDecl{{"on", VariableBool}}}}},
	// Very old firmware and collider: one merged JSON object.
	{"legacy_merged", 0, []byte(`{"p":6,"m":[],"f":["go"],"v":{"n":"int32"}}`),
		Description{System: &SystemDescribe{Platform: 6, Modules: []FirmwareModule{}},
			App: &AppDescribe{Functions: []string{"go"}, Variables: []VariableDecl{{"n", VariableInt32}}}}},
	{"metrics", DescribeMetrics, hexb("000400 0102"), Description{Metrics: hexb("0004000102")}},
}

func TestParseDescription(t *testing.T) {
	for _, tc := range describeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDescription(tc.flags, tc.payload)
			mustEqual(t, err, got, tc.want)
		})
	}
}

func TestParseDescriptionErrors(t *testing.T) {
	tests := []struct {
		name    string
		flags   DescribeFlags
		payload string
	}{
		{"not_json_app", DescribeApplication, "hello"},
		{"broken_json", DescribeApplication, `{"f":["a"]`},
		{"no_system_keys", DescribeSystem, `{"x":1}`},
		{"v_not_object", DescribeApplication, `{"v":[1]}`},
		{"unknown_type_name", DescribeApplication, `{"v":{"x":"float"}}`},
		{"system_wrong_type", DescribeSystem, `{"p":"three"}`},
		{"protobuf_truncated", DescribeSystem, "\x0a\x3f\x08"},
		{"protobuf_group", DescribeSystem, "\x0b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseDescription(tc.flags, []byte(tc.payload)); err == nil {
				t.Fatal("ParseDescription succeeded, want an error")
			}
		})
	}
}

func TestAppDescribeJSON(t *testing.T) {
	b, err := json.Marshal(appSim)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != appJSON {
		t.Fatalf("MarshalJSON = %s, want %s", b, appJSON)
	}
	empty, _ := json.Marshal(AppDescribe{})
	if string(empty) != `{"f":[],"v":{}}` {
		t.Fatalf("empty app describe = %s", empty)
	}
	odd := AppDescribe{Functions: []string{`q"uote`}, Variables: []VariableDecl{{`a\b`, VariableInt32}}}
	b, _ = json.Marshal(odd)
	var back AppDescribe
	if err := json.Unmarshal(b, &back); err != nil || back.Functions[0] != odd.Functions[0] || back.Variables[0] != odd.Variables[0] {
		t.Fatalf("escaping round trip %s -> %+v, %v", b, back, err)
	}
	if typ, ok := appSim.VariableType("label"); !ok || typ != VariableString {
		t.Fatal("VariableType lookup failed")
	}
}

func TestSystemDescribeJSONRoundTrip(t *testing.T) {
	b, err := json.Marshal(sysFull)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != sysJSONFull {
		t.Fatalf("system describe JSON\n got  %s\n want %s", b, sysJSONFull)
	}
	m, ok := sysFull.UserModule()
	if !ok || m.Hash[:8] != "2f9a1c53" {
		t.Fatalf("UserModule = %+v", m)
	}
}

func TestVariableTypes(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want VariableType
	}{{"int32", VariableInt32}, {"INT", VariableInt32}, {"double", VariableDouble}, {"string", VariableString}, {"bool", VariableBool}, {"Boolean", VariableBool}} {
		if got, err := ParseVariableType(tc.s); err != nil || got != tc.want {
			t.Errorf("ParseVariableType(%q) = %v, %v", tc.s, got, err)
		}
		if strings.ToLower(tc.want.String()) != tc.want.String() {
			t.Errorf("String() not lower case")
		}
	}
	if _, err := ParseVariableType("float"); !errors.Is(err, ErrVariableType) {
		t.Errorf("float: %v", err)
	}
	if VariableType(7).String() != "unknown(7)" {
		t.Errorf("unknown type string = %s", VariableType(7))
	}
}

func TestVariableValues(t *testing.T) {
	tests := []struct {
		typ  VariableType
		v    any
		wire string
	}{
		{VariableBool, true, "01"},
		{VariableBool, false, "00"},
		{VariableInt32, int32(-123), "ffffff85"},
		{VariableInt32, int32(2147483647), "7fffffff"},
		{VariableDouble, 21.5, "0000000000803540"},
		{VariableDouble, -1.0, "000000000000f0bf"},
		{VariableString, "hi", "6869"},
		{VariableString, "", ""},
	}
	for _, tc := range tests {
		b, err := AppendVariable(nil, tc.typ, tc.v)
		if err != nil || string(b) != string(hexb(tc.wire)) {
			t.Errorf("AppendVariable(%s, %v) = %x, %v; want %s", tc.typ, tc.v, b, err, tc.wire)
		}
		got, err := DecodeVariable(tc.typ, hexb(tc.wire))
		if err != nil || got != tc.v {
			t.Errorf("DecodeVariable(%s, %s) = %v, %v; want %v", tc.typ, tc.wire, got, err, tc.v)
		}
	}
	if b, err := AppendVariable(nil, VariableInt32, 7); err != nil || string(b) != "\x00\x00\x00\x07" {
		t.Errorf("int argument: %x, %v", b, err)
	}
	bad := []struct {
		typ VariableType
		v   any
	}{{VariableInt32, int64(1)}, {VariableInt32, 1 << 40}, {VariableBool, 1}, {VariableDouble, float32(1)}, {VariableString, 5}, {3, "x"}}
	for _, tc := range bad {
		if _, err := AppendVariable(nil, tc.typ, tc.v); err == nil {
			t.Errorf("AppendVariable(%s, %T) succeeded", tc.typ, tc.v)
		}
	}
	for _, tc := range []struct {
		typ  VariableType
		wire string
	}{{VariableBool, ""}, {VariableInt32, "0102"}, {VariableDouble, "00"}, {5, "00"}} {
		if _, err := DecodeVariable(tc.typ, hexb(tc.wire)); err == nil {
			t.Errorf("DecodeVariable(%s, %q) succeeded", tc.typ, tc.wire)
		}
	}
}
