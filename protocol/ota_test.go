package protocol

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func otaHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOTAv1DeviceAnswers checks the bytes of the device's OTA answers
// against the layouts Device OS builds by hand (messages.h: update_ready is
// a separate response 0x44 with one payload byte; chunk_received a
// separate response with code 0x44 or 0x80; update_done a PUT u without
// token).
func TestOTAv1DeviceAnswers(t *testing.T) {
	for _, c := range []struct {
		name string
		m    Message
		wire string
	}{
		{"update ready fast NON", NewUpdateReady(NonConfirmable, 0x1234, 0x0d, true), "5144 1234 0d | ff 01"},
		{"update ready slow CON", NewUpdateReady(Confirmable, 0x1234, 0x0d, false), "4144 1234 0d | ff 00"},
		{"chunk received ok", NewChunkReceived(NonConfirmable, 7, 0x22, true), "5144 0007 22"},
		{"chunk received bad", NewChunkReceived(NonConfirmable, 7, 0x22, false), "5180 0007 22"},
		{"update result", NewUpdateResult(NonConfirmable, 9, []byte("ok")), "5003 0009 | b1 75 | ff 6f6b"},
		{"update result empty", NewUpdateResult(Confirmable, 9, nil), "4003 0009 | b1 75"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if want := otaHex(t, c.wire); !bytes.Equal(got, want) {
				t.Fatalf("wire % x, want % x", got, want)
			}
		})
	}
	if k := Classify(ptr(NewUpdateResult(NonConfirmable, 1, nil))); k != KindUpdateDone {
		t.Fatalf("device result classified %s", k)
	}
}

func ptr(m Message) *Message { return &m }

func TestParseUpdateReady(t *testing.T) {
	for _, c := range []struct {
		name    string
		m       Message
		fast    bool
		wantErr bool
	}{
		{"fast", NewUpdateReady(NonConfirmable, 1, 2, true), true, false},
		{"slow", NewUpdateReady(NonConfirmable, 1, 2, false), false, false},
		{"no payload (old firmware)", NewResponse(NonConfirmable, 1, 2, CodeChanged, nil), false, false},
		{"other bits ignored", NewResponse(NonConfirmable, 1, 2, CodeChanged, []byte{0xFE}), false, false},
		{"refusal", NewACK(1, []byte{2}, CodeServiceUnavailable, nil), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fast, err := ParseUpdateReady(&c.m)
			if (err != nil) != c.wantErr || fast != c.fast {
				t.Fatalf("ParseUpdateReady = %v, %v; want fast %v, error %v", fast, err, c.fast, c.wantErr)
			}
		})
	}
}

func TestChunking(t *testing.T) {
	bin := make([]byte, 1000)
	for i := range bin {
		bin[i] = byte(i)
	}
	for _, c := range []struct {
		size, count int
	}{{512, 2}, {500, 2}, {1000, 1}, {1024, 1}, {1, 1000}, {999, 2}, {0, 0}} {
		if got := ChunkCount(len(bin), c.size); got != c.count {
			t.Errorf("ChunkCount(1000, %d) = %d, want %d", c.size, got, c.count)
		}
	}
	// Reassembling every chunk gives the binary back, zero-padded to
	// whole chunks.
	for _, size := range []int{1, 7, 256, 512, 999, 1000, 4096} {
		var all []byte
		for i := range ChunkCount(len(bin), size) {
			c := AppendChunkData(nil, bin, size, i)
			if len(c) != size {
				t.Fatalf("size %d: chunk %d has %d bytes", size, i, len(c))
			}
			all = append(all, c...)
		}
		if !bytes.Equal(all[:len(bin)], bin) || bytes.ContainsFunc(all[len(bin):], func(r rune) bool { return r != 0 }) {
			t.Fatalf("size %d: chunks do not reassemble to the binary", size)
		}
	}
	if c := AppendChunkData([]byte("x"), bin, 512, 2); string(c) != "x" {
		t.Fatalf("chunk past the end: %q", c)
	}
	if c := AppendChunkData(nil, bin, 512, -1); c != nil {
		t.Fatalf("negative index: %q", c)
	}
	// The check value of CRC-32/IEEE.
	if got := ChunkCRC([]byte("123456789")); got != 0xcbf43926 {
		t.Fatalf("ChunkCRC = %#x", got)
	}
}

// FuzzParseUpdateReady: whatever a device sends as UpdateReady parses
// without panicking, and a fast answer re-encodes to a fast answer.
func FuzzParseUpdateReady(f *testing.F) {
	for _, m := range []Message{NewUpdateReady(NonConfirmable, 1, 2, true), NewUpdateReady(Confirmable, 3, 4, false),
		NewACK(5, []byte{6}, CodeServiceUnavailable, nil)} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.Decode(b); err != nil {
			return
		}
		fast, err := ParseUpdateReady(&m)
		if err != nil {
			if m.Code.IsSuccess() {
				t.Fatalf("success code %s refused: %v", m.Code, err)
			}
			return
		}
		tok, _ := m.Token1()
		m2 := NewUpdateReady(m.Type, m.ID, tok, fast)
		if fast2, err := ParseUpdateReady(&m2); err != nil || fast2 != fast {
			t.Fatalf("round trip: %v %v, want %v", fast2, err, fast)
		}
	})
}

// FuzzChunkRoundTrip: a chunk built from any data and index parses back to
// the same chunk, and its CRC is the one ChunkCRC computes.
func FuzzChunkRoundTrip(f *testing.F) {
	f.Add([]byte("123456789"), uint16(5), true)
	f.Add([]byte{}, uint16(0), false)
	f.Fuzz(func(t *testing.T, data []byte, index uint16, fast bool) {
		c := Chunk{CRC32: ChunkCRC(data), Index: index, HasIndex: fast, Data: data}
		if !fast {
			c.Index = 0
		}
		m := NewChunk(1, 2, c)
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var m2 Message
		if err := m2.Decode(b); err != nil {
			t.Fatal(err)
		}
		got, err := ParseChunk(&m2)
		if err != nil {
			t.Fatal(err)
		}
		if got.CRC32 != ChunkCRC(got.Data) || got.Index != c.Index || got.HasIndex != fast || !bytes.Equal(got.Data, data) {
			t.Fatalf("chunk %+v, want %+v", got, c)
		}
	})
}
