package protocol

import (
	"errors"
	"reflect"
	"testing"
)

func TestParsersRejectOtherKinds(t *testing.T) {
	c, _ := caseByName("ping")
	m := c.want
	parsers := map[string]func(*Message) error{
		"hello":            func(m *Message) error { _, err := ParseHelloMessage(m); return err },
		"describe_request": func(m *Message) error { _, err := ParseDescribeRequest(m); return err },
		"describe_post":    func(m *Message) error { _, err := ParseDescribePost(m); return err },
		"function_call":    func(m *Message) error { _, err := ParseFunctionCall(m); return err },
		"variable_request": func(m *Message) error { _, err := ParseVariableRequest(m); return err },
		"event":            func(m *Message) error { _, err := ParseEvent(m); return err },
		"subscribe":        func(m *Message) error { _, err := ParseSubscribe(m); return err },
		"signal":           func(m *Message) error { _, err := ParseSignal(m); return err },
		"key_change":       func(m *Message) error { _, err := ParseKeyChange(m); return err },
		"goodbye":          func(m *Message) error { _, err := ParseGoodbye(m); return err },
		"update_begin":     func(m *Message) error { _, _, err := ParseUpdateBegin(m); return err },
		"chunk":            func(m *Message) error { _, err := ParseChunk(m); return err },
		"chunk_missed":     func(m *Message) error { _, err := ParseChunkMissed(m); return err },
		"describe_resp":    func(m *Message) error { _, err := ParseDescribeResponse(m); return err },
		"function_result":  func(m *Message) error { _, err := ParseFunctionResult(m); return err },
	}
	for name, parse := range parsers {
		if err := parse(&m); !errors.Is(err, ErrWrongKind) {
			t.Errorf("%s(ping) error = %v, want ErrWrongKind", name, err)
		}
	}
}

func TestCatalogueParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		wire  string
		parse func(*Message) error
		err   error
	}{
		{"describe_without_query", "4101 0001 01 | b1 64",
			func(m *Message) error { _, err := ParseDescribeRequest(m); return err }, ErrDescribeFlags},
		{"describe_flags_out_of_range", "4101 0001 01 | b1 64 | 41 08",
			func(m *Message) error { _, err := ParseDescribeRequest(m); return err }, ErrDescribeFlags},
		{"describe_two_byte_query", "4101 0001 01 | b1 64 | 42 0102",
			func(m *Message) error { _, err := ParseDescribeRequest(m); return err }, ErrDescribeFlags},
		{"describe_reserved_block_size", "4101 0001 01 | b1 64 | 41 01 | 81 07",
			func(m *Message) error { _, err := ParseDescribeRequest(m); return err }, ErrBlock},
		{"describe_post_without_flags", "4102 0001 01 | b1 64 | ff 7b7d",
			func(m *Message) error { _, err := ParseDescribePost(m); return err }, ErrDescribeFlags},
		{"function_without_name", "4102 0001 01 | b1 66",
			func(m *Message) error { _, err := ParseFunctionCall(m); return err }, ErrResourceName},
		{"variable_without_name", "4101 0001 01 | b1 76",
			func(m *Message) error { _, err := ParseVariableRequest(m); return err }, ErrResourceName},
		{"event_without_name", "5002 0001 | b1 45 | ff 31",
			func(m *Message) error { _, err := ParseEvent(m); return err }, ErrResourceName},
		{"event_max_age_5_bytes", "5002 0001 | b1 45 | 01 61 | 35 0102030405",
			func(m *Message) error { _, err := ParseEvent(m); return err }, ErrUintTooLong},
		{"function_result_short", "5144 0001 01 | ff 0001",
			func(m *Message) error { _, err := ParseFunctionResult(m); return err }, ErrFunctionResult},
		{"function_result_error_code", "5180 0001 01",
			func(m *Message) error { _, err := ParseFunctionResult(m); return err }, ErrWrongKind},
		{"time_with_option", "6145 0001 01 | c1 00 | ff 00000001",
			func(m *Message) error { _, err := ParseTimeResponse(m); return err }, ErrTimeResponse},
		{"time_two_byte_token", "6245 0001 0102 | ff 00000001",
			func(m *Message) error { _, err := ParseTimeResponse(m); return err }, ErrTimeResponse},
		{"time_wrong_code", "6144 0001 01 | ff 00000001",
			func(m *Message) error { _, err := ParseTimeResponse(m); return err }, ErrTimeResponse},
		{"signal_without_query", "4103 0001 01 | b1 73",
			func(m *Message) error { _, err := ParseSignal(m); return err }, ErrOptionFormat},
		{"goodbye_truncated_varint", "4002 0001 | b1 78 | ff 01 80",
			func(m *Message) error { _, err := ParseGoodbye(m); return err }, ErrGoodbyePayload},
		{"goodbye_missing_value", "4002 0001 | b1 78 | ff 03 01",
			func(m *Message) error { _, err := ParseGoodbye(m); return err }, ErrGoodbyePayload},
		{"chunk_without_crc", "4102 0001 01 | b1 63 | ff 00",
			func(m *Message) error { _, err := ParseChunk(m); return err }, ErrOTAPayload},
		{"chunk_short_crc", "4102 0001 01 | b1 63 | 42 0102",
			func(m *Message) error { _, err := ParseChunk(m); return err }, ErrOTAPayload},
		{"chunk_missed_odd", "4001 0001 | b1 63 | ff 000102",
			func(m *Message) error { _, err := ParseChunkMissed(m); return err }, ErrOTAPayload},
		{"update_begin_short", "4102 0001 01 | b1 75 | ff 0102",
			func(m *Message) error { _, _, err := ParseUpdateBegin(m); return err }, ErrOTAPayload},
		{"describe_response_4xx", "4184 0001 01",
			func(m *Message) error { _, err := ParseDescribeResponse(m); return err }, ErrWrongKind},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage(hexb(tc.wire))
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if err := tc.parse(&m); !errors.Is(err, tc.err) {
				t.Fatalf("error = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestParseHelloVariants(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Hello
		err     error
	}{
		{"empty", "", Hello{}, nil},
		{"old_flags_only", "0006 0000 0001", Hello{ProductID: 6, Flags: 1}, nil},
		{"no_trailing_fields", "0006 0002 0000 0006 0000", Hello{ProductID: 6, ProductVersion: 2, PlatformID: 6}, nil},
		{"max_message_size_only", "000a ffff 0004 000a 0000 0bb8 0400",
			Hello{ProductID: 10, ProductVersion: 0xffff, Flags: 4, PlatformID: 10, SystemVersion: 3000, MaxMessageSize: 1024}, nil},
		{"id_length_past_end", "000c ffff 0000 000c 000c e00fce68", Hello{}, ErrHelloPayload},
		{"two_byte_id_length", "000c ffff 0000 000c 0100 00", Hello{}, ErrHelloPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHello(hexb(tc.payload))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error = %v, want %v", err, tc.err)
				}
				return
			}
			mustEqual(t, err, got, tc.want)
		})
	}
}

func TestBlockValues(t *testing.T) {
	tests := []struct {
		b    Block
		wire string
	}{
		{Block{Num: 0, More: true, Size: 1024}, "0e"},
		{Block{Num: 2, Size: 512}, "25"},
		{Block{Num: 0, Size: 16}, ""},
		{Block{Num: 20, More: true, Size: 512}, "014d"},
		{Block{Num: 1<<20 - 1, Size: 1024}, "fffff6"},
	}
	for _, tc := range tests {
		v, err := tc.b.Value()
		if err != nil || string(v) != string(hexb(tc.wire)) {
			t.Errorf("%+v.Value() = %x, %v; want %s", tc.b, v, err, tc.wire)
		}
		got, err := ParseBlock(v)
		if err != nil || got != tc.b {
			t.Errorf("ParseBlock(%s) = %+v, %v", tc.wire, got, err)
		}
	}
	for _, bad := range []Block{{Size: 100}, {Size: 2048}, {Num: 1 << 20, Size: 16}} {
		if _, err := bad.Value(); !errors.Is(err, ErrBlock) {
			t.Errorf("%+v.Value() error = %v", bad, err)
		}
	}
	if _, err := ParseBlock(hexb("01020304")); !errors.Is(err, ErrBlock) {
		t.Errorf("4-byte block: %v", err)
	}
}

func TestMessageIDs(t *testing.T) {
	ids := NewMessageIDs(0xFFFE)
	got := []uint16{ids.Next(), ids.Next(), ids.Next()}
	if !reflect.DeepEqual(got, []uint16{0xFFFF, 0, 1}) {
		t.Fatalf("ids = %v", got)
	}
	var zero MessageIDs
	if zero.Next() != 1 {
		t.Fatal("zero MessageIDs does not start at 1")
	}
	if DeviceMessageIDSeed([SaltSize]byte{0x3a, 0x9c}) != 0x9c3a {
		t.Fatal("salt is not read little-endian")
	}
}

func TestTokens(t *testing.T) {
	tk := NewTokens(250)
	var got []byte
	for range 10 {
		b, ok := tk.Acquire()
		if !ok {
			t.Fatal("Acquire failed")
		}
		got = append(got, b)
	}
	if !reflect.DeepEqual(got, []byte{250, 251, 252, 253, 254, 255, 0, 1, 2, 3}) {
		t.Fatalf("tokens %v", got)
	}
	// After wrapping, outstanding tokens are skipped.
	tk.Release(251)
	for range 256 - 10 - 1 {
		if _, ok := tk.Acquire(); !ok && tk.Outstanding() < MaxOutstandingTokens {
			t.Fatal("Acquire failed below the limit")
		}
	}
	if tk.Outstanding() != MaxOutstandingTokens {
		t.Fatalf("outstanding %d, want the cap %d", tk.Outstanding(), MaxOutstandingTokens)
	}
	if _, ok := tk.Acquire(); ok {
		t.Fatal("Acquire beyond the cap succeeded")
	}
	tk.Release(252)
	tk.Release(252) // double release is a no-op
	if b, ok := tk.Acquire(); !ok || tk.Outstanding() != MaxOutstandingTokens {
		t.Fatalf("Acquire after release = %d, %v (outstanding %d)", b, ok, tk.Outstanding())
	}
	// Every outstanding token is distinct.
	seen := map[byte]bool{}
	tk2 := NewTokens(0)
	for range MaxOutstandingTokens {
		b, _ := tk2.Acquire()
		if seen[b] {
			t.Fatalf("token %d handed out twice", b)
		}
		seen[b] = true
	}
}

func TestTransportDefaults(t *testing.T) {
	if TransportTCP.DefaultType() != NonConfirmable || TransportUDP.DefaultType() != Confirmable {
		t.Fatal("wrong default types")
	}
	if TransportTCP.String() != "tcp" || TransportUDP.String() != "udp" {
		t.Fatal("wrong transport names")
	}
	if ServerKeyBlobSize(TransportTCP) != 512 || ServerKeyBlobSize(TransportUDP) != 320 {
		t.Fatal("wrong blob sizes")
	}
}

func TestEventHelpers(t *testing.T) {
	if _, err := NewEvent(NonConfirmable, 1, Event{Name: "x", TTL: MaxEventTTL + 1}); !errors.Is(err, ErrEventTTL) {
		t.Fatalf("ttl over max: %v", err)
	}
	m, err := NewEvent(NonConfirmable, 1, Event{Name: "x", TTL: DefaultEventTTL})
	if err != nil || len(m.Options) != 2 {
		t.Fatalf("TTL 60 must omit Max-Age: %+v, %v", m.Options, err)
	}
	// Like Device OS (`if (60 != ttl)`), any other TTL, 0 included, is sent as 3 bytes.
	m, err = NewEvent(NonConfirmable, 1, Event{Name: "x"})
	if v, ok := m.Option(OptionMaxAge); err != nil || !ok || string(v) != "\x00\x00\x00" {
		t.Fatalf("TTL 0: Max-Age %x, %v, %v", v, ok, err)
	}
	for name, want := range map[string]bool{"spark/status": true, "particle/device/updates/forced": true, "sparkle": false, "temp": false} {
		if IsSystemEventName(name) != want {
			t.Errorf("IsSystemEventName(%q) != %v", name, want)
		}
	}
	if !IsClaimClearEvent(ClaimClearEventName) || IsClaimClearEvent("spark/device/name") {
		t.Error("IsClaimClearEvent is wrong")
	}
	if _, isClaim, err := ClaimCode(Event{Name: ClaimCodeEventName}); !isClaim || !errors.Is(err, ErrClaimCode) {
		t.Errorf("empty claim code: %v, %v", isClaim, err)
	}
	if _, isClaim, err := ClaimCode(Event{Name: "temp", Data: []byte("x")}); isClaim || err != nil {
		t.Errorf("non-claim event: %v, %v", isClaim, err)
	}
}

func TestIsKeepAlive(t *testing.T) {
	if !IsKeepAlive([]byte{0}) || IsKeepAlive([]byte{0, 0}) || IsKeepAlive([]byte{1}) || IsKeepAlive(nil) {
		t.Fatal("IsKeepAlive is wrong")
	}
	if _, err := ParseMessage([]byte{0}); !errors.Is(err, ErrMessageTooShort) {
		t.Fatalf("keep-alive byte decodes: %v", err)
	}
}

func TestDescribeFlagsString(t *testing.T) {
	for f, want := range map[DescribeFlags]string{
		DescribeSystem: "system", DescribeSystem | DescribeApplication: "system|application",
		DescribeMetrics: "metrics", 0: "0x00", 0x09: "system|0x08",
	} {
		if f.String() != want {
			t.Errorf("%d.String() = %q, want %q", f, f.String(), want)
		}
	}
}
