package device

import (
	"context"
	"crypto/rsa"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// TestWireTranscript checks the device's messages byte for byte against
// the layouts of docs/particle-protocol.md (✔ details), over net.Pipe with a raw
// server built from protocol.ServerHandshake. The expected bytes are written
// out by hand from docs/particle-protocol.md, not produced by the protocol
// encoder.
func TestWireTranscript(t *testing.T) {
	serverKey, err := protocol.GenerateServerKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	deviceKey, err := protocol.GenerateDeviceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	devEnd, srvEnd := net.Pipe()
	defer srvEnd.Close()
	d, err := New(Config{
		ID: "00112233445566778899aabb", PrivateKey: deviceKey, ServerAddr: "pipe:5683",
		ServerKey: &serverKey.PublicKey, PlatformID: PlatformPhoton,
		Dial: func(context.Context, string, string) (net.Conn, error) { return devEnd, nil },
		// No reconnection within the test.
		Backoff: Backoff{Min: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Function("led", func(_ context.Context, arg string) int32 {
		if arg == "on" {
			return 1
		}
		return -1
	})
	d.Variable("temp", func() float64 { return 21.5 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	srvEnd.SetDeadline(time.Now().Add(20 * time.Second))
	res, err := protocol.ServerHandshake(srvEnd, protocol.ServerHandshakeConfig{
		PrivateKey: serverKey,
		DeviceKey: func(id protocol.DeviceID, offered []byte) (*rsa.PublicKey, error) {
			return &deviceKey.PublicKey, protocol.CheckOfferedKey(&deviceKey.PublicKey, offered)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.DeviceID.String() != "00112233445566778899aabb" {
		t.Fatalf("device id %s", res.DeviceID)
	}
	fr := protocol.NewFrameReader(srvEnd, res.Keys, 0)
	fw := protocol.NewFrameWriter(srvEnd, res.Keys, 0)
	id := binary.LittleEndian.Uint16(res.Keys.Salt[:2]) // docs/particle-protocol.md#message-ids-and-tokens ✔: first ID = LE16(salt)+1

	// next reads one frame and compares it with want, in which "ID" stands
	// for the next device message ID and "TK" for any token byte (returned).
	next := func(what, want string) (tok byte) {
		t.Helper()
		b, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := hex.EncodeToString(b)
		id++
		want = strings.ReplaceAll(strings.ReplaceAll(want, " ", ""), "ID", hex.EncodeToString([]byte{byte(id >> 8), byte(id)}))
		if i := strings.Index(want, "TK"); i >= 0 && len(got) >= i+2 {
			want = want[:i] + got[i:i+2] + want[i+2:]
			tb, _ := hex.DecodeString(got[i : i+2])
			tok = tb[0]
		}
		if got != want {
			t.Fatalf("%s:\n got  %s\n want %s", what, got, want)
		}
		return tok
	}
	// expect reads one frame that answers message id (no new device ID).
	expect := func(what, want string) {
		t.Helper()
		b, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := hex.EncodeToString(b); got != strings.ReplaceAll(want, " ", "") {
			t.Fatalf("%s:\n got  %s\n want %s", what, got, strings.ReplaceAll(want, " ", ""))
		}
	}
	write := func(what, h string) {
		t.Helper()
		b, _ := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err := fw.WriteFrame(b); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	hexs := func(s string) string { return hex.EncodeToString([]byte(s)) }

	// Hello (docs/particle-protocol.md#hello): NON POST h, product 6, version
	// ffff, flags 0x10 (goodbye), platform 6, id length 0, system 3302, max
	// message 1024, max binary 131072, OTA chunk 512.
	next("hello", "50 02 ID b1 68 ff 0006 ffff 0010 0006 0000 0ce6 0400 00020000 0200")
	write("server hello", "50 02 1000 b1 68")
	// Subscriptions (docs/particle-protocol.md#subscriptions): CON GET
	// e/<prefix> ?u, no token.
	next("subscribe spark", "40 01 ID b1 65 05"+hexs("spark")+"41 75")
	next("subscribe particle", "40 01 ID b1 65 08"+hexs("particle")+"41 75")
	// System events (docs/particle-protocol.md#events-devices-publish): NON
	// POST E/<name>, TTL 60 so no Max-Age.
	next("updates enabled", "50 02 ID b1 45 0d 12"+hexs("particle/device/updates/enabled")+"ff"+hexs("true"))
	next("updates forced", "50 02 ID b1 45 0d 11"+hexs("particle/device/updates/forced")+"ff"+hexs("false"))
	// Time request (docs/particle-protocol.md#time): CON GET t with a 1-byte
	// token.
	tok := next("time request", "41 01 ID TK b1 74")
	timeID := id
	write("time reply", "61 45"+hex.EncodeToString([]byte{byte(timeID >> 8), byte(timeID), tok})+"ff 0000007b")

	// Function call (docs/particle-protocol.md#functions ✔): empty ACK, then NON
	// 2.04 with the token and int32 BE.
	write("call led(on)", "41 02 2000 07 b1 66 03"+hexs("led")+"42"+hexs("on"))
	expect("call ack", "60 00 2000")
	next("call result", "51 44 ID 07 ff 00000001")
	// Variable (docs/particle-protocol.md#variables ✔): empty ACK, then NON 2.05
	// with the double little-endian.
	write("get temp", "41 01 2001 08 b1 76 04"+hexs("temp"))
	expect("get ack", "60 00 2001")
	next("get value", "51 45 ID 08 ff 0000000000803540")
	// Unknown variable: 4.04.
	write("get nope", "41 01 2002 09 b1 76 04"+hexs("nope"))
	expect("get nope ack", "60 00 2002")
	next("get nope result", "51 84 ID 09")
	// Signal (docs/particle-protocol.md#signal ✔): piggy-backed ACK 2.04 with
	// the token.
	write("signal", "41 03 2003 0a b1 73 41 01")
	expect("signal ack", "61 44 2003 0a")
	// Server ping: empty ACK with the same ID.
	write("ping", "40 00 2004")
	expect("ping ack", "60 00 2004")
	// Describe (docs/particle-protocol.md#describe): empty ACK, then CON 2.05
	// with the token.
	write("describe app", "41 01 2005 0b b1 64 41 02")
	expect("describe ack", "60 00 2005")
	next("describe response", "41 45 ID 0b ff"+hexs(`{"f":["led"],"v":{"temp":9}}`))
	// Describe without flags: the full describe, system and application in
	// one object (Device OS before 3.3; 3.3 answers 4.00, the
	// describe-requires-flags quirk).
	write("describe no flags", "41 01 2006 0c b1 64")
	expect("describe no flags ack", "60 00 2006")
	{
		b, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("describe no flags response: %v", err)
		}
		id++
		var m protocol.Message
		if err := m.Decode(b); err != nil || m.Code != protocol.CodeContent || m.ID != id || string(m.Token) != "\x0c" {
			t.Fatalf("describe no flags response %x (%v); want CON 2.05 with ID %04x and token 0c", b, err, id)
		}
		var full map[string]json.RawMessage
		if err := json.Unmarshal(m.Payload, &full); err != nil || full["p"] == nil || full["f"] == nil {
			t.Fatalf("describe no flags payload %s (%v); want system and application parts", m.Payload, err)
		}
	}

	if now, ok := d.Time(); !ok || now.Unix() < 0x7b-2 || now.Unix() > 0x7b+2 {
		t.Errorf("device time %v %v; want the server's 123 s after the epoch", now, ok)
	}
	if !d.Signaling() {
		t.Error("not signaling after PUT s?1")
	}

	// Cancellation: NON Goodbye with No-Response, cloud reason 2 (user).
	cancel()
	next("goodbye", "50 02 ID b1 78 d0 ea ff 01 02")
}
