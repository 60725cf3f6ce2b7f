package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// transcriptFrame is one line of testdata/frames.golden.
type transcriptFrame struct {
	name         string
	plain, frame []byte
}

// loadTranscript returns the session keys and the frames of one direction
// ("d2s" or "s2d") of testdata/frames.golden, produced by openssl.
func loadTranscript(t testing.TB, dir string) (SessionKeys, []transcriptFrame) {
	t.Helper()
	g := loadGolden(t, "frames.golden")
	var keys SessionKeys
	copy(keys.Key[:], g.hex1(t, "key"))
	copy(keys.IV[:], g.hex1(t, "iv"))
	var out []transcriptFrame
	for _, rec := range g[dir] {
		if len(rec) != 3 {
			t.Fatalf("bad %s record %q", dir, rec)
		}
		plain, err1 := hex.DecodeString(rec[1])
		frame, err2 := hex.DecodeString(rec[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("bad hex in %s record %s", dir, rec[0])
		}
		out = append(out, transcriptFrame{name: rec[0], plain: plain, frame: frame})
	}
	if len(out) == 0 {
		t.Fatalf("no %s frames in golden file", dir)
	}
	return keys, out
}

func caseByName(name string) (coapCase, bool) {
	for _, c := range coapCases {
		if c.name == name {
			return c, true
		}
	}
	return coapCase{}, false
}

func TestFrameReaderGoldenTranscript(t *testing.T) {
	for _, dir := range []string{"d2s", "s2d"} {
		t.Run(dir, func(t *testing.T) {
			keys, frames := loadTranscript(t, dir)
			var stream []byte
			for _, f := range frames {
				stream = append(stream, f.frame...)
			}
			fr := NewFrameReader(bytes.NewReader(stream), keys, 0)
			for _, f := range frames {
				got, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("%s: ReadFrame: %v", f.name, err)
				}
				if !bytes.Equal(got, f.plain) {
					t.Fatalf("%s: plaintext %x, want %x", f.name, got, f.plain)
				}
				// The openssl transcript's CoAP bytes and the hand-assembled case table
				// were written separately; where both have a message they must agree.
				if c, ok := caseByName(f.name); ok && !bytes.Equal(c.wire, f.plain) {
					t.Fatalf("%s: frames.golden plaintext %x differs from case table %x", f.name, f.plain, c.wire)
				}
				var m Message
				if err := m.Decode(got); err != nil {
					t.Fatalf("%s: Decode: %v", f.name, err)
				}
				if Classify(&m) == KindUnknown {
					t.Fatalf("%s: classified as unknown", f.name)
				}
			}
			if _, err := fr.ReadFrame(); err != io.EOF {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
		})
	}
}

func TestFrameWriterGoldenTranscript(t *testing.T) {
	// CBC with a known IV is deterministic, so our writer must reproduce the
	// openssl frames byte for byte, including the first-block IV chaining.
	for _, dir := range []string{"d2s", "s2d"} {
		t.Run(dir, func(t *testing.T) {
			keys, frames := loadTranscript(t, dir)
			var out bytes.Buffer
			fw := NewFrameWriter(&out, keys, 0)
			var want []byte
			for _, f := range frames {
				if err := fw.WriteFrame(f.plain); err != nil {
					t.Fatalf("%s: %v", f.name, err)
				}
				want = append(want, f.frame...)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("writer output differs from openssl transcript\n got  %x\n want %x", out.Bytes(), want)
			}
		})
	}
}

func TestFrameIVIsFirstCiphertextBlock(t *testing.T) {
	// event_private is a 3-block frame: chaining from its LAST block (standard
	// CBC streaming) would garble the next frame.
	keys, frames := loadTranscript(t, "d2s")
	o := NewFrameOpener(keys, 0)
	for i, f := range frames {
		ct := append([]byte(nil), f.frame[2:]...)
		if _, err := o.Open(ct); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(o.iv[:], f.frame[2:2+16]) {
			t.Fatalf("frame %d (%d blocks): IV after = %x, want first block %x", i, len(ct)/16, o.iv, f.frame[2:18])
		}
	}
}

func TestFrameWriteMessage(t *testing.T) {
	keys, frames := loadTranscript(t, "s2d")
	c, _ := caseByName("server_hello")
	var out bytes.Buffer
	if err := NewFrameWriter(&out, keys, 0).WriteMessage(&c.want); err != nil {
		t.Fatal(err)
	}
	if frames[0].name != "server_hello" || !bytes.Equal(out.Bytes(), frames[0].frame) {
		t.Fatalf("WriteMessage = %x, want %x", out.Bytes(), frames[0].frame)
	}
	var m Message
	if err := NewFrameReader(&out, keys, 0).ReadMessage(&m); err != nil || Classify(&m) != KindHello {
		t.Fatalf("ReadMessage = %v, %v", Classify(&m), err)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	keys, frames := loadTranscript(t, "d2s")
	first := frames[0].frame // 2 + 32 bytes
	bad := loadGolden(t, "badframes.golden")
	tests := []struct {
		name   string
		stream []byte
		max    int
		err    error
	}{
		{"clean_eof", nil, 0, io.EOF},
		{"half_header", first[:1], 0, ErrFrameTruncated},
		{"header_only", first[:2], 0, ErrFrameTruncated},
		{"body_truncated", first[:len(first)-1], 0, ErrFrameTruncated},
		{"length_zero", hexb("0000"), 0, ErrFrameLength},
		{"length_not_block_multiple", append(hexb("0011"), make([]byte, 17)...), 0, ErrFrameLength},
		{"oversize", first, 16, ErrFrameTooLarge},
		{"oversize_default", hexb("1010"), 0, ErrFrameTooLarge},
		{"garbage_before_frame", append([]byte("GET / HTTP/1.1\r\n"), first...), 0, ErrFrameLength},
		{"pad_zero", bad.hex1(t, "pad_zero"), 0, ErrBadPadding},
		{"pad_too_big", bad.hex1(t, "pad_too_big"), 0, ErrBadPadding},
		{"pad_inconsistent", bad.hex1(t, "pad_inconsistent"), 0, ErrBadPadding},
		{"pad_zero_two_blocks", bad.hex1(t, "pad_block_of_zero_pad"), 0, ErrBadPadding},
		{"wrong_key", bad.hex1(t, "wrong_key"), 0, ErrBadPadding},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFrameReader(bytes.NewReader(tc.stream), keys, tc.max).ReadFrame()
			if !errors.Is(err, tc.err) {
				t.Fatalf("ReadFrame error = %v, want %v", err, tc.err)
			}
		})
	}
}

// errReader fails every read after its data.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestFrameReaderPassesTransportErrors(t *testing.T) {
	keys, frames := loadTranscript(t, "d2s")
	boom := errors.New("connection reset")
	_, err := NewFrameReader(&errReader{data: frames[0].frame[:5], err: boom}, keys, 0).ReadFrame()
	if !errors.Is(err, boom) {
		t.Fatalf("ReadFrame error = %v, want the transport's", err)
	}
}

func TestFrameSealOpenRoundTrip(t *testing.T) {
	keys := SessionKeys{Key: [16]byte{1, 2, 3}, IV: [16]byte{9, 8, 7}}
	s, o := NewFrameSealer(keys, 0), NewFrameOpener(keys, 0)
	var frame []byte
	for n := 0; n <= 100; n++ {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		var err error
		frame, err = s.Seal(frame[:0], plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(frame) != SealedLen(n) || (len(frame)-2)%16 != 0 || int(frame[0])<<8|int(frame[1]) != len(frame)-2 {
			t.Fatalf("n=%d: frame of %d bytes with prefix %x", n, len(frame), frame[:2])
		}
		got, err := o.Open(frame[2:])
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: Open = %x, %v", n, got, err)
		}
	}
	if _, err := NewFrameSealer(keys, 32).Seal(nil, make([]byte, 32)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Seal over max: %v", err)
	}
}

// TestFrameCiphersShareOneKey: the opener and sealer of NewFrameCiphers
// are the two directions of one session, interchangeable with separately
// built ones, and usable at the same time.
func TestFrameCiphersShareOneKey(t *testing.T) {
	keys := SessionKeys{Key: [16]byte{7, 7}, IV: [16]byte{3}}
	o, s := NewFrameCiphers(keys, 64, 0)
	peerOpen, peerSeal := NewFrameOpener(keys, 0), NewFrameSealer(keys, 0)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the session's writer
		defer wg.Done()
		for n := range 200 {
			plain := bytes.Repeat([]byte{byte(n)}, n%50)
			f, err := s.Seal(nil, plain)
			if err != nil {
				t.Error(err)
				return
			}
			if got, err := peerOpen.Open(f[2:]); err != nil || !bytes.Equal(got, plain) {
				t.Errorf("sealed frame %d opens to %x, %v", n, got, err)
				return
			}
		}
	}()
	go func() { // the session's reader
		defer wg.Done()
		for n := range 200 {
			plain := bytes.Repeat([]byte{byte(n + 1)}, n%40)
			f, _ := peerSeal.Seal(nil, plain)
			if got, err := o.Open(f[2:]); err != nil || !bytes.Equal(got, plain) {
				t.Errorf("frame %d opens to %x, %v", n, got, err)
				return
			}
		}
	}()
	wg.Wait()
	if err := o.CheckLen(80); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("opener max 64: %v", err)
	}
	if _, err := s.Seal(nil, make([]byte, 100)); err != nil {
		t.Fatalf("sealer max is its own (default): %v", err)
	}
}

func TestFrameStreamsDoNotAllocate(t *testing.T) {
	keys := SessionKeys{Key: [16]byte{1}, IV: [16]byte{2}}
	plain := bytes.Repeat([]byte("x"), 200)
	var wire bytes.Buffer
	fw := NewFrameWriter(&wire, keys, 0)
	for range 110 {
		if err := fw.WriteFrame(plain); err != nil {
			t.Fatal(err)
		}
	}
	wire.Reset()
	if a := testing.AllocsPerRun(100, func() { _ = fw.WriteFrame(plain) }); a != 0 {
		t.Errorf("WriteFrame allocates %.1f times, want 0", a)
	}
	// A fresh stream for the reader, whose IV chain starts at the session IV.
	var stream bytes.Buffer
	fw2 := NewFrameWriter(&stream, keys, 0)
	for range 102 {
		_ = fw2.WriteFrame(plain)
	}
	fr := NewFrameReader(bytes.NewReader(stream.Bytes()), keys, 0)
	if _, err := fr.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() {
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("ReadFrame allocates %.1f times, want 0", a)
	}
}

func TestFramesDecryptWithOpenSSL(t *testing.T) {
	// The reverse direction of the golden test: openssl decrypts what we seal.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	keys, frames := loadTranscript(t, "s2d")
	s := NewFrameSealer(keys, 0)
	iv := keys.IV
	for _, f := range frames[:4] {
		frame, err := s.Seal(nil, f.plain)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("openssl", "enc", "-d", "-aes-128-cbc", "-K", hex.EncodeToString(keys.Key[:]), "-iv", hex.EncodeToString(iv[:]))
		cmd.Stdin = bytes.NewReader(frame[2:])
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: openssl: %v", f.name, err)
		}
		if !bytes.Equal(out, f.plain) {
			t.Fatalf("%s: openssl decrypted %x, want %x", f.name, out, f.plain)
		}
		copy(iv[:], frame[2:18])
	}
}

func TestTranscriptMessageSequence(t *testing.T) {
	// The device→server transcript follows
	// docs/particle-protocol.md#a-minimal-server-session: Hello first, message
	// ids counting up from LE16(salt[0:2]) + 1 for the device's own requests.
	g := loadGolden(t, "handshake.golden")
	keys, err := SessionKeysFromCred(g.hex1(t, "cred"))
	if err != nil {
		t.Fatal(err)
	}
	_, frames := loadTranscript(t, "d2s")
	ids := keys.DeviceMessageIDs()
	var kinds []string
	for _, f := range frames {
		var m Message
		if err := m.Decode(f.plain); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, Classify(&m).String())
		if m.Type == Acknowledgement {
			continue // ACKs echo the server's id
		}
		if want := ids.Next(); m.ID != want {
			t.Fatalf("%s: message id %#04x, want %#04x", f.name, m.ID, want)
		}
	}
	if kinds[0] != "hello" || !strings.Contains(strings.Join(kinds, ","), "time-request") {
		t.Fatalf("unexpected sequence %v", kinds)
	}
	if !reflect.DeepEqual(keys.Cred(), g.hex1(t, "cred")) {
		t.Fatal("Cred() does not reassemble key ‖ iv ‖ salt")
	}
}

// TestFramePeekAgreesWithOpen: Peek returns what Open would without
// touching the frame or the IV; Advance then moves the IV as Open does.
func TestFramePeekAgreesWithOpen(t *testing.T) {
	keys := SessionKeys{Key: [16]byte{4, 2}, IV: [16]byte{6, 6}}
	s := NewFrameSealer(keys, 0)
	peek, open := NewFrameOpener(keys, 0), NewFrameOpener(keys, 0)
	dst := make([]byte, 256)
	for n := range 100 {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		frame, _ := s.Seal(nil, plain)
		body := frame[2:]
		kept := bytes.Clone(body)
		if n%3 == 0 { // look twice: nothing changed in between
			if got, err := peek.Peek(dst, body); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("n=%d: first Peek = %x, %v", n, got, err)
			}
		}
		got, err := peek.Peek(dst, body)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: Peek = %x, %v", n, got, err)
		}
		if !bytes.Equal(body, kept) {
			t.Fatalf("n=%d: Peek changed the frame", n)
		}
		peek.Advance(body)
		if got, err := open.Open(body); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: Open = %x, %v", n, got, err)
		}
		if peek.iv != open.iv {
			t.Fatalf("n=%d: IV after Advance differs from Open's", n)
		}
	}
	for _, c := range []struct {
		name string
		ct   []byte
		room int
		want error
	}{
		{"empty", nil, 16, ErrFrameLength},
		{"not whole blocks", make([]byte, 17), 32, ErrFrameLength},
		{"too large", make([]byte, DefaultMaxFrameLen+16), DefaultMaxFrameLen + 16, ErrFrameTooLarge},
		{"bad padding", make([]byte, 16), 16, ErrBadPadding},
	} {
		if _, err := peek.Peek(make([]byte, c.room), c.ct); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := peek.Peek(make([]byte, 8), make([]byte, 16)); err == nil {
		t.Error("Peek into too small a buffer succeeded")
	}
	ct := make([]byte, 16)
	if a := testing.AllocsPerRun(100, func() { _, _ = peek.Peek(dst, ct) }); a != 0 {
		t.Errorf("Peek allocates %.1f times, want 0", a)
	}
}

// FuzzFramePeek: on any frame body Peek and Open agree (plaintext and
// error), and Advance leaves the IV where Open does.
func FuzzFramePeek(f *testing.F) {
	keys, frames := loadTranscript(f, "d2s")
	for _, fr := range frames {
		f.Add(fr.frame[2:])
	}
	f.Add(make([]byte, 16))
	f.Add(make([]byte, 5))
	f.Fuzz(func(t *testing.T, ct []byte) {
		peek, open := NewFrameOpener(keys, 1024), NewFrameOpener(keys, 1024)
		got, perr := peek.Peek(make([]byte, len(ct)), ct)
		ct2 := bytes.Clone(ct)
		want, oerr := open.Open(ct2)
		if (perr == nil) != (oerr == nil) || (perr == nil && !bytes.Equal(got, want)) {
			t.Fatalf("Peek = %x, %v; Open = %x, %v", got, perr, want, oerr)
		}
		if oerr == nil || errors.Is(oerr, ErrBadPadding) {
			peek.Advance(ct)
			if peek.iv != open.iv {
				t.Fatal("IV after Advance differs from Open's")
			}
		}
	})
}
