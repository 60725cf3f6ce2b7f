package protocol

import (
	"bytes"
	"io"
	"strconv"
	"testing"
)

func BenchmarkMessageDecode(b *testing.B) {
	for _, c := range coapCases {
		b.Run(c.name, func(b *testing.B) {
			var m Message
			b.ReportAllocs()
			b.SetBytes(int64(len(c.wire)))
			for b.Loop() {
				if err := m.Decode(c.wire); err != nil {
					b.Fatal(err)
				}
				_ = Classify(&m)
			}
		})
	}
}

func BenchmarkMessageEncode(b *testing.B) {
	for _, c := range coapCases {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 2048)
			b.ReportAllocs()
			b.SetBytes(int64(len(c.wire)))
			for b.Loop() {
				if _, err := c.want.AppendBinary(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseEvent(b *testing.B) {
	c, _ := caseByName("event_public_ttl")
	m, _ := ParseMessage(c.wire)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(&m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHello(b *testing.B) {
	c, _ := caseByName("hello")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHello(c.want.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseDescription(b *testing.B) {
	for _, c := range describeCases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.payload)))
			for b.Loop() {
				if _, err := ParseDescription(c.flags, c.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFrame measures one sealed or opened frame of the given plaintext size.
func BenchmarkFrame(b *testing.B) {
	keys := SessionKeys{Key: [16]byte{1}, IV: [16]byte{2}}
	for _, size := range []int{16, 128, 1024} {
		plain := bytes.Repeat([]byte{'x'}, size)
		b.Run("seal/"+itoa(size), func(b *testing.B) {
			fw := NewFrameWriter(io.Discard, keys, 0)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := fw.WriteFrame(plain); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("open/"+itoa(size), func(b *testing.B) {
			o := NewFrameOpener(keys, 0)
			frame, _ := NewFrameSealer(keys, 0).Seal(nil, plain)
			ct := make([]byte, len(frame)-2)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				copy(ct, frame[2:])
				o.iv = keys.IV
				if _, err := o.Open(ct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// BenchmarkServerHandshakeCrypto measures the server's RSA work per device
// connection: one RSA-2048 decryption (device hello), one RSA-1024
// encryption and one RSA-2048 signature (session keys). Compare with
// `openssl speed rsa2048` private-key operations (two per handshake).
func BenchmarkServerHandshakeCrypto(b *testing.B) {
	k := loadTestKeys(b)
	g := loadGolden(b, "handshake.golden")
	nonce, block := g.hex1(b, "nonce"), g.hex1(b, "device_hello")
	b.ReportAllocs()
	for b.Loop() {
		h, err := OpenDeviceHello(k.server, nonce, block)
		if err != nil {
			b.Fatal(err)
		}
		if err := CheckOfferedKey(&k.device.PublicKey, h.PublicKeyDER); err != nil {
			b.Fatal(err)
		}
		if _, _, err := SealSessionKeys(nil, k.server, &k.device.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeviceHandshakeCrypto measures the device side (the simulator's cost).
func BenchmarkDeviceHandshakeCrypto(b *testing.B) {
	k := loadTestKeys(b)
	g := loadGolden(b, "handshake.golden")
	nonce, reply := g.hex1(b, "nonce"), g.hex1(b, "session_reply")
	spki := readTestdata(b, "device_key.pub.der")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealDeviceHello(&k.server.PublicKey, nonce, DeviceID{}, spki); err != nil {
			b.Fatal(err)
		}
		if _, err := OpenSessionKeys(k.device, &k.server.PublicKey, reply); err != nil {
			b.Fatal(err)
		}
	}
}
