package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func roundTrip(t testing.TB, m Message) *Message {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var out Message
	if err := out.Decode(b); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestOTAv3RoundTrips(t *testing.T) {
	sum := bytes.Repeat([]byte{0xab}, 32)
	start := UpdateStart{FileSize: 262144, ChunkSize: 512, SHA256: sum, DiscardData: true}
	m := roundTrip(t, NewUpdateStart(7, 0x21, start))
	if Classify(m) != KindUpdateStart || m.Type != Confirmable || !bytes.Equal(m.Token, []byte{0x21}) {
		t.Fatalf("update start: %s %s % x", Classify(m), m.Type, m.Token)
	}
	if got, err := ParseUpdateStart(m); err != nil || !reflect.DeepEqual(got, start) {
		t.Fatalf("ParseUpdateStart = %+v, %v", got, err)
	}
	// The option numbers Device OS uses: file size 2057 as a minimal uint.
	if v, _ := m.Option(OptionFileSize); !bytes.Equal(v, []byte{0x04, 0x00, 0x00}) {
		t.Fatalf("file size option % x", v)
	}

	st := UpdateStarted{Window: 256, Offset: 4096}
	m = roundTrip(t, NewUpdateStarted(Confirmable, 9, 0x21, st))
	if got, err := ParseUpdateStarted(m); err != nil || got != st || m.Code != CodeCreated {
		t.Fatalf("ParseUpdateStarted = %+v, %v", got, err)
	}
	if _, err := ParseUpdateStarted(ptr(NewResponse(Confirmable, 9, 1, CodeServiceUnavailable, nil))); err == nil {
		t.Fatal("an error code parsed as started")
	}

	m = roundTrip(t, NewUpdateChunk(3, 300, []byte("data")))
	if Classify(m) != KindUpdateChunk || m.Type != NonConfirmable || len(m.Token) != 0 {
		t.Fatalf("update chunk: %s %s", Classify(m), m.Type)
	}
	if i, d, err := ParseUpdateChunk(m); err != nil || i != 300 || string(d) != "data" {
		t.Fatalf("ParseUpdateChunk = %d %q %v", i, d, err)
	}

	ack := UpdateAck{Index: 10, Received: []bool{false, true, false, false}}
	ack.Received = append(ack.Received, make([]bool, 30)...)
	ack.Received = append(ack.Received, true) // bit 34: second word
	m = roundTrip(t, NewUpdateAck(4, ack))
	if !IsUpdateAck(m) || len(m.Payload) != 8 {
		t.Fatalf("update ack: %v, payload % x", IsUpdateAck(m), m.Payload)
	}
	if m.Payload[0] != 0x02 || m.Payload[4] != 0x04 {
		t.Fatalf("bitmap not little-endian words: % x", m.Payload)
	}
	got, err := ParseUpdateAck(m)
	if err != nil || got.Index != 10 || !reflect.DeepEqual(got.Received, ack.Received) {
		t.Fatalf("ParseUpdateAck = %+v, %v", got, err)
	}
	for i, want := range map[uint32]bool{1: true, 10: true, 11: false, 12: true, 13: false, 45: true, 46: false} {
		if got.Has(i) != want {
			t.Errorf("Has(%d) = %v", i, !want)
		}
	}
	if m := roundTrip(t, NewUpdateAck(4, UpdateAck{Index: 3})); len(m.Payload) != 0 {
		t.Fatalf("in-order ack with a bitmap % x", m.Payload)
	}

	m = roundTrip(t, NewUpdateFinish(5, 0x22, true, true))
	if c, d, err := ParseUpdateFinish(m); err != nil || !c || !d {
		t.Fatalf("ParseUpdateFinish = %v %v %v", c, d, err)
	}
	if c, d, err := ParseUpdateFinish(roundTrip(t, NewUpdateFinish(5, 0x22, false, false))); err != nil || c || d {
		t.Fatalf("plain finish = %v %v %v", c, d, err)
	}
}

func TestOTAv3Refusals(t *testing.T) {
	for _, c := range []struct {
		name string
		u    UpdateStart
	}{
		{"no file size", UpdateStart{ChunkSize: 512}},
		{"small chunk", UpdateStart{FileSize: 10, ChunkSize: 256}},
		{"odd chunk", UpdateStart{FileSize: 10, ChunkSize: 514}},
		{"short hash", UpdateStart{FileSize: 10, ChunkSize: 512, SHA256: []byte{1, 2}}},
	} {
		if _, err := ParseUpdateStart(roundTrip(t, NewUpdateStart(1, 1, c.u))); !errors.Is(err, ErrOTAPayload) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, _, err := ParseUpdateChunk(roundTrip(t, NewUpdateChunk(1, 0, []byte("x")))); !errors.Is(err, ErrOTAPayload) {
		t.Errorf("chunk index 0: %v", err)
	}
	bad := NewUpdateAck(1, UpdateAck{Index: 1})
	bad.Payload = []byte{1, 2, 3}
	if _, err := ParseUpdateAck(roundTrip(t, bad)); !errors.Is(err, ErrOTAPayload) {
		t.Errorf("ragged bitmap: %v", err)
	}
}

// FuzzParseUpdateAck: any UpdateAck that parses re-encodes to the same
// acknowledgement.
func FuzzParseUpdateAck(f *testing.F) {
	for _, a := range []UpdateAck{{Index: 3}, {Index: 1, Received: []bool{false, true}}} {
		b, _ := ptr(NewUpdateAck(1, a)).MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if m.Decode(b) != nil {
			return
		}
		a, err := ParseUpdateAck(&m)
		if err != nil {
			return
		}
		a2, err := ParseUpdateAck(roundTrip(t, NewUpdateAck(m.ID, a)))
		if err != nil || a2.Index != a.Index || !reflect.DeepEqual(a2.Received, a.Received) {
			t.Fatalf("round trip %+v -> %+v, %v", a, a2, err)
		}
	})
}

// FuzzParseUpdateStart: whatever parses as UpdateStart re-encodes to the
// same request.
func FuzzParseUpdateStart(f *testing.F) {
	b, _ := ptr(NewUpdateStart(1, 2, UpdateStart{FileSize: 1000, ChunkSize: 512})).MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if m.Decode(b) != nil {
			return
		}
		u, err := ParseUpdateStart(&m)
		if err != nil {
			return
		}
		u2, err := ParseUpdateStart(roundTrip(t, NewUpdateStart(1, 2, u)))
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("round trip %+v -> %+v, %v", u, u2, err)
		}
	})
}
