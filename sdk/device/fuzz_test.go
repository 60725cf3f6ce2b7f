package device

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/wick-cloud/wick/protocol"
)

// FuzzHandle feeds arbitrary decrypted frames from a (hostile) server to a
// session: nothing may panic, and whatever the device answers must be a
// well-formed CoAP message.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		"\x50\x02\x10\x00\xb1h",                                 // server hello
		"\x41\x02\x20\x00\x07\xb1f\x03led\x42on",                // function call
		"\x41\x01\x20\x01\x08\xb1v\x04temp",                     // variable
		"\x41\x03\x20\x03\x0a\xb1s\x41\x01",                     // signal
		"\x40\x00\x20\x04",                                      // ping
		"\x41\x01\x20\x05\x0b\xb1d\x41\x02",                     // describe
		"\x41\x01\x20\x06\x0b\xb1d\x41\x03\xd1\x0a\x25",         // describe with Block2
		"\x50\x02\x20\x07\xb1E\x0d\x0aspark/device/claim/x\xff", // claim clear event
		"\x61\x45\x00\x01\x05\xff\x00\x00\x00\x7b",              // time reply
		"\x41\x02\x20\x08\x01\xb1u\xff\x00",                     // OTA begin
		"\x41\x01\x20\x09\x01\xb1v",                             // variable without name
	} {
		f.Add([]byte(seed))
	}
	serverKey, deviceKey := fuzzKeys(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		d, err := New(Config{ID: "00112233445566778899aabb", PrivateKey: deviceKey, ServerAddr: "x:1",
			ServerKey: &serverKey.PublicKey, DeviceDescribe: true, ClaimCode: "code"})
		if err != nil {
			t.Fatal(err)
		}
		d.Function("led", func(context.Context, string) int32 { return 1 })
		d.Variable("temp", func() float64 { return 1 })
		d.Subscribe("spark", func(string, string) {})
		devEnd, srvEnd := net.Pipe()
		defer devEnd.Close()
		var keys protocol.SessionKeys
		opener := protocol.NewFrameReader(srvEnd, keys, 0)
		answers := make(chan error, 1)
		go func() {
			defer srvEnd.Close()
			var m protocol.Message
			for {
				b, err := opener.ReadFrame()
				if err == io.EOF || err == io.ErrClosedPipe {
					answers <- nil
					return
				}
				if err != nil {
					answers <- nil // the pipe closed mid-frame: the test is over
					return
				}
				if err := m.Decode(b); err != nil {
					answers <- err
					return
				}
			}
		}()
		s := &session{d: d, conn: devEnd, sealer: protocol.NewFrameSealer(keys, 0)}
		s.cr.r = devEnd
		s.online.Store(true)
		ctx, cancel := context.WithCancel(context.Background())
		s.received(ctx, frame, nil, 0)
		cancel()
		devEnd.Close()
		if err := <-answers; err != nil {
			t.Fatalf("device answered an undecodable message: %v", err)
		}
	})
}
