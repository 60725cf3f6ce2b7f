package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
)

// Every decoder has a native fuzzer seeded from the shared case table and the
// openssl goldens. Run one with e.g.
//
//	go test ./protocol -run '^$' -fuzz '^FuzzMessageDecode$' -fuzztime 20s

func seedCoAP(f *testing.F) {
	for _, c := range coapCases {
		f.Add(c.wire)
	}
	for _, c := range badCoapCases {
		f.Add(c.wire)
	}
	for _, dir := range []string{"d2s", "s2d"} {
		_, frames := loadTranscript(f, dir)
		for _, fr := range frames {
			f.Add(fr.plain)
		}
	}
}

// FuzzMessageDecode checks that whatever decodes re-encodes to the same message.
func FuzzMessageDecode(f *testing.F) {
	seedCoAP(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.Decode(b); err != nil {
			return
		}
		_ = Classify(&m)
		enc, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("decoded message does not re-encode: %v", err)
		}
		var back Message
		if err := back.Decode(enc); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, back) {
			t.Fatalf("round trip changed the message\n in  %+v\n out %+v", m, back)
		}
		if len(enc) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(enc))
		}
	})
}

// FuzzCatalogue runs every catalogue parser on any decodable message and
// checks typed round trips through the matching constructor.
func FuzzCatalogue(f *testing.F) {
	seedCoAP(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		_, _ = ParseDescribeResponse(&m)
		_, _ = ParseFunctionResult(&m)
		_, _ = ParseTimeResponse(&m)
		switch Classify(&m) {
		case KindHello:
			if h, err := ParseHelloMessage(&m); err == nil {
				h2, err := ParseHello(h.AppendBinary(nil))
				mustRoundTrip(t, err, h, h2)
			}
		case KindDescribeRequest:
			if r, err := ParseDescribeRequest(&m); err == nil {
				m2, err := NewDescribeRequest(m.ID, 1, r.Flags, r.Block2)
				if err != nil {
					t.Fatal(err)
				}
				r2, err := ParseDescribeRequest(&m2)
				mustRoundTrip(t, err, r, r2)
			}
		case KindDescribePost:
			if body, err := ParseDescribePost(&m); err == nil {
				_, _ = ParseDescription(body.Flags, body.Payload)
				m2, err := NewDescribePost(m.ID, 1, body)
				if err != nil {
					t.Fatal(err)
				}
				b2, err := ParseDescribePost(&m2)
				mustRoundTrip(t, err, body, b2)
			}
		case KindFunctionCall:
			if c, err := ParseFunctionCall(&m); err == nil {
				m2 := NewFunctionCall(m.ID, 1, c.Name, c.Argument)
				c2, err := ParseFunctionCall(&m2)
				mustRoundTrip(t, err, c, c2)
			}
		case KindVariableRequest:
			if n, err := ParseVariableRequest(&m); err == nil {
				m2 := NewVariableRequest(m.ID, 1, n)
				n2, err := ParseVariableRequest(&m2)
				mustRoundTrip(t, err, n, n2)
			}
		case KindEvent:
			if e, err := ParseEvent(&m); err == nil {
				_, _, _ = ClaimCode(e)
				m2, err := NewEvent(m.Type, m.ID, e)
				if errors.Is(err, ErrEventTTL) {
					return
				}
				e2, err := ParseEvent(&m2)
				mustRoundTrip(t, err, e, e2)
			}
		case KindSubscribe:
			if s, err := ParseSubscribe(&m); err == nil {
				m2 := NewSubscribe(m.Type, m.ID, s)
				s2, err := ParseSubscribe(&m2)
				mustRoundTrip(t, err, s, s2)
			}
		case KindSignal:
			if on, err := ParseSignal(&m); err == nil {
				m2 := NewSignal(m.ID, 1, on)
				on2, err := ParseSignal(&m2)
				mustRoundTrip(t, err, on, on2)
			}
		case KindKeyChange:
			_, _ = ParseKeyChange(&m)
		case KindGoodbye:
			if g, err := ParseGoodbye(&m); err == nil {
				m2 := NewGoodbye(m.Type, m.ID, g)
				g2, err := ParseGoodbye(&m2)
				mustRoundTrip(t, err, g, g2)
			}
		case KindUpdateBegin:
			if u, present, err := ParseUpdateBegin(&m); err == nil && present {
				m2 := NewUpdateBegin(m.ID, 1, u)
				u2, _, err := ParseUpdateBegin(&m2)
				mustRoundTrip(t, err, u, u2)
			}
		case KindChunk:
			if c, err := ParseChunk(&m); err == nil {
				m2 := NewChunk(m.ID, 1, c)
				c2, err := ParseChunk(&m2)
				mustRoundTrip(t, err, c, c2)
			}
		case KindChunkMissed:
			if idx, err := ParseChunkMissed(&m); err == nil {
				m2 := NewChunkMissed(m.ID, idx...)
				idx2, err := ParseChunkMissed(&m2)
				mustRoundTrip(t, err, idx, idx2)
			}
		}
	})
}

func mustRoundTrip(t *testing.T, err error, a, b any) {
	t.Helper()
	if err != nil {
		t.Fatalf("re-parse failed: %v", err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("typed round trip changed the value\n in  %+v\n out %+v", a, b)
	}
}

// FuzzFrameReader feeds arbitrary streams to the frame reader; every frame it
// accepts must be reproduced byte for byte by the sealer.
func FuzzFrameReader(f *testing.F) {
	keys, frames := loadTranscript(f, "d2s")
	var stream []byte
	for _, fr := range frames {
		stream = append(stream, fr.frame...)
		f.Add(fr.frame)
	}
	f.Add(stream)
	for _, recs := range loadGolden(f, "badframes.golden") {
		f.Add(hexb(recs[0][0]))
	}
	f.Add(hexb("0000"))
	f.Add(hexb("00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		fr := NewFrameReader(r, keys, 1024)
		s := NewFrameSealer(keys, 1024)
		for {
			start := len(in) - r.Len()
			plain, err := fr.ReadFrame()
			if err != nil {
				return
			}
			end := len(in) - r.Len()
			sealed, err := s.Seal(nil, plain)
			if err != nil {
				t.Fatalf("accepted plaintext does not seal: %v", err)
			}
			if !bytes.Equal(sealed, in[start:end]) {
				t.Fatalf("frame does not re-seal identically\n in  %x\n out %x", in[start:end], sealed)
			}
		}
	})
}

// FuzzOpenDeviceHello fuzzes the server's decoding of the device's RSA block.
func FuzzOpenDeviceHello(f *testing.F) {
	k := loadTestKeys(f)
	g := loadGolden(f, "handshake.golden")
	nonce := g.hex1(f, "nonce")
	for _, name := range []string{"device_hello", "device_hello_52", "device_hello_bad_nonce", "device_hello_short", "device_hello_wrong_server_key"} {
		f.Add(g.hex1(f, name))
	}
	f.Fuzz(func(t *testing.T, block []byte) {
		h, err := OpenDeviceHello(k.server, nonce, block)
		if err == nil && len(block) != DeviceHelloSize {
			t.Fatalf("accepted a %d-byte block", len(block))
		}
		if err == nil && h.PublicKeyDER != nil && len(h.PublicKeyDER) == 0 {
			t.Fatal("empty but non-nil offered key")
		}
	})
}

// FuzzOpenSessionKeys fuzzes the device's decoding of the server's ct ‖ sig.
func FuzzOpenSessionKeys(f *testing.F) {
	k := loadTestKeys(f)
	g := loadGolden(f, "handshake.golden")
	for _, name := range []string{"session_reply", "session_reply_wrong_server", "session_reply_wrong_device"} {
		f.Add(g.hex1(f, name))
	}
	want := g.hex1(f, "cred")
	f.Fuzz(func(t *testing.T, msg []byte) {
		keys, err := OpenSessionKeys(k.device, &k.server.PublicKey, msg)
		if err == nil && !bytes.Equal(keys.Cred(), want) {
			// Only the server's private key can produce a valid signature.
			t.Fatalf("accepted forged session keys %x", keys.Cred())
		}
	})
}

// FuzzParseHello checks the Hello payload decoder and its round trip.
func FuzzParseHello(f *testing.F) {
	for _, c := range coapCases {
		if c.kind == KindHello {
			f.Add(c.want.Payload)
		}
	}
	f.Add(hexb("0006 0000 0001"))
	f.Add(hexb("000c ffff 0000 000c 0100 00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := ParseHello(p)
		if err != nil {
			return
		}
		h2, err := ParseHello(h.AppendBinary(nil))
		mustRoundTrip(t, err, h, h2)
	})
}

// FuzzParseDescription fuzzes describe payloads (JSON, repaired JSON, protobuf).
func FuzzParseDescription(f *testing.F) {
	for _, c := range describeCases {
		f.Add(byte(c.flags), c.payload)
	}
	f.Add(byte(3), []byte(`{"p":3,"m":[]"f":[],"v":{}}`))
	f.Fuzz(func(t *testing.T, flags byte, p []byte) {
		d, err := ParseDescription(DescribeFlags(flags), p)
		if err != nil {
			return
		}
		if d.App != nil {
			j1, err := json.Marshal(d.App)
			if err != nil {
				t.Fatal(err)
			}
			var back AppDescribe
			if err := json.Unmarshal(j1, &back); err != nil {
				t.Fatalf("own JSON %s does not parse: %v", j1, err)
			}
			if j2, _ := json.Marshal(back); !bytes.Equal(j1, j2) {
				t.Fatalf("app describe JSON not stable\n %s\n %s", j1, j2)
			}
		}
		if d.System != nil {
			j1, err := json.Marshal(d.System)
			if err != nil {
				t.Fatal(err)
			}
			var back SystemDescribe
			if err := json.Unmarshal(j1, &back); err != nil {
				t.Fatalf("own JSON %s does not parse: %v", j1, err)
			}
			if j2, _ := json.Marshal(back); !bytes.Equal(j1, j2) {
				t.Fatalf("system describe JSON not stable\n %s\n %s", j1, j2)
			}
		}
	})
}

// FuzzParsePublicKey fuzzes public key parsing in all accepted encodings.
func FuzzParsePublicKey(f *testing.F) {
	for _, name := range []string{"server_key.pub.pem", "server_key.rsapub.pem", "server_key.pub.der", "device_key.rsapub.der", "device_ec_key.pub.pem", "device_ec_key.pub.der"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		der, err := CanonicalPublicKeyDER(b)
		if err != nil {
			return
		}
		der2, err := CanonicalPublicKeyDER(der)
		if err != nil || !bytes.Equal(der, der2) {
			t.Fatalf("canonical DER not stable: %v", err)
		}
	})
}

// FuzzParsePrivateKey fuzzes private key parsing in all accepted encodings.
func FuzzParsePrivateKey(f *testing.F) {
	for _, name := range []string{"device_key.pem", "device_key.der", "device_key.slot", "server_key.pk8.pem", "device_ec_key.pem"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePrivateKey(b)
		if err != nil {
			return
		}
		der, err := MarshalPrivateKeyDER(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParsePrivateKey(der); err != nil {
			t.Fatalf("own DER does not parse: %v", err)
		}
	})
}

// FuzzDecodeServerKeyBlob fuzzes the server key blob decoder and re-encodes
// what it accepts.
func FuzzDecodeServerKeyBlob(f *testing.F) {
	f.Add(false, readTestdata(f, "server_key_blob_tcp.bin"))
	f.Add(false, readTestdata(f, "server_key_blob_tcp_ip.bin"))
	f.Add(true, readTestdata(f, "server_key_blob_udp.bin"))
	f.Fuzz(func(t *testing.T, udp bool, blob []byte) {
		tr := TransportTCP
		if udp {
			tr = TransportUDP
		}
		b, err := DecodeServerKeyBlob(tr, blob)
		if err != nil {
			return
		}
		enc, err := EncodeServerKeyBlob(tr, b.KeyDER, b.Host, b.Port)
		if err != nil {
			return // e.g. a domain of digits and dots, which the encoder treats as IPv4
		}
		b2, err := DecodeServerKeyBlob(tr, enc)
		mustRoundTrip(t, err, b, b2)
	})
}

// FuzzDecodeVariable fuzzes variable value decoding and its re-encoding.
func FuzzDecodeVariable(f *testing.F) {
	for _, c := range coapCases {
		if c.kind == KindResponse && c.want.Code == CodeContent {
			for _, typ := range []VariableType{VariableBool, VariableInt32, VariableString, VariableDouble} {
				f.Add(byte(typ), c.want.Payload)
			}
		}
	}
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		v, err := DecodeVariable(VariableType(typ), p)
		if err != nil {
			return
		}
		enc, err := AppendVariable(nil, VariableType(typ), v)
		if err != nil {
			t.Fatalf("decoded %T does not encode: %v", v, err)
		}
		v2, err := DecodeVariable(VariableType(typ), enc)
		if err != nil {
			t.Fatal(err)
		}
		if x, ok := v.(float64); ok && math.IsNaN(x) {
			if !bytes.Equal(enc, p) {
				t.Fatalf("NaN bits changed: %x -> %x", p, enc)
			}
			return
		}
		if v != v2 {
			t.Fatalf("value round trip %v -> %v", v, v2)
		}
	})
}
